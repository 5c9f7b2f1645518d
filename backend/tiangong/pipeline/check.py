"""Step: the check before an answer is shown. Is what the model wrote said by the text it was
given (pure functions)?

A small model restating two sentences still invents: a name it never read, a number, a
place. An answer passes only when every name, number and content word of it is found in
the evidence or the question (a word counts as found when a word sharing its stem is).
Model phrasing around the facts ("The answer is:", "Here is a bulleted list") is stripped or
refused first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from tiangong.text import STOPWORDS, terms

# Words a restatement may add without saying anything the page does not.
GLUE = frozenset(
    """according answer article author based called does described explains mentioned
    mentions noted notes page paragraph passage point points question refers report reported
    reports said says shows speaks stated states story summary talks tells text told""".split()
)
# English inflections, longest first; other languages' words are compared whole.
_ENDINGS = ("ations", "ation", "ings", "ing", "ies", "ied", "es", "ed", "ly", "s", "e", "y")
MIN_STEM = 3
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|okay|ok|yes)[,!.]?\s*)?(?:"
    r"a\s*:"
    r"|(?:the\s+)?(?:short\s+|final\s+)?answer(?:\s+to\s+(?:this|the|your)\s+question)?\s+is\s*[:,-]?"
    r"|here\s+is\s+(?:the|a|my)\s+[\w\s-]{0,40}?:"
    r"|according\s+to\s+the\s+(?:page|text|article|passage)[,:]?"
    r"|based\s+on\s+the\s+(?:page|text|article|passage)[,:]?"
    r"|the\s+(?:page|text|article|passage)\s+(?:says|states|mentions)\s+(?:that\s+)?"
    r")\s*",
    re.IGNORECASE,
)
_META = re.compile(
    r"\b(?:bullet(?:ed)?\s+(?:list|points?)|key\s+(?:points|areas|elements|facts)|"
    r"(?:the\s+)?(?:page|article|text)\s+(?:is|has|contains|provides|lists|includes|presents)\b|"
    r"most\s+important\s+points|here\s+(?:is|are)\b|summary\s+of\s+the)",
    re.IGNORECASE,
)


def stem(word: str) -> str:
    """A word without its inflection ("critics" → "critic", "voted" → "vot"), so a
    restatement may change a word's form but not the word: "council" is not "councillor"."""
    if not word.isalpha() or not word.isascii():
        return word
    for ending in _ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= MIN_STEM:
            return word[: -len(ending)]
    return word


def content_words(text: str) -> list[str]:
    """Words that carry a claim: not stop words or glue, three letters or more (or a number;
    CJK bigrams as `terms` gives them)."""
    out = []
    for word in terms(text):
        if word in STOPWORDS or word in GLUE:
            continue
        if any(c.isdigit() for c in word) or len(word) >= 3 or not word.isascii():
            out.append(word)
    return out


@dataclass(frozen=True)
class Support:
    """Which of an answer's content words (and whole numbers) the sources do not have."""

    words: int
    missing: tuple[str, ...]

    @property
    def supported(self) -> bool:
        return self.words > 0 and not self.missing


def numbers(text: str) -> list[str]:
    """Whole numbers as written ("139.99", "1,200"), so "$139.99" is not found in "$139"."""
    return [m.group().replace(",", "") for m in _NUMBER.finditer(text)]


def support(answer: str, sources: Iterable[str]) -> Support:
    """How far `answer` is said by `sources` (the evidence, the question, the page)."""
    have: set[str] = set()
    have_numbers: set[str] = set()
    for source in sources:
        have.update(stem(w) for w in terms(source, keep_stopwords=True))
        have_numbers.update(numbers(source))
    words = content_words(answer)
    missing = [w for w in words if stem(w) not in have]
    missing += [n for n in numbers(answer) if n not in have_numbers]
    return Support(len(words), tuple(dict.fromkeys(missing)))


def adds_to(answer: str, question: str) -> bool:
    """Whether an answer says anything the question did not (a restated question does not)."""
    asked = {stem(w) for w in terms(question, keep_stopwords=True)}
    return any(stem(w) not in asked for w in content_words(answer)) or bool(
        set(numbers(answer)) - set(numbers(question))
    )


def without_preamble(answer: str) -> str:
    """The answer without the phrases small models open with ("The answer is:")."""
    text = answer.strip()
    while True:
        stripped = _PREAMBLE.sub("", text, count=1).strip()
        if stripped == text:
            break
        text = stripped
    return text[:1].upper() + text[1:] if text else text


def is_meta(text: str) -> bool:
    """A line about the summary or the page as a thing ("The page has 3 key points")
    rather than about what the page says."""
    return bool(_META.search(text))


def shorten(sentence: str, max_words: int) -> str:
    """A sentence cut to about `max_words` words, at a clause boundary where one is near."""
    words = sentence.split()
    if len(words) <= max_words:
        return sentence.strip()
    head = " ".join(words[:max_words])
    cut = max(head.rfind(", "), head.rfind("; "), head.rfind(" — "))
    if cut > len(head) // 2:
        head = head[:cut]
    return head.rstrip(",;:—- ") + "…"
