"""How a page fits the model's context, counted in the model's own tokens (pure functions).

- whole:    the page fits; the model reads all of it.
- retrieve: a question about a page that does not fit: the chunks (cut on block boundaries)
            that BM25 ranks highest for the question, in page order, until the budget is full.
- truncate: a summary of a page that does not fit: the page from its start until the budget
            is full; `coverage` says honestly how much was read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from tiangong.text import BM25

Strategy = Literal["whole", "retrieve", "truncate"]
GAP = "\n\n[…]\n\n"


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    tokens: int


@dataclass(frozen=True)
class Plan:
    strategy: Strategy
    context: str
    page_tokens: int
    used_tokens: int

    @property
    def coverage(self) -> float:
        if self.page_tokens == 0:
            return 1.0
        return round(min(1.0, self.used_tokens / self.page_tokens), 4)


def chunk_blocks(
    blocks: Sequence[str], count_tokens: Callable[[str], int], *, chunk_tokens: int = 256
) -> list[Chunk]:
    """Consecutive blocks grouped up to `chunk_tokens`; a longer block is its own chunk."""
    chunks: list[Chunk] = []
    parts: list[str] = []
    size = 0
    for block in blocks:
        n = count_tokens(block)
        if parts and size + n > chunk_tokens:
            chunks.append(Chunk(len(chunks), "\n\n".join(parts), size))
            parts, size = [], 0
        parts.append(block)
        size += n
    if parts:
        chunks.append(Chunk(len(chunks), "\n\n".join(parts), size))
    return chunks


def plan_page(
    text: str,
    blocks: Sequence[str],
    *,
    count_tokens: Callable[[str], int],
    budget: int,
    question: str | None = None,
) -> Plan:
    page_tokens = count_tokens(text)
    if page_tokens <= budget:
        return Plan("whole", text, page_tokens, page_tokens)
    chunks = chunk_blocks(blocks or [text], count_tokens)
    if question:
        order = BM25([c.text for c in chunks]).rank(question)
        # Chunks the question shares no term with still beat an empty context: page order.
        order += [c.index for c in chunks if c.index not in set(order)]
        chosen = _fill(chunks, order, budget)
        return Plan("retrieve", GAP.join(c.text for c in chosen), page_tokens, _used(chosen))
    chosen = _fill(chunks, range(len(chunks)), budget, stop_at_first_miss=True)
    return Plan("truncate", "\n\n".join(c.text for c in chosen), page_tokens, _used(chosen))


def _fill(
    chunks: Sequence[Chunk], order: Sequence[int], budget: int, *, stop_at_first_miss: bool = False
) -> list[Chunk]:
    chosen: list[Chunk] = []
    used = 0
    gap = 4  # tokens the separator costs, about
    for i in order:
        chunk = chunks[i]
        if used + chunk.tokens + gap > budget:
            if stop_at_first_miss:
                break
            continue
        chosen.append(chunk)
        used += chunk.tokens + gap
    return sorted(chosen, key=lambda c: c.index)


def _used(chunks: Sequence[Chunk]) -> int:
    return sum(c.tokens for c in chunks)
