"""A key/value cache that grows in place, and the row operations a decode batch needs.

transformers' `DynamicLayer` appends with `torch.cat`, copying the whole cache at every
decode step (a fifth of a step's time on the CPU for a 500-token prompt). `GrowableLayer`
keeps spare room, rows as well as positions, and writes new states in place; `keys` and
`values` are views of the active rows' filled positions, so the model and every `Cache`
method see an ordinary dynamic cache.

A decode batch keeps its rows in one such layer per model layer. A request joining it
copies only its own states into a free row; one leaving moves the last row into its
place. The whole cache is copied only when the storage must grow (room doubles each
time) or when most positions have become padding (see `Batch` in `engine/batch.py`).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

# Room is added in steps of this many positions (and at least doubled), so growing is rare.
GROW_STEP = 256


def round_up(positions: int) -> int:
    return -(-positions // GROW_STEP) * GROW_STEP


class GrowableLayer(DynamicLayer):  # type: ignore[no-untyped-call]
    """A `DynamicLayer` with spare capacity along the row and the position axes."""

    def __init__(self, dtype: torch.dtype | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        # The storage's dtype; None: that of the states written (see `new_cache`).
        self.dtype = dtype
        # Storage: [row room, kv_heads, position room, head_dim].
        self._k: torch.Tensor | None = None
        self._v: torch.Tensor | None = None
        self._rows = 0
        self._length = 0
        # Positions to allocate at once: a request reserves its prompt plus answer, so its
        # buffers never move and a cold run and a prefix-cache run see the same layout.
        self.reserved = 0

    # -- what the model calls -----------------------------------------------------------

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        rows, new = key_states.shape[0], key_states.shape[-2]
        if self._k is None:
            self._allocate_like(key_states, value_states, rows, max(new, self.reserved))
            self._rows = rows
        elif rows != self._rows:
            raise ValueError(f"{rows} rows of new states for a cache of {self._rows} rows")
        end = self._length + new
        self.make_room(rows, end)
        assert self._k is not None and self._v is not None
        self._k[:rows, :, self._length : end] = key_states
        self._v[:rows, :, self._length : end] = value_states
        self._set_shape(rows, end)
        return self.filled()

    def append(
        self, key_states: torch.Tensor, value_states: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`update` with one new position for every row (a decode step): the same writes
        without the checks a general update makes, where the room is there (a request
        reserves room for its whole answer). A lean decode step calls it once a layer."""
        keys, values, rows, at = self._k, self._v, self._rows, self._length
        if keys is None or values is None or at >= keys.shape[2] or key_states.shape[0] != rows:
            return self.update(key_states, value_states)
        keys[:rows, :, at : at + 1].copy_(key_states)
        values[:rows, :, at : at + 1].copy_(value_states)
        filled_keys, filled_values = keys[:rows, :, : at + 1], values[:rows, :, : at + 1]
        self._length, self.keys, self.values = at + 1, filled_keys, filled_values
        return filled_keys, filled_values

    def get_seq_length(self) -> int:
        return self._length

    def reset(self) -> None:
        self._k = self._v = None
        self._rows = self._length = 0
        super().reset()

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0:
            raise ValueError("crop takes a negative count")
        if tokens_to_remove and self.is_initialized:
            self._set_shape(self._rows, max(0, self._length + tokens_to_remove))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        raise NotImplementedError("rows leave through remove_row")

    def batch_repeat_interleave(self, repeats: int) -> None:
        raise NotImplementedError("beam search is not used here")

    # -- what the batch calls -----------------------------------------------------------

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def room(self) -> tuple[int, int]:
        """(rows, positions) the storage holds without growing."""
        if self._k is None:
            return 0, 0
        return self._k.shape[0], self._k.shape[-2]

    def filled(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Views of the filled positions: [rows, kv_heads, length, dim] each."""
        assert self._k is not None and self._v is not None
        return self._k[: self._rows, :, : self._length], self._v[: self._rows, :, : self._length]

    def make_room(self, rows: int, positions: int, drop_front: int = 0) -> None:
        """Grow the storage to hold `rows` x `positions` (a copy of the filled part, only
        when it does not fit). `drop_front` leading positions are dropped in that copy."""
        have_rows, have_positions = self.room
        if rows <= have_rows and positions <= have_positions and not drop_front:
            return
        assert self._k is not None and self._v is not None
        keys, values = self._k, self._v
        wanted = positions - drop_front
        # Half as much again each time: rare growth without doubling a large cache.
        new_rows = have_rows if rows <= have_rows else max(rows, 2 * have_rows)
        new_positions = (
            have_positions if wanted <= have_positions else max(wanted, have_positions * 3 // 2)
        )
        self._allocate_like(keys, values, new_rows, new_positions)
        kept = max(0, self._length - drop_front)
        if self._rows and kept:
            self._k[: self._rows, :, :kept] = keys[: self._rows, :, drop_front : self._length]
            self._v[: self._rows, :, :kept] = values[: self._rows, :, drop_front : self._length]
        self._set_shape(self._rows, kept)

    def put_row(self, row: int, source: GrowableLayer, at: int) -> None:
        """Copy `source`'s one row of states into row `row` from position `at` on; the
        positions before it are zeroed (padding must hold finite numbers)."""
        keys, values = source.filled()
        end = at + keys.shape[-2]
        assert self._k is not None and self._v is not None and end <= self.room[1]
        self._k[row, :, :at].zero_()
        self._v[row, :, :at].zero_()
        self._k[row, :, at:end] = keys[0]
        self._v[row, :, at:end] = values[0]

    def extend(self, rows: int, length: int) -> None:
        """Make `rows` rows and `length` positions active; new positions of the old rows
        are zeroed padding (the room must be there: `make_room` first)."""
        assert self._k is not None and self._v is not None
        if length > self._length:
            self._k[: self._rows, :, self._length : length].zero_()
            self._v[: self._rows, :, self._length : length].zero_()
        self._set_shape(rows, max(length, self._length))

    def remove_row(self, row: int) -> None:
        """Drop row `row`: the last row moves into its place (one row copied, not all)."""
        assert self._k is not None and self._v is not None
        last = self._rows - 1
        if row != last:
            self._k[row, :, : self._length] = self._k[last, :, : self._length]
            self._v[row, :, : self._length] = self._v[last, :, : self._length]
        self._set_shape(last, self._length)

    def nbytes(self) -> int:
        if self._k is None or self._v is None:
            return 0
        return int(self._k.nelement() * self._k.element_size() * 2)

    # -- inside -------------------------------------------------------------------------

    def _allocate_like(
        self, key: torch.Tensor, value: torch.Tensor, rows: int, positions: int
    ) -> None:
        positions = round_up(positions)
        dtype = self.dtype or key.dtype
        k = key.new_empty((rows, key.shape[1], positions, key.shape[-1]), dtype=dtype)
        v = value.new_empty((rows, value.shape[1], positions, value.shape[-1]), dtype=dtype)
        self._k, self._v = k, v

    def _set_shape(self, rows: int, length: int) -> None:
        assert self._k is not None and self._v is not None
        self._rows, self._length = rows, length
        self.keys = self._k[:rows, :, :length]
        self.values = self._v[:rows, :, :length]


def new_cache(config: Any, dtype: torch.dtype | None = None) -> DynamicCache:
    """A dynamic cache whose full-attention layers grow in place, holding their states as
    `dtype` (None: as computed). A wider dtype than the model's holds its states exactly;
    `engine/attention.py` says why the CPU keeps bf16 models' states as fp32."""
    cache = DynamicCache(config=config)
    cache.layers = [
        GrowableLayer(dtype) if type(layer) is DynamicLayer else layer for layer in cache.layers
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
    for layer in cache.layers:
        if isinstance(layer, GrowableLayer):
            layer.reserved = round_up(positions)


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
            layer.update(keys, values)
        else:
            layer.update(keys.clone(), values.clone())
