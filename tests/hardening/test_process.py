"""The service as a process: graceful SIGTERM, and kill -9 at random moments while answers
are being written. Real `tiangong serve` processes (scripted fake engine), real sockets,
real SQLite files."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidMessage

from tests.conftest import TOKEN, free_port
from tests.support.service_process import service_env, start_serve


def start_service(data_dir: Path, port: int, script: dict[str, Any]) -> subprocess.Popen[bytes]:
    env = service_env(
        TIANGONG_ENGINE="fake", TIANGONG_FAKE_SCRIPT=json.dumps(script), TIANGONG_TOKEN=TOKEN
    )
    return start_serve(port, "--data-dir", str(data_dir), env=env)


def summarize(rid: str, text: str = "A page to summarize.") -> str:
    return json.dumps(
        {
            "type": "summarize",
            "id": rid,
            "page": {"url": "https://example.com/", "text": text},
            "options": {"max_tokens": 500},
        }
    )


async def test_sigterm_ends_answers_with_done_closes_with_1001_and_exits(tmp_path: Path) -> None:
    port = free_port()
    proc = start_service(tmp_path, port, {"pieces": ["word "] * 400, "delay": 0.02})
    frames: list[dict[str, Any]] = []
    close_code = None
    async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await ws.send(json.dumps({"type": "hello", "protocol": 1, "token": TOKEN}))
        await ws.recv()
        await ws.send(summarize("inflight"))
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "delta":
                break
        stopped_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            while True:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), 15)))
        except ConnectionClosed as closed:
            close_code = closed.rcvd.code if closed.rcvd else None
    returncode = await asyncio.to_thread(proc.wait, 15)
    elapsed = time.monotonic() - stopped_at
    done = [f for f in frames if f["type"] in ("done", "error")]
    assert done and done[-1]["type"] == "done"
    assert close_code == 1001
    assert returncode == 0 and elapsed < 10
    db = sqlite3.connect(tmp_path / "history.sqlite3")
    rows = db.execute("SELECT role, status FROM turns WHERE request_id='inflight'").fetchall()
    assert sorted(rows) == [("assistant", "incomplete"), ("user", "complete")] or sorted(rows) == [
        ("assistant", "complete"),
        ("user", "complete"),
    ]


def ended_by_the_kill(exc: BaseException) -> bool:
    """What a client sees when its server dies at any moment: refused or reset while
    connecting or writing (OSError), a handshake response cut short (InvalidMessage caused
    by EOF: websockets' own reading of a network error), or a connection that ended without
    a close frame. A close frame, a hung handshake or anything else is a real failure."""
    if isinstance(exc, ConnectionClosed):
        return exc.rcvd is None
    if isinstance(exc, InvalidMessage):
        return isinstance(exc.__cause__, EOFError)
    return isinstance(exc, OSError) and not isinstance(exc, TimeoutError)


async def _drive_until_killed(
    port: int, proc: subprocess.Popen[bytes], confirmed: dict[str, str], iteration: int
) -> None:
    """Fire requests and record every answer whose done arrived; kill -9 at a random moment.

    The moment is counted in frames the client has seen (then a few milliseconds more), not
    in seconds: on a busy machine the first answers take longer than any fixed delay, and a
    kill before them tests nothing. Frame 0 kills while connecting or shaking hands; four
    answers stream at once, about ten frames each."""
    kill_at_frame = random.randint(0, 120)
    kill_delay = random.uniform(0.0, 0.03)
    reached = asyncio.Event()
    seen = 0
    answers: dict[str, list[str]] = {}

    def saw_frame() -> None:
        nonlocal seen
        seen += 1
        if seen >= kill_at_frame:
            reached.set()

    async def kill_later() -> None:
        await reached.wait()
        await asyncio.sleep(kill_delay)
        proc.kill()

    if kill_at_frame == 0:
        reached.set()
    killer = asyncio.create_task(kill_later())
    try:
        async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            await ws.send(json.dumps({"type": "hello", "protocol": 1, "token": TOKEN}))
            await ws.recv()
            saw_frame()
            for n in range(4):
                rid = f"i{iteration}-r{n}"
                answers[rid] = []
                await ws.send(summarize(rid, f"Page {iteration} {n} with words."))
            while True:
                frame = json.loads(await ws.recv())
                saw_frame()
                if frame["type"] == "delta":
                    answers[frame["id"]].append(frame["text"])
                elif frame["type"] == "done" and frame["finish_reason"] == "stop":
                    confirmed[frame["id"]] = "".join(answers[frame["id"]])
                    rid = f"i{iteration}-r{len(answers)}"
                    answers[rid] = []
                    await ws.send(summarize(rid))
    except Exception as exc:
        # Only after the kill: the same error from a live server is a real failure.
        if not (killer.done() and ended_by_the_kill(exc)):
            raise
    finally:
        reached.set()  # a failure before the kill ends the server too
        await killer
        proc.wait()


@pytest.mark.slow
# 200 fresh server processes, each over a second to start (three on a busy machine: 657 s in
# all once), pass the suite's 300 s limit; that limit is meant for hangs, so this test gets
# a wider one.
@pytest.mark.timeout(1800)
async def test_kill_9_at_random_moments_never_loses_or_half_writes_a_turn(tmp_path: Path) -> None:
    iterations = int(os.environ.get("TIANGONG_KILL_ITERATIONS", "200"))
    script = {"pieces": ["tok "] * 8, "delay": 0.003, "max_concurrency": 4}
    confirmed: dict[str, str] = {}
    random.seed(1234)
    for i in range(iterations):
        port = free_port()
        proc = start_service(tmp_path, port, script)
        await _drive_until_killed(port, proc, confirmed, i)
    db = sqlite3.connect(tmp_path / "history.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = db.execute(
        "SELECT request_id, role, text, status, finish_reason FROM turns ORDER BY id"
    ).fetchall()
    by_request: dict[str, dict[str, tuple[str, str, str | None]]] = {}
    for request_id, role, text, status, finish in rows:
        by_request.setdefault(request_id, {})[role] = (text, status, finish)
    # Every answer whose done was sent is there, whole, exactly as streamed.
    assert len(confirmed) > iterations // 2  # the loop did real work between kills
    for request_id, text in confirmed.items():
        stored = by_request[request_id]["assistant"]
        assert stored == (text, "complete", "stop"), request_id
    # No exchange is half-written: a question is never stored without its answer.
    assert all(set(turns) == {"user", "assistant"} for turns in by_request.values())
