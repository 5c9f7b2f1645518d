"""Pairing and the connection as a user sees it: first run, server down and back, a
service worker that the browser stops, and one that hangs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import (
    EXTENSION_ID,
    OUTPUT,
    WAIT_MS,
    Browser,
    Pages,
    StartService,
    answer,
    wait_connected,
    wait_request,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e

SIMPLE = "<html lang=en><title>Simple</title><article><p>The bridge opened in 1932.</p></article>"


def wait_connection(panel: Page, state: str) -> None:
    panel.wait_for_function(
        "(state) => document.body.dataset.connection === state", arg=state, timeout=WAIT_MS
    )


def test_first_run_explains_pairing_and_the_token_pairs(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    service = start_service("extractive")
    options = browser.context.new_page()
    options.goto(f"chrome-extension://{EXTENSION_ID}/options/options.html")
    options.get_by_test_id("server-url").fill(service.url)
    options.get_by_test_id("token").fill("")
    options.get_by_test_id("save").click()
    options.get_by_text("Saved.").wait_for()
    _page, tab = browser.open_page(pages.add("/pairing.html", SIMPLE))
    panel = browser.open_panel(tab)
    wait_connection(panel, "unpaired")
    pairing = panel.locator("#pairing")
    assert pairing.is_visible()
    assert "tiangong token" in pairing.inner_text()
    assert "make run" in pairing.inner_text()
    # No native host in this profile: the card names the one-time step that makes it needless.
    assert "tiangong install" in pairing.inner_text()

    wrong = "not-the-token"
    panel.locator("#pairing-token").fill(wrong)
    panel.locator("#pairing-token").press("Enter")
    wait_connection(panel, "refused")
    assert "tiangong token" in panel.locator("#status-detail").inner_text()

    browser.configure(service)
    wait_connected(panel)
    assert pairing.is_hidden()


def test_server_down_says_how_to_start_it_and_reconnects_when_it_is_back(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    service = start_service("extractive")
    browser.configure(service)
    _page, tab = browser.open_page(pages.add("/down.html", SIMPLE))
    panel = browser.open_panel(tab)
    wait_connected(panel)

    service.stop()
    wait_connection(panel, "offline")
    status = panel.get_by_test_id("status").inner_text()
    detail = panel.locator("#status-detail").inner_text()
    assert "Server not running" in status
    assert "make run" in detail and "tiangong serve" in detail
    # A question while the server is down fails with the same clear message.
    panel.get_by_test_id("question").fill("When did the bridge open?")
    panel.get_by_test_id("send").click()
    failed = wait_request(panel, "error")
    assert "make run" in answer(panel, failed).inner_text()
    panel.screenshot(path=str(OUTPUT / "panel-error.png"))

    service.start()  # same port, same token
    wait_connected(panel)
    panel.get_by_test_id("question").fill("When did the bridge open?")
    panel.get_by_test_id("send").click()
    done = wait_request(panel, "done", previous=failed)
    assert "1932" in answer(panel, done).inner_text()


def test_a_stopped_service_worker_comes_back_connected_with_the_answers_kept(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    service = start_service("extractive")
    browser.configure(service)
    page, tab = browser.open_page(pages.add("/restart.html", SIMPLE))
    panel = browser.open_panel(tab)
    wait_connected(panel)
    panel.get_by_test_id("question").fill("When did the bridge open?")
    panel.get_by_test_id("send").click()
    first = wait_request(panel, "done")

    cdp = browser.context.new_cdp_session(page)
    targets = cdp.send("Target.getTargets")["targetInfos"]
    worker = next(
        t
        for t in targets
        if t["type"] == "service_worker"
        and t["url"].startswith(f"chrome-extension://{EXTENSION_ID}")
    )
    started = panel.evaluate("() => document.body.dataset.workerStarted")
    assert cdp.send("Target.closeTarget", {"targetId": worker["targetId"]})["success"]
    # The panel notices its port closing and wakes the worker, which reconnects on its own.
    panel.wait_for_function(
        "(before) => document.body.dataset.workerStarted !== before", arg=started, timeout=WAIT_MS
    )
    wait_connected(panel)
    assert answer(panel, first).get_attribute("data-state") == "done"
    assert "1932" in answer(panel, first).inner_text()

    panel.get_by_test_id("question").fill("When did the bridge open, again?")
    panel.get_by_test_id("send").click()
    again = wait_request(panel, "done", previous=first)
    assert "1932" in answer(panel, again).inner_text()


def test_a_worker_that_does_not_answer_is_named_and_retry_attaches_again(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    service = start_service("extractive")
    browser.configure(service)
    _page, tab = browser.open_page(pages.add("/busy.html", SIMPLE))
    # A hung worker: its thread stays busy for longer than the panel waits for a reply.
    browser.worker().evaluate(
        "() => { setTimeout(() => { const end = Date.now() + 12000; while (Date.now() < end); }); }"
    )
    panel = browser.open_panel(tab)
    panel.wait_for_function("() => document.body.dataset.worker === 'timeout'", timeout=WAIT_MS)
    problem = panel.get_by_test_id("worker-problem")
    assert problem.is_visible()
    assert "not answering" in problem.inner_text()

    panel.get_by_test_id("worker-retry").click()
    panel.wait_for_function("() => document.body.dataset.worker === 'attached'", timeout=WAIT_MS)
    assert problem.is_hidden()
    wait_connected(panel)
    panel.get_by_test_id("question").fill("When did the bridge open?")
    panel.get_by_test_id("send").click()
    assert "1932" in answer(panel, wait_request(panel, "done")).inner_text()
