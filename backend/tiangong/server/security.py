"""Who may talk to the service: checks that run before any route, WebSocket upgrade included.

- Host must be a loopback name with our port: a page whose DNS name was rebound to 127.0.0.1
  still sends its own name in Host (DNS rebinding, as used against other local AI servers).
- Origin, when present, must be exactly one of the allowed origins (the pinned extension id
  and --allow-origin values, plus the Firefox add-on origins the native host registered in
  the data dir, see `tiangong.origins`): no prefix or pattern matching, and `null` is never
  allowed. Clients that are not browsers send no Origin and still need the pairing token.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def allowed_hosts(port: int) -> frozenset[str]:
    hosts = {f"{h}:{port}" for h in LOOPBACK_HOSTS}
    if port == 80:
        hosts |= set(LOOPBACK_HOSTS)
    return frozenset(hosts)


def forbidden(message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": "forbidden", "message": message, "retryable": False}}, status=403
    )


def security_middleware(
    port: int, origins: frozenset[str], registered: Callable[[], frozenset[str]] | None = None
) -> web.middleware:  # type: ignore[valid-type]
    """`registered` gives the origins registered at run time (read when an Origin is not
    among the fixed ones)."""
    hosts = allowed_hosts(port)

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = (request.headers.get("Host") or "").lower()
        if host not in hosts:
            log.warning("refused a request with Host %r", host[:100])
            return forbidden("this service answers only on 127.0.0.1, localhost or [::1]")
        origin = request.headers.get("Origin")
        if (
            origin is not None
            and origin not in origins
            and (registered is None or origin not in registered())
        ):
            log.warning("refused a request from origin %r", origin[:200])
            return forbidden(
                f"origin {origin[:200]!r} is not allowed; start the service with "
                "--allow-origin to allow it"
            )
        return await handler(request)

    return check
