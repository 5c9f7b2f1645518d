"""Language of a text (by script, then by common words for Latin and Cyrillic) and word counts."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

# Han ideographs, kana and hangul count one word per character, like the tokenizers that
# split them.
_CJK = (
    "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\uac00-\ud7af\u1100-\u11ff\U00020000-\U0002fa1f"
)
_WORDS = re.compile(rf"[{_CJK}]|[^\s{_CJK}]*[^\W_][^\s{_CJK}]*")
_SAMPLE = 4000

# Scripts used by one main language; read with the share of letters they have.
_SCRIPT_RANGES: tuple[tuple[str, int, int], ...] = (
    ("hira", 0x3040, 0x30FF),
    ("hang", 0xAC00, 0xD7AF),
    ("hang", 0x1100, 0x11FF),
    ("han", 0x4E00, 0x9FFF),
    ("han", 0x3400, 0x4DBF),
    ("cyrl", 0x0400, 0x04FF),
    ("arab", 0x0600, 0x06FF),
    ("arab", 0x0750, 0x077F),
    ("hebr", 0x0590, 0x05FF),
    ("grek", 0x0370, 0x03FF),
    ("thai", 0x0E00, 0x0E7F),
    ("deva", 0x0900, 0x097F),
    ("beng", 0x0980, 0x09FF),
    ("taml", 0x0B80, 0x0BFF),
    ("geor", 0x10A0, 0x10FF),
    ("armn", 0x0530, 0x058F),
    ("ethi", 0x1200, 0x137F),
    ("khmr", 0x1780, 0x17FF),
)
_SCRIPT_LANG = {
    "hang": "ko",
    "hebr": "he",
    "grek": "el",
    "thai": "th",
    "deva": "hi",
    "beng": "bn",
    "taml": "ta",
    "geor": "ka",
    "armn": "hy",
    "ethi": "am",
    "khmr": "km",
}

_STOPWORDS: dict[str, str] = {
    "en": "the and of to in is that for it was on with as are be this by have from not at",
    "fr": "le la les des et est un une du que dans pour pas qui sur au avec sont ce il",
    "de": "der die und das ist nicht ein eine zu den mit von sich auf für des dem im auch",
    "es": "el la de que y los en las del por un una para con no es se al lo como",
    "pt": "de que o a os as do da em um uma para com não no na dos das por se mais",
    "it": "il di che la e per un una non del della sono con le si gli lo dei nel anche",
    "nl": "de het een en van is dat niet op te in voor zijn met die er ook aan",
    "sv": "och att det som en är på för av med inte den till har de var ett om",
    "da": "og at det som en er på for af med ikke den til har de var et om jeg",
    "no": "og at det som en er på for av med ikke den til har de var et om jeg",
    "pl": "i w nie na się że z do jest to jak ale co o po tak za od",
    "cs": "a se na je že v to s z do jsou by jak ale o pro tak také",
    "tr": "ve bir bu da de için ile olarak çok daha gibi olan en ama kadar",
    "id": "yang dan di dengan untuk ini dari dalam tidak akan pada itu juga ke ada",
    "fi": "ja on ei että se oli hän mutta tai kun ovat myös kuin jos",
    "ro": "și de în la cu nu pe o că din se pentru este sunt mai",
    "hu": "a az és hogy nem egy is meg van de ez már csak mint",
    "vi": "và của là có trong được cho không những với các một người này",
    "ru": "и в не на что с по как это он его но из к за то от же",
    "uk": "і в не на що з та як це він його але до за від також є",
    "bg": "и в не на че се да от за с по как това са е",
    "sr": "и у не на да се је за од са по као то су",
}
_STOPSETS = {lang: frozenset(words.split()) for lang, words in _STOPWORDS.items()}
_WORD_LANGS: dict[str, tuple[str, ...]] = {}
for _lang, _words in _STOPSETS.items():
    for _word in _words:
        _WORD_LANGS[_word] = (*_WORD_LANGS.get(_word, ()), _lang)
_CYRILLIC_LANGS = ("ru", "uk", "bg", "sr")
_PERSIAN = re.compile("[پچژگ]")
_URDU = re.compile("[ٹڈڑںھے]")
_UK_LETTERS = re.compile("[іїєґ]")


def count_words(text: str) -> int:
    return len(_WORDS.findall(text))


def _script_counts(sample: str) -> tuple[Counter[str], int]:
    counts: Counter[str] = Counter()
    letters = 0
    for ch in sample:
        if not ch.isalpha():
            continue
        letters += 1
        code = ord(ch)
        if code < 0x0250:
            counts["latn"] += 1
            continue
        for script, low, high in _SCRIPT_RANGES:
            if low <= code <= high:
                counts[script] += 1
                break
    return counts, letters


def _by_words(sample: str, candidates: tuple[str, ...] | None, hint: str | None) -> str | None:
    words = re.findall(r"[^\W\d_]+", sample.lower())
    if not words:
        return None
    langs = candidates or tuple(lang for lang in _STOPSETS if lang not in _CYRILLIC_LANGS)
    scores = dict.fromkeys(langs, 0)
    for word in words:
        for lang in _WORD_LANGS.get(word, ()):
            if lang in scores:
                scores[lang] += 1
    best = max(scores, key=lambda lang: scores[lang])
    if scores[best] < max(2, len(words) // 50):
        return hint if hint in langs else None
    # Close calls (Danish and Norwegian, say) go to the page's declared language.
    if hint in scores and scores[hint] >= 0.85 * scores[best]:
        return hint
    return best


def detect_language(text: str, hint: str | None = None) -> str | None:
    """Primary language subtag of `text`; `hint` (the page's lang attribute) breaks ties."""
    sample = unicodedata.normalize("NFC", text[:_SAMPLE])
    counts, letters = _script_counts(sample)
    if not letters:
        return hint
    script, _top = counts.most_common(1)[0]
    kana = counts["hira"]
    if kana and kana >= 0.05 * (kana + counts["han"]) and kana + counts["han"] >= 0.3 * letters:
        return "ja"
    if counts["han"] >= 0.3 * letters:
        return "zh"
    if script in _SCRIPT_LANG:
        return _SCRIPT_LANG[script]
    if script == "arab":
        if _URDU.search(sample):
            return "ur"
        if _PERSIAN.search(sample):
            return "fa"
        return "ar"
    if script == "cyrl":
        if _UK_LETTERS.search(sample.lower()):
            return "uk"
        return _by_words(sample, _CYRILLIC_LANGS, hint) or "ru"
    if script == "latn":
        return _by_words(sample, None, hint)
    return hint
