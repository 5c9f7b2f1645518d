"""Our own OpenAI-compatible API on the sidebar's port: `/v1/models`, `/v1/chat/completions`.

Other tools (the official `openai` clients, editors, a second Tiangong with `--engine openai`)
use the model that serves the sidebar. Requests go through the scheduler like the sidebar's:
same queue, `overloaded` → 429, and a client that disconnects cancels its answer at the next
token. The request schema is `openapi.json` itself: the document and the checks cannot drift.

Who may call is decided in `auth.py` (Host and Origin, then the bearer token, JSON bodies
only, no cross-site requests); errors take OpenAI's shape (`http_errors.py`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path
from typing import Any, Literal, cast

from aiohttp import web
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from tiangong.engine.base import CancelToken, ChatMessage, Delta, Finish, GenerationParams, Job
from tiangong.errors import BadRequestError, TiangongError, TooLargeError, wire_error
from tiangong.logs import bind_request, unbind_request
from tiangong.runtime import Runtime
from tiangong.server.auth import api_refusal
from tiangong.server.http_errors import error_body, error_response, from_exception

log = logging.getLogger(__name__)

Role = Literal["system", "user", "assistant"]

OPENAPI_FILE = Path(__file__).with_name("openapi.json")
OPENAPI: dict[str, Any] = json.loads(OPENAPI_FILE.read_text("utf-8"))
REQUEST_SCHEMA = {"$ref": "#/components/schemas/ChatCompletionRequest", **OPENAPI}
_validator = Draft202012Validator(REQUEST_SCHEMA)

DEFAULT_MAX_TOKENS = 1024
DEFAULT_TEMPERATURE = 1.0  # OpenAI's default
# How often a running request looks whether its client is still connected.
DISCONNECT_POLL = 0.1


class OpenAIRoutes:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def list_models(self, request: web.Request) -> web.Response:
        refused = api_refusal(request)
        if refused is not None:
            return from_exception(self.runtime.metrics, refused)
        status = self.runtime.host.status()
        model = {
            "id": status.model,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "tiangong",
            "max_model_len": status.context_tokens,
        }
        return web.json_response({"object": "list", "data": [model]})

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        refused = api_refusal(request)
        if refused is not None:
            return from_exception(self.runtime.metrics, refused)
        request_id = "chatcmpl-" + secrets.token_hex(12)
        bound = bind_request(request_id)
        try:
            return await self._chat(request, request_id)
        finally:
            unbind_request(bound)

    async def _chat(self, request: web.Request, request_id: str) -> web.StreamResponse:
        metrics = self.runtime.metrics
        try:
            body = await _read_json(request)
            host = self.runtime.host
            engine = host.engine
            if not host.ready or engine is None:
                return error_response(
                    metrics, "loading", "the model is still loading; try again soon"
                )
            messages = _messages(body["messages"])
            prompt_tokens = engine.count_prompt_tokens(messages)
            room = engine.context_tokens - prompt_tokens
            if room <= 0:
                raise TooLargeError(
                    f"the messages take about {prompt_tokens} tokens; the model takes "
                    f"{engine.context_tokens} in all"
                )
            asked = body.get("max_completion_tokens") or body.get("max_tokens")
            params = GenerationParams(
                max_tokens=min(asked or DEFAULT_MAX_TOKENS, room),
                temperature=_number(body.get("temperature"), DEFAULT_TEMPERATURE),
                stop=_stops(body.get("stop")),
            )
        except TiangongError as exc:
            return from_exception(metrics, exc)
        job = Job("chat", messages, params)
        stream = bool(body.get("stream"))
        log.info(
            "chat: %d messages, about %d prompt tokens, max_tokens %d%s",
            len(messages),
            prompt_tokens,
            params.max_tokens,
            ", streamed" if stream else "",
        )
        answer = _Answer(self.runtime, request, job, request_id=request_id, model=engine.model)
        if stream:
            options = body.get("stream_options") or {}
            return await answer.stream(bool(options.get("include_usage")))
        return await answer.whole()


class _Answer:
    """One chat completion through the scheduler, cancelled when its client goes away."""

    def __init__(
        self, runtime: Runtime, request: web.Request, job: Job, *, request_id: str, model: str
    ) -> None:
        self.runtime = runtime
        self.request = request
        self.id = request_id
        self.model = model
        self.job = job
        self.created = int(time.time())
        self.cancel = CancelToken()

    def _events(self) -> AsyncGenerator[Delta | Finish, None]:
        events = self.runtime.scheduler.stream(self.job, self.cancel)
        return cast(AsyncGenerator[Delta | Finish, None], events)

    async def whole(self) -> web.Response:
        parts: list[str] = []
        finish: Finish | None = None
        watcher = asyncio.create_task(_watch_disconnect(self.request, self.cancel))
        try:
            async with aclosing(self._events()) as events:
                async for event in events:
                    if isinstance(event, Delta):
                        parts.append(event.text)
                    else:
                        finish = event
        except Exception as exc:
            return self._failed(exc)
        finally:
            watcher.cancel()
        assert finish is not None
        return web.json_response(
            {
                "id": self.id,
                "object": "chat.completion",
                "created": self.created,
                "model": self.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(parts)},
                        "finish_reason": _finish_reason(finish),
                        "logprobs": None,
                    }
                ],
                "usage": _usage(finish),
            },
            headers={"X-Request-Id": self.id},
        )

    async def stream(self, include_usage: bool) -> web.StreamResponse:
        watcher = asyncio.create_task(_watch_disconnect(self.request, self.cancel))
        try:
            async with aclosing(self._events()) as events:
                # Headers wait for the first event, so a refusal (busy, cannot chat) is
                # still an HTTP status the client can act on.
                try:
                    first = await anext(events)
                except Exception as exc:
                    return self._failed(exc)
                response = web.StreamResponse(
                    headers={
                        "Content-Type": "text/event-stream",
                        "Cache-Control": "no-cache",
                        "X-Request-Id": self.id,
                    }
                )
                await response.prepare(self.request)
                sink = _EventSink(response, self.cancel)
                await sink.send(self._chunk({"role": "assistant", "content": ""}))
                finish: Finish | None = None
                try:
                    event: Delta | Finish = first
                    while True:
                        if isinstance(event, Delta):
                            await sink.send(self._chunk({"content": event.text}))
                        else:
                            finish = event
                        try:
                            event = await anext(events)
                        except StopAsyncIteration:
                            break
                except Exception as exc:
                    if not isinstance(exc, TiangongError):
                        log.exception("chat stream failed")
                    wire = wire_error(exc)
                    self.runtime.metrics.error(wire["code"], "openai")
                    await sink.send(error_body(wire["code"], wire["message"]))
                    await sink.done()
                    return response
                assert finish is not None
                await sink.send(self._chunk({}, _finish_reason(finish)))
                if include_usage:
                    await sink.send({**self._chunk({}), "choices": [], "usage": _usage(finish)})
                await sink.done()
                return response
        finally:
            watcher.cancel()

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            ],
        }

    def _failed(self, exc: BaseException) -> web.Response:
        if not isinstance(exc, TiangongError):
            log.error("chat failed", exc_info=exc)
        else:
            log.info("chat refused: %s", exc.code)
        return from_exception(self.runtime.metrics, exc)


class _EventSink:
    """Writes server-sent events; a client that went away cancels the answer instead."""

    def __init__(self, response: web.StreamResponse, cancel: CancelToken) -> None:
        self.response = response
        self.cancel = cancel

    async def send(self, data: dict[str, Any]) -> None:
        await self._write(b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n")

    async def done(self) -> None:
        await self._write(b"data: [DONE]\n\n")

    async def _write(self, data: bytes) -> None:
        if self.cancel.cancelled:
            return
        try:
            await self.response.write(data)
        except (ConnectionError, RuntimeError):
            log.info("the client went away; cancelling its answer")
            self.cancel.cancel()


async def _watch_disconnect(request: web.Request, cancel: CancelToken) -> None:
    """aiohttp does not cancel handlers when a client leaves: look at the transport."""
    while not cancel.cancelled:
        transport = request.transport
        if transport is None or transport.is_closing():
            log.info("the client went away; cancelling its answer")
            cancel.cancel()
            return
        await asyncio.sleep(DISCONNECT_POLL)


async def _read_json(request: web.Request) -> dict[str, Any]:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise _PayloadTooLargeError("the request body is over 1 MiB") from exc
    try:
        body = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestError(f"the body is not valid JSON: {exc}") from exc
    error = best_match(_validator.iter_errors(body))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        raise BadRequestError(f"body{where}: {error.message[:300]}")
    return cast(dict[str, Any], body)


class _PayloadTooLargeError(BadRequestError):
    code = "payload_too_large"


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _messages(raw: list[dict[str, Any]]) -> tuple[ChatMessage, ...]:
    out: list[ChatMessage] = []
    for message in raw:
        content = message["content"]
        text = content if isinstance(content, str) else "\n".join(p["text"] for p in content)
        role = "system" if message["role"] == "developer" else message["role"]
        out.append(ChatMessage(cast(Role, role), text))
    return tuple(out)


def _number(value: Any, default: float) -> float:
    return default if value is None else float(value)


def _stops(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    return tuple(s for s in stops if s)


def _finish_reason(finish: Finish) -> str:
    return "length" if finish.finish_reason == "length" else "stop"


def _usage(finish: Finish) -> dict[str, int]:
    return {
        "prompt_tokens": finish.prompt_tokens,
        "completion_tokens": finish.completion_tokens,
        "total_tokens": finish.prompt_tokens + finish.completion_tokens,
    }


def add_routes(app: web.Application, runtime: Runtime) -> None:
    routes = OpenAIRoutes(runtime)
    app.router.add_get("/v1/models", routes.list_models)
    app.router.add_post("/v1/chat/completions", routes.chat_completions)
