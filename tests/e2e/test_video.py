"""Videos read from their captions, in real Chromium against the real service (extractive
engine, which quotes the transcript): a page with a <video> and caption <track>s, a
YouTube-shaped watch page (tests/fixtures/video), and one whose video has no captions. The
citations carry the second they quote (`data-time`) and a click seeks the video there."""

from __future__ import annotations

import re
from pathlib import Path
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

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.e2e

VIDEO = Path(__file__).resolve().parents[1] / "fixtures" / "video"
COMMENTS = ("grandmother", "subscribe", "gift cards", "bus ride")


def serve(pages: Pages, *names: str) -> dict[str, str]:
    kinds = {".html": "text/html; charset=utf-8", ".vtt": "text/vtt", ".xml": "text/xml"}
    return {
        name: pages.add_file(f"/video/{name}", (VIDEO / name).read_bytes(), kinds[name[-4:]])
        if not name.endswith(".html")
        else pages.add(f"/video/{name}", (VIDEO / name).read_text("utf-8"))
        for name in names
    }


def cue_starts(vtt: str) -> set[float]:
    """The start of every cue of a WebVTT file, in seconds."""
    starts = set()
    for h, m, s in re.findall(r"^(\d+):(\d{2}):(\d{2}\.\d{3}) -->", vtt, re.M):
        starts.add(int(h) * 3600 + int(m) * 60 + float(s))
    return starts


def chip_times(card: Locator) -> list[float]:
    chips = card.get_by_test_id("citation")
    return [float(chips.nth(i).get_attribute("data-time") or "nan") for i in range(chips.count())]


def click_chip_and_wait_for_the_seek(panel: Page, page: Page, card: Locator, video: str) -> float:
    """Clicks the last chip; returns where the video then is."""
    chip = card.get_by_test_id("citation").last
    n = chip.get_attribute("data-n")
    chip.click()
    panel.wait_for_function("(n) => document.body.dataset.citation === `found-${n}`", arg=n)
    return float(page.evaluate("(selector) => document.querySelector(selector).currentTime", video))


