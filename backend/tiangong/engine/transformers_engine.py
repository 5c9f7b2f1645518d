"""The default engine: a local Hugging Face chat model run with PyTorch.

One generation at a time runs in a dedicated worker thread; its text reaches the event
loop through `call_soon_threadsafe`. Generation stops at the chat template's end token, at
`max_tokens`, at a stop string, or at the next decode step after a cancel. Long prompts are
prefilled in chunks so a cancel lands between chunks instead of after the whole prompt.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    DynamicCache,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteriaList,
)
from transformers.generation.streamers import BaseStreamer

from tiangong.engine.base import (
    ASK,
    REWRITE,
    SUMMARIZE,
    CancelToken,
    ChatMessage,
    Delta,
    Engine,
    Finish,
    FinishReason,
    Job,
)
from tiangong.engine.logits import DEFAULT_BANNED_NGRAM, GeneratedNgramBan, StopSignal
from tiangong.engine.models import (
    ProgressCallback,
    configure_cpu_threads,
    load_model_and_tokenizer,
    model_folder,
    pick_device,
    pick_dtype,
    resolve_model_spec,
)
from tiangong.engine.streaming import REPLACEMENT_CHAR, IncrementalDecoder, StopStringFilter
from tiangong.errors import EngineFailedError, TiangongError, TooLargeError

log = logging.getLogger(__name__)

# Some configs claim 128k+ positions; memory and speed make that unusable here anyway.
MAX_CONTEXT_TOKENS = 32_768
FALLBACK_CONTEXT_TOKENS = 2_048
DEFAULT_PREFILL_CHUNK = 512
# End-of-turn markers of common chat templates, honoured when the tokenizer has them.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")
# While a job waits for the worker, how often to look at its cancel token.
QUEUE_POLL_SECONDS = 0.02


@dataclass
class _Done:
    """Marks the end of a worker's items in the queue."""


Emit = Callable[[Delta | _Done], None]


def _retrieve_exception(future: asyncio.Future[Finish]) -> None:
    if not future.cancelled():
        future.exception()


class _TokenSink(BaseStreamer):
    """Receives each generated id from `generate` and emits whole-character deltas."""

    def __init__(
        self, tokenizer: Any, stops: tuple[str, ...], eos_ids: frozenset[int], signal: StopSignal
    ) -> None:
        self.decoder = IncrementalDecoder(tokenizer)
        self.stop_filter = StopStringFilter(stops)
        self.eos_ids = eos_ids
        self.signal = signal
        self.generated: list[int] = []
        self.emit: Emit = lambda item: None
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate first hands over the prompt itself
            self._prompt_seen = True
            return
        for token_id in value.reshape(-1).tolist():
            self.generated.append(token_id)
            if token_id in self.eos_ids or self.stop_filter.stopped:
                continue
            text = self.stop_filter.feed(self.decoder.push(token_id))
            if self.stop_filter.stopped:
                self.signal.stop_text_seen = True
            if text:
                self.emit(Delta(text))

    def end(self) -> None:
        """Nothing to do: the worker flushes once it knows why generation ended."""

    def flush(self, cut_short: bool) -> str:
        tail = self.decoder.flush()
        if cut_short:  # an answer cut mid-character drops the half character
            tail = tail.rstrip(REPLACEMENT_CHAR)
        return self.stop_filter.feed(tail) + self.stop_filter.flush()


