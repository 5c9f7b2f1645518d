"""The engine that needs no weights: it answers only with the page's own sentences.

Summaries are the page's most central sentences (by the weight of the words they share with
the rest of the page, earlier sentences slightly preferred), kept in page order; answers are
the sentences that BM25 ranks highest for the question. Every sentence is verbatim page text,
so citations point at exactly what was said. It cannot rewrite or translate: those requests
get `unsupported`.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from collections.abc import AsyncIterator

from tiangong.engine.base import ASK, SUMMARIZE, CancelToken, Delta, Engine, Finish, Job
from tiangong.errors import UnsupportedError
from tiangong.text import BM25, Span, count_words, sentences, terms

_PIECES = re.compile(r"\S+\s*|\s+")
_COUNTS = {"short": 3, "medium": 5, "long": 7}
_TLDR = {"short": 1, "medium": 3, "long": 5}


def _primary(tag: str | None) -> str | None:
    return tag.split("-")[0].lower() if tag else None


class ExtractiveEngine(Engine):
    name = "extractive"

    def __init__(self, reason: str | None = None) -> None:
        self.fallback_reason = reason

    @property
    def model(self) -> str:
        return "extractive (page sentences, no model)"

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset({SUMMARIZE, ASK})

    @property
    def context_tokens(self) -> int:
        return 10_000_000

    @property
    def max_concurrency(self) -> int:
        return 4

    def count_tokens(self, text: str) -> int:
        return math.ceil(count_words(text) * 4 / 3)

    async def stream(self, job: Job, cancel: CancelToken) -> AsyncIterator[Delta | Finish]:
        wanted = job.hints.output_language
        page_lang = job.hints.page_lang
        if wanted and page_lang and _primary(wanted) != _primary(page_lang):
            raise UnsupportedError(
                "the extractive engine quotes the page and cannot translate; load a model to "
                f"answer in {wanted}"
            )
        if job.task == "summarize":
            text = self._summary(job)
        elif job.task == "ask":
            text = self._answer(job)
        else:
            raise UnsupportedError(f"the extractive engine cannot {job.task}: it needs a model")
        prompt_tokens = self.count_tokens(job.source_text)
        sent = 0
        for piece in _PIECES.findall(text):
            if cancel.cancelled:
                yield Finish("cancelled", prompt_tokens, sent)
                return
            sent += 1
            yield Delta(piece)
            await asyncio.sleep(0)
        yield Finish("stop", prompt_tokens, sent)

    def _summary(self, job: Job) -> str:
        spans = _candidates(job.source_text)
        if not spans:
            return job.source_text.strip()[:500]
        kind = job.hints.type
        length = job.hints.length
        if kind == "headline":
            title = job.hints.title.strip()
            return title or _rank(spans)[0].text
        if kind == "teaser":
            return spans[0].text
        count = _TLDR[length] if kind == "tldr" else _COUNTS[length]
        best = sorted(_rank(spans)[:count], key=lambda s: s.start)
        if kind == "tldr" or job.hints.format == "plain-text":
            joiner = " " if kind == "tldr" else "\n"
            return joiner.join(s.text for s in best)
        return "\n".join(f"- {s.text}" for s in best)

    def _answer(self, job: Job) -> str:
        spans = _candidates(job.source_text)
        ranked = BM25([s.text for s in spans]).rank(job.question) if spans else []
        if not ranked:
            return "The page does not seem to say anything about that."
        best = sorted((spans[i] for i in ranked[:3]), key=lambda s: s.start)
        return "The page says:\n\n" + "\n\n".join(f"> {s.text}" for s in best)


def _candidates(text: str) -> list[Span]:
    """Sentences that read as statements: not fragments, not walls of text."""
    spans = [s for s in sentences(text) if 4 <= count_words(s.text) <= 80 and "[…]" not in s.text]
    return spans or sentences(text)


def _rank(spans: list[Span]) -> list[Span]:
    doc_terms = [terms(s.text) for s in spans]
    freq: Counter[str] = Counter()
    for ts in doc_terms:
        freq.update(set(ts))
    n = len(spans)

    def score(i: int) -> float:
        ts = set(doc_terms[i])
        if not ts:
            return 0.0
        centrality = sum(math.log1p(freq[t] - 1) for t in ts) / math.sqrt(len(ts))
        return centrality * (1.0 + 0.5 * (1 - i / n))

    order = sorted(range(n), key=lambda i: (-score(i), i))
    return [spans[i] for i in order]
