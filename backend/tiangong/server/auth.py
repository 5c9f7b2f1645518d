"""Who may talk to the service: every check of who is asking, in one module.

Before any route, WebSocket upgrade included (`host_origin_middleware`):
- Host must be a loopback name with our port: a page whose DNS name was rebound to 127.0.0.1
  still sends its own name in Host (DNS rebinding, as used against other local AI servers).
- Origin, when present, must be exactly one of the allowed origins (the pinned extension id
  and --allow-origin values, plus the Firefox add-on origins the native host registered in
  the data dir, see `tiangong.origins`): no prefix or pattern matching, and `null` is never
  allowed.
  Clients that are not browsers send no Origin and still need the pairing token.
  Firefox sends no Origin on an add-on's `fetch` either (only on its WebSocket upgrade), so
  `/health?origin=…` says whether that origin would be allowed (`OriginPolicy.allows`): the
  add-on's way to tell "refused" from "not running". It answers yes or no, nothing more.

Then the pairing token, compared in constant time: in the WebSocket's `hello`
(`pairing_check`, handed to the protocol session) and, for the HTTP API and /metrics, as
`Authorization: Bearer <token>` (`api_refusal`), where POST bodies are only taken as
`application/json` (a web page's form or `text/plain` "simple request" cannot be one) and
`Sec-Fetch-Site: cross-site` is refused. No CORS headers are ever sent, so browsers keep
other origins from reading answers.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from tiangong.errors import BadRequestError, ForbiddenError, TiangongError, UnauthorizedError

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")

# The pairing token this app accepts (set by `create_app`).
TOKEN_KEY = web.AppKey("pairing_token", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class UnsupportedMediaTypeError(BadRequestError):
    code = "unsupported_media_type"


def allowed_hosts(port: int) -> frozenset[str]:
    hosts = {f"{h}:{port}" for h in LOOPBACK_HOSTS}
    if port == 80:
        hosts |= set(LOOPBACK_HOSTS)
    return frozenset(hosts)


def forbidden(message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": "forbidden", "message": message, "retryable": False}}, status=403
    )


class OriginPolicy:
    """The allowed origins: fixed ones (the pinned extension, --allow-origin) and, through
    `registered`, those registered at run time (read only when an origin is not fixed)."""

    def __init__(
        self, fixed: frozenset[str], registered: Callable[[], frozenset[str]] | None = None
    ) -> None:
        self.fixed = fixed
        self.registered = registered

    def allows(self, origin: str) -> bool:
        return origin in self.fixed or (self.registered is not None and origin in self.registered())


# The origin policy the app enforces (set by `create_app`; /health reports from it).
ORIGIN_POLICY_KEY = web.AppKey("origin_policy", OriginPolicy)


def host_origin_middleware(port: int, policy: OriginPolicy) -> web.middleware:  # type: ignore[valid-type]
    hosts = allowed_hosts(port)

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = (request.headers.get("Host") or "").lower()
        if host not in hosts:
            log.warning("refused a request with Host %r", host[:100])
            return forbidden("this service answers only on 127.0.0.1, localhost or [::1]")
        origin = request.headers.get("Origin")
        if origin is not None and not policy.allows(origin):
            log.warning("refused a request from origin %r", origin[:200])
            return forbidden(
                f"origin {origin[:200]!r} is not allowed; start the service with "
                "--allow-origin to allow it"
            )
        return await handler(request)

    return check


def token_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def pairing_check(app: web.Application) -> Callable[[str], bool]:
    """Whether a `hello`'s token is this app's pairing token."""
    expected = app[TOKEN_KEY]
    return lambda given: token_matches(expected, given)


def api_refusal(request: web.Request) -> TiangongError | None:
    """Why this HTTP API request may not proceed, or None when it may."""
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        log.warning("refused a cross-site request to %s", request.path)
        return ForbiddenError("cross-site requests are not allowed")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token_matches(request.app[TOKEN_KEY], given.strip()):
        return UnauthorizedError(
            "a bearer token is required: Authorization: Bearer <pairing token> "
            "(`tiangong token` prints it)"
        )
    if request.method == "POST" and request.content_type != "application/json":
        return UnsupportedMediaTypeError("the request body must be application/json")
    return None
