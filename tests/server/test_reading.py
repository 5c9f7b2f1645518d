"""PDFs, several tabs at once and translation, over a real server and WebSocket client.

The scriptable fake engine answers (so the test controls what is cited); the PDFs are real
files made with fpdf2, read by the real extraction workers.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from tests.conftest import run_server
from tests.support.pdf_files import bomb_pdf, damaged_pdf, scanned_pdf, text_pdf
from tests.wsclient import answer_text, client
from tiangong.engine.base import Priority
from tiangong.engine.fake import FakeEngine, FakeScript

REPORT = [
    "Solar capacity doubled in three years, the energy agency said in its yearly report.",
    "Wind turbines grew taller: the average rotor is now one hundred and seventy metres wide.",
    "Grid operators warn that storage must grow as quickly, or midday power will be wasted.",
]


def pdf_page(data: bytes, title: str = "report.pdf") -> dict[str, Any]:
    return {
        "url": "https://example.com/report.pdf",
        "title": title,
        "pdf": base64.b64encode(data).decode(),
    }


def errors(frames: list[dict[str, Any]]) -> dict[str, Any]:
    assert frames[-1]["type"] == "error", frames
    return frames[-1]


async def test_a_pdf_is_summarized_and_citations_name_their_page(tmp_path: Path) -> None:
    script = FakeScript(pieces=["- Operators warn that storage must grow as quickly.\n"])
    engine = FakeEngine(script)
    async with run_server(tmp_path, serve_with=engine) as server, client(server.ws_url) as c:
        frames = await c.request(
            {"type": "summarize", "id": "p1", "page": pdf_page(text_pdf(REPORT, title="Outlook"))}
        )
    start = frames[0]
    assert start["page"]["title"] == "Outlook" and start["page"]["pages"] == 3
    assert "rotor is now one hundred" in engine.jobs[0].messages[0].content
    citations = [f for f in frames if f["type"] == "citation"]
    assert len(citations) == 1 and citations[0]["page"] == 3
    assert citations[0]["quote"].startswith("Grid operators warn")
    assert frames[-1]["type"] == "done"


async def test_a_question_on_a_pdf_works_and_its_follow_up_keeps_the_text(tmp_path: Path) -> None:
    engine = FakeEngine(FakeScript(pieces=["Wind turbines grew taller, with a wide rotor."]))
    async with run_server(tmp_path, serve_with=engine) as server, client(server.ws_url) as c:
        first = await c.request(
            {"type": "ask", "id": "q1", "question": "Wind?", "page": pdf_page(text_pdf(REPORT))}
        )
        conv = first[-1]["conversation_id"]
        await c.request({"type": "ask", "id": "q2", "question": "More?", "conversation_id": conv})
    assert [f["page"] for f in first if f["type"] == "citation"] == [2]
    assert "Grid operators warn" in engine.jobs[1].messages[0].content


async def test_unreadable_pdfs_get_clear_errors_and_the_service_keeps_serving(
    tmp_path: Path,
) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server, client(server.ws_url) as c:
        scanned = errors(
            await c.request({"type": "summarize", "id": "a", "page": pdf_page(scanned_pdf())})
        )
        damaged = errors(
            await c.request({"type": "summarize", "id": "b", "page": pdf_page(damaged_pdf())})
        )
        bomb = errors(
            await c.request({"type": "summarize", "id": "c", "page": pdf_page(bomb_pdf())})
        )
        not_base64 = errors(
            await c.request(
                {"type": "summarize", "id": "d", "page": {"url": "x.pdf", "pdf": "%%not base64"}}
            )
        )
        after = await c.request(
            {"type": "summarize", "id": "e", "page": pdf_page(text_pdf(REPORT))}
        )
    assert scanned["code"] == "bad_request" and "no text layer" in scanned["message"]
    assert damaged["code"] == "bad_request" and "damaged" in damaged["message"]
    assert bomb["code"] == "too_large"
    assert not_base64["code"] == "bad_request" and "base64" in not_base64["message"]
    assert after[-1]["type"] == "done"


TABS = [
    {
        "url": "https://a.example/solar",
        "title": "Solar report",
        "text": "Solar capacity doubled in three years across the whole region.\n\n"
        "Panel prices fell by half over the same years.",
    },
    {
        "url": "https://b.example/wind",
        "title": "Wind report",
        "text": "Wind farms added forty gigawatts of capacity in the northern provinces.",
    },
    {
        "url": "https://c.example/grid",
        "title": "电网报告",
        "text": "电网运营商警告说，储能必须同样快速增长，否则中午的电力将被浪费。",
        "lang": "zh-CN",
    },
]


async def test_a_question_across_three_tabs_reads_all_and_cites_each_by_source(
    tmp_path: Path,
) -> None:
    answer = (
        "- Wind farms added forty gigawatts of capacity in the northern provinces [2].\n"
        "- Solar capacity doubled in three years across the region [1].\n"
    )
    engine = FakeEngine(FakeScript(pieces=[answer]))
    async with run_server(tmp_path, serve_with=engine) as server, client(server.ws_url) as c:
        frames = await c.request(
            {"type": "ask", "id": "m1", "question": "What do they agree on?", "pages": TABS}
        )
    start = frames[0]
    assert [s["title"] for s in start["page"]["sources"]] == [t["title"] for t in TABS]
    assert start["page"]["sources"][2]["lang"] == "zh-CN"
    prompt = engine.jobs[0].messages[0].content
    assert "[1] Solar report — https://a.example/solar" in prompt
    assert "[3] 电网报告" in prompt and "储能必须同样快速增长" in prompt
    assert "3 sources" in engine.jobs[0].messages[-1].content
    cited = {f["source"]: f["quote"] for f in frames if f["type"] == "citation"}
    assert cited[1].startswith("Wind farms added forty gigawatts")
    assert cited[0].startswith("Solar capacity doubled")


async def test_tabs_that_do_not_fit_are_each_read_whole_through_their_notes(
    tmp_path: Path,
) -> None:
    filler = " ".join(f"Sentence {i} about nothing in particular here." for i in range(400))
    tabs = [
        {"url": f"https://{n}.example/", "title": n, "text": f"{n} key fact.\n\n{filler}"}
        for n in ("alpha", "beta", "gamma")
    ]
    engine = FakeEngine(FakeScript(context_tokens=2048, pieces=["Noted: a key fact."]))
    async with run_server(tmp_path, serve_with=engine) as server, client(server.ws_url) as c:
        frames = await c.request({"type": "summarize", "id": "m2", "pages": tabs})
    start = next(f for f in frames if f["type"] == "start")
    reading = [f for f in frames if f["type"] == "progress" and f["stage"] == "reading"]
    assert frames[-1]["type"] == "done"
    assert start["page"]["plan"]["strategy"] == "map-reduce"
    assert all(s["coverage"] == 1 for s in start["page"]["sources"])
    # One batched map step over every chunk of every tab, counted in the progress frames.
    map_jobs = [j for j in engine.jobs if j.priority is Priority.BACKGROUND]
    assert reading[-1]["done"] == reading[-1]["total"] == len(map_jobs) >= 3
    for name in ("alpha", "beta", "gamma"):
        assert any(f"{name} key fact." in j.source_text for j in map_jobs)
    final = engine.jobs[-1].messages[0].content
    assert all(f"] {n} — https://{n}.example/" in final for n in ("alpha", "beta", "gamma"))
    assert "Noted: a key fact." in final
    assert start["page"]["plan"]["prompt_tokens"] <= 2048


async def test_translation_detects_the_source_and_asks_for_the_target_language(
    tmp_path: Path,
) -> None:
    engine = FakeEngine(FakeScript(echo=True))
    text = "Солнечная мощность удвоилась за три года."
    async with run_server(tmp_path, serve_with=engine) as server, client(server.ws_url) as c:
        frames = await c.request(
            {
                "type": "rewrite",
                "id": "t1",
                "text": text,
                "options": {"task": "translate", "output_language": "zh-CN"},
            }
        )
        missing = await c.request(
            {"type": "rewrite", "id": "t2", "text": text, "options": {"task": "translate"}}
        )
    assert frames[0]["page"]["lang"] == "ru"
    system = engine.jobs[0].messages[0].content
    assert "from Russian into Simplified Chinese" in system
    assert text in answer_text(frames) and "Rewrite" not in answer_text(frames)
    assert missing[-1]["type"] == "error" and "output_language" in missing[-1]["message"]
