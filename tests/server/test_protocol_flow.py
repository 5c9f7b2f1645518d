"""The wire protocol end to end over a real server and real WebSocket clients.

These tests use the scriptable fake engine (tiangong.engine.fake) so that timing, failures and
cancellation are under the test's control; real models are exercised in tests/engine and
tests/test_real_model.py.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import TOKEN, run_server
from tests.wsclient import answer_text, client
from tiangong.engine.fake import FakeEngine, FakeScript

ARTICLE = """<html lang="en"><head><title>Solar power grows fast</title></head><body>
<nav><a href="/">Home</a> <a href="/news">News</a></nav>
<article><h1>Solar power grows fast</h1>
<p>Solar capacity doubled in three years, the energy agency said on Monday in its yearly report.</p>
<p>Costs of panels fell by half over the same period, which made rooftop systems common.</p>
<p>Grid operators warn that storage must grow as quickly, or midday power will be wasted.</p>
</article><footer>Copyright 2026</footer></body></html>"""
PAGE = {"url": "https://example.com/solar", "title": "Solar", "html": ARTICLE}


def summarize(rid: str, **options: object) -> dict[str, object]:
    return {"type": "summarize", "id": rid, "page": PAGE, "options": options}


async def test_summarize_streams_start_deltas_and_done_all_echoing_the_id(tmp_path: Path) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server, client(server.ws_url) as c:
        frames = await c.request(summarize("s1", type="key-points", length="short"))
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert all(f["id"] == "s1" for f in frames)
    start, done = frames[0], frames[-1]
    assert start["page"]["title"] == "Solar power grows fast"
    assert start["page"]["plan"] == {**start["page"]["plan"], "strategy": "whole", "coverage": 1.0}
    assert start["page"]["words"] > 30 and start["page"]["tokens"] > 30
    assert answer_text(frames) == "Fake answer about the page."
    assert done["finish_reason"] == "stop"
    assert done["usage"]["completion_tokens"] == 5
    assert done["conversation_id"] == start["conversation_id"]
    assert done["timing"]["ttft_ms"] is not None and done["timing"]["total_ms"] >= 0


async def test_the_model_reads_the_extracted_article_not_the_page_chrome(tmp_path: Path) -> None:
    engine = FakeEngine()
    async with run_server(tmp_path, serve_with=engine) as server, client(server.ws_url) as c:
        await c.request(summarize("s1", type="tldr", length="short", output_language="zh-CN"))
    prompt = "\n".join(m.content for m in engine.jobs[0].messages)
    assert "Costs of panels fell by half" in prompt
    assert "Copyright 2026" not in prompt and "Home" not in prompt.split("--- PAGE ---")[1]
    assert "one sentence" in engine.jobs[0].messages[-1].content
    assert "Chinese" in engine.jobs[0].messages[-1].content


async def test_follow_up_questions_carry_the_conversation(tmp_path: Path) -> None:
    engine = FakeEngine(FakeScript(pieces=["Costs ", "fell ", "by ", "half."]))
    async with run_server(tmp_path, serve_with=engine) as server, client(server.ws_url) as c:
        first = await c.request(
            {"type": "ask", "id": "q1", "question": "What happened to costs?", "page": PAGE}
        )
        conv = first[-1]["conversation_id"]
        second = await c.request(
            {"type": "ask", "id": "q2", "question": "And storage?", "conversation_id": conv}
        )
        history = await c.request({"type": "history", "id": "h1", "conversation_id": conv})
        listing = await c.request({"type": "history", "id": "h2"})
    assert second[-1]["type"] == "done" and second[-1]["conversation_id"] == conv
    follow_up = engine.jobs[1].messages
    assert [m.role for m in follow_up] == ["system", "user", "assistant", "user"]
    assert follow_up[1].content == "What happened to costs?"
    assert follow_up[2].content == "Costs fell by half."
    assert "Costs of panels fell by half" in follow_up[0].content  # the page, from the store
    turns = history[0]["turns"]
    assert [(t["role"], t["text"]) for t in turns] == [
        ("user", "What happened to costs?"),
        ("assistant", "Costs fell by half."),
        ("user", "And storage?"),
        ("assistant", "Costs fell by half."),
    ]
    assert listing[0]["conversations"][0]["id"] == conv
    assert listing[0]["conversations"][0]["turns"] == 4


async def test_answers_get_citations_that_quote_the_page_verbatim(tmp_path: Path) -> None:
    script = FakeScript(pieces=["- Costs of panels fell by half over the period.\n", "- Cats."])
    async with run_server(tmp_path, serve_with=FakeEngine(script)) as server:
        async with client(server.ws_url) as c:
            frames = await c.request(summarize("s1"))
    citations = [f for f in frames if f["type"] == "citation"]
    assert [c["n"] for c in citations] == [1]
    assert citations[0]["quote"] in ARTICLE
    assert "Costs of panels fell by half" in citations[0]["quote"]
    assert frames.index(citations[0]) < len(frames) - 1  # before done


async def test_rewrite_streams_and_is_stored(tmp_path: Path) -> None:
    engine = FakeEngine(FakeScript(echo=True))
    async with run_server(tmp_path, serve_with=engine) as server, client(server.ws_url) as c:
        frames = await c.request(
            {
                "type": "rewrite",
                "id": "w1",
                "text": "hey send the report friday",
                "options": {"tone": "more-formal", "length": "shorter"},
            }
        )
    assert frames[-1]["type"] == "done"
    assert "more formal" in answer_text(frames) and "shorter" in answer_text(frames)
    assert "hey send the report friday" in answer_text(frames)


async def test_chinese_text_streams_intact(tmp_path: Path) -> None:
    pieces = ["太阳能", "装机容量", "三年翻了", "一番。🌞"]
    page = {
        "url": "https://example.cn/solar",
        "title": "太阳能",
        "html": "<html lang='zh'><body><article><p>太阳能装机容量三年翻了一番，"
        "能源署周一在年度报告中说。</p><p>电池板成本同期下降了一半。</p></article></body></html>",
    }
    async with run_server(tmp_path, serve_with=FakeEngine(FakeScript(pieces=pieces))) as server:
        async with client(server.ws_url) as c:
            frames = await c.request({"type": "summarize", "id": "zh", "page": page})
    assert answer_text(frames) == "太阳能装机容量三年翻了一番。🌞"
    assert frames[0]["page"]["lang"] == "zh"
    citations = [f["quote"] for f in frames if f["type"] == "citation"]
    assert citations and citations[0].startswith("太阳能装机容量三年翻了一番")


async def test_cancel_stops_only_its_own_request(tmp_path: Path) -> None:
    slow = FakeScript(pieces=["word "] * 200, delay=0.02)
    async with (
        run_server(tmp_path, serve_with=FakeEngine(slow)) as server,
        client(server.ws_url) as c,
    ):
        await c.send(summarize("a", max_tokens=1000))
        await c.send(summarize("b", max_tokens=1000))
        # Both stream at once; wait for a first delta of each before cancelling one.
        seen: set[str] = set()
        while seen != {"a", "b"}:
            frame = await c.recv()
            if frame["type"] == "delta":
                seen.add(frame["id"])
        await c.send({"type": "cancel", "id": "a"})
        a = await c.until_end("a")
        b = await c.until_end("b")
    assert a[-1]["type"] == "done" and a[-1]["finish_reason"] == "cancelled"
    assert a[-1]["usage"]["completion_tokens"] < 200
    assert b[-1]["finish_reason"] == "stop" and b[-1]["usage"]["completion_tokens"] == 200
    assert answer_text(b) == "word " * 200


async def test_cancelled_answers_are_stored_as_incomplete(tmp_path: Path) -> None:
    slow = FakeScript(pieces=["word "] * 100, delay=0.02)
    async with (
        run_server(tmp_path, serve_with=FakeEngine(slow)) as server,
        client(server.ws_url) as c,
    ):
        await c.send(summarize("a"))
        await c.next_of("delta")
        await c.send({"type": "cancel", "id": "a"})
        frames = await c.until_end("a")
        history = await c.request(
            {"type": "history", "id": "h", "conversation_id": frames[0]["conversation_id"]}
        )
    answer = history[0]["turns"][1]
    assert answer["status"] == "incomplete" and answer["finish_reason"] == "cancelled"
    assert answer["text"] == answer_text(frames)


async def test_cancelling_an_unknown_or_finished_request_is_ignored(tmp_path: Path) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server, client(server.ws_url) as c:
        await c.request(summarize("s1"))
        await c.send({"type": "cancel", "id": "s1"})
        await c.send({"type": "cancel", "id": "never-sent"})
        frames = await c.request(summarize("s2"))
    assert frames[-1]["type"] == "done"
    assert not [f for f in c.frames if f["type"] == "error"]


async def test_engine_failure_gives_engine_failed_keeps_partial_answer_and_next_request_works(
    tmp_path: Path,
) -> None:
    engine = FakeEngine(FakeScript(pieces=["one ", "two ", "three "], fail_after=2))
    async with run_server(tmp_path, serve_with=engine) as server, client(server.ws_url) as c:
        failed = await c.request(summarize("bad"))
        engine.script.fail_after = None
        ok = await c.request(summarize("good"))
        listing = await c.request({"type": "history", "id": "h"})
        conv = listing[0]["conversations"][1]["id"]
        stored = await c.request({"type": "history", "id": "h2", "conversation_id": conv})
    assert failed[-1]["type"] == "error" and failed[-1]["code"] == "engine_failed"
    assert failed[-1]["retryable"] is True
    assert answer_text(failed) == "one two "
    assert ok[-1]["type"] == "done"
    assert stored[0]["turns"][1]["status"] == "incomplete"
    assert stored[0]["turns"][1]["text"] == "one two "


async def test_unsupported_capability_is_refused_clearly(tmp_path: Path) -> None:
    engine = FakeEngine(FakeScript(capabilities=["summarize", "ask"]))
    async with run_server(tmp_path, serve_with=engine) as server, client(server.ws_url) as c:
        frames = await c.request({"type": "rewrite", "id": "w", "text": "hello there"})
    assert frames[-1]["code"] == "unsupported" and "rewrite" in frames[-1]["message"]


async def test_bad_frames_get_specific_errors_and_the_connection_stays_usable(
    tmp_path: Path,
) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server, client(server.ws_url) as c:
        await c.send("{not json")
        malformed = await c.next_of("error")
        await c.send({"type": "summarize", "id": "x", "page": PAGE, "options": {"length": "huge"}})
        bad_field = await c.next_of("error")
        await c.send({"type": "ask", "id": "q", "question": "Why?", "conversation_id": "nope"})
        unknown_conv = await c.next_of("error")
        await c.ws.send(b"\x00\x01binary")
        binary = await c.next_of("error")
        frames = await c.request(summarize("after"))
    assert malformed["code"] == "bad_request" and "malformed JSON" in malformed["message"]
    assert "id" not in malformed
    assert bad_field["id"] == "x" and "options.length" in bad_field["message"]
    assert unknown_conv["id"] == "q" and "not known" in unknown_conv["message"]
    assert binary["code"] == "bad_request" and "binary" in binary["message"]
    assert frames[-1]["type"] == "done"


async def test_a_page_with_no_text_is_a_bad_request(tmp_path: Path) -> None:
    empty = {
        "url": "https://example.com/",
        "html": "<html><body><script>x()</script></body></html>",
    }
    async with run_server(tmp_path, serve_with=FakeEngine()) as server, client(server.ws_url) as c:
        frames = await c.request({"type": "summarize", "id": "e", "page": empty})
    assert frames[-1]["code"] == "bad_request" and "no readable text" in frames[-1]["message"]


async def test_reusing_the_id_of_a_running_request_is_refused(tmp_path: Path) -> None:
    slow = FakeScript(pieces=["w "] * 50, delay=0.02)
    async with (
        run_server(tmp_path, serve_with=FakeEngine(slow)) as server,
        client(server.ws_url) as c,
    ):
        await c.send(summarize("dup"))
        await c.next_of("delta")
        await c.send(summarize("dup"))
        error = await c.next_of("error")
        c.frames.clear()
        await c.send({"type": "cancel", "id": "dup"})
        end = await c.until_end("dup")
    assert error["id"] == "dup" and "already in use" in error["message"]
    assert end[-1]["type"] == "done"


async def test_oversized_small_frames_are_too_large(tmp_path: Path) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server, client(server.ws_url) as c:
        await c.send({"type": "rewrite", "id": "big", "text": "x" * 70_000})
        error = await c.next_of("error")
        frames = await c.request(summarize("ok"))
    assert error["code"] == "too_large" and error["id"] == "big"
    assert frames[-1]["type"] == "done"


async def test_frames_over_the_page_limit_close_the_connection_with_1009(tmp_path: Path) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine(), page_frame_bytes=200_000) as server:
        async with client(server.ws_url) as c:
            big = {"url": "https://x", "text": "word " * 60_000}
            await c.send({"type": "summarize", "id": "huge", "page": big})
            with pytest.raises(Exception) as closed:
                await c.recv(timeout=10)
    assert getattr(closed.value, "rcvd", None) is not None
    assert closed.value.rcvd.code == 1009  # type: ignore[attr-defined]


async def test_overload_is_refused_at_once_with_a_retryable_error(tmp_path: Path) -> None:
    slow = FakeScript(pieces=["w "] * 100, delay=0.02, max_concurrency=1)
    async with run_server(tmp_path, serve_with=FakeEngine(slow), max_queue=1) as server:
        async with client(server.ws_url) as c:
            text_page = {"url": "https://example.com/t", "text": "Some words to summarize."}
            await c.send({"type": "summarize", "id": "r1", "page": text_page})
            await c.next_of("delta")  # r1 holds the only slot
            await c.send({"type": "summarize", "id": "r2", "page": text_page})
            queued = await c.next_of("progress")  # r2 fills the queue
            await c.send({"type": "summarize", "id": "r3", "page": text_page})
            r3 = await c.until_end("r3")
            for rid in ("r1", "r2"):
                await c.send({"type": "cancel", "id": rid})
            r2 = await c.until_end("r2")
            r1 = await c.until_end("r1")
    assert r3[-1]["code"] == "overloaded" and r3[-1]["retryable"] is True
    assert queued["id"] == "r2" and queued["stage"] == "queued" and queued["total"] == 1
    assert r1[-1]["finish_reason"] == "cancelled" and r2[-1]["finish_reason"] == "cancelled"


async def test_too_many_requests_on_one_connection_are_overloaded(tmp_path: Path) -> None:
    slow = FakeScript(pieces=["w "] * 100, delay=0.02)
    async with (
        run_server(tmp_path, serve_with=FakeEngine(slow), max_requests_per_connection=2) as server,
        client(server.ws_url) as c,
    ):
        for rid in ("a", "b", "c"):
            await c.send(summarize(rid))
        third = await c.until_end("c")
        for rid in ("a", "b"):
            await c.send({"type": "cancel", "id": rid})
            await c.until_end(rid)
    assert third[-1]["code"] == "overloaded" and "at most 2" in third[-1]["message"]


async def test_a_vanished_client_cancels_its_generation_and_frees_the_slot(tmp_path: Path) -> None:
    slow = FakeScript(pieces=["w "] * 500, delay=0.01, max_concurrency=1)
    async with run_server(tmp_path, serve_with=FakeEngine(slow)) as server:
        async with client(server.ws_url) as c:
            await c.send(summarize("gone"))
            await c.next_of("delta")
        # The socket is closed; the next client must get the engine within a second or so.
        async with client(server.ws_url) as c2:
            await c2.send(summarize("next"))
            first = await c2.next_of("delta", "progress", timeout=5)
            await c2.send({"type": "cancel", "id": "next"})
            await c2.until_end("next")
    assert first["id"] == "next"
    db = sqlite3.connect(server.settings.database)
    statuses = [r[0] for r in db.execute("SELECT status FROM turns WHERE role='assistant'")]
    assert statuses.count("incomplete") == 2


async def test_health_reports_the_engine(tmp_path: Path) -> None:
    import aiohttp

    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.http_url + "/health") as response:
                body = await response.json()
    assert response.status == 200
    assert body["status"] == "ok" and body["engine"]["name"] == "fake"
    assert body["engine"]["state"] == "ready"
    assert TOKEN not in json.dumps(body)


async def test_welcome_lists_engine_capabilities_and_limits(tmp_path: Path) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        async with client(server.ws_url, hello=False) as c:
            welcome = await c.hello()
    assert welcome["protocol"] == 1
    assert welcome["engine"]["capabilities"] == ["ask", "rewrite", "summarize"]
    assert welcome["engine"]["context_tokens"] == 4096
    assert welcome["limits"]["frame_bytes"] == 65536


async def test_requests_wait_for_a_loading_engine_with_progress(tmp_path: Path) -> None:
    from tiangong.engine import registry

    gate = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow_factory(settings: object, progress: registry.Progress) -> FakeEngine:
        progress("load", 1, 2)
        asyncio.run_coroutine_threadsafe(gate.wait(), loop).result(timeout=30)
        return FakeEngine()

    registry.register("slow-fake", slow_factory)
    async with run_server(tmp_path, engine="slow-fake") as server:
        async with client(server.ws_url, hello=False) as c:
            welcome = await c.hello()
            await c.send(summarize("wait"))
            progress = await c.next_of("progress")
            gate.set()
            frames = await c.until_end("wait")
            status = [f for f in c.frames if f["type"] == "status"]
    assert welcome["engine"]["state"] == "loading"
    assert progress["id"] == "wait" and progress["stage"] in ("load", "loading_model")
    assert frames[-1]["type"] == "done"
    assert status and status[-1]["engine"]["state"] == "ready"


async def test_regenerate_replaces_the_answer_in_history_and_in_later_prompts(
    tmp_path: Path,
) -> None:
    engine = FakeEngine(FakeScript(pieces=["An answer."]))
    async with run_server(tmp_path, serve_with=engine) as server, client(server.ws_url) as c:
        first = await c.request(
            {"type": "ask", "id": "q1", "question": "What happened to costs?", "page": PAGE}
        )
        conv = first[-1]["conversation_id"]
        again = await c.request(
            {
                "type": "ask",
                "id": "q2",
                "question": "What happened to costs?",
                "conversation_id": conv,
                "regenerates": "q1",
            }
        )
        history = await c.request({"type": "history", "id": "h", "conversation_id": conv})
        old = await c.request({"type": "history", "id": "h2", "request_id": "q1"})
    assert again[-1]["type"] == "done" and again[-1]["conversation_id"] == conv
    # The regenerated question is asked afresh: the old exchange is not in its prompt.
    assert [m.role for m in engine.jobs[1].messages] == ["system", "user"]
    assert [t["request_id"] for t in history[-1]["turns"]] == ["q2", "q2"]
    assert [t["text"] for t in old[-1]["turns"]] == ["What happened to costs?", "An answer."]
