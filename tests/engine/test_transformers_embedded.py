"""The embedded SmolLM2 model, for real: GGUF conversion once, a fact, a summary that holds.

The conversion (~20 s) lands in `.test-cache/embedded-data`, so it happens once per checkout;
later sessions reuse the converted folder exactly as a user's second start does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from tests.engine.engine_helpers import Outcome, run_job
from tests.support.fixture_pages import article_body
from tests.support.offline_models import REPO_ROOT

from tiangong.engine.base import ChatMessage, GenerationParams, Job
from tiangong.engine.embedded import embedded_gguf_path
from tiangong.engine.models import gguf_folder_for
from tiangong.engine.transformers_engine import TransformersEngine

pytestmark = pytest.mark.slow

DATA_DIR = REPO_ROOT / ".test-cache" / "embedded-data"
# Real pages' text (tests/fixtures/pages): one in English, one in Portuguese on which the
# bare model loops.
ENGLISH_ARTICLE = "cityam-alibaba"
LOOPING_ARTICLE = "comoeducar-serelepe"


@pytest.fixture(scope="module")
def first_load_stages() -> list[str]:
    return []


@pytest.fixture(scope="module")
def embedded(first_load_stages: list[str]) -> Iterator[TransformersEngine]:
    engine = TransformersEngine.load(
        None,
        data_dir=DATA_DIR,
        progress=lambda stage, done, total: first_load_stages.append(stage),
    )
    yield engine


def summary_job(text: str, max_tokens: int) -> Job:
    # The article first and the instruction after it: small models follow that best.
    prompt = f"{text}\n\nSummarize the article above in 3 short bullet points."
    return Job("summarize", (ChatMessage("user", prompt),), GenerationParams(max_tokens=max_tokens))


def words(text: str) -> list[str]:
    return re.findall(r"[a-zà-ÿ][a-zà-ÿ'’]+", text.lower())


def distinct_trigram_share(text: str) -> float:
    found = words(text)
    grams = [tuple(found[i : i + 3]) for i in range(len(found) - 2)]
    return len(set(grams)) / max(1, len(grams))


def test_the_gguf_is_converted_once_and_reused(
    embedded: TransformersEngine, first_load_stages: list[str]
) -> None:
    folder = gguf_folder_for(embedded_gguf_path(), DATA_DIR)
    assert (folder / "config.json").is_file()
    assert (folder / "model.safetensors").is_file()
    assert (folder / "tokenizer.json").is_file()
    assert first_load_stages.count("convert") in (0, 2)  # 2 when this run converted it
    weights_written = (folder / "model.safetensors").stat().st_mtime_ns

    stages: list[str] = []
    again = TransformersEngine.load(
        None, data_dir=DATA_DIR, progress=lambda s, d, t: stages.append(s)
    )
    assert "convert" not in stages
    assert (folder / "model.safetensors").stat().st_mtime_ns == weights_written
    assert again.model == embedded.model == "SmolLM2-135M-Instruct (embedded)"
    assert again.context_tokens == 8192
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".")] == []


async def test_the_embedded_model_knows_the_capital_of_france(
    embedded: TransformersEngine,
) -> None:
    job = Job(
        "ask",
        (ChatMessage("user", "What is the capital of France?"),),
        GenerationParams(max_tokens=30),
    )
    outcome = await run_job(embedded, job)
    assert "Paris" in outcome.text
    assert outcome.finish.finish_reason == "stop"


async def test_a_summary_stays_grounded_in_the_article(embedded: TransformersEngine) -> None:
    text = article_body(ENGLISH_ARTICLE)
    outcome: Outcome = await run_job(embedded, summary_job(text, 80))
    in_article = set(words(text))
    content = [w for w in words(outcome.text) if len(w) >= 4]
    assert len(content) >= 15
    grounded = sum(w in in_article for w in content) / len(content)
    assert grounded >= 0.6, outcome.text
    assert distinct_trigram_share(outcome.text) >= 0.9, outcome.text


async def test_a_summary_that_loops_without_the_ban_does_not_loop_with_it(
    embedded: TransformersEngine,
) -> None:
    job = summary_job(article_body(LOOPING_ARTICLE), 60)
    outcome = await run_job(embedded, job)
    assert distinct_trigram_share(outcome.text) >= 0.8, outcome.text
    assert not re.search(r"(.{8,})\1\1", outcome.text), outcome.text

    ban, embedded.banned_ngram = embedded.banned_ngram, 0
    try:
        bare = await run_job(embedded, job)
    finally:
        embedded.banned_ngram = ban
    assert distinct_trigram_share(bare.text) < 0.5, bare.text
