"""The host that loads the configured engine in the background, and what it says of it.

The service answers at once while a model loads: requests wait on `EngineHost.get()` (with
progress frames), and listeners hear an `EngineStatus` as loading proceeds (the WebSocket
turns each into a `status` frame). With `--engine auto`, a model that cannot be loaded
leaves the extractive engine serving, and the reason is in the status and in the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tiangong.engine.base import ASK, REWRITE, SUMMARIZE, Engine
from tiangong.engine.extractive import ExtractiveEngine
from tiangong.engine.registry import FACTORIES, EngineConfig

log = logging.getLogger(__name__)

# How often the host looks whether the engine failed or recovered (see `_watch_failure`).
FAILURE_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Loading:
    stage: str
    done: int
    total: int


@dataclass(frozen=True)
class EngineStatus:
    """What serves, or is about to: the `engine` object of welcome, status and /health."""

    name: str
    model: str
    capabilities: tuple[str, ...]  # sorted
    context_tokens: int  # 0 while loading
    # `failed`: a local model that kept failing is being restarted; requests are refused.
    state: Literal["loading", "ready", "failed"]
    fallback_reason: str | None = None
    loading: Loading | None = None  # while loading, once the loader has said how far
    failure: str | None = None  # why it failed, while `state` is `failed`
    details: Mapping[str, Any] = field(default_factory=dict)  # how a local model runs


Listener = Callable[[EngineStatus], None]


class EngineHost:
    def __init__(self, config: EngineConfig, *, engine: Engine | None = None) -> None:
        self._config = config
        self._engine = engine
        self._ready = asyncio.Event()
        self._listeners: set[Listener] = set()
        self._loading: Loading | None = None
        self._last_push = 0.0
        self._task: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self.fallback_reason: str | None = None
        if engine is not None:
            self._ready.set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def engine(self) -> Engine | None:
        return self._engine

    @property
    def loading(self) -> Loading | None:
        return self._loading

    def start(self) -> None:
        """Begin loading the configured engine in a thread; returns at once."""
        loop = asyncio.get_running_loop()
        if self._engine is None and self._task is None:
            self._task = loop.create_task(self._load())
        if self._watch is None:
            self._watch = loop.create_task(self._watch_failure())

    async def get(self) -> Engine:
        await self._ready.wait()
        assert self._engine is not None
        return self._engine

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.add(listener)
        return lambda: self._listeners.discard(listener)

    def status(self) -> EngineStatus:
        engine = self._engine
        if engine is None:
            return EngineStatus(
                name=self._config.name,
                model=self._config.expected_model,
                capabilities=tuple(sorted({SUMMARIZE, ASK, REWRITE})),
                context_tokens=0,
                state="loading",
                fallback_reason=self.fallback_reason,
                loading=self._loading,
            )
        return EngineStatus(
            name=engine.name,
            model=engine.model,
            capabilities=tuple(sorted(engine.capabilities)),
            context_tokens=engine.context_tokens,
            state="ready" if engine.failure is None else "failed",
            fallback_reason=self.fallback_reason,
            failure=engine.failure,
            details=dict(engine.details),
        )

    async def _load(self) -> None:
        loop = asyncio.get_running_loop()
        name = self._config.name

        def progress(stage: str, done: int, total: int) -> None:
            loop.call_soon_threadsafe(self._on_progress, Loading(stage, done, total))

        factory = FACTORIES.get(name)
        try:
            if factory is None:
                raise RuntimeError(f"engine {name!r} is not available in this build")
            engine = await asyncio.to_thread(factory, self._config, progress)
        except Exception as exc:
            reason = f"no model could be loaded ({type(exc).__name__}: {exc})"
            log.warning(
                "engine %s failed to start; serving with the extractive engine: %s", name, reason
            )
            self.fallback_reason = reason
            engine = ExtractiveEngine(reason)
        self._engine = engine
        self._ready.set()
        log.info("engine ready: %s, model %s", engine.name, engine.model)
        self._push()

    async def _watch_failure(self) -> None:
        """Listeners hear when the engine fails and when it serves again: the engine sets
        its `failure` from its own thread, so it is read here once a second."""
        await self._ready.wait()
        engine = self._engine
        assert engine is not None
        seen = engine.failure
        while True:
            await asyncio.sleep(FAILURE_POLL_SECONDS)
            if engine.failure != seen:
                seen = engine.failure
                self._push()

    def _on_progress(self, loading: Loading) -> None:
        self._loading = loading
        now = time.monotonic()
        # At most a few status updates a second, but always the last one of a stage.
        if now - self._last_push >= 0.25 or loading.done >= loading.total:
            self._last_push = now
            self._push()

    def _push(self) -> None:
        status = self.status()
        for listener in list(self._listeners):
            listener(status)

    async def aclose(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        if self._task is not None and not self._task.done():
            # The load thread cannot be interrupted; let it finish in the background.
            self._task.cancel()
        if self._engine is not None:
            await self._engine.aclose()
