"""Export, a panel that follows the tab, read aloud: real Chromium, the real service.

Export and tab-following run on the extractive engine (real citations of a real article);
the streaming-copy test uses the scripted fake engine (tests/support) for an answer that is
still streaming when Copy is pressed. Headless Chromium has no speech voices, so the
read-aloud test replaces `speechSynthesis` and `SpeechSynthesisUtterance` in the panel with a
recorder (an init script) offering one cloud and one local voice; it checks which voice the
panel picks, what it asks to be spoken, and that Stop cancels — not that sound comes out.
"""

from __future__ import annotations

import json
import re
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
from tests.support.fixture_pages import page_html

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e

TITAN = "sciencealert-titan"  # a real article (tests/fixtures/pages)
PANEL = f"chrome-extension://{EXTENSION_ID}/sidepanel/panel.html"

SPEECH_RECORDER = """(() => {
  const record = (window.__speech = { spoken: [], cancelled: 0 });
  class Utterance { constructor(text) { this.text = text; this.voice = null; this.lang = ''; } }
  const voices = [
    { name: 'Cloud English', lang: 'en-US', localService: false, default: true, voiceURI: 'c' },
    { name: 'Local English', lang: 'en-GB', localService: true, default: false, voiceURI: 'l' },
  ];
  const speech = {
    getVoices: () => voices,
    speak(u) {
      record.spoken.push({ text: u.text, voice: u.voice && u.voice.name, lang: u.lang });
    },
    cancel() { record.cancelled += 1; },
    addEventListener() {},
  };
  const define = (name, value) =>
    Object.defineProperty(window, name, { value, configurable: true });
  define('speechSynthesis', speech);
  define('SpeechSynthesisUtterance', Utterance);
})();"""

NO_SPEECH = (
    "Object.defineProperty(window, 'speechSynthesis', { value: undefined, configurable: true });"
)


def page_text(page: Page) -> str:
    return re.sub(r"\s+", " ", str(page.evaluate("() => document.body.innerText")))


def summarize(panel: Page, previous: str = "") -> str:
    panel.get_by_test_id("summarize").click()
    return wait_request(panel, "done", previous)


def test_export_writes_markdown_and_json_whose_citations_quote_the_page(
    browser: Browser, pages: Pages, start_service: StartService, tmp_path: Path
) -> None:
    service = start_service("extractive")
    browser.configure(service)
    url = pages.add("/titan-export.html", page_html(TITAN))
    page, tab = browser.open_page(url)
    panel = browser.open_panel(tab)
    wait_connected(panel)
    assert panel.get_by_test_id("export-markdown").is_hidden(), "nothing to export yet"
    summary_id = summarize(panel)
    panel.get_by_test_id("question").fill("What does the map of Titan show about lakes?")
    panel.get_by_test_id("send").click()
    wait_request(panel, "done", previous=summary_id)
    title = page.title()
    text = page_text(page)

    with panel.expect_download() as caught:
        panel.get_by_test_id("export-markdown").click()
    download = caught.value
    safe_title = re.sub(r"\s+", " ", re.sub(r'[<>:"/\\|?*]', " ", title)).strip()
    assert download.suggested_filename == f"{safe_title[:80].strip()}.md"
    markdown = tmp_path / "conversation.md"
    download.save_as(markdown)
    exported = markdown.read_text(encoding="utf-8")
    assert exported.startswith(f"# {title.strip()}\n\n<{url}>\n")
    assert "## What does the map of Titan show about lakes?" in exported
    cited = re.findall(r"^- \[(\d+)\] “(.+)” — <(.+)>$", exported, flags=re.M)
    assert len(cited) >= 2, exported
    for _n, quote, where in cited:
        assert quote in text, f"the export quotes the page: {quote!r}"
        assert where == url

    with panel.expect_download() as caught:
        panel.get_by_test_id("export-json").click()
    assert caught.value.suggested_filename == f"{safe_title[:80].strip()}.json"
    caught.value.save_as(tmp_path / "conversation.json")
    doc = json.loads((tmp_path / "conversation.json").read_text(encoding="utf-8"))
    assert doc["format"] == "tiangong-conversation" and doc["url"] == url
    assert [e["kind"] for e in doc["exchanges"]] == ["summarize", "ask"]
    assert doc["exchanges"][1]["question"] == "What does the map of Titan show about lakes?"
    quotes = [c["quote"] for e in doc["exchanges"] for c in e["citations"]]
    assert quotes and all(re.sub(r"\s+", " ", q) in text for q in quotes)


