"""Make sure this user's service runs: find it, or start `tiangong serve` detached.

"Ours" means: `/health` answers as Tiangong on 127.0.0.1 and `/metrics` accepts our pairing
token as its bearer token, so a Tiangong of another user (another token) counts as a
stranger. The port tried first is the one the last start used (`service.json` in the data
dir), then the configured one (saved settings, default 8765); when that is taken by
something else, the next free one of the following `PORT_SCAN - 1`.

The service is started the way a user starts it, with the saved options, in its own session
(it outlives the browser's host process), its output appended to `logs/service.log`, and
`--hide-token`: the token reaches it through the token file (or TIANGONG_TOKEN), never its
arguments, and never its log. One lock file keeps two hosts (two browsers) from starting
two services at once.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tiangong.native.saved import SavedSettings

log = logging.getLogger(__name__)

STATE_FILE = "service.json"
LOCK_FILE = "native-host.lock"
LOG_DIR = "logs"
SERVICE_LOG = "service.log"
# A log over this size is moved to service.log.1 before the next start.
LOG_ROTATE_BYTES = 8 * 1024 * 1024
PORT_SCAN = 20
START_TIMEOUT = 90.0
PROBE_TIMEOUT = 2.0

Probe = Literal["ours", "stranger", "nothing"]
# No proxy, ever: http_proxy in the browser's environment must not see our token.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class StartError(Exception):
    """The service could not be found or started; the message says why and where to look."""


@dataclass(frozen=True)
class RunningService:
    port: int
    started: bool  # True when this call started it
    health: dict[str, Any]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


def probe(port: int, token: str) -> tuple[Probe, dict[str, Any]]:
    """What answers on 127.0.0.1:`port`: our service (with its health document), something
    else, or nothing at all."""
    base = f"http://127.0.0.1:{port}"
    try:
        with _OPENER.open(f"{base}/health", timeout=PROBE_TIMEOUT) as response:
            health = json.load(response)
    except urllib.error.URLError as exc:
        refused = isinstance(exc.reason, ConnectionRefusedError)
        return ("nothing" if refused else "stranger"), {}
    except (OSError, ValueError):
        return "stranger", {}
    if not isinstance(health, dict) or health.get("status") != "ok" or "protocol" not in health:
        return "stranger", {}
    request = urllib.request.Request(
        f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with _OPENER.open(request, timeout=PROBE_TIMEOUT):
            return "ours", health
    except (OSError, ValueError):
        return "stranger", {}


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the service binds (aiohttp reuses addresses): a port in TIME_WAIT is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


@contextlib.contextmanager
def locked(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(data_dir / LOCK_FILE, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _last_port(data_dir: Path) -> int | None:
    try:
        port = json.loads((data_dir / STATE_FILE).read_text("utf-8"))["port"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return port if isinstance(port, int) and 0 < port < 65536 else None


def _remember(data_dir: Path, port: int, pid: int) -> None:
    (data_dir / STATE_FILE).write_text(json.dumps({"port": port, "pid": pid}) + "\n", "utf-8")


def service_log(data_dir: Path) -> Path:
    return data_dir / LOG_DIR / SERVICE_LOG


def serve_command(data_dir: Path, saved: SavedSettings, port: int) -> list[str]:
    """The same Python, `-m tiangong serve` with the saved options: no token among them."""
    return [
        sys.executable,
        "-m",
        "tiangong",
        "serve",
        "--host",
        "127.0.0.1",  # what the host probes, whatever TIANGONG_HOST says
        "--hide-token",
        "--data-dir",
        str(data_dir),
        *saved.serve_args(port),
    ]


class Launcher:
    """Finds or starts the service; keeps the processes it started so they are reaped."""

    def __init__(self, data_dir: Path, token: str, *, timeout: float = START_TIMEOUT) -> None:
        self.data_dir = data_dir
        self.token = token
        self.timeout = timeout
        self._children: list[subprocess.Popen[bytes]] = []

    def ensure(
        self, saved: SavedSettings, on_start: Callable[[int], None] | None = None
    ) -> RunningService:
        self._children = [c for c in self._children if c.poll() is None]
        with locked(self.data_dir):
            probed: dict[int, tuple[Probe, dict[str, Any]]] = {}
            for port in dict.fromkeys(p for p in (_last_port(self.data_dir), saved.port) if p):
                probed[port] = probe(port, self.token)
                if probed[port][0] == "ours":
                    return RunningService(port, False, probed[port][1])
            first = saved.port
            for port in range(first, min(first + PORT_SCAN, 65536)):
                found, health = probed.get(port) or probe(port, self.token)
                if found == "ours":
                    return RunningService(port, False, health)
                if found == "nothing" and port_is_free(port):
                    if on_start is not None:
                        on_start(port)
                    return self._start(saved, port)
            raise StartError(
                f"ports {first}–{first + PORT_SCAN - 1} are all taken by other programs; "
                f"choose another with `tiangong install --port N`"
            )

    def _start(self, saved: SavedSettings, port: int) -> RunningService:
        log_path = service_log(self.data_dir)
        log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            if log_path.stat().st_size > LOG_ROTATE_BYTES:
                os.replace(log_path, log_path.with_name(SERVICE_LOG + ".1"))
        command = serve_command(self.data_dir, saved, port)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as output:
            child = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=saved.serve_env(os.environ),
                cwd=self.data_dir,
                start_new_session=True,
                close_fds=True,
            )
        self._children.append(child)
        _remember(self.data_dir, port, child.pid)
        log.info("started the service on port %d (pid %d)", port, child.pid)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            code = child.poll()
            if code is not None:
                raise StartError(f"the service stopped at start (exit {code}); see {log_path}")
            # Until it answers (a slow start may time a probe out); a program that took the
            # port meanwhile makes the service exit, reported above.
            found, health = probe(port, self.token)
            if found == "ours":
                return RunningService(port, True, health)
            time.sleep(0.1)
        raise StartError(f"the service did not answer within {self.timeout:.0f} s; see {log_path}")
