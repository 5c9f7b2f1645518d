"""The generation loop: one thread owns the model and serves every request at once.

Each turn of the loop does at most one prompt chunk (chunked prefill) for the most urgent
waiting request, then one decode step for every request already answering, as one batch.
So a new question starts while other answers keep streaming, an interactive request goes
ahead of background work (the map step of a long summary), and a cancel is seen between
any two chunks or decode steps, after which the request's cache is released.

Requests answering together share one key/value cache, left-padded to a common length
with an attention mask (the states of each row are those it would have alone). The page
prefix of a prompt is kept in a `PrefixCache` and copied into later requests that share
it, so follow-up questions prefill only themselves.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import torch

from tiangong.engine.kv import (
    growable,
    load_snapshot,
    merge_rows,
    new_cache,
    reserve,
    select_rows,
    snapshot,
)
from tiangong.engine.prefix_cache import MIN_PREFIX_TOKENS, PrefixCache, PrefixEntry, prefix_key
from tiangong.engine.sequence import Sequence
from tiangong.errors import EngineFailedError, TiangongError, TooLargeError

log = logging.getLogger(__name__)


def engine_error(exc: BaseException, device: str) -> BaseException:
    """What a failure inside generation becomes for the caller."""
    if isinstance(exc, TiangongError):
        return exc
    if isinstance(exc, torch.OutOfMemoryError):
        if device == "cuda":
            torch.cuda.empty_cache()
        log.warning("out of memory while generating: %s", exc)
        return EngineFailedError(
            "the model ran out of memory while generating; try a shorter page or a smaller model"
        )
    log.error("generation failed", exc_info=exc)
    return EngineFailedError(
        f"the model failed while generating ({type(exc).__name__}); the server log has the details"
    )


class Batch:
    """The requests decoding together and their shared, left-padded cache."""

    def __init__(self) -> None:
        self.rows: list[Sequence] = []
        self.cache: Any = None
        # [rows, positions]: True where a row has a real token (False: left padding).
        self.valid: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def spare(self) -> int:
        return max((s.max_new - len(s.generated) for s in self.rows), default=0) + 1

    def add(self, seq: Sequence) -> None:
        assert seq.cache is not None
        if not self.rows:
            self.cache, seq.cache = seq.cache, None
            self.valid = None
            self.rows = [seq]
            return
        ours, theirs = growable(self.cache), growable(seq.cache)
        assert ours is not None and theirs is not None
        old_len, new_len = ours[0].get_seq_length(), theirs[0].get_seq_length()
        self.rows.append(seq)
        pad_old, pad_new = merge_rows(ours, theirs, self.spare())
        seq.cache = None
        valid_old = (
            self.valid
            if self.valid is not None
            else torch.ones(len(self.rows) - 1, old_len, dtype=torch.bool)
        )
        valid_old = torch.nn.functional.pad(valid_old, (pad_old, 0), value=False)
        valid_new = torch.ones(1, new_len, dtype=torch.bool)
        valid_new = torch.nn.functional.pad(valid_new, (pad_new, 0), value=False)
        self.valid = torch.cat([valid_old, valid_new])

    def keep(self, keep: list[int]) -> None:
        """Drop every row not in `keep`, and leading positions only padding remains in."""
        self.rows = [self.rows[i] for i in keep]
        if not self.rows:
            self.cache, self.valid = None, None
            return
        layers = growable(self.cache)
        assert layers is not None
        index = torch.tensor(keep, dtype=torch.long)
        drop_front = 0
        valid = None
        if self.valid is not None:
            valid = self.valid[index]
            real = valid.any(dim=0).nonzero()
            drop_front = int(real[0].item()) if len(real) else 0
            valid = valid[:, drop_front:]
            if bool(valid.all()):
                valid = None
        select_rows(layers, index, drop_front, self.spare())
        self.valid = valid

    def step_inputs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        ids = torch.tensor([[s.generated[-1]] for s in self.rows], dtype=torch.long)
        positions = torch.tensor([[s.position] for s in self.rows], dtype=torch.long)
        mask = None
        if self.valid is not None:
            self.valid = torch.cat(
                [self.valid, torch.ones(len(self.rows), 1, dtype=torch.bool)], dim=1
            )
            mask = self.valid[:, None, None, :]
        return ids, positions, mask


class Runner:
    def __init__(
        self,
        model: Any,
        *,
        eos_ids: frozenset[int],
        context_tokens: int,
        device: str,
        max_batch: int,
        prefill_chunk: Callable[[], int],
        prefix_cache: PrefixCache,
    ) -> None:
        self._model = model
        self._eos_ids = eos_ids
        self._context = context_tokens
        self._device = device
        self.max_batch = max_batch
        self._prefill_chunk = prefill_chunk
        self.prefix_cache = prefix_cache
        self._cond = threading.Condition()
        self._inbox: list[Sequence] = []
        self._waiting: list[Sequence] = []
        self._prefilling: Sequence | None = None
        self._batch = Batch()
        self._closed = False
        # Largest number of requests decoded in one step so far (for tests and benchmarks).
        self.widest_batch = 0
        self._thread = threading.Thread(target=self._run, name="tiangong-generate", daemon=True)
        self._thread.start()

    # -- called from other threads ------------------------------------------------------

    def submit(self, seq: Sequence) -> None:
        with self._cond:
            if self._closed:
                raise EngineFailedError("the engine is shut down")
            self._inbox.append(seq)
            self._cond.notify()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    # -- the generation thread ----------------------------------------------------------

    def _run(self) -> None:
        with torch.inference_mode():
            while self._next_turn():
                pass

    def _has_work(self) -> bool:
        return bool(self._inbox or self._waiting or self._batch.rows or self._prefilling)

    def _next_turn(self) -> bool:
        with self._cond:
            while not self._closed and not self._has_work():
                self._cond.wait()
            if self._closed:
                self._abandon_all()
                return False
            self._waiting.extend(self._inbox)
            self._inbox.clear()
        self._drop_stopped()
        self._pick_prefill()
        if self._prefilling is not None:
            seq = self._prefilling
            try:
                self._prefill_chunk_of(seq)
            except BaseException as exc:
                self._prefilling = None
                seq.fail(engine_error(exc, self._device))
        if self._batch.rows:
            self._decode_step()
        return True

    def _abandon_all(self) -> None:
        everyone = [*self._inbox, *self._waiting, *self._batch.rows]
        if self._prefilling is not None:
            everyone.append(self._prefilling)
        for seq in everyone:
            seq.finish("cancelled")
        self._inbox, self._waiting, self._prefilling = [], [], None
        self._batch = Batch()

    def _drop_stopped(self) -> None:
        for seq in [s for s in self._waiting if s.stopped()]:
            self._waiting.remove(seq)
            seq.cancel_before_start()
        if self._prefilling is not None and self._prefilling.stopped():
            self._prefilling.finish("cancelled")
            self._prefilling = None
        stopped = [i for i, s in enumerate(self._batch.rows) if s.stopped()]
        if stopped:
            for i in stopped:
                self._batch.rows[i].finish("cancelled")
            self._batch.keep([i for i in range(len(self._batch)) if i not in stopped])

    def _pick_prefill(self) -> None:
        """The most urgent waiting request prefills next; a more urgent one pre-empts."""
        if not self._waiting:
            return
        self._waiting.sort(key=lambda s: (s.priority, s.arrival))
        best = self._waiting[0]
        current = self._prefilling
        if current is not None:
            if best.priority < current.priority:
                self._waiting[0] = current  # resumes later from where it stopped
                self._prefilling = best
            return
        if len(self._batch) < self.max_batch:
            self._prefilling = self._waiting.pop(0)

    def _start(self, seq: Sequence) -> None:
        seq.prompt, prefix = seq.prepare()
        room = self._context - len(seq.prompt)
        if room <= 0:
            raise TooLargeError(
                f"the prompt has {len(seq.prompt)} tokens; the model takes {self._context} in all"
            )
        seq.max_new = min(seq.max_tokens, room)
        seq.cache = new_cache(self._model.config)
        reserve(seq.cache, len(seq.prompt) + seq.max_new + 1)
        if prefix >= MIN_PREFIX_TOKENS and prefix < len(seq.prompt):
            seq.prefix_length = prefix
            key = prefix_key(seq.prompt[:prefix])
            entry = self.prefix_cache.get(key)
            if entry is not None:
                load_snapshot(seq.cache, entry.layers)
                seq.filled = prefix
            else:
                seq.prefix_key = key  # stored once the prefix is filled

    def _prefill_chunk_of(self, seq: Sequence) -> None:
        if not seq.started:
            self._start(seq)
        assert seq.cache is not None
        chunk = self._prefill_chunk()
        # Chunks are aligned to the prefix boundary, so a run that reuses a cached prefix
        # computes the rest exactly as the run that filled it did.
        target = seq.prefix_length if seq.filled < seq.prefix_length else len(seq.prompt)
        end = target if chunk <= 0 else min(seq.filled + chunk, target)
        ids = torch.tensor([seq.prompt[seq.filled : end]], dtype=torch.long)
        out = self._model(
            input_ids=ids.to(self._model.device), cache=seq.cache, use_cache=True, logits_to_keep=1
        )
        seq.filled = end
        if seq.prefix_key is not None and seq.filled == seq.prefix_length:
            entry = PrefixEntry(seq.prefix_length, snapshot(seq.cache))
            self.prefix_cache.put(seq.prefix_key, entry)
            seq.prefix_key = None
        if seq.filled < len(seq.prompt):
            return
        self._prefilling = None
        token = seq.choose(out.logits[:, -1].cpu(), self._eos_ids)
        if not seq.accept(token):
            seq.finish(seq.finish_reason())
        else:
            # (A cache that cannot be merged only ever meets an empty batch: max_batch 1.)
            self._batch.add(seq)

    def _decode_step(self) -> None:
        batch = self._batch
        self.widest_batch = max(self.widest_batch, len(batch))
        ids, positions, mask = batch.step_inputs()
        device = self._model.device
        try:
            out = self._model(
                input_ids=ids.to(device),
                position_ids=positions.to(device),
                attention_mask=None if mask is None else mask.to(device),
                cache=batch.cache,
                use_cache=True,
            )
            scores = out.logits[:, -1].cpu()
        except BaseException as exc:
            error = engine_error(exc, self._device)
            for seq in batch.rows:
                seq.fail(error)
            self._batch = Batch()
            return
        keep: list[int] = []
        for i, seq in enumerate(batch.rows):
            try:
                token = seq.choose(scores[i : i + 1], self._eos_ids)
            except BaseException as exc:
                seq.fail(engine_error(exc, self._device))
                continue
            if seq.accept(token):
                keep.append(i)
            else:
                seq.finish(seq.finish_reason())
        if len(keep) < len(batch):
            batch.keep(keep)
