"""A video's transcript (its captions) as the page: the model reads the cues as text, and each
citation says at which second of the video its quote starts. Real server and WebSocket client;
the scriptable fake engine answers, so the test controls what is cited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import run_server
from tests.wsclient import client
from tiangong.engine.fake import FakeEngine, FakeScript

CUES = [
    {"start": 0, "end": 4.2, "text": "Tides are caused mostly by the Moon's gravity."},
    # A sentence that runs over two cues: its citation starts where the sentence starts.
    {"start": 4.2, "end": 7.0, "text": "The Sun adds a smaller pull,"},
    {"start": 7.0, "end": 9.5, "text": "which makes spring tides higher than neap tides."},
    {"start": 9.5, "end": 12.25, "text": "Most coasts see two high tides every single day."},
]


def video(cues: list[dict[str, Any]] = CUES) -> dict[str, Any]:
    return {
        "url": "https://video.example/watch?v=tides",
        "title": "How tides work",
        "transcript": {"language": "en", "cues": cues},
    }


def citations(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in frames if f["type"] == "citation"]


async def test_a_transcript_is_summarized_and_citations_carry_the_second_they_quote(
    tmp_path: Path,
) -> None:
    script = FakeScript(
        pieces=[
            "- The Sun adds a smaller pull that makes spring tides higher.\n",
            "- Most coasts see two high tides every day.\n",
        ]
    )
    engine = FakeEngine(script)
    async with run_server(tmp_path, serve_with=engine) as server, client(server.ws_url) as c:
        frames = await c.request({"type": "summarize", "id": "v1", "page": video()})
    prompt = engine.jobs[0].messages[0].content + engine.jobs[0].messages[-1].content
    assert "The Sun adds a smaller pull, which makes spring tides higher" in prompt
    assert frames[0]["page"]["title"] == "How tides work" and frames[0]["page"]["lang"] == "en"
    found = {c["quote"]: c["time"] for c in citations(frames)}
    assert found == {
        "The Sun adds a smaller pull, which makes spring tides higher than neap tides.": 4.2,
        "Most coasts see two high tides every single day.": 9.5,
    }
    assert frames[-1]["type"] == "done"


async def test_a_question_on_a_transcript_cites_with_times_and_history_keeps_them(
    tmp_path: Path,
) -> None:
    engine = FakeEngine(FakeScript(pieces=["Tides are caused mostly by the Moon's gravity."]))
    async with run_server(tmp_path, serve_with=engine) as server, client(server.ws_url) as c:
        frames = await c.request(
            {"type": "ask", "id": "q1", "question": "What causes tides?", "page": video()}
        )
        history = await c.request(
            {"type": "history", "id": "h1", "conversation_id": frames[0]["conversation_id"]}
        )
    assert [(c["n"], c["time"]) for c in citations(frames)] == [(1, 0)]
    assert history[-1]["turns"][-1]["citations"][0]["time"] == 0


async def test_bad_transcripts_are_refused_by_name_and_the_connection_keeps_working(
    tmp_path: Path,
) -> None:
    engine = FakeEngine(FakeScript(pieces=["Two high tides a day."]))
    async with run_server(tmp_path, serve_with=engine) as server, client(server.ws_url) as c:
        empty_text = await c.request(
            {"type": "summarize", "id": "b1", "page": video([{"start": 1, "text": ""}])}
        )
        blank = await c.request(
            {"type": "summarize", "id": "b2", "page": video([{"start": 1, "text": "  \n "}])}
        )
        late = await c.request(
            {"type": "summarize", "id": "b3", "page": video([{"start": 1e9, "text": "Late."}])}
        )
        fine = await c.request({"type": "summarize", "id": "b4", "page": video()})
    assert empty_text[-1]["code"] == "bad_request"
    assert "page.transcript.cues" in empty_text[-1]["message"]
    assert blank[-1]["code"] == "bad_request" and "no readable text" in blank[-1]["message"]
    assert late[-1]["code"] == "bad_request" and "start" in late[-1]["message"]
    assert fine[-1]["type"] == "done"
