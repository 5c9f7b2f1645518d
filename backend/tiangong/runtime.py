"""The composition root: one function builds everything a running service is made of.

`tiangong serve` (through `server.app.create_app`) and `tiangong summarize|ask`
(`terminal.py`) both build a `Runtime` here, so both load engines the same way, queue work
through the same metered scheduler and store answers in the same history. `start` and
`close` are paired.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from tiangong.engine.base import Engine
from tiangong.engine.registry import EngineConfig, OpenAIConfig
from tiangong.extract.worker import ExtractionWorker
from tiangong.pipeline.request import Resources
from tiangong.pipeline.service import Service
from tiangong.serving.host import EngineHost
from tiangong.serving.metrics import MeteredScheduler, Metrics
from tiangong.settings import Settings
from tiangong.store.history import HistoryStore


def engine_config(settings: Settings) -> EngineConfig:
    """The part of the settings engines read."""
    return EngineConfig(
        engine=settings.engine,
        model=settings.model,
        device=settings.device,
        dtype=settings.dtype,
        data_dir=settings.data_dir,
        openai=OpenAIConfig(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            model=settings.openai_model,
            context_tokens=settings.openai_context,
            read_timeout=settings.openai_timeout,
            concurrency=settings.openai_concurrency,
        ),
    )


@dataclass
class Runtime:
    settings: Settings
    host: EngineHost
    metrics: Metrics
    scheduler: MeteredScheduler
    store: HistoryStore
    extractor: ExtractionWorker
    service: Service
    _warm_up: asyncio.Task[None] | None = field(default=None, repr=False)

    async def start(self, *, warm_up_extraction: bool = True) -> None:
        """Begin loading the engine (in the background) and, for a server, start an
        extraction worker before the first page needs one."""
        self.host.start()
        if warm_up_extraction:
            self._warm_up = asyncio.get_running_loop().create_task(self.extractor.warm_up())

    async def close(self) -> None:
        if self._warm_up is not None:
            self._warm_up.cancel()
        await self.host.aclose()
        await asyncio.to_thread(self.extractor.close)
        self.store.close()


def build_runtime(settings: Settings, *, engine: Engine | None = None) -> Runtime:
    """`engine` serves instead of loading the configured one (tests inject a fake here)."""
    host = EngineHost(engine_config(settings), engine=engine)
    metrics = Metrics()
    scheduler = MeteredScheduler(host, metrics, max_queue=settings.max_queue)
    metrics.watch(host, scheduler)
    store = HistoryStore(settings.database)
    extractor = ExtractionWorker(timeout=settings.extract_timeout)
    service = Service(Resources(host, scheduler, store, extractor, reading=settings.reading))
    # Requests reach the service over the WebSocket (or from the terminal, whose metrics
    # nobody scrapes): its errors are counted as the WebSocket API's.
    service.on_error = lambda code: metrics.error(code, "ws")
    return Runtime(settings, host, metrics, scheduler, store, extractor, service)
