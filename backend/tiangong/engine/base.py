"""The engine interface: every backend (transformers, openai, extractive, fake) implements it.

Engines are small classes with declared capabilities. Only the scheduler calls `stream`.
An engine receives a `Job`: chat messages already built by `pipeline.prompts` (for chat
models), typed hints of the task (for engines that need no model, such as `extractive`) and
its priority.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from enum import IntEnum
from typing import Any, ClassVar, Literal

# `chat`: messages a client of the OpenAI-compatible API wrote itself (no page task).
TaskKind = Literal["summarize", "ask", "rewrite", "chat"]
FinishReason = Literal["stop", "length", "cancelled"]
# How a model reads a page for a question or a summary: all of it that fits (`page`), or
# only the few passages that carry the answer, which it restates (`evidence`): a model too
# small to use a long context (see docs/quality.md).
Reading = Literal["page", "evidence"]

# Capability names as the welcome frame lists them.
SUMMARIZE = "summarize"
ASK = "ask"
REWRITE = "rewrite"
BATCHING = "batching"
PREFIX_CACHE = "prefix_cache"


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    # Benchmarks force a fixed length; users never set it.
    min_tokens: int = 0


class Priority(IntEnum):
    """Who goes first when jobs wait (lower first): what a person waits for, then the map
    step of a long summary. The scheduler and the generation loop both order by it."""

    INTERACTIVE = 0
    BACKGROUND = 1


@dataclass(frozen=True)
class TaskHints:
    """The task as an engine without a chat model reads it (the summarize options' names)."""

    type: str = "key-points"  # key-points | tldr | teaser | headline
    length: str = "medium"  # short | medium | long
    format: str = "markdown"  # markdown | plain-text
    output_language: str | None = None
    title: str = ""
    page_lang: str | None = None


@dataclass(frozen=True)
class Job:
    task: TaskKind
    messages: tuple[ChatMessage, ...]
    params: GenerationParams
    _: KW_ONLY
    # The structured task, for engines that do not run a chat model.
    source_text: str = ""
    question: str = ""
    hints: TaskHints = field(default_factory=TaskHints)
    priority: Priority = Priority.INTERACTIVE


@dataclass(frozen=True)
class Delta:
    """A piece of answer text: always whole characters (never half a UTF-8 sequence)."""

    text: str


@dataclass(frozen=True)
class Finish:
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


class CancelToken:
    """Set from the event loop, read from generation threads at every decode step.

    Callbacks registered with `on_cancel` run in the thread that cancels (the event loop's),
    so waiters on the loop side can wake without polling.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []

    def cancel(self) -> None:
        if self._event.is_set():
            return
        self._event.set()
        for callback in self._callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        if self._event.is_set():
            callback()
        else:
            self._callbacks.append(callback)

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class Engine(ABC):
    name: ClassVar[str]

    @property
    @abstractmethod
    def model(self) -> str:
        """What serves: a model id, folder or file name, or a description."""

    @property
    @abstractmethod
    def capabilities(self) -> frozenset[str]: ...

    @property
    @abstractmethod
    def context_tokens(self) -> int:
        """How many tokens (prompt + answer) the model takes."""

    @property
    def max_concurrency(self) -> int:
        """How many jobs may stream at once; the scheduler queues the rest."""
        return 1

    @abstractmethod
    def count_tokens(self, text: str) -> int: ...

    def count_prompt_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        """Tokens of the whole prompt as the model will see it (template included)."""
        return sum(self.count_tokens(m.content) + 4 for m in messages)

    @abstractmethod
    def stream(self, job: Job, cancel: CancelToken) -> AsyncIterator[Delta | Finish]:
        """Yield `Delta`s, then exactly one `Finish` (finish_reason `cancelled` after a cancel).

        Raises `EngineFailedError` when generation breaks; partial text already yielded stands.
        """

    @property
    def reading(self) -> Reading:
        """How this engine's model reads pages best (`Reading`); `--reading` overrides it."""
        return "page"

    @property
    def failure(self) -> str | None:
        """Why the engine cannot serve right now (it refuses new work meanwhile); None
        while it can. The engine host shows it as state `failed` in status and /health."""
        return None

    @property
    def details(self) -> Mapping[str, Any]:
        """How the engine runs (device, dtype, attention, ...), for the engine info the
        welcome frame carries; the keys are those of the schema's `engine.details`."""
        return {}

    def prefix_cache_stats(self) -> tuple[int, int] | None:
        """(hits, lookups) of the engine's prefix cache since it started; None without one."""
        return None

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release the model."""
