"""The WebSocket transport: frames in through the protocol session, requests out to the service.

Thin on purpose: protocol decisions live in `protocol.session`, request work in `service`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import WSMsgType, web

from tiangong import __version__
from tiangong.engine.base import CancelToken
from tiangong.errors import TiangongError
from tiangong.protocol.codec import FrameLimits, encode_frame
from tiangong.protocol.messages import History, Request
from tiangong.protocol.session import (
    CancelRequest,
    Close,
    Dispatch,
    Send,
    Session,
    error_frame,
)
from tiangong.server.keys import (
    CONNECTIONS_KEY,
    HOST_KEY,
    SERVICE_KEY,
    SETTINGS_KEY,
    TASKS_KEY,
    TOKEN_KEY,
)

log = logging.getLogger(__name__)


class Connection:
    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        app = request.app
        settings = app[SETTINGS_KEY]
        self.app = app
        self.request = request
        self.ws = ws
        self.limits = FrameLimits(settings.page_frame_bytes, settings.frame_bytes)
        self.session = Session(
            app[TOKEN_KEY],
            self.welcome,
            limits=self.limits,
            max_in_flight=settings.max_requests_per_connection,
        )
        self.cancels: dict[str, CancelToken] = {}
        self._send_lock = asyncio.Lock()
        self._send_timeout = settings.send_timeout

    def welcome(self) -> dict[str, Any]:
        settings = self.app[SETTINGS_KEY]
        return {
            "type": "welcome",
            "protocol": 1,
            "server": {"version": __version__},
            "engine": self.app[HOST_KEY].info(),
            "limits": {
                "page_frame_bytes": self.limits.page_frame_bytes,
                "frame_bytes": self.limits.frame_bytes,
                "requests_per_connection": settings.max_requests_per_connection,
            },
        }

    async def send(self, frame: dict[str, Any]) -> None:
        if self.ws.closed:
            return
        async with self._send_lock:
            try:
                await asyncio.wait_for(self.ws.send_str(encode_frame(frame)), self._send_timeout)
            except (TimeoutError, ConnectionError):
                log.info("a client stopped reading; dropping its connection")
                self.cancel_all()
                # A close handshake would wait on the same full buffer: drop the socket.
                transport = self.request.transport
                if transport is not None:
                    transport.abort()

    def push_status(self, frame: dict[str, Any]) -> None:
        if self.session.authenticated and not self.ws.closed:
            self._spawn(self.send(frame))

    async def receive(self, data: str | bytes) -> bool:
        """Handle one frame; False when the connection must close."""
        for action in self.session.receive(data):
            if isinstance(action, Send):
                await self.send(action.frame)
            elif isinstance(action, Close):
                await self.ws.close(code=action.code, message=action.reason.encode())
                return False
            elif isinstance(action, Dispatch):
                token = CancelToken()
                self.cancels[action.message.id] = token
                self._spawn(self.run(action.message, token))
            elif isinstance(action, CancelRequest):
                token_to_cancel = self.cancels.get(action.request_id)
                if token_to_cancel is not None:
                    token_to_cancel.cancel()
        return True

    async def run(self, message: Request | History, cancel: CancelToken) -> None:
        try:
            await self.app[SERVICE_KEY].handle(message, self.send, cancel)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not isinstance(exc, TiangongError):  # a bug: the client only hears "internal"
                log.exception("request %s failed", message.id)
            await self.send(error_frame(exc, message.id))
        finally:
            self.cancels.pop(message.id, None)
            self.session.finished(message.id)

    def close_unless_greeted(self) -> None:
        if not self.session.authenticated and not self.ws.closed:
            log.info("closing a connection that sent no hello in time")
            self._spawn(self.ws.close(code=1008, message=b"no hello"))

    def cancel_all(self) -> None:
        for token in self.cancels.values():
            token.cancel()

    def _spawn(self, coro: Any) -> None:
        tasks = self.app[TASKS_KEY]
        task = asyncio.get_running_loop().create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def websocket(request: web.Request) -> web.WebSocketResponse:
    settings = request.app[SETTINGS_KEY]
    ws = web.WebSocketResponse(
        # aiohttp closes with 1009 (message too big) past this size.
        max_msg_size=settings.page_frame_bytes,
        heartbeat=settings.heartbeat,
        # No permessage-deflate: nothing to gain on loopback, and no compression bombs.
        compress=False,
    )
    await ws.prepare(request)
    conn = Connection(request, ws)
    connections = request.app[CONNECTIONS_KEY]
    connections.add(conn)
    unsubscribe = request.app[HOST_KEY].subscribe(conn.push_status)
    hello_timer = asyncio.get_running_loop().call_later(
        settings.hello_timeout, conn.close_unless_greeted
    )
    try:
        async for msg in ws:
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                if not await conn.receive(msg.data):
                    break
            elif msg.type == WSMsgType.ERROR:
                log.info("connection error: %s", ws.exception())
                break
    finally:
        # A vanished client's answers stop at the next token and free their slot.
        hello_timer.cancel()
        conn.cancel_all()
        unsubscribe()
        connections.discard(conn)
    return ws
