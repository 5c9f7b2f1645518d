"""The user's own actions in real Chromium: made in the options page, run from the context menu
and from the panel's action list, imported and exported as JSON.

The scripted fake engine answers (so the answer and its citations are known); the service is
the real one, as a subprocess. Headless Chromium shows no menu: the tests prove an item is
registered with `chrome.contextMenus.update(id, {})` (which refuses an unknown id) and fire the
extension's own listener with the item the user would pick.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
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

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "actions"
BUILT_INS = [
    "Explain like I'm new to this",
    "Key terms with definitions",
    "Action items",
    "Counter-arguments",
]
ARTICLE = """<!doctype html><html lang="en"><title>Tides</title><body><article>
<h1>Tides</h1>
<p>Tides rise and fall twice a day because the Moon pulls on the oceans.</p>
<p>Spring tides, the largest, come when the Sun and the Moon line up.</p>
<p>Neap tides, the smallest, come when the Sun and the Moon pull at right angles.</p>
</article></body></html>"""
QUIZ = ["Spring tides, the largest, ", "come when the Sun ", "and the Moon line up."]
FORM = """<!doctype html><html lang="en"><title>Notes</title><body>
<textarea id="note" rows="3" cols="50">teh wether is realy nice</textarea></body></html>"""
FIXED = ["The weather ", "is really nice."]

CLICK_MENU = """async ([menuItemId, tabId, selectionText]) => {
    const tab = await chrome.tabs.get(tabId);
    chrome.contextMenus.onClicked.dispatch(
        { menuItemId, selectionText, pageUrl: tab.url, frameId: 0, editable: true }, tab);
}"""
# The menu is rebuilt after the actions change in storage; an item is there once `update`
# stops refusing its id (polled, bounded).
MENU_ITEM_REGISTERED = """async (id) => {
    for (let tries = 0; tries < 200; tries += 1) {
        try { await chrome.contextMenus.update(id, {}); return true; }
        catch { await new Promise((resolve) => setTimeout(resolve, 25)); }
    }
    return false;
}"""
STORED = "async () => (await chrome.storage.local.get('actions')).actions"
ACTION_ID = """async (name) =>
    (await chrome.storage.local.get('actions')).actions.find((a) => a.name === name).id"""


@pytest.fixture
def fresh_actions(browser: Browser) -> Iterator[None]:
    """Every test starts from the built-ins and leaves them behind (the browser is shared)."""
    browser.worker().evaluate("() => chrome.storage.local.remove('actions')")
    yield
    browser.worker().evaluate("() => chrome.storage.local.remove('actions')")


def open_options(browser: Browser) -> Page:
    options = browser.context.new_page()
    options.goto(f"chrome-extension://{EXTENSION_ID}/options/options.html")
    options.wait_for_function("() => document.body.dataset.actions === 'ready'")
    return options


def names_in_options(options: Page) -> list[str]:
    rows = options.get_by_test_id("actions").get_by_test_id("action-name")
    return [rows.nth(i).input_value() for i in range(rows.count())]


def create_action(browser: Browser, name: str, prompt: str, target: str) -> str:
    """Makes an action as a user does, in the options page; returns its id."""
    options = open_options(browser)
    options.get_by_test_id("action-new").click()
    row = options.get_by_test_id("actions").locator("li").last
    row.get_by_test_id("action-name").fill(name)
    row.get_by_test_id("action-prompt").fill(prompt)
    row.get_by_test_id("action-target").select_option(target)
    row.get_by_test_id("action-save").click()
    message = options.get_by_test_id("actions-message")
    message.filter(has_text=f"Saved “{name}”.").wait_for(timeout=WAIT_MS)
    assert names_in_options(options) == [*BUILT_INS, name]
    options.close()
    return str(browser.worker().evaluate(ACTION_ID, name))


def test_a_page_action_appears_in_the_menu_and_panel_and_answers_with_citations(
    browser: Browser, pages: Pages, start_service: StartService, fresh_actions: None
) -> None:
    service = start_service("fake", pieces=QUIZ, delay=0.3)
    browser.configure(service)
    action_id = create_action(browser, "Quiz me", "Write a quiz question about {title}.", "page")
    worker = browser.worker()
    assert worker.evaluate(MENU_ITEM_REGISTERED, f"tiangong-action:{action_id}")
    # The built-ins are in the menu too.
    assert worker.evaluate(MENU_ITEM_REGISTERED, "tiangong-action:builtin-key-terms")

    page, tab = browser.open_page(pages.add("/tides.html", ARTICLE))
    panel = browser.open_panel(tab)
    wait_connected(panel)
    buttons = panel.get_by_test_id("action-list").get_by_test_id("action-run")
    panel.locator('[data-testid=action-run][data-action-name="Quiz me"]').wait_for()
    assert [buttons.nth(i).get_attribute("data-action-name") for i in range(buttons.count())] == [
        *BUILT_INS,
        "Quiz me",
    ]

    panel.locator('[data-testid=action-run][data-action-name="Quiz me"]').click()
    streaming = wait_request(panel, "streaming")
    # It streams: the first piece shows while the answer is still coming.
    panel.wait_for_function(
        """(id) => {
            const a = document.querySelector(`[data-testid=answer][data-request-id='${id}']`);
            return a.dataset.state === 'streaming' && a.innerText.includes('Spring tides')
                && !a.innerText.includes('line up');
        }""",
        arg=streaming,
        timeout=WAIT_MS,
    )
    panel.wait_for_function(
        "(id) => document.querySelector(`[data-testid=answer][data-request-id='${id}']`)"
        "?.dataset.state === 'done'",
        arg=streaming,
        timeout=WAIT_MS,
    )
    done = streaming
    card = answer(panel, done)
    assert card.locator(".answer-body").inner_text().strip() == "".join(QUIZ)
    assert card.get_by_test_id("citation").count() == 1
    turn = panel.locator(f'.turn[data-request-id="{done}"] .ask-text')
    assert turn.inner_text() == "Quiz me"
    card.get_by_test_id("citation").first.click()
    panel.wait_for_function("() => document.body.dataset.citation === 'found-1'")
    panel.screenshot(path=str(OUTPUT / "panel-page-action.png"))

    # From the context menu, on the page: the same action, a new answer with citations.
    worker.evaluate(CLICK_MENU, [f"tiangong-action:{action_id}", tab, ""])
    from_menu = wait_request(panel, "done", previous=done)
    assert answer(panel, from_menu).get_by_test_id("citation").count() == 1
    page.close()


def test_a_selection_action_replaces_the_text_in_a_textarea(
    browser: Browser, pages: Pages, start_service: StartService, fresh_actions: None
) -> None:
    service = start_service("fake", pieces=FIXED, delay=0.02)
    browser.configure(service)
    action_id = create_action(
        browser, "Fix spelling", "Correct the spelling of {selection}.", "selection"
    )
    worker = browser.worker()
    assert worker.evaluate(MENU_ITEM_REGISTERED, f"tiangong-action:{action_id}")
    page, tab = browser.open_page(pages.add("/note.html", FORM))
    panel = browser.open_panel(tab)
    wait_connected(panel)

    page.bring_to_front()
    page.locator("#note").click()
    page.keyboard.press("Control+A")
    worker.evaluate(CLICK_MENU, [f"tiangong-action:{action_id}", tab, "teh wether is realy nice"])
    request_id = wait_request(panel, "done")
    card = answer(panel, request_id)
    assert card.locator(".answer-body").inner_text().strip() == "".join(FIXED)
    assert "Fix spelling" in panel.locator(f'.turn[data-request-id="{request_id}"]').inner_text()
    assert card.get_by_test_id("copy").count() == 1
    card.get_by_test_id("replace").click()
    panel.wait_for_function(
        "(id) => document.querySelector(`[data-testid=answer][data-request-id='${id}']`)"
        "?.dataset.replaced === 'yes'",
        arg=request_id,
    )
    assert page.locator("#note").input_value() == "".join(FIXED)
    panel.screenshot(path=str(OUTPUT / "panel-selection-action.png"))

    # From the panel's list, with nothing selected in the tab: it says so, and sends nothing.
    page.evaluate("() => { getSelection().removeAllRanges(); document.activeElement.blur(); }")
    panel.locator('[data-testid=action-run][data-action-name="Fix spelling"]').click()
    panel.locator("#toast").filter(has_text="Select some text on the page first.").wait_for()
    assert panel.evaluate("() => document.body.dataset.requestId") == request_id
    page.close()


def test_actions_are_edited_reordered_exported_and_a_bad_import_is_refused_losing_nothing(
    browser: Browser, fresh_actions: None
) -> None:
    options = open_options(browser)
    rows = options.get_by_test_id("actions").locator("li")
    message = options.get_by_test_id("actions-message")

    # Edit a built-in, move it to the top, delete another.
    rows.nth(2).get_by_test_id("action-name").fill("To-dos")
    rows.nth(2).get_by_test_id("action-save").click()
    message.filter(has_text="Saved “To-dos”.").wait_for()
    rows.nth(2).get_by_test_id("action-up").click()
    options.wait_for_function(
        "() => document.querySelector('[data-testid=action-name]').value !== ''"
        " && document.querySelectorAll('[data-testid=action-name]')[1].value === 'To-dos'"
    )
    rows.nth(3).get_by_test_id("action-delete").click()
    message.filter(has_text="Deleted “Counter-arguments”.").wait_for()
    kept = ["Explain like I'm new to this", "To-dos", "Key terms with definitions"]
    assert names_in_options(options) == kept

    # A prompt with a misspelt placeholder is refused, saying which.
    rows.nth(0).get_by_test_id("action-prompt").fill("Explain {selction} simply.")
    rows.nth(0).get_by_test_id("action-save").click()
    message.filter(has_text="{selction}, which is not a placeholder").wait_for()

    stored = browser.worker().evaluate(
        "async () => (await chrome.storage.local.get('actions')).actions"
    )
    for bad, why in [
        ("not-json.json", "This file is not valid JSON"),
        (
            "bad-action.json",
            "Action 2 in the file: “No target” must apply to the selection or to the page.",
        ),
    ]:
        options.get_by_test_id("actions-import").set_input_files(str(FIXTURES / bad))
        message.filter(has_text=why).wait_for()
        assert message.inner_text().endswith("Nothing was imported.")
        assert names_in_options(options) == kept
        after = browser.worker().evaluate(
            "async () => (await chrome.storage.local.get('actions')).actions"
        )
        assert after == stored, "a refused import changes nothing stored"
    options.screenshot(path=str(OUTPUT / "options-import-refused.png"), full_page=True)

    options.get_by_test_id("actions-import").set_input_files(str(FIXTURES / "two-actions.json"))
    message.filter(has_text="Imported 2 actions.").wait_for()
    assert names_in_options(options) == [*kept, "Questions to ask", "Plain English"]

    with options.expect_download() as download:
        options.get_by_test_id("actions-export").click()
    exported = json.loads(Path(download.value.path()).read_text("utf-8"))
    assert download.value.suggested_filename == "tiangong-actions.json"
    assert exported["format"] == "tiangong-actions"
    assert [a["name"] for a in exported["actions"]] == names_in_options(options)
    assert exported["actions"][-1] == {
        "name": "Plain English",
        "prompt": "Rewrite {selection} in plain English.",
        "target": "selection",
    }
    options.close()
