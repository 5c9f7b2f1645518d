"""The panel from 200 px wide up: Firefox's sidebar is 252 px, Chromium's side panel 320 px.
At each width every control a user needs (the toolbar's buttons, Pair, Summarize, the
question box, Send, an answer card with its chips and actions, Export) lies wholly inside the panel,
and nothing makes the panel scroll sideways. Real Chromium and the real service
(extractive engine)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import (
    EXTENSION_ID,
    OUTPUT,
    TOKEN,
    WAIT_MS,
    Browser,
    Pages,
    StartService,
    answer,
    wait_connected,
    wait_request,
)
from tests.support.fixture_pages import page_html

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.e2e

WIDTHS = (200, 252, 320)
HEIGHT = 640
FITS: dict[int, list[str]] = {width: [] for width in WIDTHS}


def outside(panel: Page, controls: dict[str, Locator]) -> list[str]:
    """The controls (named) not wholly inside the panel's width, or not shown at all."""
    width = panel.viewport_size["width"] if panel.viewport_size else 0
    wrong = []
    for name, control in controls.items():
        box = control.bounding_box()
        if box is None:
            wrong.append(f"{name}: not shown")
        elif box["x"] < 0 or box["x"] + box["width"] > width + 0.5:
            wrong.append(f"{name}: x {box['x']:.0f}..{box['x'] + box['width']:.0f} of {width}")
    return wrong


def scrolls_sideways(panel: Page) -> bool:
    return bool(
        panel.evaluate("() => document.documentElement.scrollWidth > window.innerWidth + 0.5")
    )


def at_each_width(panel: Page, shot: str, controls: dict[str, Locator]) -> dict[int, list[str]]:
    found = {}
    for width in WIDTHS:
        panel.set_viewport_size({"width": width, "height": HEIGHT})
        panel.wait_for_function("(w) => window.innerWidth === w", arg=width)
        wrong = outside(panel, controls)
        if scrolls_sideways(panel):
            wrong.append("the panel scrolls sideways")
        found[width] = wrong
        panel.screenshot(path=str(OUTPUT / f"panel-{shot}-{width}.png"))
    return found


def test_every_control_fits_the_panel_at_200_252_and_320_px(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    service = start_service("extractive")
    options = browser.context.new_page()
    options.goto(f"chrome-extension://{EXTENSION_ID}/options/options.html")
    options.get_by_test_id("server-url").fill(service.url)
    options.get_by_test_id("token").fill("")
    options.get_by_test_id("save").click()
    options.wait_for_function("() => document.getElementById('saved').textContent !== ''")
    options.close()
    _page, tab = browser.open_page(pages.add("/narrow.html", page_html("sciencealert-titan")))
    panel = browser.open_panel(tab)
    panel.wait_for_function(
        "() => document.body.dataset.connection === 'unpaired'", timeout=WAIT_MS
    )

    toolbar = {
        "conversations": panel.locator("#history-button"),
        "new conversation": panel.get_by_test_id("new-conversation"),
        "settings": panel.locator("#options-button"),
        "summarize": panel.get_by_test_id("summarize"),
        "question": panel.get_by_test_id("question"),
        "send": panel.get_by_test_id("send"),
    }
    pairing = {
        "pairing card": panel.locator("#pairing"),
        "pairing token": panel.locator("#pairing-token"),
        "pair": panel.locator("#pairing-form button[type=submit]"),
    }
    assert at_each_width(panel, "pairing", {**toolbar, **pairing}) == FITS

    # Pair from the card at the narrowest width, as a Firefox user would.
    panel.set_viewport_size({"width": WIDTHS[0], "height": HEIGHT})
    panel.locator("#pairing-token").fill(TOKEN)
    panel.locator("#pairing-form button[type=submit]").click()
    wait_connected(panel)
    panel.get_by_test_id("summarize").click()
    summary = answer(panel, wait_request(panel, "done"))
    chips = summary.get_by_test_id("citation")
    assert chips.count() >= 1
    card = {
        "answer card": summary,
        "first citation": chips.first,
        "last citation": chips.last,
        "copy": summary.get_by_test_id("copy"),
        "regenerate": summary.get_by_test_id("regenerate"),
        "translate": summary.get_by_test_id("translate"),
        "copy with sources": summary.get_by_test_id("copy-cited"),
        "read aloud": summary.get_by_test_id("read-aloud"),
        "export markdown": panel.get_by_test_id("export-markdown"),
        "export json": panel.get_by_test_id("export-json"),
    }
    assert at_each_width(panel, "answer", {**toolbar, **card}) == FITS
