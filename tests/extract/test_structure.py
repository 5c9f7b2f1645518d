"""What a reader of the extracted article sees: text, Markdown structure, blocks, selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiangong.errors import BadRequestError
from tiangong.extract import Article, ExtractionError, extract_article

CASES = Path(__file__).parent / "cases"
FILLER = (
    "The council met on Tuesday evening to discuss the new cycling lanes, and residents "
    "from both sides of the river came to speak about traffic, parking and safety. "
)


def page(body: str, head: str = "<title>Lanes | City News</title>") -> str:
    nav = '<nav><a href="/">Home</a> <a href="/news">News</a> <a href="/sport">Sport</a></nav>'
    return f"<html><head>{head}</head><body>{nav}<article>{body}</article></body></html>"


def test_article_text_has_one_blank_line_between_paragraphs_and_no_navigation() -> None:
    article = extract_article(page(f"<p>{FILLER}One.</p><p>{FILLER}Two.</p>"))
    assert article.text == f"{FILLER.strip()} One.\n\n{FILLER.strip()} Two."
    assert "Sport" not in article.text
    assert article.blocks == tuple(article.text.split("\n\n"))


def test_markdown_keeps_headings_lists_quotes_code_and_tables() -> None:
    body = (
        f"<p>{FILLER}</p><h2>Plans</h2><ul><li>North lane</li><li>South lane<ol><li>Phase one</li>"
        "</ol></li></ul><blockquote><p>We need safer streets.</p></blockquote>"
        '<pre><code class="language-python">print("hi")\n</code></pre>'
        "<table><tr><th>Lane</th><th>Km</th></tr><tr><td>North</td><td>3</td></tr></table>"
        f"<p>{FILLER}</p>"
    )
    md = extract_article(page(body)).markdown
    assert "## Plans" in md
    assert "- North lane\n- South lane\n   1. Phase one" in md
    assert "> We need safer streets." in md
    assert '```python\nprint("hi")\n```' in md
    assert "| Lane | Km |\n| --- | --- |\n| North | 3 |" in md


def test_list_items_are_one_per_line_in_text_and_separate_blocks() -> None:
    article = extract_article(
        page(f"<p>{FILLER}</p><ul><li>Alpha item</li><li>Beta item</li></ul>")
    )
    assert "Alpha item\nBeta item" in article.text
    assert "Alpha item" in article.blocks and "Beta item" in article.blocks


def test_repeated_title_heading_is_not_part_of_the_text() -> None:
    article = extract_article(page(f"<h1>Lanes</h1><p>{FILLER}</p><p>{FILLER}</p>"))
    assert article.title == "Lanes"
    assert not article.text.startswith("Lanes")


def test_selection_gives_the_selected_text_and_its_section_as_context() -> None:
    html = (CASES / "docs-page" / "page.html").read_bytes()
    selection = "Pass --config PATH to use another one."
    article = extract_article(html, selection=selection)
    assert article.text == selection
    assert article.blocks[0] == "The settings file"
    assert any(selection in block for block in article.blocks)
    assert "## The settings file" in article.markdown
    assert "## Options" not in article.markdown
    assert article.words == 7


def test_selection_not_found_in_the_page_stands_alone() -> None:
    article = extract_article(page(f"<p>{FILLER}</p>"), selection="words from elsewhere")
    assert article.text == "words from elsewhere"
    assert article.blocks == ("words from elsewhere",)


def test_pages_that_are_not_articles_still_give_their_text() -> None:
    links = "<li><a href='/a'>Alpha docs</a></li><li><a href='/b'>Beta docs</a></li>"
    html = f"<html><body><ul>{links}</ul></body></html>"
    article = extract_article(html)
    assert "Alpha docs" in article.text and "Beta docs" in article.text


def test_a_page_without_text_is_a_bad_request_with_a_reason() -> None:
    with pytest.raises(ExtractionError, match="no readable text"):
        extract_article("<html><body><div><img src='x.png'></div></body></html>")
    assert issubclass(ExtractionError, BadRequestError)


def test_article_is_immutable() -> None:
    article = extract_article(page(f"<p>{FILLER}</p>"))
    assert isinstance(article, Article)
    with pytest.raises(AttributeError):
        article.text = "changed"  # type: ignore[misc]
