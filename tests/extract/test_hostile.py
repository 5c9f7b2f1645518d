"""Hostile and broken input: a clear error or text, never a crash, a hang or unbounded memory."""

from __future__ import annotations

import pytest

from tiangong.errors import TooLargeError
from tiangong.extract import ExtractionError, extract_article

pytestmark = pytest.mark.timeout(60)

ARTICLE = (
    "<p>" + "A sentence about the harbour and the boats that sail from it at dawn. " * 6 + "</p>"
)


def test_html_over_16_mib_is_too_large_as_bytes_and_as_text() -> None:
    big = "<html><body>" + "a" * (17 * 1024 * 1024)
    with pytest.raises(TooLargeError, match="16 MiB"):
        extract_article(big.encode())
    with pytest.raises(TooLargeError):
        extract_article(big)


def test_ten_megabytes_of_ordinary_paragraphs_give_text() -> None:
    html = "<html><body><article>" + ARTICLE * 24_000 + "</article></body></html>"
    assert len(html) > 10_000_000
    article = extract_article(html)
    assert article.words > 1_000_000
    assert article.text.startswith("A sentence about the harbour")


def test_a_million_elements_are_refused_before_parsing() -> None:
    with pytest.raises(TooLargeError, match="elements"):
        extract_article("<html><body>" + "<p>a</p>" * 1_000_000)


def test_hundred_thousand_deep_nesting_keeps_the_text_before_it() -> None:
    html = "<html><body>" + ARTICLE + "<div>" * 100_000 + "deep" + "</div>" * 100_000
    article = extract_article(html)
    assert "harbour" in article.text


def test_nesting_with_nothing_readable_says_why() -> None:
    with pytest.raises(ExtractionError, match="255 levels"):
        extract_article("<html><body>" + "<div>" * 100_000 + "x")


def test_nul_bytes_and_control_characters_are_dropped() -> None:
    article = extract_article(b"<html><body><p>caf\x00e au lait\x07, " + ARTICLE.encode() + b"</p>")
    assert "cafe au lait" in article.text
    assert "\x00" not in article.text and "\x07" not in article.text


def test_broken_utf8_is_decoded_with_replacement() -> None:
    html = b"<html><head><meta charset='utf-8'></head><body><p>na\xefve " + ARTICLE.encode()
    article = extract_article(html)
    assert "harbour" in article.text


@pytest.mark.parametrize(
    ("encoding", "charset", "text"),
    [
        ("cp1251", "windows-1251", "Зимой от шин зависит безопасность на дороге"),
        ("shift_jis", "shift_jis", "東京の天気は晴れです。明日は雨が降るでしょう。"),
        ("gbk", "gbk", "今天北京天气晴朗，明天可能有雨。"),
        ("iso-8859-1", "iso-8859-1", "Café crème à la française, s'il vous plaît"),
    ],
)
def test_declared_legacy_encodings_are_honoured(encoding: str, charset: str, text: str) -> None:
    html = f'<html><head><meta charset="{charset}"></head><body><p>{text}</p></body></html>'
    assert extract_article(html.encode(encoding)).text == text


def test_undeclared_legacy_encoding_is_detected() -> None:
    text = "Зимой от шин зависит не только комфорт, но и безопасность на дороге. " * 3
    html = f"<html><body><p>{text}</p></body></html>".encode("cp1251")
    assert extract_article(html).text == text.strip()


def test_utf16_with_byte_order_mark() -> None:
    html = "\ufeff<html><body><p>hello from utf-16</p></body></html>".encode("utf-16")
    assert extract_article(html).text == "hello from utf-16"


@pytest.mark.parametrize(
    "bad",
    [b"", "   ", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, "<html><body></body></html>"],
    ids=["empty-bytes", "blank", "binary", "no-text"],
)
def test_unusable_input_is_an_extraction_error(bad: str | bytes) -> None:
    with pytest.raises(ExtractionError):
        extract_article(bad)


def test_wrong_type_is_an_extraction_error() -> None:
    with pytest.raises(ExtractionError, match="str or bytes"):
        extract_article(12345)  # type: ignore[arg-type]


def test_unclosed_tags_comments_and_cdata_do_not_lose_earlier_text() -> None:
    html = "<html><body><p>" + ARTICLE + "<table><tr><td>cell<!-- never closed " + "x" * 1000
    assert "harbour" in extract_article(html).text
