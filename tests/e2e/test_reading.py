"""Reading beyond one HTML page, in real Chromium against the real service: a PDF tab, three
tabs asked about together, translation from the context menu (right to left for Arabic), and
the Chinese UI summarizing a Chinese page."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import (
    OUTPUT,
    WAIT_MS,
    Browser,
    Pages,
    StartService,
    answer,
    wait_connected,
    wait_request,
)
from tests.support.fixture_pages import page_html
from tests.support.pdf_files import text_pdf

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
# Real articles (tests/fixtures/pages).
TITAN = "sciencealert-titan"
UNIVERSE = "livescience-universe"
MOON = "aljazeera-moon"
REPORT = [
    "The harbour survey counted four hundred boats moored in the old basin this spring.",
    "Dredging the eastern channel will cost nine million euros and take two full years.",
    "The council will vote on the dredging plan for the eastern channel in September.",
]
CLICK_MENU = """async ([menuItemId, tabId, selectionText]) => {
    const tab = await chrome.tabs.get(tabId);
    chrome.contextMenus.onClicked.dispatch(
        { menuItemId, selectionText, pageUrl: tab.url, frameId: 0, editable: false }, tab);
}"""


def chips(panel: Page, request_id: str) -> list[dict[str, str]]:
    return list(
        answer(panel, request_id)
        .get_by_test_id("citation")
        .evaluate_all("(nodes) => nodes.map((n) => ({...n.dataset, text: n.textContent}))")
    )


def test_a_pdf_in_a_tab_is_summarized_and_its_citations_name_their_page(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    service = start_service("extractive")
    browser.configure(service)
    url = pages.add_file("/harbour.pdf", text_pdf(REPORT, title="Harbour"), "application/pdf")
    _page, tab = browser.open_page(url)
    panel = browser.open_panel(tab)
    wait_connected(panel)
    panel.get_by_test_id("question").fill("What will dredging the eastern channel cost?")
    panel.get_by_test_id("send").click()
    request_id = wait_request(panel, ("done", "error"))
    shown = answer(panel, request_id)
    assert panel.evaluate("() => document.body.dataset.requestState") == "done", shown.inner_text()
    assert "nine million euros" in shown.inner_text()
    cited = chips(panel, request_id)
    assert any(c.get("page") == "2" and "p. 2" in c["text"] for c in cited), cited
    panel.screenshot(path=str(OUTPUT / "panel-pdf.png"))


def test_three_tabs_are_asked_about_together_and_a_citation_opens_its_tab(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    # The model's answer is scripted (a quote from the second tab and one from the third); the
    # pages are real, read by the real extraction and cited by the real citation finder.
    said = [
        "- The simulation tracked more than 20 billion particles "
        "over a 13.8-billion-year period.\n",
        "- NASA enlisted Blue Origin and SpaceX to prepare its planned 2024 crewed moon shot.\n",
    ]
    service = start_service("fake", pieces=said, context_tokens=16384)
    browser.configure(service)
    tabs = [
        browser.open_page(pages.add(f"/{name}.html", page_html(page_id)))[1]
        for name, page_id in (("titan", TITAN), ("universe", UNIVERSE), ("moon", MOON))
    ]
    panel = browser.open_panel(tabs[0])
    wait_connected(panel)
    panel.get_by_test_id("tabs-picker").locator("summary").click()
    boxes = panel.get_by_test_id("tab-choice")
    boxes.nth(2).wait_for()
    for i in range(boxes.count()):
        if int(boxes.nth(i).get_attribute("value") or 0) in tabs:
            boxes.nth(i).check()
    assert panel.evaluate("() => document.body.dataset.tabsChosen") == "3"
    assert panel.get_by_test_id("summarize").inner_text() == "Summarize 3 tabs"

    panel.get_by_test_id("question").fill("What do these pages say about scale?")
    panel.get_by_test_id("send").click()
    request_id = wait_request(panel, ("done", "error"))
    assert panel.evaluate("() => document.body.dataset.requestState") == "done"
    cited = chips(panel, request_id)
    assert [(c["source"], c["text"]) for c in cited] == [("1", "[2] 1"), ("2", "[3] 2")]

    # A chip of another tab switches to that tab and highlights the passage there.
    chip = next(c for c in cited if c.get("source") not in (None, "0"))
    target = tabs[int(chip["source"])]
    answer(panel, request_id).locator(f'[data-testid=citation][data-n="{chip["n"]}"]').click()
    panel.wait_for_function(
        "(n) => document.body.dataset.citation === `found-${n}`", arg=chip["n"], timeout=WAIT_MS
    )
    active = browser.worker().evaluate(
        "async () => (await chrome.tabs.query({ active: true })).map((t) => t.id)"
    )
    assert target in active


def test_translate_a_selection_from_the_menu_and_arabic_reads_right_to_left(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    arabic = ["تضاعفت قدرة ", "الطاقة الشمسية ", "في ثلاث سنوات."]
    service = start_service("fake", pieces=arabic)
    browser.configure(service)
    page, tab = browser.open_page(
        pages.add("/solar.html", "<p id=s>Solar capacity doubled in three years.</p>")
    )
    panel = browser.open_panel(tab)
    wait_connected(panel)
    page.locator("#s").click(click_count=3)
    registered = browser.worker().evaluate(
        "() => new Promise((ok) => chrome.contextMenus.update('tiangong-translate:ar', {}, "
        "() => ok(!chrome.runtime.lastError)))"
    )
    assert registered
    browser.worker().evaluate(
        CLICK_MENU, ["tiangong-translate:ar", tab, "Solar capacity doubled in three years."]
    )
    request_id = wait_request(panel, "done")
    assert request_id.startswith("t-")
    turn = panel.locator(f'.turn[data-request-id="{request_id}"]')
    assert "Translate into العربية" in turn.locator(".ask-text").inner_text()
    body = turn.locator(".answer-body")
    assert body.inner_text().strip() == "".join(arabic)
    assert body.get_attribute("lang") == "ar"
    direction = body.locator("p").first.evaluate("(p) => getComputedStyle(p).direction")
    assert direction == "rtl"
    panel.screenshot(path=str(OUTPUT / "panel-arabic.png"))

    # The same from the sidebar: the selection is still there; pick a language in the panel.
    panel.get_by_test_id("translate-selection").select_option("zh-CN")
    second = wait_request(panel, "done", previous=request_id)
    asked = panel.locator(f'.turn[data-request-id="{second}"] .ask-text').inner_text()
    assert asked.startswith("Translate into 中文（简体）") and "Solar capacity doubled" in asked


def test_the_chinese_ui_summarizes_a_chinese_page(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    assert browser.launch is not None
    service = start_service("extractive")
    chinese = (REPO / "tests/extract/cases/chinese-news-article/page.html").read_text("utf-8")
    url = pages.add("/changjiang.html", chinese)
    context = browser.launch(
        {"LANGUAGE": "zh_CN:zh", "LANG": "zh_CN.UTF-8", "LC_ALL": "zh_CN.UTF-8"},
        ("--lang=zh-CN",),
    )
    try:
        zh = Browser(context)
        zh.worker()
        zh.configure(service)
        _page, tab = zh.open_page(url)
        panel = zh.open_panel(tab)
        if not panel.evaluate("() => chrome.i18n.getUILanguage()").startswith("zh"):
            pytest.skip("this Chromium has no Chinese UI (Debian: apt-get install chromium-l10n)")
        wait_connected(panel)
        assert panel.get_by_test_id("summarize").inner_text() == "总结本页"
        assert panel.get_by_test_id("status").inner_text().startswith("已连接")
        assert panel.get_by_test_id("question").get_attribute("placeholder") == "就本页提问…"
        panel.get_by_test_id("summarize").click()
        request_id = wait_request(panel, "done")
        summary = answer(panel, request_id).locator(".answer-body").inner_text()
        lines = [line for line in summary.splitlines() if line.strip()]
        assert lines and all(line.strip() in chinese for line in lines), summary
        assert "生态" in summary
        asked = panel.locator(f'.turn[data-request-id="{request_id}"] .ask-text').inner_text()
        assert asked.startswith("总结")
        assert answer(panel, request_id).get_by_test_id("copy").inner_text() == "复制"
        panel.screenshot(path=str(OUTPUT / "panel-chinese-ui.png"))
    finally:
        context.close()
