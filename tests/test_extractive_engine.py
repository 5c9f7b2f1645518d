"""The engine that needs no model: summaries and answers are the page's own sentences."""

from __future__ import annotations

import pytest

from tiangong.engine.base import CancelToken, Delta, Finish, GenerationParams, Job, TaskHints
from tiangong.engine.extractive import ExtractiveEngine
from tiangong.errors import UnsupportedError
from tiangong.text import sentences

PAGE = """The city council approved the new bridge on Tuesday after a long debate.
The bridge will connect the north and south banks of the river.
Construction is expected to cost 40 million euros and take three years.
Critics said the money should go to schools instead.
The mayor said the bridge would cut commuting times by half.
Work begins in the spring, weather permitting.
Local shops hope the bridge brings more customers.
The council will publish the detailed plans next month."""


async def run(job: Job, cancel: CancelToken | None = None) -> tuple[str, Finish]:
    parts: list[str] = []
    finish = None
    async for event in ExtractiveEngine().stream(job, cancel or CancelToken()):
        if isinstance(event, Delta):
            parts.append(event.text)
        else:
            finish = event
    assert finish is not None
    return "".join(parts), finish


def job(task: str, question: str = "", **hints: str) -> Job:
    return Job(
        task,  # type: ignore[arg-type]
        (),
        GenerationParams(200),
        source_text=PAGE,
        question=question,
        hints=TaskHints(**hints),
    )


async def test_key_points_are_page_sentences_in_page_order() -> None:
    text, finish = await run(job("summarize", type="key-points", length="short"))
    bullets = [line[2:] for line in text.splitlines()]
    page_sentences = [s.text for s in sentences(PAGE)]
    assert len(bullets) == 3 and all(b in page_sentences for b in bullets)
    assert bullets == sorted(bullets, key=page_sentences.index)
    assert finish.finish_reason == "stop"


async def test_answers_quote_the_sentences_about_the_question() -> None:
    text, _ = await run(job("ask", question="How much will construction cost?"))
    assert "40 million euros" in text


async def test_a_question_the_page_does_not_answer_says_so() -> None:
    text, _ = await run(job("ask", question="Which penguins nest here?"))
    assert "does not seem to say" in text


async def test_it_cannot_translate_or_rewrite() -> None:
    with pytest.raises(UnsupportedError):
        await run(job("summarize", output_language="zh", page_lang="en"))
    with pytest.raises(UnsupportedError):
        await run(job("rewrite"))


async def test_cancel_stops_the_stream() -> None:
    cancel = CancelToken()
    cancel.cancel()
    text, finish = await run(job("summarize"), cancel)
    assert text == "" and finish.finish_reason == "cancelled"
