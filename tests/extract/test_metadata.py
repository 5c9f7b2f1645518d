"""Title, byline, publication date, language and word count as a user would see them."""

from __future__ import annotations

import pytest

from tiangong.extract import extract_article
from tiangong.extract.lang import count_words, detect_language

BODY = "<p>" + "The museum reopened its east wing after two years of repairs to the roof. " * 4


def test_open_graph_title_json_ld_author_and_date() -> None:
    head = (
        "<title>Museum reopens | Daily</title>"
        '<meta property="og:title" content="Museum reopens east wing">'
        '<script type="application/ld+json">{"@type": "NewsArticle", "author": '
        '[{"name": "Ana Silva"}, {"name": "Bo Li"}], "datePublished": "2024-02-29T18:05:00Z"}'
        "</script>"
    )
    article = extract_article(f"<html><head>{head}</head><body>{BODY}</body></html>")
    assert article.title == "Museum reopens east wing"
    assert article.byline == "Ana Silva, Bo Li"
    assert article.published == "2024-02-29T18:05:00+00:00"


def test_meta_author_and_time_element() -> None:
    html = (
        '<html><head><meta name="author" content="By Jane Roe"><title>Wing</title></head><body>'
        f'<time datetime="2023-07-01">July 1</time>{BODY}</body></html>'
    )
    article = extract_article(html)
    assert article.byline == "Jane Roe"
    assert article.published == "2023-07-01"


def test_headline_is_the_h1_that_the_page_title_contains() -> None:
    html = (
        "<html><head><title>Roof repairs done - City Paper</title></head>"
        f"<body><h1>Roof repairs done</h1>{BODY}</body></html>"
    )
    article = extract_article(html)
    assert article.title == "Roof repairs done"
    assert article.byline is None and article.published is None


def test_page_without_any_title_has_empty_title() -> None:
    assert extract_article(f"<html><body>{BODY}</body></html>").title == ""


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("The weather is fine and the children are playing in the park with their dog.", "en"),
        (
            "Le temps est beau et les enfants jouent dans le parc avec leur chien pour la journée.",
            "fr",
        ),
        ("Das Wetter ist schön und die Kinder spielen mit dem Hund im Park, auch heute.", "de"),
        ("El tiempo es bueno y los niños juegan en el parque con el perro de la familia.", "es"),
        ("今天天气很好，孩子们在公园里和狗一起玩。", "zh"),
        ("今日は天気が良くて、子供たちは公園で犬と遊んでいます。", "ja"),
        ("Сегодня хорошая погода, и дети играют в парке с собакой.", "ru"),
        ("الطقس جميل اليوم والأطفال يلعبون في الحديقة مع الكلب.", "ar"),
        ("מזג האוויר נעים היום והילדים משחקים בפארק עם הכלב.", "he"),
        ("오늘은 날씨가 좋고 아이들이 공원에서 개와 놀고 있습니다.", "ko"),
        ("Σήμερα ο καιρός είναι καλός και τα παιδιά παίζουν στο πάρκο.", "el"),
        ("วันนี้อากาศดีและเด็กๆ กำลังเล่นกับสุนัขในสวน", "th"),
    ],
)
def test_language_is_detected_from_the_text(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_language_detection_overrides_a_wrong_lang_attribute() -> None:
    html = (
        "<html lang='en'><body><p>"
        + "Сегодня хорошая погода, и дети играют в парке с собакой. " * 3
    )
    assert extract_article(html).lang == "ru"


def test_lang_attribute_decides_when_the_text_cannot() -> None:
    assert extract_article("<html lang='pt-BR'><body><p>Pelé 1958</p></body></html>").lang == "pt"


def test_cjk_characters_count_one_word_each() -> None:
    assert count_words("東京の天気") == 5
    assert count_words("Tokyo 天気 is fine") == 5
    assert count_words("state-of-the-art, 2024!") == 2
