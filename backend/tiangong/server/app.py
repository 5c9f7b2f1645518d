"""The application factory: the same one serves users and tests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from tiangong.engine.base import Engine
from tiangong.engine.registry import EngineHost
from tiangong.extract_worker import ExtractionWorker
from tiangong.origins import RegisteredOrigins, origins_path
from tiangong.server import http, openai_api, ws
from tiangong.server.keys import (
    CONNECTIONS_KEY,
    EXTRACTOR_KEY,
    HOST_KEY,
    SCHEDULER_KEY,
    SERVICE_KEY,
    SETTINGS_KEY,
    STORE_KEY,
    TASKS_KEY,
    TOKEN_KEY,
)
from tiangong.server.metrics import METRICS_KEY, MeteredScheduler, Metrics, http_counter
from tiangong.server.security import security_middleware
from tiangong.service import Service
from tiangong.settings import Settings
from tiangong.store.history import HistoryStore

log = logging.getLogger(__name__)

# Seconds answers in flight get to finish on shutdown before they are cancelled.
SHUTDOWN_GRACE = 3.0


async def start_site(app: web.Application) -> web.AppRunner:
    """Listen as configured; the caller awaits `runner.cleanup()` to shut down gracefully."""
    settings = app[SETTINGS_KEY]
    runner = web.AppRunner(
        app,
        handle_signals=False,
        # aiohttp keeps idle (and never-used) connections for about an hour by default.
        keepalive_timeout=settings.idle_timeout,
        shutdown_timeout=SHUTDOWN_GRACE * 2 + 1,
    )
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    return runner


def create_app(settings: Settings, *, engine: Engine | None = None) -> web.Application:
    """`engine` serves instead of loading the configured one (tests inject a fake here)."""
    metrics = Metrics()
    registered = RegisteredOrigins(origins_path(settings.data_dir))
    security = security_middleware(settings.port, settings.origins, registered.current)
    app = web.Application(
        middlewares=[http_counter(metrics), security],
        # Only the WebSocket carries pages; plain HTTP bodies stay small.
        client_max_size=1024**2,
    )
    app[SETTINGS_KEY] = settings
    app[TOKEN_KEY] = settings.pairing_token()
    app[CONNECTIONS_KEY] = set()
    app[TASKS_KEY] = set()
    host = EngineHost(settings, engine=engine)
    app[HOST_KEY] = host
    app[SCHEDULER_KEY] = MeteredScheduler(host, metrics, max_queue=settings.max_queue)
    app[METRICS_KEY] = metrics
    metrics.watch(host, app[SCHEDULER_KEY])
    app.cleanup_ctx.append(_resources)
    app.on_shutdown.append(_close_connections)
    app.router.add_get("/ws", ws.websocket)
    http.add_routes(app)
    openai_api.add_routes(app)
    return app


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    store = HistoryStore(settings.database)
    extractor = ExtractionWorker(timeout=settings.extract_timeout)
    app[STORE_KEY] = store
    app[EXTRACTOR_KEY] = extractor
    app[SERVICE_KEY] = Service(app[HOST_KEY], app[SCHEDULER_KEY], store, extractor)
    app[SERVICE_KEY].on_error = lambda code: app[METRICS_KEY].error(code, "ws")
    app[HOST_KEY].start()
    warm = asyncio.get_running_loop().create_task(extractor.warm_up())
    yield
    warm.cancel()
    await app[HOST_KEY].aclose()
    await asyncio.to_thread(extractor.close)
    store.close()


async def _close_connections(app: web.Application) -> None:
    """Graceful shutdown: answers in flight end with `done` (finished, or cancelled after a
    grace period), everything is committed, then sockets close with 1001 (going away)."""
    for cancel_first in (False, True):
        if cancel_first:
            for conn in app[CONNECTIONS_KEY]:
                conn.cancel_all()
        pending = [t for t in app[TASKS_KEY] if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=SHUTDOWN_GRACE)
    connections = app[CONNECTIONS_KEY]
    for conn in list(connections):
        await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
