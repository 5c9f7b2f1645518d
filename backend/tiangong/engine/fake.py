"""A scriptable engine for protocol and server tests only (never offered to users).

It streams scripted pieces with an optional pause between them, can fail after a number of
pieces, and honours cancel at every piece like a real engine does at every decode step.
`TIANGONG_FAKE_SCRIPT` (JSON with the fields of `FakeScript`) scripts it in a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from tiangong.engine.base import (
    ASK,
    REWRITE,
    SUMMARIZE,
    CancelToken,
    Delta,
    Engine,
    Finish,
    Job,
)
from tiangong.errors import EngineFailedError


@dataclass
class FakeScript:
    pieces: list[str] = field(
        default_factory=lambda: ["Fake ", "answer ", "about ", "the ", "page."]
    )
    delay: float = 0.0
    fail_after: int | None = None
    context_tokens: int = 4096
    capabilities: list[str] = field(default_factory=lambda: [SUMMARIZE, ASK, REWRITE])
    max_concurrency: int = 4
    # Echo the last prompt message instead of the pieces (to check what the model was asked).
    echo: bool = False


class FakeEngine(Engine):
    name = "fake"

    def __init__(self, script: FakeScript | None = None) -> None:
        self.script = script or FakeScript()
        self.jobs: list[Job] = []

    @classmethod
    def from_env(cls) -> FakeEngine:
        raw = os.environ.get("TIANGONG_FAKE_SCRIPT")
        return cls(FakeScript(**json.loads(raw)) if raw else None)

    @property
    def model(self) -> str:
        return "fake (scripted, for tests)"

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(self.script.capabilities)

    @property
    def context_tokens(self) -> int:
        return self.script.context_tokens

    @property
    def max_concurrency(self) -> int:
        return self.script.max_concurrency

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def stream(self, job: Job, cancel: CancelToken) -> AsyncIterator[Delta | Finish]:
        self.jobs.append(job)
        pieces = [job.messages[-1].content] if self.script.echo else self.script.pieces
        prompt_tokens = self.count_prompt_tokens(job.messages)
        sent = 0
        for piece in pieces:
            if cancel.cancelled:
                yield Finish("cancelled", prompt_tokens, sent)
                return
            if self.script.fail_after is not None and sent >= self.script.fail_after:
                raise EngineFailedError(f"the model failed after {sent} tokens (scripted)")
            if sent >= job.params.max_tokens:
                yield Finish("length", prompt_tokens, sent)
                return
            if self.script.delay:
                await asyncio.sleep(self.script.delay)
            else:
                await asyncio.sleep(0)
            if cancel.cancelled:
                yield Finish("cancelled", prompt_tokens, sent)
                return
            sent += 1
            yield Delta(piece)
        yield Finish("stop", prompt_tokens, sent)
