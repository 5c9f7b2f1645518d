"""Real Chromium starts the host through the manifest `tiangong install --user-data-dir`
wrote, with the caller's origin as the host's argument, and the host answers over the real
native messaging pipe. The extension here is a probe with the pinned key (so the pinned id)
and the `nativeMessaging` permission; the sidebar's own use of the host comes with the
extension's side of zero set-up. Skips only when no Chromium (or Playwright) is installed."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.e2e.conftest import CHROMIUM, CHROMIUM_FLAGS, SKIP_REASON
from tests.support.service_process import health, service_env
from tiangong.native.caller import HOST_NAME
from tiangong.native.install import InstallPlan, install
from tiangong.settings import EXTENSION_ID

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(SKIP_REASON is not None, reason=str(SKIP_REASON))]

CONNECT = """({name, message}) => new Promise((resolve) => {
  const port = chrome.runtime.connectNative(name);
  const got = [];
  port.onMessage.addListener((reply) => {
    got.push(reply);
    if (reply.type === "service" || reply.type === "error") { port.disconnect(); resolve(got); }
  });
  port.onDisconnect.addListener(() => resolve([...got, {type: "disconnected",
    error: chrome.runtime.lastError ? chrome.runtime.lastError.message : null}]));
  port.postMessage(message);
})"""


def probe_extension(folder: Path) -> Path:
    source = json.loads((REPO / "extension" / "manifest.json").read_text("utf-8"))
    folder.mkdir()
    manifest = {
        "manifest_version": 3,
        "name": "Tiangong native host probe",
        "version": "1.0",
        "key": source["key"],
        "permissions": ["nativeMessaging"],
        "background": {"service_worker": "worker.js"},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "worker.js").write_text("// evaluated into by the test\n")
    return folder


def stop_service(data_dir: Path) -> None:
    try:
        state = json.loads((data_dir / "service.json").read_text())
        os.kill(int(state["pid"]), signal.SIGKILL)
    except (FileNotFoundError, ProcessLookupError):
        return
    deadline = time.monotonic() + 30
    while health(int(state["port"])) is not None and time.monotonic() < deadline:
        time.sleep(0.05)


def test_chromium_starts_the_host_for_the_pinned_extension_and_gets_url_and_token(
    tmp_path: Path,
) -> None:
    from playwright.sync_api import sync_playwright

    profile, data, port = tmp_path / "profile", tmp_path / "data", free_port()
    env = service_env(HOME=str(tmp_path / "home"), TIANGONG_LOG_LEVEL="info")
    install(
        InstallPlan(
            data_dir=data,
            browsers=["chromium"],
            user_data_dir=profile,
            serve_options={"engine": "extractive", "port": port},
            platform="linux",
            home=tmp_path / "home",
            env=env,
        )
    )
    extension = probe_extension(tmp_path / "probe")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                str(profile),
                headless=True,
                executable_path=CHROMIUM,
                args=[
                    f"--disable-extensions-except={extension}",
                    f"--load-extension={extension}",
                    *CHROMIUM_FLAGS,
                ],
                env=env,
            )
            try:
                worker = (
                    context.service_workers[0]
                    if context.service_workers
                    else (context.wait_for_event("serviceworker", timeout=20_000))
                )
                assert worker.url.startswith(f"chrome-extension://{EXTENSION_ID}/")
                first: list[dict[str, Any]] = worker.evaluate(
                    CONNECT, {"name": HOST_NAME, "message": {"type": "connect", "id": "c"}}
                )
                again: list[dict[str, Any]] = worker.evaluate(
                    CONNECT, {"name": HOST_NAME, "message": {"type": "connect"}}
                )
            finally:
                context.close()
        assert [r["type"] for r in first] == ["starting", "service"], first
        answer = first[-1]
        assert answer["started"] is True and answer["url"] == f"ws://127.0.0.1:{port}/ws"
        assert answer["token"] == (data / "token").read_text().strip()
        assert again[-1]["type"] == "service" and again[-1]["started"] is False
        host_log = (data / "logs" / "native-host.log").read_text()
        assert f"started by chromium (chrome-extension://{EXTENSION_ID}/)" in host_log
        assert health(port) is not None  # the service outlives the browser
    finally:
        stop_service(data)
