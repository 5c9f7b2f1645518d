"""End to end with real models through the real server, loaded the way `tiangong serve` loads
them: the embedded SmolLM2-135M-Instruct (few, short answers: it decodes ~25-60 tok/s here)
and a small Qwen2 built offline."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import run_server
from tests.support.fixture_pages import page_html
from tests.support.offline_models import tiny_qwen2
from tests.wsclient import answer_text, client

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# The embedded model is converted once per machine and shared with tests/engine.
CONVERTED = REPO / ".test-cache" / "embedded-data" / "models"

TOWER = """<html lang="en"><head><title>The Eiffel Tower</title></head><body>
<header><a href="/">Travel Guide</a> | <a href="/login">Log in</a></header>
<article><h1>The Eiffel Tower</h1>
<p>The Eiffel Tower is a wrought-iron lattice tower in Paris, France.</p>
<p>It was designed by the company of the engineer Gustave Eiffel and completed in 1889.</p>
<p>The tower is 330 metres tall and was the tallest man-made structure in the world until 1930.</p>
<p>About seven million people visit the tower every year.</p>
</article><footer>Cookies help us deliver our services.</footer></body></html>"""


def data_dir_with_converted_model(tmp_path: Path) -> Path:
    CONVERTED.mkdir(parents=True, exist_ok=True)
    (tmp_path / "models").symlink_to(CONVERTED, target_is_directory=True)
    return tmp_path


def content_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z]{4,}", text.lower())]


async def test_the_embedded_model_serves_by_default_and_answers_follow_ups(
    tmp_path: Path,
) -> None:
    data = data_dir_with_converted_model(tmp_path)
    async with run_server(data, engine="auto") as server:
        async with client(server.ws_url, hello=False) as c:
            welcome = await c.hello()
            page = {"url": "https://example.com/eiffel", "title": "Eiffel", "html": TOWER}
            first = await c.request(
                {
                    "type": "ask",
                    "id": "q1",
                    "question": "When was the Eiffel Tower completed?",
                    "page": page,
                    "options": {"max_tokens": 40},
                },
                timeout=300,
            )
            conv = first[-1]["conversation_id"]
            second = await c.request(
                {
                    "type": "ask",
                    "id": "q2",
                    "question": "How tall is it?",
                    "conversation_id": conv,
                    "options": {"max_tokens": 40},
                },
                timeout=300,
            )
    assert welcome["engine"]["name"] == "transformers"
    assert "SmolLM2-135M-Instruct" in welcome["engine"]["model"]
    start = next(f for f in first if f["type"] == "start")
    # A model this small reads the evidence for a question, even when the page would fit.
    assert start["type"] == "start" and start["page"]["plan"]["strategy"] == "evidence"
    assert "1889" in answer_text(first)
    assert second[-1]["type"] == "done" and second[-1]["conversation_id"] == conv
    assert "330" in answer_text(second)
    for frames in (first, second):
        for citation in (f for f in frames if f["type"] == "citation"):
            assert citation["quote"] in TOWER


async def test_a_real_article_is_summarized_without_looping_and_grounded(tmp_path: Path) -> None:
    # A short English news page keeps this test quick.
    html = page_html("nytimes-opinion")
    data = data_dir_with_converted_model(tmp_path)
    async with run_server(data, engine="auto") as server, client(server.ws_url) as c:
        frames = await c.request(
            {
                "type": "summarize",
                "id": "s",
                "page": {"url": "https://www.example.com/article", "html": html},
                "options": {"type": "key-points", "length": "short", "max_tokens": 90},
            },
            timeout=300,
        )
    summary = answer_text(frames)
    start, done = next(f for f in frames if f["type"] == "start"), frames[-1]
    page_words = set(content_words(html))
    assert done["type"] == "done" and done["finish_reason"] in ("stop", "length")
    # Written from the sentences that carry the page, each one cited.
    assert start["page"]["tokens"] > 500 and start["page"]["plan"]["strategy"] == "evidence"
    quotes = [f["quote"] for f in frames if f["type"] == "citation"]
    assert len(quotes) >= 3 and all(set(content_words(q)) <= page_words for q in quotes)
    words = content_words(summary)
    assert len(words) >= 10
    assert sum(w in page_words for w in words) / len(words) >= 0.6  # grounded in the page
    trigrams = list(zip(words, words[1:], words[2:], strict=False))
    assert len(set(trigrams)) / len(trigrams) >= 0.9  # no loops
    assert done["usage"]["prompt_tokens"] > 0


async def test_cancel_stops_a_real_generation_at_once(tmp_path: Path) -> None:
    data = data_dir_with_converted_model(tmp_path)
    async with run_server(data, engine="auto") as server, client(server.ws_url) as c:
        page = {"url": "https://example.com/eiffel", "html": TOWER}
        await c.send(
            {
                "type": "summarize",
                "id": "long",
                "page": page,
                "options": {"type": "key-points", "length": "long", "max_tokens": 400},
            }
        )
        await c.next_of("delta", timeout=300)
        await c.send({"type": "cancel", "id": "long"})
        frames = await c.until_end("long", timeout=30)
        after = await c.request(
            {
                "type": "summarize",
                "id": "next",
                "page": page,
                "options": {"type": "headline", "max_tokens": 12},
            },
            timeout=300,
        )
    assert frames[-1]["finish_reason"] == "cancelled"
    assert frames[-1]["usage"]["completion_tokens"] < 100
    assert after[-1]["type"] == "done"


async def test_a_model_folder_given_with_model_serves_through_the_same_path(
    tmp_path: Path,
) -> None:
    async with run_server(tmp_path, engine="transformers", model=str(tiny_qwen2())) as server:
        async with client(server.ws_url) as c:
            await c.next_of("status", timeout=120)  # ready
            frames = await c.request(
                {"type": "rewrite", "id": "w", "text": "hello world", "options": {"max_tokens": 8}},
                timeout=120,
            )
    assert frames[-1]["type"] == "done"
    assert frames[-1]["usage"]["completion_tokens"] <= 8


async def test_a_model_that_cannot_load_falls_back_to_extractive_and_says_why(
    tmp_path: Path,
) -> None:
    missing = str(tmp_path / "no-such-model")
    async with run_server(tmp_path, engine="auto", model=missing) as server:
        async with client(server.ws_url, hello=False) as c:
            engine = (await c.hello())["engine"]
            if engine["state"] == "loading":
                engine = (await c.next_of("status", timeout=60))["engine"]
            page = {"url": "https://example.com/eiffel", "html": TOWER}
            frames = await c.request({"type": "summarize", "id": "s", "page": page})
            refused = await c.request({"type": "rewrite", "id": "w", "text": "hello there"})
    assert engine["name"] == "extractive" and engine["state"] == "ready"
    assert "no-such-model" in engine["fallback_reason"]
    assert frames[-1]["type"] == "done"
    assert "1889" in answer_text(frames) or "Paris" in answer_text(frames)
    assert refused[-1]["code"] == "unsupported"


def test_no_test_reaches_for_a_model_hub() -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
