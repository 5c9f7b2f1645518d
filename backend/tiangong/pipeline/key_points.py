"""Step: the sentences that carry a page, for a summary written from them (pure functions).

The lead (a news page's first sentence says most), then one sentence from each part of the
rest of the page, so the summary covers all of it and not only its start: within a part the
most central sentence (closest to the page's own word distribution, TF-IDF weighted), of a
readable length, unlike any sentence already chosen.
"""

from __future__ import annotations

import math
from collections import Counter

from tiangong.pipeline.evidence import readable_sentences
from tiangong.text import Span, terms

# Sentences in these word counts read as one fact; shorter are captions, longer run on.
MIN_WORDS = 6
MAX_WORDS = 45
# A candidate sharing more than this share of its terms with a chosen sentence repeats it.
MAX_OVERLAP = 0.5


def _vector(span: Span, idf: dict[str, float]) -> dict[str, float]:
    counts = Counter(terms(span.text))
    return {t: c * idf.get(t, 0.0) for t, c in counts.items()}


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    dot = sum(v * b.get(t, 0.0) for t, v in a.items())
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return dot / norm if norm else 0.0


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(1, min(len(a), len(b)))


def key_sentences(text: str, count: int) -> list[Span]:
    """Up to `count` sentences of `text` that carry it, in page order."""
    spans = [s for s in readable_sentences(text) if MIN_WORDS <= len(s.text.split()) <= MAX_WORDS]
    if not spans:
        spans = readable_sentences(text)
    if len(spans) <= count:
        return spans
    docs = [set(terms(s.text)) for s in spans]
    df: Counter[str] = Counter(t for d in docs for t in d)
    idf = {t: math.log(1 + len(spans) / f) for t, f in df.items()}
    vectors = [_vector(s, idf) for s in spans]
    centroid: Counter[str] = Counter()
    for v in vectors:
        centroid.update(v)
    central = [_cosine(v, dict(centroid)) for v in vectors]
    chosen = [0]  # the lead
    rest = len(spans) - 1
    parts = count - 1
    for part in range(parts):
        lo = 1 + part * rest // parts
        hi = 1 + (part + 1) * rest // parts
        candidates = sorted(range(lo, hi), key=lambda i: -central[i])
        for i in candidates:
            if all(_overlap(docs[i], docs[j]) <= MAX_OVERLAP for j in chosen):
                chosen.append(i)
                break
    # A part that only repeats what was chosen gives its place to the best sentence left.
    for i in sorted(range(1, len(spans)), key=lambda i: -central[i]):
        if len(chosen) >= count:
            break
        if i not in chosen and all(_overlap(docs[i], docs[j]) <= MAX_OVERLAP for j in chosen):
            chosen.append(i)
    return [spans[i] for i in sorted(chosen)]