class TransformersEngine(Engine):
    name = "transformers"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        label: str,
        device: str,
        prefill_chunk_tokens: int = DEFAULT_PREFILL_CHUNK,
        banned_ngram: int = DEFAULT_BANNED_NGRAM,
    ) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._label = label
        self.device = device
        # 0 turns chunked prefill off (one forward pass over the whole prompt).
        self.prefill_chunk_tokens = prefill_chunk_tokens
        # 0 turns the generated-n-gram ban off.
        self.banned_ngram = banned_ngram
        self._eos_ids = self._find_eos_ids()
        self._context = self._find_context_tokens()
        self._adds_bos = self._tokenizer_adds_bos()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tiangong-generate")

    @classmethod
    def load(
        cls,
        model: str | None,
        *,
        device: str = "auto",
        data_dir: Path,
        progress: ProgressCallback | None = None,
        dtype: str = "auto",
        prefill_chunk_tokens: int = DEFAULT_PREFILL_CHUNK,
    ) -> TransformersEngine:
        """Load a model (blocking): None = embedded, a folder, a .gguf file or a hub id."""
        source = resolve_model_spec(model)
        chosen_device = pick_device(device)
        torch_dtype = pick_dtype(dtype, chosen_device)
        if chosen_device == "cpu":
            configure_cpu_threads()
        folder = model_folder(source, Path(data_dir), progress)
        if progress is not None:
            progress("load", 0, 1)
        started = time.perf_counter()
        weights, tokenizer = load_model_and_tokenizer(folder, chosen_device, torch_dtype)
        log.info(
            "loaded %s on %s (%s) in %.1f s",
            source.label,
            chosen_device,
            str(torch_dtype).removeprefix("torch."),
            time.perf_counter() - started,
        )
        if progress is not None:
            progress("load", 1, 1)
        return cls(
            weights,
            tokenizer,
            label=source.label,
            device=chosen_device,
            prefill_chunk_tokens=prefill_chunk_tokens,
        )

    # -- what the engine is ---------------------------------------------------------------

    @property
    def model(self) -> str:
        return self._label

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset({SUMMARIZE, ASK, REWRITE})

    @property
    def context_tokens(self) -> int:
        return self._context

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    @property
    def eos_token_ids(self) -> frozenset[int]:
        return self._eos_ids

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def count_prompt_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        return len(self.prompt_ids(messages))

    def prompt_ids(self, messages: tuple[ChatMessage, ...]) -> list[int]:
        """The token ids the model sees: chat template with the assistant turn opened."""
        conversation = [{"role": m.role, "content": m.content} for m in messages]
        encoded = self._tokenizer.apply_chat_template(
            conversation, add_generation_prompt=True, tokenize=True, return_dict=True
        )
        ids = [int(i) for i in encoded["input_ids"]]
        # apply_chat_template adds no BOS; a model whose tokenizer adds one to plain text
        # was trained with it, unless the template already wrote it.
        bos = self._tokenizer.bos_token_id
        if self._adds_bos and bos is not None and ids[:1] != [bos]:
            ids.insert(0, bos)
        return ids

    def _tokenizer_adds_bos(self) -> bool:
        bos = self._tokenizer.bos_token_id
        if bos is None:
            return False
        return bool(self._tokenizer("a", add_special_tokens=True)["input_ids"][:1] == [bos])

    def _find_eos_ids(self) -> frozenset[int]:
        ids: set[int] = set()
        configured = getattr(self._model.generation_config, "eos_token_id", None)
        if isinstance(configured, int):
            ids.add(configured)
        elif isinstance(configured, Iterable):
            ids.update(int(i) for i in configured)
        if self._tokenizer.eos_token_id is not None:
            ids.add(int(self._tokenizer.eos_token_id))
        special = set(self._tokenizer.all_special_tokens)
        for token in END_OF_TURN_TOKENS:
            if token in special:
                ids.add(int(self._tokenizer.convert_tokens_to_ids(token)))
        return frozenset(ids)

    def _find_context_tokens(self) -> int:
        config = self._model.config.get_text_config()
        positions = getattr(config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            return min(positions, MAX_CONTEXT_TOKENS)
        return FALLBACK_CONTEXT_TOKENS

    # -- generation -----------------------------------------------------------------------

    async def stream(self, job: Job, cancel: CancelToken) -> AsyncIterator[Delta | Finish]:
        async for item in self.stream_with_processors(job, cancel, ()):
            yield item

    async def stream_with_processors(
        self,
        job: Job,
        cancel: CancelToken,
        logits_processors: Iterable[LogitsProcessor],
    ) -> AsyncIterator[Delta | Finish]:
        """`stream`, with extra logits processors applied after the engine's own ones."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Delta | _Done] = asyncio.Queue()
        started = threading.Event()
        abandoned = threading.Event()

        def emit(item: Delta | _Done) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                abandoned.set()

        def run() -> Finish:
            started.set()
            try:
                return self._generate(job, cancel, abandoned, list(logits_processors), emit)
            finally:
                emit(_Done())

        future = loop.run_in_executor(self._executor, run)
        try:
            while True:
                if not started.is_set():
                    try:
                        item = await asyncio.wait_for(queue.get(), QUEUE_POLL_SECONDS)
                    except TimeoutError:
                        if cancel.cancelled and not started.is_set():
                            abandoned.set()  # the worker skips it when its turn comes
                            yield Finish("cancelled", 0, 0)
                            return
                        continue
                else:
                    item = await queue.get()
                if isinstance(item, _Done):
                    break
                yield item
            finish = await future
        finally:
            abandoned.set()
            # A caller that walked away never awaits the worker: keep its error out of
            # asyncio's "exception was never retrieved" noise (it is logged already).
            future.add_done_callback(_retrieve_exception)
        yield finish

    def _generate(
        self,
        job: Job,
        cancel: CancelToken,
        abandoned: threading.Event,
        extra_processors: list[LogitsProcessor],
        emit: Emit,
    ) -> Finish:
        """Runs in the worker thread. Returns the Finish; raises EngineFailedError."""

        def stopped() -> bool:
            return cancel.cancelled or abandoned.is_set()

        if stopped():
            return Finish("cancelled", 0, 0)
        prompt = self.prompt_ids(job.messages)
        room = self._context - len(prompt)
        if room <= 0:
            raise TooLargeError(
                f"the prompt has {len(prompt)} tokens; the model takes {self._context} in all"
            )
        max_new = min(job.params.max_tokens, room)
        signal = StopSignal(stopped)
        sink = _TokenSink(self._tokenizer, job.params.stop, self._eos_ids, signal)
        sink.emit = emit
        try:
            self._run_generate(prompt, max_new, job, signal, sink, extra_processors, stopped)
        except TiangongError:
            raise
        except torch.OutOfMemoryError as exc:
            if self.device == "cuda":
                torch.cuda.empty_cache()
            log.warning("out of memory while generating: %s", exc)
            raise EngineFailedError(
                "the model ran out of memory while generating; "
                "try a shorter page or a smaller model"
            ) from exc
        except Exception as exc:
            log.exception("generation failed")
            raise EngineFailedError(
                f"the model failed while generating ({type(exc).__name__}); "
                "the server log has the details"
            ) from exc
        reason = self._finish_reason(sink, signal, max_new)
        tail = sink.flush(cut_short=reason in ("length", "cancelled"))
        if tail:
            emit(Delta(tail))
        return Finish(reason, len(prompt), len(sink.generated))

    def _finish_reason(self, sink: _TokenSink, signal: StopSignal, max_new: int) -> FinishReason:
        if signal.stop_text_seen:
            return "stop"
        if signal.stopped_by_cancel:
            return "cancelled"
        if sink.generated and sink.generated[-1] in self._eos_ids:
            return "stop"
        if len(sink.generated) >= max_new:
            return "length"
        return "stop"

    def _run_generate(
        self,
        prompt: list[int],
        max_new: int,
        job: Job,
        signal: StopSignal,
        sink: _TokenSink,
        extra_processors: list[LogitsProcessor],
        stopped: Callable[[], bool],
    ) -> None:
        device = self._model.device
        input_ids = torch.tensor([prompt], dtype=torch.long, device=device)
        cache = self._prefill_in_chunks(input_ids, stopped)
        if stopped():
            signal.stopped_by_cancel = True
            return
        processors: list[LogitsProcessor] = []
        if self.banned_ngram >= 2:
            processors.append(GeneratedNgramBan(len(prompt), self.banned_ngram))
        processors.extend(extra_processors)
        extra: dict[str, Any] = {} if cache is None else {"cache": cache}
        self._model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            generation_config=self._generation_config(job, max_new),
            logits_processor=LogitsProcessorList(processors),
            stopping_criteria=StoppingCriteriaList([signal]),
            streamer=sink,
            **extra,
        )

    def _prefill_in_chunks(
        self, input_ids: torch.Tensor, stopped: Callable[[], bool]
    ) -> DynamicCache | None:
        """Fill a cache with all prompt tokens but the last, chunk by chunk, checking cancel.

        `generate` then runs only the last prompt token. Returns None for short prompts.
        """
        chunk = self.prefill_chunk_tokens
        length = input_ids.shape[1]
        if chunk <= 0 or length <= chunk:
            return None
        cache = DynamicCache(config=self._model.config)
        with torch.inference_mode():
            for start in range(0, length - 1, chunk):
                if stopped():
                    break
                end = min(start + chunk, length - 1)
                self._model(
                    input_ids=input_ids[:, start:end], cache=cache, use_cache=True, logits_to_keep=1
                )
        return cache

    def _generation_config(self, job: Job, max_new: int) -> GenerationConfig:
        params = job.params
        sampling = params.temperature > 0
        eos = sorted(self._eos_ids)
        pad = self._tokenizer.pad_token_id
        return GenerationConfig(  # type: ignore[no-untyped-call]
            max_new_tokens=max_new,
            min_new_tokens=min(params.min_tokens, max_new) if params.min_tokens > 0 else None,
            do_sample=sampling,
            temperature=params.temperature if sampling else 1.0,
            top_p=0.95 if sampling else 1.0,
            top_k=50,  # also transformers' neutral value for greedy runs (no warning)
            num_beams=1,
            # Both act on the prompt's tokens too; GeneratedNgramBan replaces them.
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            eos_token_id=eos,
            pad_token_id=pad if pad is not None else eos[0],
        )

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._model = None
        if self.device == "cuda":
            torch.cuda.empty_cache()
