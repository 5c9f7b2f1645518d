"""Zero set-up in real Chromium: `tiangong install` (the real command) registers the native
host in a fresh profile; with no service running and no token entered, opening the panel has
the browser start the host, which starts `tiangong serve` (extractive engine, saved by
install); the panel connects on its own and summarizes a page. The service killed, asking
again starts it again. Every service the host started is killed at the end, pass or fail.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import free_port
from tests.e2e.conftest import Browser, Pages, answer
from tests.e2e.native_support import (
    ARTICLE,
    HostStarted,
    install,
    pairing_token,
    wait_until_gone,
)
from tests.support.service_process import health

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e

# Starting Python, the service and its engine on a busy machine: generous, never waited out
# when things work (every wait below ends on a state, not a time).
START_MS = 90_000
# Records every text the status line shows, from the panel's first frame on.
STATUS_RECORDER = """
window.statusLines = [];
new MutationObserver(() => {
  const line = document.querySelector('[data-testid=status] .status-text')?.textContent;
  if (line && window.statusLines.at(-1) !== line) window.statusLines.push(line);
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[tuple[Path, Path, int, HostStarted]]:
    profile = tmp_path / "profile"
    profile.mkdir()
    data_dir = tmp_path / "data"
    port = free_port()
    install(data_dir, port, "--browser", "chromium", "--user-data-dir", str(profile))
    started = HostStarted(data_dir)
    yield profile, data_dir, port, started
    started.kill_all()


def summarize(panel: Page, previous: str = "") -> str:
    """Clicks Summarize and returns the request id once the answer ended (it must be done). The
    wait is long: the request waits for a service the host may be starting."""
    panel.get_by_test_id("summarize").click()
    panel.wait_for_function(
        """(previous) => {
            const b = document.body.dataset;
            return b.requestId && b.requestId !== previous && b.requestState !== 'streaming';
        }""",
        arg=previous,
        timeout=START_MS,
    )
    request_id = str(panel.evaluate("() => document.body.dataset.requestId"))
    text = str(answer(panel, request_id).inner_text())
    assert panel.evaluate("() => document.body.dataset.requestState") == "done", text
    return request_id


def test_opening_the_panel_starts_the_service_through_the_native_host(
    browser_session: Browser, pages: Pages, installed: tuple[Path, Path, int, HostStarted]
) -> None:
    profile, data_dir, port, started = installed
    manifest = json.loads(
        (profile / "NativeMessagingHosts" / "local.tiangong.host.json").read_text()
    )
    assert Path(manifest["path"]).is_absolute() and os.access(manifest["path"], os.X_OK)
    assert health(port) is None, "no service may run before the panel opens"

    assert browser_session.launch is not None
    context = browser_session.launch({}, (), profile=profile)
    try:
        context.add_init_script(STATUS_RECORDER)
        browser = Browser(context)
        _page, tab = browser.open_page(pages.add("/lighthouse.html", ARTICLE))
        panel = browser.open_panel(tab)
        panel.wait_for_function(
            "() => document.body.dataset.connection === 'connected'", timeout=START_MS
        )
        assert panel.locator("#pairing").is_hidden()
        lines = panel.evaluate("() => window.statusLines")
        assert "Starting Tiangong…" in lines, lines

        # The token is the service's own, stored as if pasted; the URL is the host's port.
        token = pairing_token(data_dir)
        stored = browser.worker().evaluate("() => chrome.storage.local.get(['serverUrl', 'token'])")
        first_port, first_pid = started.current()
        assert stored == {"serverUrl": f"ws://127.0.0.1:{first_port}/ws", "token": token}

        first = summarize(panel)
        assert "lighthouse" in answer(panel, first).inner_text().lower()

        # Killed (as a crash or a reboot would): asking again has the host start it again.
        started.kill(first_pid)
        wait_until_gone(first_port)
        panel.wait_for_function(
            "() => document.body.dataset.connection === 'offline'", timeout=START_MS
        )
        second = summarize(panel, first)
        assert "lighthouse" in answer(panel, second).inner_text().lower()
        panel.wait_for_function(
            "() => document.body.dataset.connection === 'connected'", timeout=START_MS
        )
        _port, second_pid = started.current()
        assert second_pid != first_pid
        assert health(_port) is not None
    finally:
        context.close()
