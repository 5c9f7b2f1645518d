"""Plain HTTP routes: health (no token: it says only that the service is up and what serves)
and Prometheus metrics (the API's bearer token: model names and load are not for everyone),
and the middleware that counts every HTTP response."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tiangong import __version__
from tiangong.errors import BadRequestError
from tiangong.protocol.frames import engine_info
from tiangong.protocol.messages import PROTOCOL_VERSION
from tiangong.runtime import Runtime
from tiangong.server.auth import ORIGIN_POLICY_KEY, api_refusal
from tiangong.server.http_errors import from_exception
from tiangong.serving.metrics import Metrics

MAX_ORIGIN_LENGTH = 512


class HttpRoutes:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def health(self, request: web.Request) -> web.Response:
        scheduler = self.runtime.scheduler
        body: dict[str, Any] = {
            "status": "ok",
            "version": __version__,
            "protocol": PROTOCOL_VERSION,
            "engine": engine_info(self.runtime.host.status()),
            "queue": {"waiting": scheduler.queue_depth, "running": scheduler.running},
        }
        # ?origin=…: would a browser page of that origin be let in? (See auth.py: Firefox's
        # add-on fetches carry no Origin, so the add-on names its own.)
        origin = request.query.get("origin")
        if origin is not None:
            if not origin or len(origin) > MAX_ORIGIN_LENGTH:
                return from_exception(
                    self.runtime.metrics,
                    BadRequestError(f"origin must be 1 to {MAX_ORIGIN_LENGTH} characters"),
                )
            body["origin_allowed"] = request.app[ORIGIN_POLICY_KEY].allows(origin)
        return web.json_response(body)

    async def metrics(self, request: web.Request) -> web.Response:
        refused = api_refusal(request)
        if refused is not None:
            return from_exception(self.runtime.metrics, refused)
        body = self.runtime.metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_routes(app: web.Application, runtime: Runtime) -> None:
    routes = HttpRoutes(runtime)
    app.router.add_get("/health", routes.health)
    app.router.add_get("/metrics", routes.metrics)


def http_counter(metrics: Metrics) -> Any:
    """Middleware counting responses by route template (never by raw path) and status."""

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            metrics.http.labels(route=name, status=str(exc.status)).inc()
            raise
        metrics.http.labels(route=name, status=str(response.status)).inc()
        return response

    return count
