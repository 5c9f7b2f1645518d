"""Long pages through the real server and a real (tiny) model: map-reduce summaries with
progress, questions by retrieval, and a cancel in the middle of the map step."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import run_server
from tests.support.offline_models import tiny_llama
from tests.wsclient import answer_text, client

from tiangong.engine.transformers_engine import TransformersEngine

PARAGRAPHS = [
    f"Section {i}. The council discussed item {i} of the harbour plan, its cost and its "
    f"timetable, and agreed to report on progress at meeting {i + 1}. " * 3
    for i in range(90)
]
PARAGRAPHS[63] = "The new lighthouse was painted green in March by volunteers from the port."
LONG_TEXT = "\n\n".join(PARAGRAPHS)


@pytest.fixture
def llama(data_dir: Path) -> Iterator[TransformersEngine]:
    """A fresh engine: the server closes the engine it serves with when it stops."""
    yield TransformersEngine.load(str(tiny_llama()), data_dir=data_dir, dtype="float32")


PAGE = {"url": "https://example.com/harbour", "title": "Harbour plan", "text": LONG_TEXT}


async def test_a_long_page_is_summarized_whole_in_chunks_with_progress(
    tmp_path: Path, llama: TransformersEngine
) -> None:
    assert llama.count_tokens(LONG_TEXT) > 2 * llama.context_tokens
    async with (
        run_server(tmp_path, serve_with=llama, reading="page") as server,
        client(server.ws_url) as c,
    ):
        frames = await c.request(
            {"type": "summarize", "id": "s1", "page": PAGE, "options": {"max_tokens": 24}},
            timeout=120,
        )
    start = frames[0]
    assert start["type"] == "start"
    assert start["page"]["plan"]["strategy"] == "map-reduce"
    assert start["page"]["plan"]["coverage"] == 1.0
    reading = [f for f in frames if f["type"] == "progress" and f["stage"] == "reading"]
    total = reading[-1]["total"]
    assert total >= 6
    assert [f["done"] for f in reading] == list(range(total + 1))
    # Progress comes before the summary's text, and the summary ends normally.
    first_delta = next(i for i, f in enumerate(frames) if f["type"] == "delta")
    assert frames.index(reading[-1]) < first_delta
    assert frames[-1]["type"] == "done" and frames[-1]["finish_reason"] in ("stop", "length")
    assert answer_text(frames)


async def test_a_question_on_the_long_page_reads_the_passage_that_answers_it(
    tmp_path: Path, llama: TransformersEngine
) -> None:
    async with (
        run_server(tmp_path, serve_with=llama, reading="page") as server,
        client(server.ws_url) as c,
    ):
        frames = await c.request(
            {
                "type": "ask",
                "id": "q1",
                "question": "What colour was the lighthouse painted?",
                "page": PAGE,
                "options": {"max_tokens": 8},
            },
            timeout=60,
        )
    plan = frames[0]["page"]["plan"]
    assert plan["strategy"] == "retrieve" and plan["coverage"] < 1.0
    assert frames[-1]["type"] == "done", frames[-1]


async def test_cancel_during_the_map_step_ends_the_summary_promptly(
    tmp_path: Path, llama: TransformersEngine
) -> None:
    async with (
        run_server(tmp_path, serve_with=llama, reading="page") as server,
        client(server.ws_url) as c,
    ):
        await c.send({"type": "summarize", "id": "s2", "page": PAGE, "options": {}})
        while True:
            frame = await c.recv(60)
            if frame["type"] == "progress" and frame["stage"] == "reading" and frame["done"] >= 1:
                break
        await c.send({"type": "cancel", "id": "s2"})
        frames = await c.until_end("s2", timeout=30)
    assert frames[-1]["type"] == "done" and frames[-1]["finish_reason"] == "cancelled"
    assert not [f for f in frames if f["type"] == "delta"]
    assert llama._runner._batch.rows == [] and llama._runner._waiting == []
