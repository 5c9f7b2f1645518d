"""PDF files read page by page, on real files made with fpdf2 in the test."""

from __future__ import annotations

import pytest

from tests.support.pdf_files import bomb_pdf, damaged_pdf, scanned_pdf, text_pdf
from tiangong.errors import TooLargeError
from tiangong.extract import ExtractionError, extract_pdf

PAGES = [
    "Solar capacity doubled in three years, the energy agency said in its yearly report.\n\n"
    "Costs of panels fell by half over the same period.",
    "Wind turbines grew taller: the average rotor is now one hundred and seventy metres wide.",
    "Grid operators warn that storage must grow as quickly, or midday power will be wasted.",
]


def test_a_pdf_with_a_text_layer_gives_its_text_page_by_page() -> None:
    doc = extract_pdf(text_pdf(PAGES, title="Energy outlook"))
    assert doc.title == "Energy outlook"
    assert doc.page_count == 3 and len(doc.pages) == 3
    assert "Solar capacity doubled in three years" in doc.pages[0]
    assert "rotor is now one hundred and seventy metres" in doc.pages[1]
    assert doc.lang == "en" and doc.words > 40
    assert doc.blocks[:2] == (
        "Solar capacity doubled in three years, the energy agency said in its yearly report.",
        "Costs of panels fell by half over the same period.",
    )
    assert doc.block_pages == (1, 1, 2, 3)


def test_a_quote_is_traced_to_the_page_it_is_on() -> None:
    doc = extract_pdf(text_pdf(PAGES))
    assert doc.page_of("Grid operators warn that storage must grow as quickly") == 3
    assert doc.page_of("Costs of panels fell by half over the same period.") == 1
    assert doc.page_of("A sentence that is on no page at all.") is None


def test_without_title_metadata_the_first_line_is_the_title() -> None:
    assert extract_pdf(text_pdf(PAGES)).title.startswith("Solar capacity doubled")


def test_lines_of_one_paragraph_are_joined_and_hyphenated_words_mended() -> None:
    text = "The panels were in-\nstalled on every roof\nof the town last year.\n\nA new paragraph."
    doc = extract_pdf(text_pdf([text]))
    assert "installed on every roof of the town last year." in doc.pages[0]


def test_a_scanned_pdf_without_text_says_so_instead_of_giving_nothing() -> None:
    with pytest.raises(ExtractionError, match="no text layer"):
        extract_pdf(scanned_pdf())


def test_a_damaged_pdf_is_a_clear_error() -> None:
    with pytest.raises(ExtractionError, match="damaged"):
        extract_pdf(damaged_pdf())


def test_a_file_that_is_not_a_pdf_is_refused() -> None:
    with pytest.raises(ExtractionError, match="not a PDF"):
        extract_pdf(b"<html><body>hello</body></html>")


def test_a_stream_that_inflates_without_end_is_too_large() -> None:
    with pytest.raises(TooLargeError, match="too large to unpack"):
        extract_pdf(bomb_pdf())
