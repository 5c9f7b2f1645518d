"""Plain HTTP routes: health (no token: it says only that the service is up and what serves)."""

from __future__ import annotations

from aiohttp import web

from tiangong import __version__
from tiangong.server.keys import HOST_KEY, SCHEDULER_KEY


async def health(request: web.Request) -> web.Response:
    host = request.app[HOST_KEY]
    scheduler = request.app[SCHEDULER_KEY]
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            "protocol": 1,
            "engine": host.info(),
            "queue": {"waiting": scheduler.queue_depth, "running": scheduler.running},
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
