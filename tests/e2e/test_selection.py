"""The context menu on a selection: Rewrite… into a textarea with Replace, and Explain.

Headless Chromium shows no menu, so the test selects text with real input and then fires the
extension's own menu listener from the service worker with the item the user would pick.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Browser, Pages, StartService, answer, wait_connected, wait_request

pytestmark = pytest.mark.e2e

ORIGINAL = "hey can u send me the report by friday thx"
REWRITTEN = ["Could you please send me ", "the report by Friday? ", "Thank you."]
FORM = f"""<!doctype html><html lang="en"><title>Mail</title><body>
<h1>New message</h1>
<label>Message <textarea id="message" rows="4" cols="60">{ORIGINAL}</textarea></label>
<p id="echo"></p>
<script>
  document.getElementById('message').addEventListener('input', (e) => {{
    document.getElementById('echo').textContent = 'edited: ' + e.target.value;
  }});
</script>
</body></html>"""

CLICK_MENU = """async ([menuItemId, tabId, selectionText]) => {
    const tab = await chrome.tabs.get(tabId);
    chrome.contextMenus.onClicked.dispatch(
        { menuItemId, selectionText, pageUrl: tab.url, frameId: 0, editable: true }, tab);
}"""


def test_rewrite_a_selection_in_a_textarea_and_replace_it(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    service = start_service("fake", pieces=REWRITTEN, delay=0.02)
    browser.configure(service)
    page, tab = browser.open_page(pages.add("/mail.html", FORM))
    panel = browser.open_panel(tab)
    wait_connected(panel)

    worker = browser.worker()
    # Every item is registered (update refuses an unknown id).
    for item in ("tiangong-rewrite", "tiangong-explain", "tiangong-summarize-selection"):
        worker.evaluate("(id) => chrome.contextMenus.update(id, {})", item)

    page.bring_to_front()
    page.locator("#message").click()
    page.keyboard.press("Control+A")
    assert page.evaluate("() => document.activeElement.id") == "message"
    worker.evaluate(CLICK_MENU, ["tiangong-rewrite:more-formal:as-is", tab, ORIGINAL])

    request_id = wait_request(panel, "done")
    card = answer(panel, request_id)
    assert card.locator(".answer-body").inner_text().strip() == "".join(REWRITTEN).strip()
    assert (
        ORIGINAL in panel.locator(f'.turn[data-request-id="{request_id}"] .ask-text').inner_text()
    )
    assert card.locator("select[aria-label=Tone]").input_value() == "more-formal"

    card.get_by_test_id("replace").click()
    panel.wait_for_function(
        "(id) => document.querySelector(`[data-testid=answer][data-request-id='${id}']`)"
        "?.dataset.replaced === 'yes'",
        arg=request_id,
    )
    expected = "".join(REWRITTEN).strip()
    assert page.locator("#message").input_value() == expected
    # The page's own input handler saw the change, as if the user had typed it.
    assert page.locator("#echo").inner_text() == f"edited: {expected}"

    # Retry with other choices, then Replace again swaps the rewritten text in place.
    card.locator("select[aria-label=Length]").select_option("shorter")
    card.get_by_test_id("retry").click()
    retried = wait_request(panel, "done", previous=request_id)
    assert panel.locator(f'[data-testid=answer][data-request-id="{request_id}"]').count() == 0
    answer(panel, retried).get_by_test_id("replace").click()
    panel.wait_for_function(
        "(id) => document.querySelector(`[data-request-id='${id}'].answer`)?.dataset.replaced",
        arg=retried,
    )
    assert page.locator("#message").input_value() == expected


def test_explain_a_selection_answers_in_the_sidebar(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    service = start_service("fake", echo=True)
    browser.configure(service)
    html = (
        "<html lang=en><title>Physics</title><article><p id=p>Entropy measures how many"
        " microscopic arrangements match what we observe.</p><p>Other text.</p></article>"
    )
    page, tab = browser.open_page(pages.add("/explain.html", html))
    panel = browser.open_panel(tab)
    wait_connected(panel)
    page.bring_to_front()
    page.locator("#p").click(click_count=3)
    selected = page.evaluate("() => getSelection().toString().trim()")
    assert selected.startswith("Entropy")
    browser.worker().evaluate(CLICK_MENU, ["tiangong-explain", tab, selected])
    request_id = wait_request(panel, "done")
    # The fake engine echoes the prompt it was given: the selection reached the question.
    assert "Entropy measures" in answer(panel, request_id).inner_text()
