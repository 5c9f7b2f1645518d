"""Step: the evidence for a question. The page's sentences ranked for it, and the few short
passages a small model is given instead of the whole page (pure functions).

A sentence's score is its own BM25 score, plus half its neighbours' (an answer often sits
next to the sentence that names the subject), plus a bonus for each name or number of the
question it contains. A short follow-up ("And who disagrees?") is ranked with the earlier
question at half weight, so a pronoun still finds the passage the conversation is about.
Terms are those of `tiangong.text.terms`: words, or character bigrams for CJK.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tiangong.text import BM25, Span, sentences, terms

# Passages given to the model: the best sentences, each with the sentence after it.
EVIDENCE_SENTENCES = 3
FOLLOWING_SENTENCES = 1
NEIGHBOUR_WEIGHT = 0.5
EARLIER_QUESTION_WEIGHT = 0.5
# A follow-up with at most this many search terms leans on the question before it.
FOLLOW_UP_TERMS = 4
# Shorter than this (characters) is a caption, a date line or a menu item, not a sentence.
MIN_SENTENCE_CHARS = 20
_GAP_MARK = "[…]"
# Names (a capital inside the question) and numbers the answer's sentence should contain.
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-ZÀ-ÖØ-ÞА-ЯЁ][\w'’-]+")
_NUMBER = re.compile(r"\d[\d.,:/-]*")


@dataclass(frozen=True)
class Evidence:
    """What the page says nearest to a question."""

    passages: tuple[str, ...]  # in page order, each a verbatim slice of the page
    best: str  # the single sentence that answers best (or the page's first, when none does)
    matched: bool  # whether any sentence shares a term with the question
    # `best` and the sentence after it: what is quoted when the model's answer fails the check.
    following: str = ""
    score: float = 0.0  # `best`'s score: which of several pages' evidence answers best

    @property
    def best_passage(self) -> tuple[str, ...]:
        return tuple(s for s in (self.best, self.following) if s)

    @property
    def text(self) -> str:
        return "\n\n".join(self.passages)


def readable_sentences(text: str) -> list[Span]:
    """The page's sentences worth quoting: long enough, not a gap mark of a cut page."""
    return [s for s in sentences(text, min_chars=MIN_SENTENCE_CHARS) if _GAP_MARK not in s.text]


def question_marks(question: str) -> set[str]:
    """The names and numbers of a question, as search terms."""
    found = [m.group() for m in _NAME.finditer(question.strip())]
    found += [m.group().strip(".,:/-") for m in _NUMBER.finditer(question)]
    return {t for word in found for t in terms(word)}


def rank_sentences(
    spans: Sequence[Span], question: str, *, earlier: Sequence[str] = ()
) -> list[float]:
    """Each sentence's score for `question` (see the module docstring)."""
    if not spans:
        return []
    bm25 = BM25([s.text for s in spans])
    own = bm25.scores(question)
    if earlier and len(terms(question)) <= FOLLOW_UP_TERMS:
        before = bm25.scores(earlier[-1])
        own = [a + EARLIER_QUESTION_WEIGHT * b for a, b in zip(own, before, strict=True)]
    marks = question_marks(question)
    top = max(own) or 1.0
    scores = []
    for i, span in enumerate(spans):
        near = (own[i - 1] if i > 0 else 0.0) + (own[i + 1] if i + 1 < len(own) else 0.0)
        bonus = len(marks & set(terms(span.text))) * 0.5 * top if own[i] > 0 else 0.0
        scores.append(own[i] + NEIGHBOUR_WEIGHT * near + bonus)
    return scores


def gather_evidence(
    text: str,
    question: str,
    *,
    earlier: Sequence[str] = (),
    count: int = EVIDENCE_SENTENCES,
) -> Evidence:
    """The best `count` sentences for `question`, each with the one after it, in page order;
    overlapping passages are merged."""
    spans = readable_sentences(text) or sentences(text)
    if not spans:
        return Evidence((), "", False)
    scores = rank_sentences(spans, question, earlier=earlier)
    order = sorted(range(len(spans)), key=lambda i: (-scores[i], i))
    matched = scores[order[0]] > 0
    chosen = order[:count] if matched else [0]
    ranges: list[tuple[int, int]] = []
    for i in sorted(chosen):
        last = min(len(spans) - 1, i + FOLLOWING_SENTENCES)
        if ranges and i <= ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], last))
        else:
            ranges.append((i, last))
    passages = tuple(text[spans[a].start : spans[b].end] for a, b in ranges)
    best = order[0] if matched else 0
    following = spans[best + 1].text if best + 1 < len(spans) else ""
    return Evidence(passages, spans[best].text, matched, following, scores[best])


def across(evidence: Sequence[Evidence]) -> Evidence:
    """The evidence of several pages as one: every page's passages, in the pages' order, and
    the best sentence of the page that answers best."""
    top = max(evidence, key=lambda e: (e.matched, e.score))
    passages = tuple(p for e in evidence for p in e.passages)
    return Evidence(passages, top.best, top.matched, top.following, top.score)
