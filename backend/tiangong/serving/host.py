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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from tiangong.engine.base import ASK, REWRITE, SUMMARIZE, Engine
from tiangong.engine.extractive import ExtractiveEngine
from tiangong.engine.registry import FACTORIES, EngineConfig

log = logging.getLogger(__name__)


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
    state: Literal["loading", "ready"]
    fallback_reason: str | None = None
    loading: Loading | None = None  # while loading, once the loader has said how far


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
        if self._engine is None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._load())

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
            state="ready",
            fallback_reason=self.fallback_reason,
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
        if self._task is not None and not self._task.done():
            # The load thread cannot be interrupted; let it finish in the background.
            self._task.cancel()
        if self._engine is not None:
            await self._engine.aclose()