def test_a_video_with_caption_tracks_is_summarized_from_its_captions_and_chips_seek(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    urls = serve(pages, "tides.html", "tides.en.vtt", "tides.fr.vtt")
    service = start_service("extractive")
    browser.configure(service)
    page, tab = browser.open_page(urls["tides.html"])
    panel = browser.open_panel(tab)
    wait_connected(panel)

    panel.get_by_test_id("summarize").click()
    summary = answer(panel, wait_request(panel, "done"))
    text = summary.inner_text()
    # English (the UI's language) rather than the page's default French track; never the comments.
    assert "Moon" in text and "Lune" not in text
    assert not any(word in text.lower() for word in COMMENTS)
    english = cue_starts((VIDEO / "tides.en.vtt").read_text("utf-8"))
    times = chip_times(summary)
    assert times and set(times) <= english, times
    assert click_chip_and_wait_for_the_seek(panel, page, summary, "video") == times[-1]
    panel.screenshot(path=str(OUTPUT / "panel-video.png"))

    # A follow-up question reads the captions again and cites with times too.
    panel.get_by_test_id("question").fill("Where is the largest tidal range on Earth?")
    panel.get_by_test_id("send").click()
    reply = answer(
        panel, wait_request(panel, "done", previous=summary.get_attribute("data-request-id") or "")
    )
    assert "Fundy" in reply.inner_text()
    assert 39.0 in chip_times(reply)


def test_a_youtube_watch_page_is_read_from_its_caption_track_in_the_preferred_language(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    urls = serve(pages, "youtube-watch.html")
    for lang in ("en", "de", "en-asr"):
        pages.add_file(
            f"/api/timedtext/{lang}", (VIDEO / f"timedtext-{lang}.xml").read_bytes(), "text/xml"
        )
    service = start_service("extractive")
    browser.configure(service)
    page, tab = browser.open_page(urls["youtube-watch.html"])
    panel = browser.open_panel(tab)
    wait_connected(panel)

    panel.get_by_test_id("summarize").click()
    summary = answer(panel, wait_request(panel, "done"))
    text = summary.inner_text()
    # The hand-made English track: not German, not the automatic captions, not the comments.
    assert "glacier" in text.lower()
    assert "Gletscher" not in text and "automatic captions" not in text
    assert not any(word in text.lower() for word in COMMENTS)
    starts = {0.4, 5.0, 11.2, 15.5, 21.0, 27.0, 33.5, 39.5}
    times = chip_times(summary)
    assert times and set(times) <= starts, times
    seeked = click_chip_and_wait_for_the_seek(panel, page, summary, "video.html5-main-video")
    assert seeked == times[-1]


def test_a_youtube_page_whose_track_gives_nothing_is_read_from_its_shown_transcript(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    urls = serve(pages, "youtube-transcript-shown.html")
    pages.add_file("/api/timedtext/empty", b"", "text/xml")  # YouTube may answer so
    service = start_service("extractive")
    browser.configure(service)
    page, tab = browser.open_page(urls["youtube-transcript-shown.html"])
    panel = browser.open_panel(tab)
    wait_connected(panel)

    panel.get_by_test_id("question").fill("Which volcano is one of the most active?")
    panel.get_by_test_id("send").click()
    reply = answer(panel, wait_request(panel, "done"))
    assert "Etna" in reply.inner_text()
    assert not any(word in reply.inner_text().lower() for word in COMMENTS)
    times = chip_times(reply)
    assert 33.0 in times and set(times) <= {0.0, 7.0, 15.0, 24.0, 33.0}, times
    seeked = click_chip_and_wait_for_the_seek(panel, page, reply, "video.html5-main-video")
    assert seeked == times[-1]


def test_a_video_without_captions_says_so_instead_of_summarizing_the_comments(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    urls = serve(pages, "youtube-no-captions.html")
    service = start_service("extractive")
    browser.configure(service)
    _page, tab = browser.open_page(urls["youtube-no-captions.html"])
    panel = browser.open_panel(tab)
    wait_connected(panel)

    panel.get_by_test_id("summarize").click()
    failed = answer(panel, wait_request(panel, "error"))
    text = failed.inner_text()
    assert "no captions" in text
    assert not any(word in text.lower() for word in COMMENTS)


def test_the_language_option_picks_that_caption_track(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    urls = serve(pages, "tides.html", "tides.en.vtt", "tides.fr.vtt")
    service = start_service("extractive")
    browser.configure(service)
    _page, tab = browser.open_page(urls["tides.html"])
    panel = browser.open_panel(tab)
    wait_connected(panel)
    panel.locator("#summary-options summary").click()
    panel.locator("#summary-language").select_option("fr")
    try:
        panel.get_by_test_id("summarize").click()
        summary = answer(panel, wait_request(panel, "done"))
        assert "Lune" in summary.inner_text() and "Moon" not in summary.inner_text()
        french = cue_starts((VIDEO / "tides.fr.vtt").read_text("utf-8"))
        assert chip_times(summary) and set(chip_times(summary)) <= french
    finally:
        # The option is remembered for every later test in this browser: set it back.
        panel.locator("#summary-language").select_option("")
        panel.wait_for_function(
            """async () => {
                const { summaryOptions } = await chrome.storage.local.get('summaryOptions');
                return !summaryOptions?.output_language;
            }"""
        )


def test_a_caption_track_that_cannot_be_read_leaves_the_page_to_be_read_with_a_note(
    browser: Browser, pages: Pages, start_service: StartService
) -> None:
    url = pages.add(
        "/video/broken-track.html",
        "<html lang=en><title>Bridges</title><article><video>"
        '<track kind="captions" srclang="en" src="missing.vtt"></video>'
        "<p>The old stone bridge over the river opened to traffic in the spring of 1932.</p>"
        "<p>It was built from granite quarried in the hills north of the town.</p>"
        "</article></html>",
    )
    service = start_service("extractive")
    browser.configure(service)
    _page, tab = browser.open_page(url)
    panel = browser.open_panel(tab)
    wait_connected(panel)

    panel.get_by_test_id("summarize").click()
    summary = answer(panel, wait_request(panel, "done"))
    assert "1932" in summary.inner_text()
    assert "captions could not be read (HTTP 404)" in summary.locator(".notice").inner_text()
    assert summary.get_by_test_id("citation").first.get_attribute("data-time") is None
