"""Slow, silent, vanished and dead peers: each is dropped, its work cancelled, its slot freed.
Real server, real sockets; the fake engine serves so the load is under the test's control."""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import socket
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import TOKEN, run_server
from tests.wsclient import answer_text, client
from tiangong.engine.fake import FakeEngine, FakeScript
from tiangong.server.ws import CONNECTIONS_KEY

PAGE = {"url": "https://example.com/", "text": "A page with a few words on it."}


async def wait_until(condition: object, timeout: float = 10.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if callable(condition) and condition():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_client_that_stops_reading_is_dropped_and_its_answer_cancelled(
    tmp_path: Path,
) -> None:
    flood = FakeScript(pieces=["x" * 100_000] * 400, max_concurrency=1)
    engine = FakeEngine(flood)
    async with run_server(tmp_path, serve_with=engine, send_timeout=1.0) as server:
        # websockets stops reading from the socket once 4 frames wait unread.
        async with connect(server.ws_url, max_queue=4, max_size=None) as stalled:
            await stalled.send(
                '{"type": "hello", "protocol": 1, "token": "%s"}' % TOKEN  # noqa: UP031
            )
            await stalled.recv()
            await stalled.send(
                '{"type": "summarize", "id": "flood", "page": {"url": "u", "text": "t"}, '
                '"options": {"max_tokens": 1000}}'
            )
            dropped = await wait_until(lambda: not server.app[CONNECTIONS_KEY], timeout=20)
            # The slot is free again: another client is served at once.
            async with client(server.ws_url) as c:
                await c.send({"type": "rewrite", "id": "next", "text": "hello"})
                await c.next_of("delta", timeout=10)
                await c.send({"type": "cancel", "id": "next"})
                await c.until_end("next")
    assert dropped


async def test_a_socket_that_never_says_hello_is_closed(tmp_path: Path) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine(), hello_timeout=0.5) as server:
        async with connect(server.ws_url) as ws:
            try:
                await asyncio.wait_for(ws.recv(), 10)
                raise AssertionError("expected the server to close")
            except ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 1008


async def test_idle_connections_that_send_nothing_time_out(tmp_path: Path) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine(), idle_timeout=0.5) as server:
        loop = asyncio.get_running_loop()
        socks = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", server.port))
            s.setblocking(False)
            socks.append(s)
        started = loop.time()
        closed = await asyncio.gather(*(loop.sock_recv(s, 1) for s in socks))
        elapsed = loop.time() - started
        for s in socks:
            s.close()
    assert closed == [b""] * 20
    assert elapsed < 10


def handshake(port: int) -> socket.socket:
    """A WebSocket client by hand: it upgrades, then never answers a ping."""
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += s.recv(1024)
    assert b" 101 " in response.split(b"\r\n")[0]
    return s


async def test_a_dead_peer_is_closed_by_the_heartbeat(tmp_path: Path) -> None:
    async with run_server(
        tmp_path, serve_with=FakeEngine(), heartbeat=0.3, hello_timeout=60
    ) as server:
        dead = await asyncio.to_thread(handshake, server.port)
        assert await wait_until(lambda: len(server.app[CONNECTIONS_KEY]) == 1)
        gone = await wait_until(lambda: not server.app[CONNECTIONS_KEY], timeout=10)
        dead.close()
    assert gone


async def test_a_dropped_answer_can_be_recovered_after_reconnecting(tmp_path: Path) -> None:
    slow = FakeScript(pieces=["word "] * 400, delay=0.01)
    async with run_server(tmp_path, serve_with=FakeEngine(slow)) as server:
        async with client(server.ws_url) as c:
            await c.send(
                {"type": "summarize", "id": "lost", "page": PAGE, "options": {"max_tokens": 1000}}
            )
            start = await c.next_of("start")
            for _ in range(5):
                await c.next_of("delta")
            seen = answer_text(c.frames)
        # The socket dropped mid-answer: the service stops the generation and stores what was
        # said. Asked until it is stored (a fixed wait loses the race on a busy machine).
        ask = {"type": "history", "request_id": "lost", "conversation_id": start["conversation_id"]}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        async with client(server.ws_url) as c2:
            for attempt in itertools.count():
                frames = await c2.request({**ask, "id": f"h{attempt}"})
                if frames[-1]["type"] == "history" or loop.time() > deadline:
                    break
                assert "no stored answer" in frames[-1]["message"], frames[-1]
                await asyncio.sleep(0.05)
    turns = frames[-1]["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant"]
    assert turns[1]["status"] == "incomplete" and turns[1]["finish_reason"] == "cancelled"
    assert turns[1]["text"].startswith(seen) and len(turns[1]["text"]) < len("word ") * 400


async def test_compression_is_never_negotiated(tmp_path: Path) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        # websockets offers permessage-deflate by default; the server must decline it.
        async with connect(server.ws_url) as ws:
            assert ws.protocol.extensions == []
            assert "permessage-deflate" not in str(ws.response.headers)  # type: ignore[union-attr]
