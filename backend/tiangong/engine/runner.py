"""The generation loop: one thread owns the model and serves every request at once.

Each turn of the loop does at most one prompt chunk (chunked prefill) for the most urgent
waiting request, then one decode step for every request already answering, as one batch.
So a new question starts while other answers keep streaming, an interactive request goes
ahead of background work (the map step of a long summary), and a cancel is seen between
any two decode steps, or between two layers of a prompt chunk, after which the request's
cache is released.

Requests answering together share one key/value cache, left-padded to a common length
with an attention mask (the states of each row are those it would have alone). The page
prefix of a prompt is kept in a `PrefixCache` and copied into later requests that share
it, so follow-up questions prefill only themselves.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import torch

from tiangong.engine import attention
from tiangong.engine.base import FinishReason
from tiangong.engine.batch import Batch
from tiangong.engine.kv import load_snapshot, new_cache, reserve, snapshot
from tiangong.engine.prefix_cache import MIN_PREFIX_TOKENS, PrefixCache, PrefixEntry, prefix_key
from tiangong.engine.sequence import Sequence
from tiangong.errors import EngineFailedError, TiangongError, TooLargeError

log = logging.getLogger(__name__)

# This many failed turns in a row, with no model call succeeding in between, and the loop
# stops, fails everything it holds and restarts once a one-token check passes again.
BROKEN_AFTER = 3
# Seconds between checks while the loop is stopped (doubling up to the last).
RESTART_DELAYS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


def what_failed(exc: BaseException) -> str:
    """What went wrong, in words for a user: no internals."""
    if isinstance(exc, TiangongError):
        return exc.message
    if isinstance(exc, torch.OutOfMemoryError):
        return "the model ran out of memory while generating; try a shorter page or a smaller model"
    name = type(exc).__name__
    return f"the model failed while generating ({name}); the server log has the details"


def engine_error(exc: BaseException) -> TiangongError:
    """What a failure inside generation becomes for the caller."""
    if isinstance(exc, TiangongError):
        return exc
    return EngineFailedError(what_failed(exc))


def request_ids(seqs: Iterable[Sequence]) -> str:
    return ", ".join(s.request_id or "?" for s in seqs) or "none"


class LoopBrokenError(Exception):
    """The loop cannot go on as it is: every request it holds fails and it restarts."""


class StoppedMidChunk(Exception):
    """The request whose prompt chunk is running was cancelled: raised between two of the
    model's layers, so a cancel waits for one layer instead of a whole chunk (a 256-token
    chunk of a long page is hundreds of milliseconds on the CPU; a layer a thirtieth)."""


def decoder_layers(model: Any) -> list[torch.nn.Module]:
    """The model's decoder layers (`model.model.layers` in transformers' causal LMs), or
    none where the layout differs (then a cancel waits for the chunk)."""
    layers = getattr(getattr(model, "model", None), "layers", None)
    return list(layers) if isinstance(layers, torch.nn.ModuleList) else []


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
        attention_name: str = "grouped",
        decoder: Callable[..., torch.Tensor] | None = None,
        cache_dtype: torch.dtype | None = None,
    ) -> None:
        self._model = model
        # What the key/value cache holds its states as.
        self.cache_dtype: torch.dtype = cache_dtype or model.dtype
        # Decode steps through this (engine/lean_decode.py) when given; else the model.
        self.decoder = decoder
        self._eos_ids = eos_ids
        self._context = context_tokens
        self._device = device
        self._attention = attention_name
        self.max_batch = max_batch
        self._prefill_chunk = prefill_chunk
        self.prefix_cache = prefix_cache
        self._cond = threading.Condition()
        self._inbox: list[Sequence] = []
        self._waiting: list[Sequence] = []
        self._prefilling: Sequence | None = None
        self._batch = Batch()
        self._closed = False
        # Why the loop cannot serve right now (None while it can); read by the engine host.
        self.failure: str | None = None
        self._model_failures_in_a_row = 0
        # Largest number of requests decoded in one step so far (for tests and benchmarks).
        self.widest_batch = 0
        # Times the loop stopped and restarted (for tests and the log).
        self.restarts = 0
        # While a prompt chunk runs: whether its request was stopped, asked between layers.
        self._stop_check: Callable[[], bool] | None = None
        self._layer_hooks = [
            layer.register_forward_pre_hook(self._between_layers) for layer in decoder_layers(model)
        ]
        self._thread = threading.Thread(target=self._run, name="tiangong-generate", daemon=True)
        self._thread.start()

    # -- called from other threads ------------------------------------------------------

    def submit(self, seq: Sequence) -> None:
        with self._cond:
            if self._closed:
                raise EngineFailedError("the engine is shut down")
            if self.failure is not None:
                raise EngineFailedError(f"the model cannot answer right now: {self.failure}")
            if not self._thread.is_alive():
                raise EngineFailedError("the generation thread has stopped; restart the service")
            self._inbox.append(seq)
            self._cond.notify()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def close(self) -> None:
        for hook in self._layer_hooks:  # the model may outlive this loop
            hook.remove()
        with self._cond:
            self._closed = True
            self._cond.notify()

    # -- the generation thread: supervision ---------------------------------------------

    def _run(self) -> None:
        try:
            with torch.inference_mode():
                while not self._closed:
                    try:
                        while self._next_turn():
                            pass
                    except BaseException as exc:  # the loop itself cannot go on
                        self._stop_serving(exc)
                        self._restart()
        except BaseException as exc:  # nothing above raises; should it, the host is told
            self.failure = "the generation thread stopped; restart the service"
            log.critical("the generation thread stopped", exc_info=exc)
            self._fail_all(EngineFailedError(self.failure))

    def _take_all(self) -> list[Sequence]:
        with self._cond:
            everyone = [*self._inbox, *self._waiting, *self._batch.rows]
            if self._prefilling is not None:
                everyone.append(self._prefilling)
            self._inbox, self._waiting, self._prefilling = [], [], None
            self._batch = Batch()
        return everyone

    def _fail_all(self, error: BaseException) -> list[Sequence]:
        everyone = self._take_all()
        for seq in everyone:
            self._safely(seq.fail, error)
        return everyone

    def _stop_serving(self, exc: BaseException) -> None:
        reason = str(exc) if isinstance(exc, LoopBrokenError) else what_failed(exc)
        self.failure = reason
        failed = self._fail_all(EngineFailedError(f"the model stopped: {reason}; it is restarting"))
        self.prefix_cache.clear()  # whatever memory it held may be what ran out
        self._release_memory()
        log.error(
            "generation loop stopped: %s; failed requests: %s; restarting once the model answers",
            reason,
            request_ids(failed),
            exc_info=None if isinstance(exc, LoopBrokenError) else exc,
        )

    def _restart(self) -> None:
        """Check the model with one token, with pauses, until it answers (or the engine closes)."""
        for attempt in range(1_000_000):
            delay = RESTART_DELAYS[min(attempt, len(RESTART_DELAYS) - 1)]
            with self._cond:
                if self._closed:
                    return
                self._cond.wait(delay)
                if self._closed:
                    return
            try:
                self._check_model()
            except BaseException as exc:
                log.warning("the model still fails (%s); checking again", what_failed(exc))
                continue
            with self._cond:
                self.failure = None
                self._model_failures_in_a_row = 0
                self.restarts += 1
            log.info("generation loop restarted: the model answers again")
            return

    def _check_model(self) -> None:
        token = min(self._eos_ids) if self._eos_ids else 0
        ids = torch.tensor([[token]], dtype=torch.long, device=self._model.device)
        out = self._model(input_ids=ids, use_cache=False, logits_to_keep=1)
        if not bool(torch.isfinite(out.logits).all()):
            raise EngineFailedError("the model computes non-finite scores")

    def _between_layers(self, module: torch.nn.Module, args: Any) -> None:
        check = self._stop_check
        if check is not None and check():
            raise StoppedMidChunk

    # -- failures of single requests ----------------------------------------------------

    @staticmethod
    def _safely(action: Callable[..., None], *args: Any) -> None:
        """Deliver to a request without letting its delivery break the loop."""
        try:
            action(*args)
        except Exception:
            log.exception("could not deliver to a request")

    def _release_memory(self) -> None:
        if self._device == "cuda":
            try:
                torch.cuda.empty_cache()
            except Exception:
                log.exception("could not release CUDA memory")

    def _fail(
        self, where: str, seqs: list[Sequence], exc: BaseException, *, model_call: bool = False
    ) -> None:
        """End exactly `seqs` with the error `exc` becomes (their caches go with them);
        log once. Raises LoopBrokenError when model calls keep failing."""
        error = engine_error(exc)
        broken: LoopBrokenError | None = None
        if model_call and not isinstance(exc, TiangongError):
            self._model_failures_in_a_row += 1
            if self._model_failures_in_a_row >= BROKEN_AFTER:
                broken = LoopBrokenError(
                    f"the model failed {self._model_failures_in_a_row} times in a row "
                    f"({what_failed(exc)})"
                )
                # Said before the requests hear of it: whoever is told their request failed
                # and asks /health next must find the engine failed.
                self.failure = str(broken)
        for seq in seqs:
            seq.cache = None
            self._safely(seq.fail, error)
        if isinstance(exc, TiangongError):
            return  # a request the model cannot take (too long): the caller is told why
        if isinstance(exc, torch.OutOfMemoryError):
            self._release_memory()
            log.warning("out of memory in %s; failed requests: %s", where, request_ids(seqs))
        else:
            log.error(
                "generation failed in %s; failed requests: %s",
                where,
                request_ids(seqs),
                exc_info=exc,
            )
        if broken is not None:
            raise broken

    def _finish(self, seq: Sequence, reason: FinishReason | None = None) -> None:
        try:
            seq.finish(reason or seq.finish_reason())
        except BaseException as exc:
            self._fail("finishing a request", [seq], exc)

    def _leave(self, leaving: list[int]) -> None:
        """Rows at `leaving` (already ended) leave the batch; a failure fails all rows."""
        if not leaving:
            return
        rows = list(self._batch.rows)
        try:
            self._batch.remove(leaving)
        except BaseException as exc:
            self._batch = Batch()
            self._fail("rearranging the batch cache", [s for s in rows if not s.done], exc)

    # -- the generation thread: one turn ------------------------------------------------

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
            self._prefill_turn(self._prefilling)
        if self._batch.rows:
            self._decode_step()
        return True

    def _abandon_all(self) -> None:
        for seq in self._take_all():
            self._safely(seq.finish, "cancelled")

    def _drop_stopped(self) -> None:
        for seq in [s for s in self._waiting if s.stopped()]:
            self._waiting.remove(seq)
            self._safely(seq.cancel_before_start)
        if self._prefilling is not None and self._prefilling.stopped():
            seq, self._prefilling = self._prefilling, None
            self._finish(seq, "cancelled")
        stopped = [i for i, s in enumerate(self._batch.rows) if s.stopped()]
        for i in stopped:
            self._finish(self._batch.rows[i], "cancelled")
        self._leave(stopped)

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
        seq.cache = new_cache(self._model.config, self.cache_dtype)
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

    def _prefill_turn(self, seq: Sequence) -> None:
        try:
            scores = self._prefill_chunk_of(seq)
        except StoppedMidChunk:  # its cache, half written, goes with it
            self._prefilling = None
            self._finish(seq, "cancelled")
            return
        except BaseException as exc:
            self._prefilling = None
            self._fail("prefill", [seq], exc, model_call=True)
            return
        self._model_failures_in_a_row = 0
        if scores is None:
            return  # more chunks to go
        self._prefilling = None
        try:
            going = seq.accept(seq.choose(scores, self._eos_ids))
        except BaseException as exc:
            self._fail("choosing a token", [seq], exc)
            return
        if not going:
            self._finish(seq)
            return
        try:
            # (A cache that cannot grow in place only ever meets an empty batch: max_batch 1.)
            self._batch.add(seq)
        except BaseException as exc:
            self._fail("joining the batch", [seq], exc)

    def _prefill_chunk_of(self, seq: Sequence) -> torch.Tensor | None:
        """Run the next prompt chunk; the last position's scores once the prompt is in."""
        if not seq.started:
            self._start(seq)
        assert seq.cache is not None
        chunk = self._prefill_chunk()
        # Chunks are aligned to the prefix boundary, so a run that reuses a cached prefix
        # computes the rest exactly as the run that filled it did.
        target = seq.prefix_length if seq.filled < seq.prefix_length else len(seq.prompt)
        end = target if chunk <= 0 else min(seq.filled + chunk, target)
        ids = torch.tensor([seq.prompt[seq.filled : end]], dtype=torch.long)
        self._stop_check = seq.stopped
        try:
            out = self._model(
                input_ids=ids.to(self._model.device),
                cache=seq.cache,
                use_cache=True,
                logits_to_keep=1,
            )
        finally:
            self._stop_check = None
        seq.filled = end
        if seq.prefix_key is not None and seq.filled == seq.prefix_length:
            entry = PrefixEntry(seq.prefix_length, snapshot(seq.cache))
            self.prefix_cache.put(seq.prefix_key, entry)
            seq.prefix_key = None
        if seq.filled < len(seq.prompt):
            return None
        scores: torch.Tensor = out.logits[:, -1].cpu()
        return scores

    def _decode_step(self) -> None:
        batch = self._batch
        rows = list(batch.rows)
        self.widest_batch = max(self.widest_batch, len(rows))
        device = self._model.device
        try:
            ids, positions, valid = batch.step_inputs()
            if self.decoder is not None:
                scores = self.decoder(
                    input_ids=ids.to(device),
                    position_ids=positions.to(device),
                    valid=None if valid is None else valid.to(device),
                    cache=batch.cache,
                ).cpu()
            else:
                mask = None
                if valid is not None:
                    mask = attention.decode_mask(
                        valid.to(device), self._attention, self._model.dtype
                    )
                out = self._model(
                    input_ids=ids.to(device),
                    position_ids=positions.to(device),
                    attention_mask=mask,
                    cache=batch.cache,
                    use_cache=True,
                )
                scores = out.logits[:, -1].cpu()
        except BaseException as exc:
            self._batch = Batch()
            self._fail("a decode step", rows, exc, model_call=True)
            return
        self._model_failures_in_a_row = 0
        leaving: list[int] = []
        for i, seq in enumerate(rows):
            try:
                going = seq.accept(seq.choose(scores[i : i + 1], self._eos_ids))
            except BaseException as exc:
                self._fail("choosing a token", [seq], exc)
                leaving.append(i)
                continue
            if not going:
                self._finish(seq)
                leaving.append(i)
        self._leave(leaving)
