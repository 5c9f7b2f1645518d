"""How a page fits the model's context, counted in the model's own tokens (pure functions).

- whole:    the page fits; the model reads all of it.
- retrieve: a question about a page that does not fit: the chunks (cut on block boundaries)
            that BM25 ranks highest for the question, in page order, until the budget is full.
- map-reduce: a summary of a page that does not fit: the page cut on block boundaries into
            chunks that each fit (the map step summarizes every chunk), then the notes are
            summarized (the reduce step, in rounds while they do not fit). All of the page
            is read: coverage is 1.
- evidence: a model too small to use a long context (`Engine.reading`): for a question, the
            few passages that answer it (`evidence.gather_evidence`), even when the whole
            page would fit; for a summary, the sentences that carry the page
            (`key_points.key_sentences`), each rewritten alone. `coverage` is the share of
            the page's tokens the model was given.
- truncate: one of several pages asked about together whose share of the context cannot
            hold it, in a summary: the page from its start until its share is full;
            `coverage` says how much was read.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from tiangong.errors import TooLargeError
from tiangong.text import BM25, sentences

Strategy = Literal["whole", "retrieve", "map-reduce", "evidence", "truncate"]
# Map chunks are at most this many tokens even when the context takes more: small models
# keep more of a short part in their notes, and the work per chunk stays bounded.
MAP_CHUNK_TOKENS = 1536
# Retrieval ranks passages of about this size (smaller when the budget is).
RETRIEVE_CHUNK_TOKENS = 256
GAP = "\n\n[…]\n\n"
# Tokens kept free between the prompt and the answer budget (template quirks, rounding).
MARGIN_TOKENS = 16
# Less room than this for the page is no room at all.
MIN_PAGE_TOKENS = 64


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
    # map-reduce: the page's chunks, in page order, each within the budget.
    chunks: tuple[Chunk, ...] = ()

    @property
    def coverage(self) -> float:
        if self.page_tokens == 0:
            return 1.0
        return round(min(1.0, self.used_tokens / self.page_tokens), 4)


def page_budget(context_tokens: int, *, answer_tokens: int, prompt_tokens: int) -> int:
    """Tokens left for the page once the prompt around it and the answer are counted."""
    budget = context_tokens - answer_tokens - prompt_tokens - MARGIN_TOKENS
    if budget < MIN_PAGE_TOKENS:
        raise TooLargeError(
            f"the question and history leave no room for the page in a {context_tokens}"
            "-token context; start a new conversation"
        )
    return budget


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
    if question:
        size = min(RETRIEVE_CHUNK_TOKENS, budget)
        pieces = split_long_blocks(blocks or [text], count_tokens, size)
        chunks = chunk_blocks(pieces, count_tokens, chunk_tokens=size)
        order = BM25([c.text for c in chunks]).rank(question)
        # Chunks the question shares no term with still beat an empty context: page order.
        order += [c.index for c in chunks if c.index not in set(order)]
        chosen = _fill(chunks, order, budget)
        return Plan("retrieve", GAP.join(c.text for c in chosen), page_tokens, _used(chosen))
    size = min(budget, MAP_CHUNK_TOKENS)
    pieces = split_long_blocks(blocks or [text], count_tokens, size)
    parts = tuple(chunk_blocks(pieces, count_tokens, chunk_tokens=size))
    return Plan("map-reduce", "", page_tokens, page_tokens, parts)


def evidence_plan(text: str, passages: Sequence[str], count_tokens: Callable[[str], int]) -> Plan:
    """The plan of a small model given only `passages` of the page."""
    context = "\n\n".join(passages)
    used = sum(count_tokens(p) for p in passages)
    return Plan("evidence", context, count_tokens(text), min(used, count_tokens(text)))


def plan_head(
    text: str, blocks: Sequence[str], *, count_tokens: Callable[[str], int], budget: int
) -> Plan:
    """The page from its start, in whole passages, until `budget` is full."""
    page_tokens = count_tokens(text)
    if page_tokens <= budget:
        return Plan("whole", text, page_tokens, page_tokens)
    size = min(RETRIEVE_CHUNK_TOKENS, budget)
    pieces = split_long_blocks(blocks or [text], count_tokens, size)
    chosen: list[Chunk] = []
    used = 0
    for chunk in chunk_blocks(pieces, count_tokens, chunk_tokens=size):
        if used + chunk.tokens > budget:
            break
        chosen.append(chunk)
        used += chunk.tokens
    return Plan("truncate", "\n\n".join(c.text for c in chosen), page_tokens, used)


def split_long_blocks(
    blocks: Sequence[str], count_tokens: Callable[[str], int], limit: int
) -> list[str]:
    """Blocks, with any longer than `limit` tokens cut between sentences (or words)."""
    out: list[str] = []
    for block in blocks:
        if count_tokens(block) <= limit:
            out.append(block)
            continue
        # Cut where sentences start, so no character of the block is lost.
        starts = [0, *[s.start for s in sentences(block)][1:], len(block)]
        pieces = [block[a:b].strip() for a, b in itertools.pairwise(starts)]
        out.extend(_pack([p for p in pieces if p], count_tokens, limit, " "))
    return out


def _pack(
    pieces: Sequence[str], count_tokens: Callable[[str], int], limit: int, joiner: str
) -> list[str]:
    """Consecutive pieces joined up to `limit` tokens; a piece too long alone is cut by words."""
    out: list[str] = []
    current: list[str] = []
    for piece in pieces:
        if count_tokens(piece) > limit:
            words = piece.split()
            if len(words) > 1:
                out.extend(_flush(current, joiner))
                current = []
                out.extend(_pack(_halves(words), count_tokens, limit, " "))
                continue
            # One unbreakable word beyond the limit: its own piece, cut by characters.
            step = max(1, len(piece) * limit // max(1, count_tokens(piece)))
            out.extend(_flush(current, joiner))
            current = []
            out.extend(piece[i : i + step] for i in range(0, len(piece), step))
            continue
        if current and count_tokens(joiner.join([*current, piece])) > limit:
            out.extend(_flush(current, joiner))
            current = []
        current.append(piece)
    out.extend(_flush(current, joiner))
    return out


def _halves(words: list[str]) -> list[str]:
    middle = len(words) // 2
    return [" ".join(words[:middle]), " ".join(words[middle:])]


def _flush(current: list[str], joiner: str) -> list[str]:
    return [joiner.join(current)] if current else []


def group_notes(
    notes: Sequence[str], count_tokens: Callable[[str], int], budget: int
) -> list[list[str]]:
    """Consecutive notes grouped so each group fits `budget` (the reduce step's input)."""
    groups: list[list[str]] = []
    size = 0
    for note in notes:
        n = count_tokens(note) + 4
        if groups and size + n <= budget:
            groups[-1].append(note)
            size += n
        else:
            groups.append([note])
            size = n
    return groups


def _fill(chunks: Sequence[Chunk], order: Sequence[int], budget: int) -> list[Chunk]:
    chosen: list[Chunk] = []
    used = 0
    gap = 4  # tokens the separator costs, about
    for i in order:
        chunk = chunks[i]
        if used + chunk.tokens + gap > budget:
            continue
        chosen.append(chunk)
        used += chunk.tokens + gap
    return sorted(chosen, key=lambda c: c.index)


def _used(chunks: Sequence[Chunk]) -> int:
    return sum(c.tokens for c in chunks)
