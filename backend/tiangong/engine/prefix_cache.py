"""Per-page prefix cache: the key/value states of a prompt's shared prefix, kept for reuse.

The page prompt (instructions + page, the system turn) is the same for the summary, every
question and every follow-up about one page. Its states are kept after the first prefill,
keyed by a hash of the prefix's token ids, and copied into each later request's cache, so
only the question itself is prefilled. Entries are evicted least recently used first when
their bytes exceed the budget. Only the generation thread touches it (no locking).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch

# Below this many tokens a prefix is cheaper to recompute than to keep.
MIN_PREFIX_TOKENS = 32


def prefix_key(ids: Sequence[int]) -> str:
    data = b"".join(int(i).to_bytes(4, "little", signed=False) for i in ids)
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class PrefixEntry:
    """One prefix's states: per layer, keys and values of shape [1, kv_heads, length, dim]."""

    length: int
    layers: tuple[tuple[torch.Tensor, torch.Tensor], ...]

    @property
    def nbytes(self) -> int:
        return sum(k.nelement() * k.element_size() * 2 for k, _ in self.layers)


class PrefixCache:
    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[str, PrefixEntry] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> PrefixEntry | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: str, entry: PrefixEntry) -> bool:
        """Keep `entry` (evicting older ones); False when it alone exceeds the budget."""
        size = entry.nbytes
        if size > self.budget_bytes:
            return False
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.nbytes
        while self._entries and self._bytes + size > self.budget_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.nbytes
        self._entries[key] = entry
        self._bytes += size
        return True

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
