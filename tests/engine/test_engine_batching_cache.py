"""The generation loop with a real (tiny) model: prefix reuse, batching, priorities, cancel."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from tests.engine.engine_helpers import Outcome, run_job

from tiangong.engine.base import (
    CancelToken,
    ChatMessage,
    Delta,
    Finish,
    GenerationParams,
    Job,
    Priority,
)
from tiangong.engine.transformers_engine import TransformersEngine

PAGE = " ".join(
    f"Paragraph {i}: the council voted on the harbour budget and the new tram line."
    for i in range(40)
)


def page_job(question: str, history: tuple[str, ...] = (), **params: object) -> Job:
    messages = [ChatMessage("system", f"Answer from the page.\n--- PAGE ---\n{PAGE}")]
    for i, text in enumerate(history):
        messages.append(ChatMessage("user" if i % 2 == 0 else "assistant", text))
    messages.append(ChatMessage("user", question))
    return Job("ask", tuple(messages), GenerationParams(**params))  # type: ignore[arg-type]


@pytest.fixture
def engine(llama: TransformersEngine) -> Iterator[TransformersEngine]:
    llama.prefix_cache.clear()
    budget = llama.prefix_cache.budget_bytes
    yield llama
    llama.prefix_cache.clear()
    llama.prefix_cache.budget_bytes = budget


def prompt_tokens_run(engine: TransformersEngine) -> tuple[list[int], object]:
    """Counts the prompt positions each forward pass computes."""
    seen: list[int] = []

    def hook(module: object, args: object, kwargs: dict[str, object]) -> None:
        ids = kwargs.get("input_ids")
        seen.append(int(ids.shape[1]))  # type: ignore[attr-defined]

    return seen, engine._model.register_forward_pre_hook(hook, with_kwargs=True)


async def test_a_follow_up_reuses_the_page_prefix_and_answers_as_a_cold_run_would(
    engine: TransformersEngine,
) -> None:
    engine.prefill_chunk_tokens = 128
    first = page_job("What did the council vote on?", max_tokens=24, min_tokens=24)
    follow = page_job(
        "And the tram?", ("What did the council vote on?", "The budget."), max_tokens=24
    )
    prompt, prefix = engine.prompt_and_prefix(follow.messages)
    assert prefix > 300 and len(prompt) > prefix

    # Cold: nothing cached may be kept (budget 0), so every run prefills everything.
    engine.prefix_cache.budget_bytes = 0
    cold_first = await run_job(engine, first)
    cold_follow = await run_job(engine, follow)
    assert len(engine.prefix_cache) == 0

    engine.prefix_cache.budget_bytes = 1 << 30
    warm_first = await run_job(engine, first)  # fills the cache
    hits = engine.prefix_cache.hits
    seen, hook = prompt_tokens_run(engine)
    try:
        warm_follow = await run_job(engine, follow)
    finally:
        hook.remove()  # type: ignore[attr-defined]
    assert engine.prefix_cache.hits == hits + 1
    # Only the turns after the page were prefilled.
    assert seen[0] == len(prompt) - prefix
    assert warm_first.deltas == cold_first.deltas
    assert warm_follow.deltas == cold_follow.deltas
    assert warm_follow.finish == cold_follow.finish


async def test_the_prefix_cache_forgets_the_least_recently_used_page_first(
    engine: TransformersEngine,
) -> None:
    await run_job(engine, page_job("One?", max_tokens=2))
    one_page = engine.prefix_cache.nbytes
    assert one_page > 0
    engine.prefix_cache.budget_bytes = int(one_page * 1.5)
    other = Job(
        "ask",
        (ChatMessage("system", PAGE.replace("harbour", "airport")), ChatMessage("user", "Two?")),
        GenerationParams(max_tokens=2),
    )
    await run_job(engine, other)
    assert len(engine.prefix_cache) == 1
    misses = engine.prefix_cache.misses
    await run_job(engine, other)
    assert engine.prefix_cache.misses == misses  # the newer page stayed
    await run_job(engine, page_job("One again?", max_tokens=2))
    assert engine.prefix_cache.misses == misses + 1  # the older one had gone


QUESTIONS = (
    "Summarize it.",
    "Who voted?",
    "Tell me everything about the tram line and the harbour.",
    "Why?",
    "List the paragraphs that mention money.",
)


async def test_concurrent_requests_decode_as_one_batch_with_the_same_answers_as_alone(
    engine: TransformersEngine,
) -> None:
    # Different prompt lengths (some without the page) exercise the left padding.
    jobs = [page_job(q, max_tokens=20 + 3 * i, min_tokens=20) for i, q in enumerate(QUESTIONS)]
    jobs.append(
        Job("ask", (ChatMessage("user", "Hi!"),), GenerationParams(max_tokens=30, min_tokens=30))
    )
    alone = [await run_job(engine, job) for job in jobs]
    engine._runner.widest_batch = 0
    together = await asyncio.gather(*(run_job(engine, job) for job in jobs))
    assert engine._runner.widest_batch >= 4
    for solo, batched in zip(alone, together, strict=True):
        assert batched.text == solo.text
        assert batched.finish == solo.finish


async def test_cancelling_one_request_of_a_batch_leaves_the_others_untouched(
    engine: TransformersEngine,
) -> None:
    jobs = [page_job(q, max_tokens=30, min_tokens=30) for q in QUESTIONS[:3]]
    alone = [await run_job(engine, job) for job in jobs]
    cancel = CancelToken()
    victim = Job(
        "ask", (ChatMessage("user", "Go on forever."),), GenerationParams(3000, 0.0, (), 3000)
    )

    async def cancelled_after_some() -> Outcome:
        deltas: list[str] = []
        finish: Finish | None = None
        async for item in engine.stream(victim, cancel):
            if isinstance(item, Delta):
                deltas.append(item.text)
                if len(deltas) == 8:
                    cancel.cancel()
            else:
                finish = item
        assert finish is not None
        return Outcome(deltas, finish)

    *others, stopped = await asyncio.gather(
        *(run_job(engine, job) for job in jobs), cancelled_after_some()
    )
    assert stopped.finish.finish_reason == "cancelled"
    assert stopped.finish.completion_tokens < 60
    assert [o.text for o in others] == [o.text for o in alone]


async def test_an_interactive_question_goes_ahead_of_background_work(
    engine: TransformersEngine,
) -> None:
    engine.prefill_chunk_tokens = 64
    order: list[str] = []
    long_page = PAGE * 3

    async def first_delta(name: str, job: Job) -> None:
        async for item in engine.stream(job, CancelToken()):
            if isinstance(item, Delta) and name not in order:
                order.append(name)

    background = Job(
        "summarize",
        (ChatMessage("system", long_page), ChatMessage("user", "Summarize.")),
        GenerationParams(max_tokens=8, min_tokens=8),
        priority=Priority.BACKGROUND,
    )
    question = Job("ask", (ChatMessage("user", "Quick?"),), GenerationParams(8, 0.0, (), 8))
    task = asyncio.create_task(first_delta("background", background))
    await asyncio.sleep(0.05)  # the background prefill is under way (many chunks)
    await first_delta("question", question)
    await task
    assert order == ["question", "background"]
