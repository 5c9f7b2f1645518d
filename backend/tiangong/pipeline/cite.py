"""Step: citations. For each statement of an answer, the page sentence that best supports it.

A quote is always a verbatim slice of the page text the model read, so the sidebar can find
it in the page and highlight it. A statement with no sentence sharing enough of its content
words gets no citation rather than a weak one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tiangong.pipeline.sources import SourceDoc, locate
from tiangong.protocol.frames import citation_fields
from tiangong.text import Span, sentences, terms

_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_GAP_MARK = "[…]"


@dataclass(frozen=True)
class Citation:
    n: int
    quote: str


def _statements(answer: str) -> list[str]:
    return [_LIST_MARK.sub("", s.text) for s in sentences(answer)]


def find_citations(
    answer: str, page_text: str, *, max_citations: int = 5, min_support: float = 0.5
) -> list[Citation]:
    page_sentences: list[Span] = [
        s for s in sentences(page_text, min_chars=12) if _GAP_MARK not in s.text
    ]
    if not page_sentences:
        return []
    page_terms = [set(terms(s.text)) for s in page_sentences]
    chosen: list[int] = []
    for statement in _statements(answer):
        wanted = set(terms(statement))
        if len(wanted) < 3:  # too little said to pin to one sentence
            continue
        best, best_score = -1, 0.0
        for i, have in enumerate(page_terms):
            if not have:
                continue
            shared = len(wanted & have)
            # Share of the statement's words found in the sentence, lightly preferring
            # sentences that are not much longer than the statement.
            score = shared / len(wanted) + 0.05 * shared / len(have)
            if score > best_score:
                best, best_score = i, score
        if best >= 0 and best_score >= min_support and best not in chosen:
            chosen.append(best)
        if len(chosen) >= max_citations:
            break
    return [Citation(n + 1, page_sentences[i].text) for n, i in enumerate(chosen)]


def cite(answer: str, cite_from: str, sources: Sequence[SourceDoc]) -> list[dict[str, Any]]:
    """Step: an answer's citations as frames carry them and the history stores them: each
    quote, and (with several pages, a PDF, a transcript) which page or second it was found at."""
    out = []
    for citation in find_citations(answer, cite_from):
        at = locate(citation.quote, sources)
        out.append(
            citation_fields(
                citation.n, citation.quote, source=at.source, page=at.page, time=at.time
            )
        )
    return out


def cite_quotes(quotes: Sequence[str], sources: Sequence[SourceDoc]) -> list[dict[str, Any]]:
    """Citations of the page sentences an answer was composed from, numbered in order."""
    out = []
    for n, quote in enumerate(dict.fromkeys(q for q in quotes if q), start=1):
        at = locate(quote, sources)
        out.append(citation_fields(n, quote, source=at.source, page=at.page, time=at.time))
    return out
