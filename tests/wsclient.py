"""A small protocol client for tests, written from protocol/ only (frames in, frames out)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import TOKEN
from tiangong.protocol.codec import server_frame_errors

TERMINAL = ("done", "error", "history")


class Client:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = 30) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        frame: dict[str, Any] = json.loads(raw)
        # Every frame the server sends must match protocol/schema/v1/server.json.
        assert server_frame_errors(frame) == [], (frame, server_frame_errors(frame))
        self.frames.append(frame)
        return frame

    async def hello(self, token: str = TOKEN) -> dict[str, Any]:
        await self.send(
            {
                "type": "hello",
                "protocol": 1,
                "token": token,
                "client": {"name": "tests", "version": "1"},
            }
        )
        return await self.next_of("welcome", "error")

    async def next_of(self, *types: str, timeout: float = 30) -> dict[str, Any]:
        while True:
            frame = await self.recv(timeout)
            if frame["type"] in types:
                return frame

    async def until_end(self, request_id: str, timeout: float = 60) -> list[dict[str, Any]]:
        """Frames of one request up to and including its done or error."""
        out = [f for f in self.frames if f.get("id") == request_id]
        if out and out[-1]["type"] in TERMINAL:
            return out
        while True:
            frame = await self.recv(timeout)
            if frame.get("id") == request_id:
                out.append(frame)
                if frame["type"] in TERMINAL:
                    return out

    async def request(self, frame: dict[str, Any], timeout: float = 60) -> list[dict[str, Any]]:
        await self.send(frame)
        return await self.until_end(frame["id"], timeout)


def answer_text(frames: list[dict[str, Any]]) -> str:
    return "".join(f["text"] for f in frames if f["type"] == "delta")


@asynccontextmanager
async def client(
    url: str, *, origin: str | None = None, hello: bool = True, **kwargs: Any
) -> AsyncIterator[Client]:
    async with connect(url, origin=origin, max_size=None, **kwargs) as ws:  # type: ignore[arg-type]
        c = Client(ws)
        if hello:
            welcome = await c.hello()
            assert welcome["type"] == "welcome", welcome
        yield c
