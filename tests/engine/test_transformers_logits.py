"""The generated-n-gram ban: repeats within the answer are banned, the page's n-grams are not."""

from __future__ import annotations

import asyncio

import torch
from tests.engine.engine_helpers import ask_job, run_job
from transformers import LogitsProcessor

from tiangong.engine.logits import GeneratedNgramBan, banned_next_tokens
from tiangong.engine.transformers_engine import TransformersEngine


def test_banned_next_tokens_finds_tokens_that_would_repeat_an_ngram() -> None:
    assert banned_next_tokens([5, 6, 7, 8, 5, 6, 7], 4) == {8}
    assert banned_next_tokens([5, 6, 7, 9, 5, 6, 7, 8, 5, 6, 7], 4) == {8, 9}
    assert banned_next_tokens([5, 6, 7], 4) == set()


def test_ban_ignores_ngrams_that_only_the_prompt_contains() -> None:
    prompt = [5, 6, 7, 8, 5, 6, 7]  # a page that repeats itself
    ban = GeneratedNgramBan(prompt_length=len(prompt), n=4)
    generated = [5, 6, 7]
    scores = ban(torch.tensor([prompt + generated]), torch.zeros(1, 10))
    assert torch.isfinite(scores).all()

    generated = [5, 6, 7, 8, 1, 5, 6, 7]
    scores = ban(torch.tensor([prompt + generated]), torch.zeros(1, 10))
    assert scores[0, 8] == float("-inf")
    assert torch.isfinite(scores[0, [i for i in range(10) if i != 8]]).all()


def test_ban_state_follows_the_sequence_step_by_step() -> None:
    """Called every step (as generate does), it agrees with a fresh scan each time."""
    sequence = [3, 1, 2, 3, 1, 2, 4, 3, 1, 2, 3, 1]
    ban = GeneratedNgramBan(prompt_length=2, n=3)
    for end in range(2, len(sequence) + 1):
        scores = ban(torch.tensor([sequence[:end]]), torch.zeros(1, 6))
        expected = banned_next_tokens(sequence[2:end], 3)
        assert {i for i in range(6) if scores[0, i] == float("-inf")} == expected


class PushLoop(LogitsProcessor):
    """Pushes the model hard towards repeating `loop` forever; records what it generated."""

    def __init__(self, prompt_length: int, loop: list[int]) -> None:
        self.prompt_length = prompt_length
        self.loop = loop
        self.generated: list[int] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.generated = input_ids[0, self.prompt_length :].tolist()
        scores[0, self.loop[len(self.generated) % len(self.loop)]] += 1000.0
        return scores


async def test_engine_answer_never_repeats_a_4gram_yet_may_quote_the_prompt(
    llama: TransformersEngine,
) -> None:
    loop_text = "the budget was approved"
    loop = llama.tokenizer.encode(loop_text, add_special_tokens=False)[:4]
    assert len(set(loop)) == 4
    job = ask_job(f"Quote: {loop_text}", max_tokens=24, min_tokens=24)
    push = PushLoop(len(llama.prompt_ids(job.messages)), loop)

    await run_job(llama, job, processors=[push])

    generated = push.generated
    assert generated[:4] == loop  # the prompt's own 4-gram is free to appear once
    grams = [tuple(generated[i : i + 4]) for i in range(len(generated) - 3)]
    assert len(grams) == len(set(grams))


async def test_without_the_ban_the_pushed_loop_repeats(llama: TransformersEngine) -> None:
    """The control for the test above: the push alone does make the model loop."""
    llama.banned_ngram = 0
    loop = llama.tokenizer.encode("the budget was approved", add_special_tokens=False)[:4]
    job = ask_job("Anything", max_tokens=16, min_tokens=16)
    push = PushLoop(len(llama.prompt_ids(job.messages)), loop)
    await run_job(llama, job, processors=[push])
    assert push.generated[:12] == loop * 3


class RecordIds(LogitsProcessor):
    def __init__(self) -> None:
        self.steps: list[list[int]] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.steps.append(input_ids[0].tolist())
        return scores


async def test_processors_see_the_prompt_and_the_answer_so_far_at_every_step(
    llama: TransformersEngine,
) -> None:
    """Three requests decoding together: each processor call gets its own request's prompt
    followed by exactly the tokens chosen before it (the ids are kept, not rebuilt)."""
    jobs = [ask_job(f"Question number {i}?", max_tokens=12, min_tokens=12) for i in range(3)]
    records = [RecordIds() for _ in jobs]
    outcomes = await asyncio.gather(
        *(run_job(llama, job, processors=[r]) for job, r in zip(jobs, records, strict=True))
    )
    for job, record, outcome in zip(jobs, records, outcomes, strict=True):
        prompt = llama.prompt_ids(job.messages)
        assert len(record.steps) == 12
        final = record.steps[-1]
        for step, ids in enumerate(record.steps):
            assert ids == final[: len(prompt) + step]
        assert final[: len(prompt)] == prompt
        answer = llama.tokenizer.decode(final[len(prompt) :], skip_special_tokens=True)
        assert outcome.text.startswith(answer.strip()[:10])
