"""A misbehaving OpenAI-compatible server for the `openai` engine's failure tests: a real
aiohttp server on loopback whose chat endpoint does what the test scripts (refuse, stall,
break off, fail mid-stream), and which records what it was sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.conftest import free_port


@dataclass
class Behaviour:
    models: list[dict[str, Any]] = field(default_factory=lambda: [{"id": "up-model"}])
    # An HTTP status and error message to answer instead of streaming.
    status: int | None = None
    message: str = "scripted failure"
    pieces: list[str] = field(default_factory=lambda: ["Hello ", "from ", "upstream."])
    # Seconds to wait before the headers, and before each piece after the first.
    before_headers: float = 0.0
    between_pieces: float = 0.0
    # Send an error event after this many pieces.
    error_after: int | None = None
    # End the stream after the pieces without a finish_reason or [DONE].
    truncate: bool = False
    finish_reason: str = "stop"


@dataclass
class Upstream:
    url: str
    behaviour: Behaviour
    bodies: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    data = {
        "object": "chat.completion.chunk",
        "choices": [{"delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(data).encode() + b"\n\n"


@asynccontextmanager
async def upstream(behaviour: Behaviour | None = None) -> AsyncIterator[Upstream]:
    port = free_port()
    state = Upstream(f"http://127.0.0.1:{port}/v1", behaviour or Behaviour())

    async def models(request: web.Request) -> web.Response:
        state.auth.append(request.headers.get("Authorization", ""))
        b = state.behaviour
        if b.status in (401, 403):
            return web.json_response({"error": {"message": b.message}}, status=b.status)
        return web.json_response({"object": "list", "data": b.models})

    async def chat(request: web.Request) -> web.StreamResponse:
        b = state.behaviour
        state.bodies.append(await request.json())
        state.auth.append(request.headers.get("Authorization", ""))
        await asyncio.sleep(b.before_headers)
        if b.status is not None:
            return web.json_response({"error": {"message": b.message}}, status=b.status)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i, piece in enumerate(b.pieces):
            if i:
                await asyncio.sleep(b.between_pieces)
            if b.error_after is not None and i >= b.error_after:
                error = {"error": {"message": b.message, "type": "server_error"}}
                await response.write(b"data: " + json.dumps(error).encode() + b"\n\n")
                return response
            if i == 1:  # comments are part of the format; clients skip them
                await response.write(b": keep-alive comment\n\n")
            await response.write(_chunk({"content": piece}))
        if b.truncate:
            return response
        await response.write(_chunk({}, b.finish_reason))
        usage = {"prompt_tokens": 7, "completion_tokens": len(b.pieces), "total_tokens": 0}
        await response.write(b"data: " + json.dumps({"choices": [], "usage": usage}).encode())
        await response.write(b"\n\ndata: [DONE]\n\n")
        return response

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield state
    finally:
        await runner.cleanup()
