"""Language-agnostic text pieces shared by planning, retrieval, citations and the extractive
engine: sentence spans (verbatim slices of the page), search terms (words for alphabetic
scripts, character bigrams for Chinese/Japanese/Korean) and BM25 ranking.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

# A sentence ends at . ! ? (and CJK 。！？) followed by space/quote/bracket, or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+|(?<=[。！？])[」』”’）]*|\n+")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")

STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have he her his
    how i if in into is it its me my no not of on or our she so than that the their them then
    there these they this to was we were what when where which who why will with would you your
    about also more most other some such only over after before between both each few just very
    page article text says say tell""".split()
)


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    text: str


_ABBREVIATION = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|Sr|Jr|St|Gov|Sen|Rep|Gen|Col|Lt|Capt|Sgt|Rev|Hon|Pres|Inc|Ltd|"
    r"Co|Corp|vs|etc|approx|No|Vol|Fig|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)"
    r"|\b[A-Z]|\b(?:[A-Za-z]\.){1,3}[A-Za-z]|\be\.g|\bi\.e)\.[\"'”’)\]]*\s*$"
)


def sentences(text: str, *, min_chars: int = 2) -> list[Span]:
    """Sentence spans whose `text` is exactly `source[start:end]` (stripped of outer spaces)."""
    spans: list[Span] = []
    pos = 0
    for match in _SENTENCE_END.finditer(text):
        piece = text[pos : match.end()]
        # "Gov. Matt Bevin", "U.S. troops", "J. Smith": not the end of a sentence.
        if "\n" not in match.group() and _ABBREVIATION.search(piece):
            continue
        _add_span(text, pos, match.end(), spans, min_chars)
        pos = match.end()
    _add_span(text, pos, len(text), spans, min_chars)
    return spans


def _add_span(text: str, start: int, end: int, out: list[Span], min_chars: int) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if len(stripped) < min_chars:
        return
    offset = start + (len(piece) - len(piece.lstrip()))
    out.append(Span(offset, offset + len(stripped), stripped))


def terms(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """Lower-cased search terms; CJK runs become overlapping character bigrams."""
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        if _CJK.search(word):
            chars = [c for c in word if not c.isspace()]
            if len(chars) == 1:
                out.append(chars[0])
            out.extend(a + b for a, b in itertools.pairwise(chars))
        elif keep_stopwords or (word not in STOPWORDS and (len(word) > 1 or word.isdigit())):
            out.append(word)
    return out


def count_words(text: str) -> int:
    """Words for alphabetic scripts; each CJK character counts as one."""
    cjk = len(_CJK.findall(text))
    return cjk + len(_WORD.findall(_CJK.sub(" ", text)))


class BM25:
    """Okapi BM25 over a fixed list of documents (chunks or sentences)."""

    def __init__(self, documents: Sequence[str], *, k1: float = 1.4, b: float = 0.75) -> None:
        self._docs = [Counter(terms(d)) for d in documents]
        self._lengths = [sum(c.values()) for c in self._docs]
        self._avg = (sum(self._lengths) / len(self._lengths)) if self._lengths else 0.0
        df: Counter[str] = Counter()
        for doc in self._docs:
            df.update(doc.keys())
        n = len(self._docs)
        self._idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self._k1 = k1
        self._b = b

    def scores(self, query: str) -> list[float]:
        q = set(terms(query))
        out = []
        for doc, length in zip(self._docs, self._lengths, strict=True):
            score = 0.0
            norm = self._k1 * (1 - self._b + self._b * length / (self._avg or 1.0))
            for t in q:
                f = doc.get(t, 0)
                if f:
                    score += self._idf[t] * f * (self._k1 + 1) / (f + norm)
            out.append(score)
        return out

    def rank(self, query: str) -> list[int]:
        """Document indices, best first, only those sharing a term with the query."""
        scored = [(s, i) for i, s in enumerate(self.scores(query)) if s > 0]
        return [i for _, i in sorted(scored, key=lambda p: (-p[0], p[1]))]
