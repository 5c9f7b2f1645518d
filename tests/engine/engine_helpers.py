"""Shared helpers for engine tests: running a job to the end, steering generation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from transformers import LogitsProcessor

from tiangong.engine.base import (
    CancelToken,
    ChatMessage,
    Delta,
    Finish,
    GenerationParams,
    Job,
)
from tiangong.engine.transformers_engine import TransformersEngine


def ask_job(text: str, **params: object) -> Job:
    return Job(
        task="ask",
        messages=(ChatMessage("user", text),),
        params=GenerationParams(**params),  # type: ignore[arg-type]
    )


@dataclass
class Outcome:
    deltas: list[str]
    finish: Finish

    @property
    def text(self) -> str:
        return "".join(self.deltas)


async def run_job(
    engine: TransformersEngine,
    job: Job,
    cancel: CancelToken | None = None,
    processors: Iterable[LogitsProcessor] = (),
) -> Outcome:
    deltas: list[str] = []
    finishes: list[Finish] = []
    async for item in engine.stream_with_processors(job, cancel or CancelToken(), processors):
        assert not finishes, "nothing may follow the Finish"
        if isinstance(item, Delta):
            deltas.append(item.text)
        else:
            finishes.append(item)
    assert len(finishes) == 1
    return Outcome(deltas, finishes[0])


class ForceTokens(LogitsProcessor):
    """Makes the model emit exactly `token_ids`, then `after` (e.g. an end-of-turn id)."""

    def __init__(self, prompt_length: int, token_ids: Sequence[int], after: int) -> None:
        self.prompt_length = prompt_length
        self.token_ids = list(token_ids)
        self.after = after

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        step = input_ids.shape[1] - self.prompt_length
        target = self.token_ids[step] if step < len(self.token_ids) else self.after
        forced = torch.full_like(scores, float("-inf"))
        forced[:, target] = 0.0
        return forced  # type: ignore[return-value]


def force_text(engine: TransformersEngine, job: Job, text: str) -> tuple[list[int], ForceTokens]:
    """Token ids of `text` and a processor that makes the engine's model generate them."""
    ids = engine.tokenizer.encode(text, add_special_tokens=False)
    eos = min(engine.eos_token_ids)
    return ids, ForceTokens(len(engine.prompt_ids(job.messages)), ids, eos)


class FailAtStep(LogitsProcessor):
    """Raises inside the decode loop at step k, as a real failure would."""

    def __init__(self, step: int, error: Exception) -> None:
        self.calls = 0
        self.step = step
        self.error = error

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.calls += 1
        if self.calls == self.step:
            raise self.error
        return scores
