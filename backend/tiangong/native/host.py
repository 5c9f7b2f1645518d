"""`tiangong native-host`: the program the browser starts for the extension.

It reads requests on stdin and answers on stdout in the native messaging framing, and runs
until the browser closes the port (stdin ends). Messages (docs/native-host.md):

    → {"type": "connect", "id": "c1", "origin": "moz-extension://<uuid>/"}   (origin: Firefox)
    ← {"type": "starting", "id": "c1", "port": 8765}          (only when it starts the service)
    ← {"type": "service", "id": "c1", "url": "ws://127.0.0.1:8765/ws", "token": "…", …}
    ← {"type": "error", "id": "c1", "code": "…", "message": "…", "retryable": false}

Nothing else is ever written to stdout: the real stdout is kept for frames and fd 1 is
pointed at stderr, so a stray print (ours or a library's) cannot corrupt the stream. The log
goes to `<data dir>/logs/native-host.log`, with the token redacted.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from tiangong import __version__
from tiangong.logs import configure_logging
from tiangong.native.caller import Caller, ForbiddenCallerError, identify
from tiangong.native.framing import FramingError, read_message, write_message
from tiangong.native.launch import LOG_DIR, Launcher, StartError, locked, serve_command
from tiangong.native.saved import SavedSettingsError, load_saved
from tiangong.origins import moz_extension_origin, register_origin
from tiangong.settings import Settings

log = logging.getLogger(__name__)

HOST_LOG = "native-host.log"
# Sends a frame before the answer (`starting`, while the service starts).
Send = Callable[[dict[str, Any]], None]
MAX_ID = 100


def _error(request_id: Any, code: str, message: str, retryable: bool = False) -> dict[str, Any]:
    reply: dict[str, Any] = {"type": "error", "code": code, "message": message}
    reply["retryable"] = retryable
    if isinstance(request_id, str):
        reply["id"] = request_id
    return reply


class Host:
    """Answers one browser port: the caller is fixed at start, requests come one by one."""

    def __init__(self, caller: Caller | None, data_dir: Path, token: str, launcher: Launcher):
        self.caller = caller
        self.data_dir = data_dir
        self.token = token
        self.launcher = launcher

    def serve(self, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        while True:
            try:
                message = read_message(stdin)
            except FramingError as exc:
                log.warning("refused a request: %s", exc.message)
                write_message(stdout, _error(None, exc.code, exc.message))
                continue
            if message is None:
                log.info("the browser closed the port")
                return
            for reply in self.answer(message, lambda frame: write_message(stdout, frame)):
                write_message(stdout, reply)

    def answer(self, message: dict[str, Any], send: Send) -> list[dict[str, Any]]:
        request_id = message.get("id")
        if request_id is not None and (not isinstance(request_id, str) or len(request_id) > MAX_ID):
            return [_error(None, "bad_request", f"id must be a string of at most {MAX_ID}")]
        if self.caller is None:
            return [_error(request_id, "forbidden", "this host answers only Tiangong")]
        kind = message.get("type")
        if kind != "connect":
            return [_error(request_id, "bad_request", f"unknown request type {str(kind)[:40]!r}")]
        try:
            return [self._connect(message, request_id, send)]
        except StartError as exc:
            log.warning("could not start the service: %s", exc)
            return [_error(request_id, "start_failed", str(exc), retryable=True)]
        except SavedSettingsError as exc:
            return [_error(request_id, "bad_settings", str(exc))]
        except Exception:
            log.exception("connect failed")
            return [_error(request_id, "internal", "the host failed; see its log", True)]

    def _connect(self, message: dict[str, Any], request_id: Any, send: Send) -> dict[str, Any]:
        assert self.caller is not None
        registered = False
        claimed = message.get("origin")
        if self.caller.browser == "firefox" and claimed is not None:
            origin = moz_extension_origin(claimed) if isinstance(claimed, str) else None
            if origin is None:
                return _error(
                    request_id,
                    "bad_request",
                    "origin must be the add-on's own runtime.getURL('') (moz-extension://<uuid>/)",
                )
            # Firefox started us for our add-on only (allowed_extensions), so the origin it
            # reports is its own; it can widen the allowlist to add-on pages and no further.
            with locked(self.data_dir):  # two hosts may register at once
                registered = register_origin(self.data_dir, origin)
            if registered:
                log.info("registered the add-on origin %s", origin)
        saved = load_saved(self.data_dir)

        def starting(port: int) -> None:
            frame: dict[str, Any] = {"type": "starting", "port": port}
            if request_id is not None:
                frame["id"] = request_id
            send(frame)

        service = self.launcher.ensure(saved, on_start=starting)
        engine = service.health.get("engine") or {}
        reply: dict[str, Any] = {
            "type": "service",
            "url": service.url,
            "token": self.token,
            "started": service.started,
            "version": str(service.health.get("version", "")),
            "engine": {"name": engine.get("name"), "state": engine.get("state")},
            "origin_registered": registered,
        }
        if request_id is not None:
            reply["id"] = request_id
        log.info("answered with port %d (started: %s)", service.port, service.started)
        return reply


def _open_log(data_dir: Path) -> Any:
    log_dir = data_dir / LOG_DIR
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(log_dir / HOST_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    return os.fdopen(fd, "a", encoding="utf-8", buffering=1)


def run_host(args: list[str], data_dir: Path) -> int:
    """The host's process: frames on the real stdout, everything else elsewhere."""
    frames = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    token = Settings(data_dir=data_dir, token=os.environ.get("TIANGONG_TOKEN")).pairing_token()
    level = os.environ.get("TIANGONG_LOG_LEVEL", "info")
    configure_logging(level, "text", secrets=[token], stream=_open_log(data_dir))
    caller: Caller | None = None
    try:
        caller = identify(args)
    except ForbiddenCallerError as exc:
        log.warning("%s", exc)
    else:
        log.info("started by %s (%s), version %s", caller.browser, caller.identity, __version__)
    host = Host(caller, data_dir, token, Launcher(data_dir, token))
    with frames:
        host.serve(sys.stdin.buffer, frames)
    return 0


def run_foreground(data_dir: Path) -> int:
    """`native-host --foreground`: become the service with the saved options (the autostart
    unit runs this, so the unit file holds no option and no secret)."""
    saved = load_saved(data_dir)
    command = serve_command(data_dir, saved, saved.port)
    os.execve(command[0], command, saved.serve_env(os.environ))