def test_copy_works_while_the_answer_streams_and_can_take_its_sources(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    pieces = [f"word{i} " for i in range(400)]
    service = start_service("fake", pieces=pieces, delay=0.05)
    browser.configure(service)
    _page, tab = browser.open_page(
        pages.add("/stream.html", "<html lang=en><title>Stream</title><p>Some text.</p>")
    )
    panel = browser.open_panel(tab)
    wait_connected(panel)
    panel.get_by_test_id("question").fill("Tell me everything.")
    panel.get_by_test_id("send").click()
    request_id = wait_request(panel, "streaming")
    card = answer(panel, request_id)
    card.get_by_test_id("copy").wait_for(timeout=WAIT_MS)
    assert card.get_attribute("data-state") == "streaming"
    card.get_by_test_id("copy").click()
    card.locator(".result").filter(has_text="Copied.").wait_for(timeout=WAIT_MS)
    assert card.get_attribute("data-state") == "streaming", "copied before the answer ended"
    panel.get_by_test_id("stop").click()


def test_a_panel_that_follows_the_tab_shows_each_tab_its_own_conversation(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    service = start_service("extractive")
    browser.configure(service)
    worker = browser.worker()
    _titan, titan_tab = browser.open_page(pages.add("/titan-follow.html", page_html(TITAN)))
    other_html = (
        "<html lang=en><head><title>Rail news</title></head><body><article><h1>Rail news</h1>"
        "<p>Night trains are coming back across Europe as travellers look for low-carbon "
        "journeys.</p><p>A new sleeper service links Brussels and Prague three times a week."
        "</p></article></body></html>"
    )
    rail, rail_tab = browser.open_page(pages.add("/rail.html", other_html))
    window_id = worker.evaluate("async (id) => (await chrome.tabs.get(id)).windowId", titan_tab)

    def activate(tab_id: int) -> None:
        # What a click on the tab strip does.
        worker.evaluate("(id) => chrome.tabs.update(id, { active: true })", tab_id)

    # A panel window like the one the toolbar opens where no sidebar can be opened (Opera):
    # it follows the active tab of the window it belongs to.
    activate(titan_tab)
    with browser.context.expect_page() as opened:
        worker.evaluate(
            "(url) => chrome.windows.create({ url, type: 'popup', width: 320, height: 720 })",
            f"{PANEL}?windowId={window_id}",
        )
    panel = opened.value
    panel.wait_for_function("(id) => document.body.dataset.tabId === String(id)", arg=titan_tab)
    wait_connected(panel)
    summary_id = summarize(panel)
    assert "Titan" in answer(panel, summary_id).inner_text()

    activate(rail_tab)
    panel.wait_for_function("(id) => document.body.dataset.tabId === String(id)", arg=rail_tab)
    assert panel.get_by_test_id("answer").count() == 0, "the other tab has no conversation yet"
    panel.get_by_test_id("question").fill("Which cities does the sleeper link?")
    panel.get_by_test_id("send").click()
    rail_id = wait_request(panel, "done", previous=summary_id)
    assert "Brussels" in answer(panel, rail_id).inner_text()

    activate(titan_tab)
    panel.wait_for_function(
        "(id) => document.querySelector(`[data-testid=answer][data-request-id='${id}']`)",
        arg=summary_id,
    )
    assert panel.get_by_test_id("answer").count() == 1
    assert "Titan" in panel.get_by_test_id("answer").inner_text()

    # A single-page app moves on (history.pushState): the panel says the page changed, and
    # the next question reads the new page and says so.
    activate(rail_tab)
    panel.wait_for_function("(id) => document.body.dataset.tabId === String(id)", arg=rail_tab)
    assert panel.get_by_test_id("page-changed").is_hidden()
    rail.evaluate(
        """() => {
            history.pushState({}, '', '/rail-timetable');
            document.title = 'Timetable';
            document.querySelector('article').innerHTML =
              '<h1>Timetable</h1><p>The sleeper to Prague leaves Brussels at nine in the '
              + 'evening.</p>';
        }"""
    )
    panel.get_by_test_id("page-changed").wait_for(timeout=WAIT_MS)
    assert panel.evaluate("() => document.body.dataset.pageChanged") == "true"
    panel.get_by_test_id("question").fill("When does the sleeper leave?")
    panel.get_by_test_id("send").click()
    spa_id = wait_request(panel, "done", previous=rail_id)
    card = answer(panel, spa_id)
    assert "nine in the evening" in card.inner_text()
    assert "reads the page the tab shows now: Timetable" in card.locator(".notice").inner_text()
    panel.wait_for_function("() => document.body.dataset.pageChanged === 'false'")
    assert panel.get_by_test_id("page-changed").is_hidden()
    panel.screenshot(path=str(OUTPUT / "panel-follows-tab.png"))


def open_panel_with(browser: Browser, tab: int, script: str) -> Page:
    panel = browser.context.new_page()
    panel.add_init_script(script)
    panel.goto(f"{PANEL}?tabId={tab}")
    panel.wait_for_function("() => document.body.dataset.tabId !== undefined")
    return panel


def test_read_aloud_uses_a_local_voice_and_stop_cancels_it(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    service = start_service("extractive")
    browser.configure(service)
    _page, tab = browser.open_page(pages.add("/titan-read.html", page_html(TITAN)))
    panel = open_panel_with(browser, tab, SPEECH_RECORDER)
    wait_connected(panel)
    card = answer(panel, summarize(panel))
    button = card.get_by_test_id("read-aloud")
    assert button.get_attribute("data-speaking") == "false"
    button.click()
    panel.wait_for_function("() => window.__speech.spoken.length > 0")
    assert button.get_attribute("data-speaking") == "true"
    assert button.inner_text() == "Stop reading"
    spoken = panel.evaluate("() => window.__speech.spoken")
    assert {s["voice"] for s in spoken} == {"Local English"}, "never the cloud voice"
    said = " ".join(s["text"] for s in spoken)
    assert said.split()[:5] == card.locator(".answer-body").inner_text().split()[:5]
    button.click()
    assert panel.evaluate("() => window.__speech.cancelled") >= 1
    assert button.get_attribute("data-speaking") == "false"
    assert button.inner_text() == "Read aloud"

    # A browser without speechSynthesis shows no button at all.
    plain = open_panel_with(browser, tab, NO_SPEECH)
    wait_connected(plain)
    plain.get_by_test_id("answer").first.get_by_test_id("copy").wait_for(timeout=WAIT_MS)
    assert plain.get_by_test_id("read-aloud").count() == 0
