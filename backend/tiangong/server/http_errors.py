"""HTTP error responses of the API routes (and /metrics), in OpenAI's error shape: a wire
error code becomes its HTTP status, OpenAI error type and retry headers, and is counted."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tiangong.errors import wire_error
from tiangong.serving.metrics import Metrics

# wire code → HTTP status and OpenAI error type.
_STATUS: dict[str, tuple[int, str]] = {
    "bad_request": (400, "invalid_request_error"),
    "too_large": (400, "invalid_request_error"),
    "unauthorized": (401, "authentication_error"),
    "forbidden": (403, "permission_error"),
    "unsupported_media_type": (415, "invalid_request_error"),
    "payload_too_large": (413, "invalid_request_error"),
    "overloaded": (429, "rate_limit_error"),
    # The serving engine cannot chat (the extractive one, when no model loaded): the
    # request is fine, this server cannot answer it now.
    "unsupported": (503, "server_error"),
    "loading": (503, "server_error"),
    "engine_failed": (503, "server_error"),
    "internal": (500, "server_error"),
}


def error_body(code: str, message: str) -> dict[str, Any]:
    kind = _STATUS.get(code, (500, "server_error"))[1]
    return {"error": {"message": message, "type": kind, "code": code, "param": None}}


def error_response(metrics: Metrics, code: str, message: str) -> web.Response:
    status = _STATUS.get(code, (500, "server_error"))[0]
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="tiangong"'
    elif status in (429, 503):
        headers["Retry-After"] = "1" if status == 429 else "5"
    metrics.error(code, "openai")
    return web.json_response(error_body(code, message), status=status, headers=headers)


def from_exception(metrics: Metrics, exc: BaseException) -> web.Response:
    wire = wire_error(exc)
    return error_response(metrics, wire["code"], wire["message"])
