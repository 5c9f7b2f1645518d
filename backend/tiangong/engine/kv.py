"""A key/value cache that grows in place, and the batch operations the decode loop needs.

transformers' `DynamicLayer` appends with `torch.cat`, copying the whole cache at every
decode step (a fifth of a step's time on the CPU for a 500-token prompt). `GrowableLayer`
keeps spare room and writes new positions in place; `keys`/`values` are views of the
filled part, so the model and every `Cache` method see an ordinary dynamic cache.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

# Room is added in steps of this many positions (and at least doubled), so growing is rare.
GROW_STEP = 256


class GrowableLayer(DynamicLayer):  # type: ignore[no-untyped-call]
    """A `DynamicLayer` with spare capacity along the sequence axis."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._k: torch.Tensor | None = None
        self._v: torch.Tensor | None = None
        self._length = 0
        # Positions to allocate at once: a request reserves its prompt plus answer, so its
        # buffers never move and a cold run and a prefix-cache run see the same layout.
        self.reserved = 0

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        new = key_states.shape[-2]
        self._ensure_room(key_states, value_states, self._length + new)
        assert self._k is not None and self._v is not None
        end = self._length + new
        self._k[:, :, self._length : end] = key_states
        self._v[:, :, self._length : end] = value_states
        self._set_length(end)
        return self.filled()

    def filled(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Views of the filled positions: [batch, kv_heads, length, dim] each."""
        assert self._k is not None and self._v is not None
        return self._k[:, :, : self._length], self._v[:, :, : self._length]

    def _ensure_room(self, key: torch.Tensor, value: torch.Tensor, needed: int) -> None:
        capacity = 0 if self._k is None else self._k.shape[-2]
        if needed <= capacity and self._k is not None and self._k.shape[0] == key.shape[0]:
            return
        room = max(needed, 2 * capacity, self.reserved)
        room = -(-room // GROW_STEP) * GROW_STEP
        k = key.new_empty((*key.shape[:2], room, key.shape[-1]))
        v = value.new_empty((*value.shape[:2], room, value.shape[-1]))
        if self._k is not None and self._v is not None and self._length:
            k[:, :, : self._length] = self._k[:, :, : self._length]
            v[:, :, : self._length] = self._v[:, :, : self._length]
        self._k, self._v = k, v

    def _set_length(self, length: int) -> None:
        assert self._k is not None and self._v is not None
        self._length = length
        self.keys = self._k[:, :, :length]
        self.values = self._v[:, :, :length]

    def load(self, keys: torch.Tensor, values: torch.Tensor, spare: int = 0) -> None:
        """Replace the contents with copies of `keys`/`values`, keeping room for `spare` more."""
        self.is_initialized = True
        self.device = keys.device
        self._k = self._v = None
        self._length = 0
        self._ensure_room(keys, values, keys.shape[-2] + spare)
        assert self._k is not None and self._v is not None
        self._k[:, :, : keys.shape[-2]] = keys
        self._v[:, :, : values.shape[-2]] = values
        self._set_length(keys.shape[-2])

    def get_seq_length(self) -> int:
        return self._length

    def reset(self) -> None:
        self._k = self._v = None
        self._length = 0
        super().reset()

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0:
            raise ValueError("crop takes a negative count")
        if tokens_to_remove and self.is_initialized:
            self._set_length(max(0, self._length + tokens_to_remove))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self._k is None or self._v is None:
            return
        keys, values = self.filled()
        self.load(keys[indices], values[indices], spare=self._k.shape[-2] - self._length)

    def batch_repeat_interleave(self, repeats: int) -> None:
        raise NotImplementedError("beam search is not used here")

    def nbytes(self) -> int:
        if self._k is None or self._v is None:
            return 0
        return int(self._k.nelement() * self._k.element_size() * 2)


def new_cache(config: Any) -> DynamicCache:
    """A dynamic cache whose full-attention layers grow in place."""
    cache = DynamicCache(config=config)
    cache.layers = [
        GrowableLayer() if type(layer) is DynamicLayer else layer for layer in cache.layers
    ]
    return cache


def growable(cache: DynamicCache) -> list[GrowableLayer] | None:
    """The cache's layers when all of them grow in place (batchable); None otherwise."""
    layers = list(cache.layers)
    if all(isinstance(layer, GrowableLayer) for layer in layers):
        return [layer for layer in layers if isinstance(layer, GrowableLayer)]
    return None


def reserve(cache: DynamicCache, positions: int) -> None:
    """Allocate room for `positions` in each growable layer at its first write."""
    room = -(-positions // GROW_STEP) * GROW_STEP
    for layer in cache.layers:
        if isinstance(layer, GrowableLayer):
            layer.reserved = room


def snapshot(cache: DynamicCache) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """Contiguous copies of every layer's keys and values."""
    layers: list[Any] = list(cache.layers)
    return tuple((layer.keys.clone(), layer.values.clone()) for layer in layers)


def load_snapshot(
    cache: DynamicCache, layers: tuple[tuple[torch.Tensor, torch.Tensor], ...]
) -> None:
    """Fill an empty cache with copies of a snapshot's states."""
    targets: list[Any] = list(cache.layers)
    for layer, (keys, values) in zip(targets, layers, strict=True):
        if isinstance(layer, GrowableLayer):
            layer.load(keys, values)
        else:
            layer.update(keys.clone(), values.clone())


def merge_rows(batch: list[GrowableLayer], row: list[GrowableLayer], spare: int) -> tuple[int, int]:
    """Append `row` (one sequence) to `batch`, left-padding the shorter side.

    Returns how many padding positions went before the old batch rows and before the new
    row. Both lists are updated in place (the batch layers take the merged states).
    """
    old_len, new_len = batch[0].get_seq_length(), row[0].get_seq_length()
    length = max(old_len, new_len)
    for target, source in zip(batch, row, strict=True):
        parts_k, parts_v = [], []
        for layer, own in ((target, old_len), (source, new_len)):
            k, v = layer.filled()
            if own < length:
                pad = (0, 0, length - own, 0)
                k = torch.nn.functional.pad(k, pad)
                v = torch.nn.functional.pad(v, pad)
            parts_k.append(k)
            parts_v.append(v)
        target.load(torch.cat(parts_k), torch.cat(parts_v), spare=spare)
    return length - old_len, length - new_len


def select_rows(
    layers: list[GrowableLayer], keep: torch.Tensor, drop_front: int, spare: int
) -> None:
    """Keep only the rows `keep`, dropping `drop_front` leading positions (all padding)."""
    for layer in layers:
        keys, values = layer.filled()
        k, v = keys[keep, :, drop_front:], values[keep, :, drop_front:]
        layer.load(k, v, spare=spare)
