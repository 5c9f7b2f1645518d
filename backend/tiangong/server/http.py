"""Plain HTTP routes: health (no token: it says only that the service is up and what serves)
and Prometheus metrics (the API's bearer token: model names and load are not for everyone)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tiangong import __version__
from tiangong.server.keys import HOST_KEY, SCHEDULER_KEY
from tiangong.server.openai_api import refusal
from tiangong.serving.metrics import METRICS_KEY


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


async def metrics(request: web.Request) -> web.Response:
    refused = refusal(request)
    if refused is not None:
        return refused
    body = request.app[METRICS_KEY].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
