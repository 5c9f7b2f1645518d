"""The host as the browser runs it: the launcher `tiangong install` wrote, started with the
caller's identity as its arguments, framed messages on its stdin and stdout. The service it
starts is a real `tiangong serve --engine extractive` (no model to load), reached with a real
WebSocket client."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.support.service_process import health, service_env
from tests.wsclient import client
from tiangong.native.caller import CHROMIUM_ORIGIN, GECKO_ID, HOST_NAME
from tiangong.native.framing import encode, read_message
from tiangong.native.install import InstallPlan, install

ADDON_UUID = "0b8c3f4e-5a6d-4e7f-8a9b-0c1d2e3f4a5b"


class HostProcess:
    """One browser port: the host process, its replies collected by a reader thread."""

    def __init__(self, launcher: Path, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [str(launcher), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=launcher.parent,  # as Chromium starts hosts
        )
        self.replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.raw = bytearray()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            message = read_message(self.proc.stdout)
            self.replies.put(message)
            if message is None:
                return
            self.raw += encode(message)

    def send_bytes(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def ask(self, message: dict[str, Any], timeout: float = 120) -> list[dict[str, Any]]:
        """Send one request; the replies up to its answer (`service` or `error`)."""
        self.send_bytes(encode(message))
        got: list[dict[str, Any]] = []
        while True:
            reply = self.replies.get(timeout=timeout)
            assert reply is not None, "the host closed its stdout"
            got.append(reply)
            if reply["type"] in ("service", "error"):
                return got

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        code = self.proc.wait(timeout=30)
        if self.proc.stdout:
            self.proc.stdout.close()
        if self.proc.stderr:
            self.proc.stderr.close()
        return code


class Installed:
    def __init__(self, tmp_path: Path, port: int) -> None:
        self.data = tmp_path / "data"
        self.home = tmp_path / "home"
        self.port = port
        self.env = service_env(HOME=str(self.home), TIANGONG_LOG_LEVEL="debug")
        self.env.pop("TIANGONG_TOKEN", None)
        install(
            InstallPlan(
                data_dir=self.data,
                browsers=["chromium", "firefox"],
                serve_options={"engine": "extractive", "port": port},
                platform="linux",
                home=self.home,
                env=self.env,
            )
        )
        self.hosts: list[HostProcess] = []

    def manifest(self, folder: str) -> Path:
        return self.home / folder / f"{HOST_NAME}.json"

    def launcher(self, browser: str) -> Path:
        folder = (
            ".mozilla/native-messaging-hosts"
            if browser == "firefox"
            else (".config/chromium/NativeMessagingHosts")
        )
        return Path(json.loads(self.manifest(folder).read_text())["path"])

    def host(self, browser: str = "chromium", args: list[str] | None = None) -> HostProcess:
        if args is None:
            manifest = self.manifest(".mozilla/native-messaging-hosts")
            args = [str(manifest), GECKO_ID] if browser == "firefox" else [CHROMIUM_ORIGIN]
        host = HostProcess(self.launcher(browser), args, self.env)
        self.hosts.append(host)
        return host

    @property
    def token(self) -> str:
        return (self.data / "token").read_text().strip()

    def service_pid(self) -> int:
        return int(json.loads((self.data / "service.json").read_text())["pid"])

    def kill_service(self) -> None:
        """SIGKILL the service the host started (it runs in its own session) and wait until
        its port no longer answers."""
        try:
            pid = self.service_pid()
            os.kill(pid, signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError):
            return
        port = int(json.loads((self.data / "service.json").read_text())["port"])
        deadline = time.monotonic() + 30
        while health(port) is not None and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[Installed]:
    setup = Installed(tmp_path, free_port())
    yield setup
    for host in setup.hosts:
        if host.proc.poll() is None:
            host.proc.kill()
            host.proc.wait()
    setup.kill_service()


async def test_the_host_starts_the_service_when_none_runs_and_answers_url_and_token(
    installed: Installed,
) -> None:
    assert health(installed.port) is None
    host = installed.host()
    first = host.ask({"type": "connect", "id": "c1"})
    assert [r["type"] for r in first] == ["starting", "service"]
    assert first[0] == {"type": "starting", "id": "c1", "port": installed.port}
    answer = first[-1]
    assert answer["id"] == "c1" and answer["started"] is True
    assert answer["url"] == f"ws://127.0.0.1:{installed.port}/ws"
    assert answer["token"] == installed.token and len(answer["token"]) >= 40
    assert answer["engine"]["name"] == "extractive"
    async with client(answer["url"], origin=CHROMIUM_ORIGIN.rstrip("/"), hello=False) as c:
        welcome = await c.hello(answer["token"])
    assert welcome["type"] == "welcome"
    again = host.ask({"type": "connect", "id": "c2"})
    assert [r["type"] for r in again] == ["service"] and again[0]["started"] is False
    assert host.close() == 0  # the browser closed the port: the host exits…
    assert health(installed.port) is not None  # …and the service stays


def test_a_killed_service_is_started_again_on_the_next_request(installed: Installed) -> None:
    host = installed.host()
    assert host.ask({"type": "connect"})[-1]["started"] is True
    first_pid = installed.service_pid()
    installed.kill_service()
    answer = host.ask({"type": "connect"})[-1]
    assert answer["type"] == "service" and answer["started"] is True
    assert installed.service_pid() != first_pid and health(installed.port) is not None


def test_the_token_is_in_no_process_arguments_and_no_log(installed: Installed) -> None:
    host = installed.host()
    answer = host.ask({"type": "connect"})[-1]
    token = answer["token"].encode()
    seen = 0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes()
        except OSError:
            continue
        seen += 1
        assert token not in argv, cmdline
    service_argv = Path(f"/proc/{installed.service_pid()}/cmdline").read_bytes().split(b"\0")
    assert b"serve" in service_argv and b"--hide-token" in service_argv and seen > 3
    logs = installed.data / "logs"
    host_log = (logs / "native-host.log").read_text()
    service_log = (logs / "service.log").read_text()
    assert "started by chromium" in host_log and "Pairing token: in" in service_log
    assert answer["token"] not in host_log and answer["token"] not in service_log


def test_a_port_taken_by_another_program_moves_the_service_to_the_next_free_one(
    installed: Installed,
) -> None:
    with socket.socket() as stranger:
        # The test's port is held in TIME_WAIT (tests/conftest.py free_port): binding it
        # needs SO_REUSEADDR, as any server's listening socket has.
        stranger.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        stranger.bind(("127.0.0.1", installed.port))
        stranger.listen()
        answer = installed.host().ask({"type": "connect"})[-1]
    assert answer["type"] == "service" and answer["started"] is True
    port = int(answer["url"].split(":")[2].split("/")[0])
    assert port != installed.port and health(port) is not None


async def test_firefox_registers_the_add_on_origin_with_the_running_service(
    installed: Installed,
) -> None:
    host = installed.host("firefox")
    bad = host.ask({"type": "connect", "origin": "https://evil.example/"})[-1]
    assert bad["type"] == "error" and bad["code"] == "bad_request"
    answer = host.ask({"type": "connect", "origin": f"moz-extension://{ADDON_UUID}/"})[-1]
    assert answer["type"] == "service" and answer["origin_registered"] is True
    async with client(answer["url"], origin=f"moz-extension://{ADDON_UUID}", hello=False) as c:
        welcome = await c.hello(answer["token"])
    assert welcome["type"] == "welcome"


def test_another_extension_gets_no_token_and_starts_nothing(installed: Installed) -> None:
    host = installed.host(args=["chrome-extension://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/"])
    replies = host.ask({"type": "connect", "id": "x"})
    assert replies == [
        {
            "type": "error",
            "id": "x",
            "code": "forbidden",
            "message": "this host answers only Tiangong",
            "retryable": False,
        }
    ]
    assert host.close() == 0
    assert installed.token.encode() not in host.raw
    assert not (installed.data / "service.json").exists() and health(installed.port) is None


def test_malformed_input_gets_an_error_reply_and_the_host_goes_on(installed: Installed) -> None:
    host = installed.host(args=["chrome-extension://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/"])
    host.send_bytes((9).to_bytes(4, sys.byteorder))
    host.send_bytes(b"not json!")
    broken = host.replies.get(timeout=30)
    assert broken is not None and broken["code"] == "bad_request"
    host.send_bytes((2**31).to_bytes(4, sys.byteorder) + b"x" * 10)
    assert host.close() == 0  # the stream ended inside the oversized message: a clean end
    assert host.proc.returncode == 0
