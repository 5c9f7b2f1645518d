"""Answers from a small model, evidence first, through the real server: the embedded
SmolLM2-135M-Instruct (as every user meets it first), the extractive engine, and a
random-weight Llama built offline (a model that says nothing true, to show that nothing it
invents reaches the client)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_server
from tests.support.offline_models import tiny_llama
from tests.test_real_model import data_dir_with_converted_model
from tests.wsclient import answer_text, client
from tiangong.engine.transformers_engine import TransformersEngine

pytestmark = pytest.mark.slow

FILLER = [
    f"<p>On day {n} the council discussed the budget for parks, the renovation of the old "
    f"library and the new bicycle lanes along the river in district {n}.</p>"
    for n in range(1, 46)
]
LATE = (
    "<p>Councillor Maria Okafor leads the critics of the tram plan, saying it costs too much. "
    "Mayor Jan de Vries disagrees and says the line will pay for itself within 20 years.</p>"
)
TRAM = (
    '<html lang="en"><head><title>Council debates the tram</title></head><body><article>'
    "<h1>Council debates the tram</h1>"
    + "".join(FILLER)
    + LATE
    + "<p>The meeting ended late in the evening with a vote on the budget.</p>"
    + "</article></body></html>"
)
PAGE = {"url": "https://example.com/tram", "title": "Council debates the tram", "html": TRAM}


def start_of(frames: list[dict[str, Any]]) -> dict[str, Any]:
    return next(f for f in frames if f["type"] == "start")


def quotes_of(frames: list[dict[str, Any]]) -> list[str]:
    return [f["quote"] for f in frames if f["type"] == "citation"]


def page_words(html: str) -> set[str]:
    return set(re.findall(r"[a-z]+", html.lower()))


async def test_a_question_near_the_end_of_a_long_page_is_answered_from_that_passage(
    tmp_path: Path,
) -> None:
    data = data_dir_with_converted_model(tmp_path)
    async with run_server(data, engine="auto") as server, client(server.ws_url) as c:
        frames = await c.request(
            {"type": "ask", "id": "q", "question": "Who leads the critics?", "page": PAGE},
            timeout=300,
        )
        conv = frames[-1]["conversation_id"]
        follow_up = await c.request(
            {
                "type": "ask",
                "id": "q2",
                "question": "And who disagrees?",
                "conversation_id": conv,
            },
            timeout=300,
        )
    plan = start_of(frames)["page"]["plan"]
    assert plan["strategy"] == "evidence" and plan["coverage"] < 0.3
    assert "Okafor" in answer_text(frames)
    assert any("Maria Okafor leads the critics" in q for q in quotes_of(frames))
    assert all(q in TRAM for q in quotes_of(frames))
    # "And who disagrees?" names nobody: the earlier question still finds the passage.
    assert any("Jan de Vries" in q for q in quotes_of(follow_up)), follow_up
    assert follow_up[-1]["type"] == "done"


@pytest.mark.parametrize("engine", ["auto", "extractive"])
async def test_what_is_this_page_about_gets_a_summary_with_citations(
    tmp_path: Path, engine: str
) -> None:
    data = data_dir_with_converted_model(tmp_path)
    async with run_server(data, engine=engine) as server, client(server.ws_url) as c:
        frames = await c.request(
            {"type": "ask", "id": "q", "question": "What is this page about?", "page": PAGE},
            timeout=300,
        )
    text = answer_text(frames)
    assert frames[-1]["type"] == "done"
    assert "not seem to say" not in text and "does not say" not in text
    assert len(quotes_of(frames)) >= 2 and all(q in TRAM for q in quotes_of(frames))
    assert "council" in text.lower()


async def test_nothing_a_model_invents_reaches_the_client(tmp_path: Path) -> None:
    # Random weights: whatever the model writes is not said by the page. With the page read
    # as evidence, every word shown must come from the page.
    engine = TransformersEngine.load(str(tiny_llama()), data_dir=tmp_path, dtype="float32")
    async with run_server(tmp_path, serve_with=engine, reading="evidence") as server:
        async with client(server.ws_url) as c:
            summary = await c.request(
                {
                    "type": "summarize",
                    "id": "s",
                    "page": PAGE,
                    "options": {"type": "key-points", "length": "short"},
                },
                timeout=300,
            )
            answer = await c.request(
                {"type": "ask", "id": "q", "question": "Who leads the critics?", "page": PAGE},
                timeout=300,
            )
    allowed = page_words(TRAM) | {"the", "page", "says"}
    bullets = [b for b in answer_text(summary).splitlines() if b.strip()]
    assert len(bullets) == 3 and all(b.startswith("- ") for b in bullets)
    for text in (answer_text(summary), answer_text(answer)):
        shown = set(re.findall(r"[a-z]+", text.lower()))
        assert shown <= allowed, shown - allowed
    assert start_of(summary)["page"]["plan"]["strategy"] == "evidence"
    assert len(quotes_of(summary)) == 3 and all(q in TRAM for q in quotes_of(summary))
    assert "Okafor" in answer_text(answer)  # the best passage, quoted


async def test_reading_page_gives_the_model_the_whole_page(tmp_path: Path) -> None:
    engine = TransformersEngine.load(str(tiny_llama()), data_dir=tmp_path, dtype="float32")
    short = {"url": "https://example.com/s", "html": "<p>" + LATE + "</p>"}
    async with run_server(tmp_path, serve_with=engine, reading="page") as server:
        async with client(server.ws_url) as c:
            frames = await c.request(
                {
                    "type": "ask",
                    "id": "q",
                    "question": "Who leads the critics?",
                    "page": short,
                    "options": {"max_tokens": 8},
                },
                timeout=300,
            )
    assert start_of(frames)["page"]["plan"] == {
        "strategy": "whole",
        "coverage": 1.0,
        "prompt_tokens": start_of(frames)["page"]["plan"]["prompt_tokens"],
    }


BRIDGE = {
    "url": "https://example.com/bridge",
    "title": "The new bridge",
    "text": (
        "The new bridge over the river opened on Monday after four years of work. "
        "Engineer Sofia Lindqvist designed the bridge with a single steel arch. "
        "Cyclists now cross the river in five minutes instead of twenty."
    ),
}


async def test_questions_and_summaries_across_tabs_cite_the_page_they_quote(
    tmp_path: Path,
) -> None:
    data = data_dir_with_converted_model(tmp_path)
    async with run_server(data, engine="auto") as server, client(server.ws_url) as c:
        asked = await c.request(
            {
                "type": "ask",
                "id": "q",
                "question": "Who designed the bridge?",
                "pages": [PAGE, BRIDGE],
            },
            timeout=300,
        )
        summary = await c.request(
            {
                "type": "summarize",
                "id": "s",
                "page": PAGE,
                "pages": [PAGE, BRIDGE],
                "options": {"type": "key-points", "length": "short"},
            },
            timeout=300,
        )
    assert start_of(asked)["page"]["plan"]["strategy"] == "evidence"
    assert "Lindqvist" in answer_text(asked)
    cited = [f for f in asked if f["type"] == "citation"]
    assert cited and all(f["source"] == 1 for f in cited if "Lindqvist" in f["quote"])
    assert any("Lindqvist" in f["quote"] for f in cited)
    lines = [line for line in answer_text(summary).splitlines() if line.strip()]
    assert any(line.startswith("- [1] ") for line in lines)
    assert any(line.startswith("- [2] ") for line in lines)
    sources = {f["source"] for f in summary if f["type"] == "citation"}
    assert sources == {0, 1}
