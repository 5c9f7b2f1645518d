"""Real pages kept in the repository (tests/fixtures/pages) extract without an error, to the
article a reader sees: most of its hand-checked text, a title and the page's language."""

from __future__ import annotations

import re

import pytest

from tests.support.fixture_pages import PAGES, article_body, page_bytes
from tiangong.extract import extract_article

PORTUGUESE = {"comoeducar-serelepe"}


def words(text: str) -> set[str]:
    return set(re.findall(r"\w{4,}", text.lower()))


@pytest.mark.parametrize("name", sorted(PAGES))
def test_a_real_page_gives_its_article_text_and_metadata(name: str) -> None:
    article = extract_article(page_bytes(name))
    assert article.words > 20
    assert article.title
    assert article.lang == ("pt" if name in PORTUGUESE else "en")
    expected = words(article_body(name))
    assert len(expected & words(article.text)) / len(expected) > 0.9
