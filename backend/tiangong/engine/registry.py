"""Engines by name: each backend registers a factory that builds it from the settings.

Loading happens in a thread (`serving.host.EngineHost`); a factory reports its progress as
(stage, done, total).
"""

from __future__ import annotations

from collections.abc import Callable

from tiangong.engine.base import Engine
from tiangong.engine.extractive import ExtractiveEngine
from tiangong.settings import Settings

Progress = Callable[[str, int, int], None]
EngineFactory = Callable[[Settings, Progress], Engine]


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
