"""`tiangong serve` as a real process, for tests and benchmarks: started the way a user
starts it, and returned once it answers `/health` (or its engine is ready)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[2]


def service_env(**extra: str) -> dict[str, str]:
    """The environment with this checkout's backend importable (plus `extra`)."""
    env = {**os.environ, "TIANGONG_LOG_LEVEL": "warning", **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "backend"), env.get("PYTHONPATH", "")])
    return env


def tiangong_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tiangong.cli", *args]


def health(port: int) -> dict[str, Any] | None:
    """The health document, or None while nothing answers on the port."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
            body: dict[str, Any] = json.load(response)
            return body
    except OSError:
        return None


def start_serve(
    port: int,
    *args: str,
    env: dict[str, str] | None = None,
    output: int | IO[Any] | None = subprocess.DEVNULL,
    text: bool = False,
    until_ready: bool = False,
    timeout: float = 30,
    port_flag: bool = True,
) -> subprocess.Popen[Any]:
    """`tiangong serve --port PORT ARGS…` (without the flag when the environment names the
    port); waits until it answers on PORT (with `until_ready`, until its engine has loaded).
    Raises, with the process killed, when it exits or takes too long."""
    port_args = ("--port", str(port)) if port_flag else ()
    proc = subprocess.Popen(
        tiangong_command("serve", *port_args, *args),
        env=env or service_env(),
        stdout=output,
        stderr=subprocess.STDOUT if output is not subprocess.DEVNULL else subprocess.DEVNULL,
        text=text,
        cwd=REPO,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tiangong serve exited with {proc.returncode}")
        body = health(port)
        if body is not None and (not until_ready or body["engine"]["state"] == "ready"):
            return proc
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"tiangong serve did not answer within {timeout:.0f} s")
