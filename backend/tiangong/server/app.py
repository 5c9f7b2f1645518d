"""The application factory: the same one serves users and tests.

It builds the runtime (`tiangong.runtime`: engines, scheduler, store, extraction, metrics,
service) and puts the transports around it: the WebSocket, the plain HTTP routes and the
OpenAI-compatible API, behind the Host/Origin checks of `auth.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from tiangong.engine.base import Engine
from tiangong.origins import RegisteredOrigins, origins_path
from tiangong.runtime import Runtime, build_runtime
from tiangong.server import http, openai_api, ws
from tiangong.server.auth import (
    ORIGIN_POLICY_KEY,
    TOKEN_KEY,
    OriginPolicy,
    host_origin_middleware,
)
from tiangong.settings import Settings

# The runtime the app serves (for `tiangong serve` and tests; handlers are handed it).
RUNTIME_KEY = web.AppKey("runtime", Runtime)


async def start_site(app: web.Application) -> web.AppRunner:
    """Listen as configured; the caller awaits `runner.cleanup()` to shut down gracefully."""
    settings = app[RUNTIME_KEY].settings
    runner = web.AppRunner(
        app,
        handle_signals=False,
        # aiohttp keeps idle (and never-used) connections for about an hour by default.
        keepalive_timeout=settings.idle_timeout,
        shutdown_timeout=ws.SHUTDOWN_GRACE * 2 + 1,
    )
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    return runner


def create_app(settings: Settings, *, engine: Engine | None = None) -> web.Application:
    """`engine` serves instead of loading the configured one (tests inject a fake here)."""
    runtime = build_runtime(settings, engine=engine)
    # Firefox add-on origins the native host registered (read again when the file changes).
    registered = RegisteredOrigins(origins_path(settings.data_dir))
    policy = OriginPolicy(settings.origins, registered.current)
    app = web.Application(
        middlewares=[
            http.http_counter(runtime.metrics),
            host_origin_middleware(settings.port, policy),
        ],
        # Only the WebSocket carries pages; plain HTTP bodies stay small.
        client_max_size=1024**2,
    )
    app[RUNTIME_KEY] = runtime
    app[TOKEN_KEY] = settings.pairing_token()
    app[ORIGIN_POLICY_KEY] = policy

    async def run(app: web.Application) -> AsyncIterator[None]:
        await runtime.start()
        yield
        await runtime.close()

    app.cleanup_ctx.append(run)
    ws.add_routes(app, runtime)
    http.add_routes(app, runtime)
    openai_api.add_routes(app, runtime)
    return app
