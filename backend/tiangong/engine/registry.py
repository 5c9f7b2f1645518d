"""Engines by name, and the host that loads the configured one in the background.

The service answers at once while a model loads: requests wait on `EngineHost.get()` (with
progress frames), and every connection hears `status` frames as loading proceeds. With
`--engine auto`, a model that cannot be loaded leaves the extractive engine serving, and the
reason is told in the welcome frame, in status frames and in the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from tiangong.engine.base import ASK, REWRITE, SUMMARIZE, Engine
from tiangong.engine.extractive import ExtractiveEngine
from tiangong.settings import Settings

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
EngineFactory = Callable[[Settings, Progress], Engine]
Listener = Callable[[dict[str, Any]], None]

EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct (embedded)"


def _load_transformers(settings: Settings, progress: Progress) -> Engine:
    # Imported here: torch and transformers take seconds to import and the extractive and
    # fake engines need neither.
    from tiangong.engine.transformers_engine import TransformersEngine

    engine: Engine = TransformersEngine.load(
        settings.model,
        device=settings.device,
        dtype=settings.dtype,
        data_dir=settings.data_dir,
        progress=progress,
    )
    return engine


def _load_extractive(settings: Settings, progress: Progress) -> Engine:
    return ExtractiveEngine()


def _load_openai(settings: Settings, progress: Progress) -> Engine:
    from tiangong.engine.openai_engine import OpenAIEngine

    progress("connect", 0, 1)
    engine = OpenAIEngine.connect(
        settings.openai_base_url,
        model=settings.openai_model,
        api_key=settings.openai_api_key,
        context_tokens=settings.openai_context,
        read_timeout=settings.openai_timeout,
        concurrency=settings.openai_concurrency,
    )
    progress("connect", 1, 1)
    return engine


def _load_fake(settings: Settings, progress: Progress) -> Engine:
    from tiangong.engine.fake import FakeEngine

    return FakeEngine.from_env()


FACTORIES: dict[str, EngineFactory] = {
    "transformers": _load_transformers,
    "extractive": _load_extractive,
    "openai": _load_openai,
    "fake": _load_fake,
}


def register(name: str, factory: EngineFactory) -> None:
    FACTORIES[name] = factory


def _configured_model(settings: Settings, engine: str) -> str:
    """What will serve, as far as it is known before the engine is ready."""
    if engine == "openai":
        return settings.openai_model or f"(asking {settings.openai_base_url})"
    return settings.model or EMBEDDED_MODEL_NAME


class EngineHost:
    def __init__(self, settings: Settings, *, engine: Engine | None = None) -> None:
        self._settings = settings
        self._engine = engine
        self._ready = asyncio.Event()
        self._listeners: set[Listener] = set()
        self._loading: tuple[str, int, int] | None = None
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

    def info(self) -> dict[str, Any]:
        """The `engine` object of welcome and status frames."""
        engine = self._engine
        if engine is None:
            name = "transformers" if self._settings.engine == "auto" else self._settings.engine
            out: dict[str, Any] = {
                "name": name,
                "model": _configured_model(self._settings, name),
                "capabilities": sorted({SUMMARIZE, ASK, REWRITE}),
                "context_tokens": 0,
                "state": "loading",
            }
        else:
            out = {
                "name": engine.name,
                "model": engine.model,
                "capabilities": sorted(engine.capabilities),
                "context_tokens": engine.context_tokens,
                "state": "ready",
            }
            if engine.details:
                out["details"] = dict(engine.details)
            if engine.failure is not None:
                out["state"], out["failure"] = "failed", engine.failure
        if self.fallback_reason:
            out["fallback_reason"] = self.fallback_reason
        return out

    def status_frame(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "status", "engine": self.info()}
        if self._loading and not self.ready:
            stage, done, total = self._loading
            frame["loading"] = {"stage": stage, "done": done, "total": total}
        return frame

    @property
    def loading(self) -> tuple[str, int, int] | None:
        return self._loading

    async def _load(self) -> None:
        loop = asyncio.get_running_loop()
        name = "transformers" if self._settings.engine == "auto" else self._settings.engine

        def progress(stage: str, done: int, total: int) -> None:
            loop.call_soon_threadsafe(self._on_progress, stage, done, total)

        factory = FACTORIES.get(name)
        try:
            if factory is None:
                raise RuntimeError(f"engine {name!r} is not available in this build")
            engine = await asyncio.to_thread(factory, self._settings, progress)
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

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        self._loading = (stage, done, total)
        now = time.monotonic()
        # At most a few status frames a second, but always the last one of a stage.
        if now - self._last_push >= 0.25 or done >= total:
            self._last_push = now
            self._push()

    def _push(self) -> None:
        frame = self.status_frame()
        for listener in list(self._listeners):
            listener(frame)

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            # The load thread cannot be interrupted; let it finish in the background.
            self._task.cancel()
        if self._engine is not None:
            await self._engine.aclose()
