"""The native host in end-to-end tests: `tiangong install` run for real (this checkout's
code), and the services the host then starts, found by the pid in `service.json` and killed
at the end whatever happened (the host starts them detached: nothing else would)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.support.service_process import health, service_env, tiangong_command

# The article the native tests summarize (its sentences come back in an extractive summary).
ARTICLE = (
    "<html lang=en><title>The lighthouse</title><article><h1>The lighthouse</h1>"
    "<p>The lighthouse on the northern cape was lit for the first time in 1874.</p>"
    "<p>Its keeper climbed one hundred and twelve steps to trim the wick every evening.</p>"
    "<p>An electric lamp replaced the oil flame in 1931, and the keeper's cottage became "
    "a small museum.</p></article>"
)


def run_tiangong(*args: str, home: Path | None = None) -> str:
    """`tiangong ARGS` as a user runs it (HOME=`home` when given); its output."""
    env = service_env(**({"HOME": str(home)} if home else {}))
    done = subprocess.run(
        tiangong_command(*args), env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def install(data_dir: Path, port: int, *args: str, home: Path | None = None) -> None:
    """Registers the host for the service on `port` with the extractive engine."""
    run_tiangong(
        "install",
        *args,
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--engine",
        "extractive",
        home=home,
    )


def pairing_token(data_dir: Path) -> str:
    return run_tiangong("token", "--data-dir", str(data_dir)).strip()


class HostStarted:
    """The services the host starts in `data_dir` (their pid is in service.json): killed by
    pid at the end, whatever happened."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.pids: set[int] = set()

    def current(self) -> tuple[int, int]:
        state = json.loads((self.data_dir / "service.json").read_text("utf-8"))
        self.pids.add(int(state["pid"]))
        return int(state["port"]), int(state["pid"])

    def kill(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def kill_all(self) -> None:
        with contextlib.suppress(OSError, ValueError, KeyError):
            self.current()
        for pid in self.pids:
            self.kill(pid)


def wait_until_gone(port: int) -> None:
    """Polls /health until nothing answers (the killed service's socket closed)."""
    deadline = time.monotonic() + 30
    while health(port) is not None:
        assert time.monotonic() < deadline, f"the service on port {port} did not stop"
        time.sleep(0.1)
