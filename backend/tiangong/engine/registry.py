"""Engines by name: each backend registers a factory that builds it from an `EngineConfig`.

Loading happens in a thread (`serving.host.EngineHost`); a factory reports its progress as
(stage, done, total). The config holds only what engines need, so this package knows
nothing of flags, environment variables or the service's other settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tiangong.engine.base import Engine
from tiangong.engine.embedded import EMBEDDED_MODEL_NAME
from tiangong.engine.extractive import ExtractiveEngine

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class OpenAIConfig:
    """The `openai` engine: any OpenAI-compatible chat-completions server."""

    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: str | None = None
    model: str | None = None  # None: the first model the server lists
    context_tokens: int | None = None  # None: what the server says, else 8192
    read_timeout: float = 120.0
    concurrency: int = 16


@dataclass(frozen=True, kw_only=True)
class EngineConfig:
    data_dir: Path  # converted models are kept here
    # auto: a local model (transformers), the extractive engine if none loads.
    engine: str = "auto"
    model: str | None = None  # hub id, folder or .gguf file; None: the embedded model
    device: str = "auto"
    dtype: str = "auto"
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)

    @property
    def name(self) -> str:
        """The engine that is loaded first."""
        return "transformers" if self.engine == "auto" else self.engine

    @property
    def expected_model(self) -> str:
        """What will serve, as far as it is known before the engine is ready."""
        if self.name == "openai":
            return self.openai.model or f"(asking {self.openai.base_url})"
        return self.model or EMBEDDED_MODEL_NAME


EngineFactory = Callable[[EngineConfig, Progress], Engine]


def _load_transformers(config: EngineConfig, progress: Progress) -> Engine:
    # Imported here: torch and transformers take seconds to import and the extractive and
    # fake engines need neither.
    from tiangong.engine.transformers_engine import TransformersEngine

    engine: Engine = TransformersEngine.load(
        config.model,
        device=config.device,
        dtype=config.dtype,
        data_dir=config.data_dir,
        progress=progress,
    )
    return engine


def _load_extractive(config: EngineConfig, progress: Progress) -> Engine:
    return ExtractiveEngine()


def _load_openai(config: EngineConfig, progress: Progress) -> Engine:
    from tiangong.engine.openai_engine import OpenAIEngine

    progress("connect", 0, 1)
    engine = OpenAIEngine.connect(
        config.openai.base_url,
        model=config.openai.model,
        api_key=config.openai.api_key,
        context_tokens=config.openai.context_tokens,
        read_timeout=config.openai.read_timeout,
        concurrency=config.openai.concurrency,
    )
    progress("connect", 1, 1)
    return engine


def _load_fake(config: EngineConfig, progress: Progress) -> Engine:
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
