"""The side panel against the real service: summarize a real article, follow up, citations,
conversation history, Stop, and untrusted text that tries to become HTML."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import (
    OUTPUT,
    Browser,
    Pages,
    StartService,
    answer,
    wait_connected,
    wait_request,
)
from tests.support.fixture_pages import page_html

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e

TITAN = "sciencealert-titan"  # a real article (tests/fixtures/pages)


def test_summarize_a_real_article_follow_up_and_find_it_in_history(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    service = start_service("extractive")
    browser.configure(service)
    _page, tab = browser.open_page(pages.add("/titan.html", page_html(TITAN)))
    panel = browser.open_panel(tab)
    wait_connected(panel)
    assert "extractive" in panel.get_by_test_id("status").inner_text()

    # The options are remembered between uses (a reopened panel shows them).
    panel.locator("#summary-options summary").click()
    panel.locator("#summary-length").select_option("short")
    panel.reload()
    wait_connected(panel)
    assert panel.locator("#summary-length").input_value() == "short"

    panel.get_by_test_id("summarize").click()
    summary_id = wait_request(panel, "done")
    summary = answer(panel, summary_id)
    assert "Titan" in summary.inner_text()
    assert "short" in panel.locator(f'.turn[data-request-id="{summary_id}"] .ask-text').inner_text()
    chips = summary.get_by_test_id("citation")
    assert chips.count() >= 1
    panel.screenshot(path=str(OUTPUT / "panel-light.png"))
    panel.emulate_media(color_scheme="dark")
    panel.screenshot(path=str(OUTPUT / "panel-dark.png"))
    panel.emulate_media(color_scheme="light")

    panel.get_by_test_id("question").fill("What does the map of Titan show about lakes?")
    panel.get_by_test_id("send").click()
    follow_up_id = wait_request(panel, "done", previous=summary_id)
    assert "lake" in answer(panel, follow_up_id).inner_text().lower()

    # Both answers went into one conversation on the service, and the list brings it back.
    panel.locator("#history-button").click()
    entries = panel.locator("#history-list button")
    entries.first.wait_for()
    assert entries.count() == 1
    entries.first.click()
    panel.wait_for_function(
        "() => document.querySelectorAll('[data-testid=answer]').length === 2"
        " && document.body.dataset.requestState === 'done'"
    )
    restored = panel.get_by_test_id("answer")
    assert "Titan" in restored.nth(0).inner_text()
    assert "lake" in restored.nth(1).inner_text().lower()


def test_a_citation_scrolls_the_page_to_its_quote_and_highlights_it(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    service = start_service("extractive")
    browser.configure(service)
    page, tab = browser.open_page(pages.add("/titan-cite.html", page_html(TITAN)))
    panel = browser.open_panel(tab)
    wait_connected(panel)
    panel.get_by_test_id("summarize").click()
    request_id = wait_request(panel, "done")
    chips = answer(panel, request_id).get_by_test_id("citation")
    last = chips.nth(chips.count() - 1)
    quote = last.get_attribute("title")
    n = last.get_attribute("data-n")
    assert quote

    last.click()
    panel.wait_for_function(
        "(n) => document.body.dataset.citation === `found-${n}`", arg=n, timeout=10_000
    )
    highlighted = page.evaluate(
        """() => {
            const h = CSS.highlights.get('tiangong-citation');
            return h ? [...h].map((r) => r.toString()).join(' ') : null;
        }"""
    )
    assert highlighted is not None, "no highlight registered in the page"
    assert " ".join(highlighted.split())[:60] == " ".join(quote.split())[:60]
    page.wait_for_function("() => window.scrollY > 0", timeout=5_000)

    # The next click moves the highlight: only one passage is ever marked.
    chips.nth(0).click()
    panel.wait_for_function("() => document.body.dataset.citation === 'found-1'")
    ranges = page.evaluate("() => CSS.highlights.get('tiangong-citation').size")
    assert ranges == 1


def test_stop_ends_the_answer_at_once_and_the_next_question_still_works(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    pieces = [f"word{i} " for i in range(200)]
    service = start_service("fake", pieces=pieces, delay=0.05)
    browser.configure(service)
    _page, tab = browser.open_page(
        pages.add("/short.html", "<html lang=en><title>Short</title><p>Short page text.</p>")
    )
    panel = browser.open_panel(tab)
    wait_connected(panel)
    panel.get_by_test_id("question").fill("Tell me everything.")
    panel.get_by_test_id("send").click()
    request_id = wait_request(panel, "streaming")
    card = answer(panel, request_id)
    panel.wait_for_function(
        "(id) => document.querySelector(`[data-request-id='${id}'] .answer-body`)"
        "?.textContent.includes('word5')",
        arg=request_id,
    )
    # No waiting for the service (it is frozen here): the worker's book ends the answer and
    # the panel draws what it pushes back.
    service.pause()
    try:
        panel.get_by_test_id("stop").click()
        panel.wait_for_function(
            "(id) => document.querySelector(`[data-testid=answer][data-request-id='${id}']`)"
            "?.dataset.state !== 'streaming'",
            arg=request_id,
        )
        assert card.get_attribute("data-state") == "done"
        assert panel.get_by_test_id("stop").is_hidden()
        stopped_text = card.locator(".answer-body").inner_text()
    finally:
        service.resume()
    panel.wait_for_timeout(600)  # frames already on the wire must not add text
    assert card.locator(".answer-body").inner_text() == stopped_text
    assert "word199" not in stopped_text
    assert "Stopped." in card.inner_text()

    panel.get_by_test_id("question").fill("And now?")
    panel.get_by_test_id("send").click()
    wait_request(panel, "done", previous=request_id)


HOSTILE_PAGE = """<!doctype html><html lang="en"><head><title>Notes on escaping</title></head>
<body><article><h1>Notes on escaping output</h1>
<p>Attackers write &lt;img src=x onerror="document.body.dataset.pwned='img'"&gt; into ordinary
pages to see whether an assistant renders it as markup.</p>
<p>Another trick places &lt;script&gt;document.body.dataset.pwned='script'&lt;/script&gt; in the
text of an article, hoping that a sidebar runs it.</p>
<p>Markdown links such as [click here](javascript:document.body.dataset.pwned='link') are a
third way in, aimed at anything that turns model output into links.</p>
<p>The defence is to treat every answer as text first and to allow only a few safe tags.</p>
</article></body></html>"""


def assert_nothing_ran(panel: Page) -> None:
    assert panel.evaluate("() => document.body.dataset.pwned") is None
    assert panel.locator("[data-testid=answer] img, [data-testid=answer] script").count() == 0
    handlers = "[data-testid=answer] [onerror], [data-testid=answer] [onclick]"
    assert panel.locator(handlers).count() == 0
    assert panel.locator("[data-testid=answer] a[href^='javascript']").count() == 0


def test_a_hostile_page_cannot_inject_html_or_script_into_the_answer(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    service = start_service("extractive")
    browser.configure(service)
    _page, tab = browser.open_page(pages.add("/hostile.html", HOSTILE_PAGE))
    panel = browser.open_panel(tab)
    wait_connected(panel)
    panel.get_by_test_id("summarize").click()
    request_id = wait_request(panel, "done")
    shown = answer(panel, request_id).inner_text()
    assert "<img src=x onerror=" in shown
    assert "<script>" in shown
    assert_nothing_ran(panel)


def test_hostile_model_output_is_shown_as_text_and_links_open_safely(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    pieces = [
        '<img src=x onerror="document.body.dataset.pwned=1"> ',
        "<script>document.body.dataset.pwned=2</script> ",
        "[click](javascript:document.body.dataset.pwned=3) ",
        '<a href="javascript:document.body.dataset.pwned=4">a</a> ',
        "**bold** and [docs](https://example.com/docs)",
    ]
    service = start_service("fake", pieces=pieces, delay=0.01)
    browser.configure(service)
    _page, tab = browser.open_page(
        pages.add("/plain.html", "<html lang=en><title>Plain</title><p>Some text.</p>")
    )
    panel = browser.open_panel(tab)
    wait_connected(panel)
    panel.get_by_test_id("question").fill("Anything?")
    panel.get_by_test_id("send").click()
    card = answer(panel, wait_request(panel, "done"))
    assert '<img src=x onerror="document.body.dataset.pwned=1">' in card.inner_text()
    assert card.locator("strong").inner_text() == "bold"
    link = card.locator("a")
    assert link.count() == 1
    assert link.get_attribute("href") == "https://example.com/docs"
    assert link.get_attribute("target") == "_blank"
    assert "noopener" in (link.get_attribute("rel") or "")
    assert_nothing_ran(panel)


def test_the_summarize_shortcut_streams_into_a_panel_opened_later(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    # Opera destroys a closed panel and cannot open one itself: a panel opened (or reopened)
    # while an answer streams must pick it up where it is.
    pieces = [f"point{i} " for i in range(40)]
    service = start_service("fake", pieces=pieces, delay=0.05)
    browser.configure(service)
    _page, tab = browser.open_page(pages.add("/later.html", "<html lang=en><p>Text.</p>"))
    browser.worker().evaluate(
        "async (tabId) => chrome.commands.onCommand.dispatch("
        "'summarize-page', await chrome.tabs.get(tabId))",
        tab,
    )
    first = browser.open_panel(tab)
    request_id = wait_request(first, "streaming")
    first.close()
    again = browser.open_panel(tab)
    assert wait_request(again, ("streaming", "done")) == request_id
    wait_request(again, "done")
    assert answer(again, request_id).inner_text().startswith("point0 point1")
    assert "point39" in answer(again, request_id).inner_text()


def test_a_page_over_the_frame_limit_is_trimmed_of_scripts_and_styles_and_still_answered(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    service = start_service("extractive")
    browser.configure(service)
    bulk = "x" * (9 * 1024 * 1024)  # over the service's 8 MiB page-frame limit
    html = (
        f"<html lang=en><head><title>Big</title><style>/*{bulk[:1024]}*/</style></head><body>"
        f"<script>window.bulk = '{bulk}';</script><article><h1>Harbour</h1>"
        "<p>The new harbour wall is four kilometres long and took six years to build.</p>"
        "<p>Ships can now dock in any weather, the port authority said.</p></article></body></html>"
    )
    _page, tab = browser.open_page(pages.add("/big.html", html))
    panel = browser.open_panel(tab)
    wait_connected(panel)
    panel.get_by_test_id("summarize").click()
    card = answer(panel, wait_request(panel, ("done", "error")))
    assert card.get_attribute("data-state") == "done", card.inner_text()
    assert "harbour wall" in card.inner_text()
    assert "scripts, styles and images were left out" in card.inner_text()
