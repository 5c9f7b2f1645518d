"""The WebSocket transport: frames in through the protocol session, requests out to the service.

Thin on purpose: protocol decisions live in `protocol.session`, frames in `protocol.frames`,
request work in `pipeline.service`. It owns the app's open connections and the tasks that
answer on them, and their graceful shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import WSMsgType, web

from tiangong.engine.base import CancelToken
from tiangong.errors import TiangongError
from tiangong.protocol.codec import FrameLimits, encode_frame
from tiangong.protocol.frames import (
    CLOSE_GOING_AWAY,
    CLOSE_POLICY_VIOLATION,
    error_frame,
    status_frame,
    welcome_frame,
)
from tiangong.protocol.messages import History, Request
from tiangong.protocol.session import CancelRequest, Close, Dispatch, Send, Session
from tiangong.runtime import Runtime
from tiangong.server.auth import pairing_check
from tiangong.serving.host import EngineStatus

log = logging.getLogger(__name__)

# Seconds answers in flight get to finish on shutdown before they are cancelled.
SHUTDOWN_GRACE = 3.0


class Connection:
    def __init__(self, runtime: Runtime, request: web.Request, ws: web.WebSocketResponse) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.app = request.app
        self.request = request
        self.ws = ws
        self.limits = FrameLimits(settings.page_frame_bytes, settings.frame_bytes)
        self.session = Session(
            pairing_check(request.app),
            self.welcome,
            limits=self.limits,
            max_in_flight=settings.max_requests_per_connection,
        )
        self.cancels: dict[str, CancelToken] = {}
        self._send_lock = asyncio.Lock()
        self._send_timeout = settings.send_timeout

    def welcome(self) -> dict[str, Any]:
        return welcome_frame(
            self.runtime.host.status(),
            page_frame_bytes=self.limits.page_frame_bytes,
            frame_bytes=self.limits.frame_bytes,
            requests_per_connection=self.runtime.settings.max_requests_per_connection,
        )

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

    def push_status(self, status: EngineStatus) -> None:
        if self.session.authenticated and not self.ws.closed:
            self._spawn(self.send(status_frame(status)))

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
            await self.runtime.service.handle(message, self.send, cancel)
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
            self._spawn(self.ws.close(code=CLOSE_POLICY_VIOLATION, message=b"no hello"))

    def cancel_all(self) -> None:
        for token in self.cancels.values():
            token.cancel()

    def _spawn(self, coro: Any) -> None:
        tasks = self.app[TASKS_KEY]
        task = asyncio.get_running_loop().create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)


# The app's open connections, and the tasks answering on them (awaited on shutdown).
CONNECTIONS_KEY = web.AppKey("connections", set[Connection])
TASKS_KEY = web.AppKey("tasks", set[asyncio.Task[None]])


def add_routes(app: web.Application, runtime: Runtime) -> None:
    """`/ws`, and the shutdown that lets answers in flight end first."""
    app[CONNECTIONS_KEY] = set()
    app[TASKS_KEY] = set()

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        return await serve_websocket(runtime, request)

    app.router.add_get("/ws", websocket)
    app.on_shutdown.append(close_connections)


async def serve_websocket(runtime: Runtime, request: web.Request) -> web.WebSocketResponse:
    settings = runtime.settings
    ws = web.WebSocketResponse(
        # aiohttp closes with 1009 (message too big) past this size.
        max_msg_size=settings.page_frame_bytes,
        heartbeat=settings.heartbeat,
        # No permessage-deflate: nothing to gain on loopback, and no compression bombs.
        compress=False,
    )
    await ws.prepare(request)
    conn = Connection(runtime, request, ws)
    connections = request.app[CONNECTIONS_KEY]
    connections.add(conn)
    unsubscribe = runtime.host.subscribe(conn.push_status)
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


async def close_connections(app: web.Application) -> None:
    """Graceful shutdown: answers in flight end with `done` (finished, or cancelled after a
    grace period), everything is committed, then sockets close with 1001 (going away)."""
    for cancel_first in (False, True):
        if cancel_first:
            for conn in app[CONNECTIONS_KEY]:
                conn.cancel_all()
        pending = [t for t in app[TASKS_KEY] if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=SHUTDOWN_GRACE)
    connections = app[CONNECTIONS_KEY]
    for conn in list(connections):
        await conn.ws.close(code=CLOSE_GOING_AWAY, message=b"server shutdown")
