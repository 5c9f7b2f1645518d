"""Several pages (open tabs, PDFs) read together: the token budget shared between them, the
context that marks each one, and which page and PDF page a citation quotes (pure functions).

The split is simple and fair: each page gets an equal share of the budget and is planned on
its own (whole when it fits; else the passages BM25 ranks highest for the question, or its
start for a summary). Share a short page leaves unused goes to the longer ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tiangong.pipeline.plan import Plan, Strategy, plan_head, plan_page

HEADER_TOKENS = 24  # what one source's header line costs, about


class SourceDoc(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def blocks(self) -> tuple[str, ...]: ...
    @property
    def lang(self) -> str | None: ...
    @property
    def words(self) -> int: ...
    def page_of(self, quote: str) -> int | None: ...
    def time_of(self, quote: str) -> float | None: ...


@dataclass(frozen=True)
class SourcesPlan:
    plans: tuple[Plan, ...]
    context: str  # every page's planned text under a "[n] title — url" header

    @property
    def page_tokens(self) -> int:
        return sum(p.page_tokens for p in self.plans)

    @property
    def used_tokens(self) -> int:
        return sum(p.used_tokens for p in self.plans)

    @property
    def combined(self) -> Plan:
        """One plan for the start frame: whole only when every page was read whole."""
        strategies = {p.strategy for p in self.plans}
        strategy: Strategy = "truncate"
        if strategies == {"whole"}:
            strategy = "whole"
        elif strategies == {"evidence"}:
            strategy = "evidence"
        elif "retrieve" in strategies:
            strategy = "retrieve"
        elif strategies <= {"whole", "map-reduce"}:
            strategy = "map-reduce"
        return Plan(strategy, self.context, self.page_tokens, self.used_tokens)


def source_header(index: int, doc: SourceDoc) -> str:
    where = f" — {doc.url}" if doc.url else ""
    return f"[{index + 1}] {doc.title or 'Untitled'}{where}"


def plan_sources(
    docs: Sequence[SourceDoc],
    *,
    count_tokens: Callable[[str], int],
    budget: int,
    question: str | None = None,
) -> SourcesPlan:
    """Each page planned within an equal share of `budget`; unused share passes on."""
    sizes = [count_tokens(doc.text) for doc in docs]
    available = budget - HEADER_TOKENS * len(docs)
    plans: list[Plan | None] = [None] * len(docs)
    # Smallest first: what a short page leaves unused is shared by the pages still to plan.
    for position, index in enumerate(sorted(range(len(docs)), key=lambda i: sizes[i])):
        share = max(32, available // (len(docs) - position))
        doc = docs[index]
        plan = plan_page(
            doc.text, doc.blocks, count_tokens=count_tokens, budget=share, question=question
        )
        if plan.strategy == "map-reduce":
            # Pages summarized together share one pass: a page over its share is read from
            # its start (coverage says how much), not mapped on its own.
            plan = plan_head(doc.text, doc.blocks, count_tokens=count_tokens, budget=share)
        plans[index] = plan
        available -= plan.used_tokens if plan.strategy == "whole" else share
    done = tuple(p for p in plans if p is not None)
    parts = [f"{source_header(i, doc)}\n\n{done[i].context}" for i, doc in enumerate(docs)]
    return SourcesPlan(done, "\n\n".join(parts))


@dataclass(frozen=True)
class Place:
    """Where a quote was found: which page (with several), which PDF page, which second of a
    video (a transcript)."""

    source: int | None = None
    page: int | None = None
    time: float | None = None


def locate(quote: str, docs: Sequence[SourceDoc]) -> Place:
    """Where a verbatim quote comes from, when found."""
    probe = quote.strip()[:80]
    for index, doc in enumerate(docs):
        if probe and probe in doc.text:
            source = index if len(docs) > 1 else None
            return Place(source, doc.page_of(quote), doc.time_of(quote))
    return Place()
