"""The requests decoding together and their shared key/value cache.

Rows share one position axis: a row's own states sit at the end of what was filled when it
joined (left padding before them), and every decode step appends one position to all rows.
A `valid` mask marks the padding, and each row's position ids are its own, so every row's
states are those it would have alone.

Joining copies only the new row's states into a free row of the batch cache; when the new
row is longer than the batch so far, the old rows get padding after their states instead of
being moved. Leaving moves the last row into the freed one. The whole cache is copied only
when the storage must grow, or when at least half of the positions (and a few hundred) have
become padding for every row (a long request left), so that short rows stop paying for it.

What a failure touches: growing during a join changes no row's states (each layer grows
whole before the next), so a join that fails fails only the joining request; a failure
while rows are rearranged (a leave, or the compaction after it) leaves the batch cache in an
unknown state and fails every row.
"""

from __future__ import annotations

from typing import Any

import torch

from tiangong.engine.kv import GROW_STEP, GrowableLayer, growable
from tiangong.engine.sequence import Sequence


class Batch:
    def __init__(self) -> None:
        self.rows: list[Sequence] = []
        self.cache: Any = None
        # [rows, positions]: True where a row has a real token (False: padding); None: all.
        self.valid: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def spare(self, extra: Sequence | None = None) -> int:
        """Positions still to come for the longest remaining answer, plus one."""
        rows = [*self.rows, extra] if extra is not None else self.rows
        return max((s.max_new - len(s.generated) for s in rows), default=0) + 1

    def _layers(self) -> list[GrowableLayer]:
        layers = growable(self.cache)
        assert layers is not None, "only a cache that grows in place holds several rows"
        return layers

    def add(self, seq: Sequence) -> None:
        """Take `seq` (prefilled, its first token chosen) into the batch."""
        assert seq.cache is not None
        if not self.rows:
            # The first row's own cache becomes the batch cache: nothing is copied.
            self.cache, seq.cache = seq.cache, None
            self.valid = None
            self.rows = [seq]
            return
        ours, theirs = self._layers(), growable(seq.cache)
        assert theirs is not None
        old_len, new_len = ours[0].get_seq_length(), theirs[0].get_seq_length()
        length = max(old_len, new_len)
        row = len(self.rows)
        for layer in ours:
            layer.make_room(row + 1, length + self.spare(seq))
        at = length - new_len
        for layer, source in zip(ours, theirs, strict=True):
            layer.put_row(row, source, at)
        for layer in ours:
            layer.extend(row + 1, length)
        seq.cache = None
        valid = self.valid if self.valid is not None else torch.ones(row, old_len, dtype=torch.bool)
        valid = torch.nn.functional.pad(valid, (0, length - old_len), value=False)
        new_valid = torch.zeros(1, length, dtype=torch.bool)
        new_valid[:, at:] = True
        self.valid = torch.cat([valid, new_valid])
        self.rows.append(seq)

    def remove(self, leaving: list[int]) -> None:
        """Drop the rows at `leaving`; padding every row has in front goes when it is most."""
        if not leaving:
            return
        if len(leaving) == len(self.rows):
            self.rows, self.cache, self.valid = [], None, None
            return
        layers = self._layers()
        for index in sorted(leaving, reverse=True):
            for layer in layers:
                layer.remove_row(index)
            last = len(self.rows) - 1
            self.rows[index] = self.rows[last]
            self.rows.pop()
            if self.valid is not None:
                self.valid[index] = self.valid[last]
                self.valid = self.valid[:last]
        self._compact(layers)

    def _compact(self, layers: list[GrowableLayer]) -> None:
        if self.valid is None:
            return
        length = self.valid.shape[1]
        real = self.valid.any(dim=0).nonzero()
        drop = int(real[0].item()) if len(real) else 0
        if drop >= GROW_STEP and 2 * drop >= length:
            for layer in layers:
                layer.make_room(len(self.rows), length + self.spare(), drop_front=drop)
            self.valid = self.valid[:, drop:]
        if bool(self.valid.all()):
            self.valid = None

    def step_inputs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Input ids, position ids and the valid mask (with the new position) of a step."""
        ids = torch.tensor([[s.generated[-1]] for s in self.rows], dtype=torch.long)
        positions = torch.tensor([[s.position] for s in self.rows], dtype=torch.long)
        valid = None
        if self.valid is not None:
            self.valid = torch.cat(
                [self.valid, torch.ones(len(self.rows), 1, dtype=torch.bool)], dim=1
            )
            valid = self.valid
        return ids, positions, valid
