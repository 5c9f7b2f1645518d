"""The default engine: a local Hugging Face chat model run with PyTorch.

Generation runs in one dedicated thread (`runner.Runner`) that serves every request at
once: chunked prefill, batched decode steps, a per-page prefix cache and cancellation at
the next chunk or step. This module loads the model, turns chat messages into token ids
(and finds the shareable page prefix) and bridges the runner's output to the event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import torch
from transformers import LogitsProcessor

from tiangong.engine import attention
from tiangong.engine.base import (
    ASK,
    BATCHING,
    PREFIX_CACHE,
    REWRITE,
    SUMMARIZE,
    CancelToken,
    ChatMessage,
    Delta,
    Engine,
    Finish,
    Job,
    Reading,
)
from tiangong.engine.kv import growable, new_cache
from tiangong.engine.lean_decode import LeanDecoder, lean_decoder
from tiangong.engine.logits import DEFAULT_BANNED_NGRAM, GeneratedNgramBan
from tiangong.engine.models import (
    ProgressCallback,
    configure_cpu_threads,
    load_model_and_tokenizer,
    model_folder,
    pick_device,
    pick_dtype,
    quantize_int8,
    resolve_model_spec,
)
from tiangong.engine.prefix_cache import PrefixCache
from tiangong.engine.quantize import quantize_weights
from tiangong.engine.runner import Runner
from tiangong.engine.sequence import Sequence, TokenSink
from tiangong.errors import UnsupportedError
from tiangong.logs import current_request
from tiangong.openmp import in_a_passing_thread

log = logging.getLogger(__name__)

# Some configs claim 128k+ positions; memory and speed make that unusable here anyway.
MAX_CONTEXT_TOKENS = 32_768
FALLBACK_CONTEXT_TOKENS = 2_048
# Prompt tokens per prefill chunk: a cancel waits at most one chunk (~0.1 s on 2 CPU cores
# for the embedded model); on a GPU larger chunks cost nothing in latency.
DEFAULT_PREFILL_CHUNK = 256
GPU_PREFILL_CHUNK = 1024
# Requests decoded together in one step.
DEFAULT_MAX_BATCH = 8
# Models smaller than this read a question's evidence, not the whole page (`Engine.reading`).
EVIDENCE_BELOW_PARAMETERS = 1_000_000_000
# Memory kept for page prefixes (key/value states), least recently used evicted first.
DEFAULT_PREFIX_CACHE_BYTES = 1 << 30
# `dtype` values that quantize the linear layers' weights (CPU only; opt-in).
WEIGHT_ONLY = {"int8-weights": 8, "int4-weights": 4}
# End-of-turn markers of common chat templates, honoured when the tokenizer has them.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 dot products (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def sliding_window_of(config: Any, cache: Any) -> int | None:
    """The window of a model whose cache has sliding-window layers; None without them."""
    if not any(getattr(layer, "is_sliding", False) for layer in cache.layers):
        return None
    window = getattr(config.get_text_config(), "sliding_window", None)
    return int(window) if isinstance(window, int) else 0


class TransformersEngine(Engine):
    name = "transformers"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        label: str,
        device: str,
        prefill_chunk_tokens: int | None = None,
        banned_ngram: int = DEFAULT_BANNED_NGRAM,
        max_batch: int = DEFAULT_MAX_BATCH,
        prefix_cache_bytes: int = DEFAULT_PREFIX_CACHE_BYTES,
        attention_impl: str = "auto",
        dtype_label: str | None = None,
        parameters: int | None = None,
        lean_decode: bool = True,
    ) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._label = label
        # Counted before quantization packs the linear layers away from `parameters()`.
        self.parameters = parameters or sum(p.numel() for p in model.parameters())
        self.device = device
        if prefill_chunk_tokens is None:
            prefill_chunk_tokens = GPU_PREFILL_CHUNK if device == "cuda" else DEFAULT_PREFILL_CHUNK
        # 0 turns chunked prefill off (one forward pass over the whole prompt).
        self.prefill_chunk_tokens = prefill_chunk_tokens
        # 0 turns the generated-n-gram ban off.
        self.banned_ngram = banned_ngram
        self._eos_ids = self._find_eos_ids()
        self._context = self._find_context_tokens()
        self._adds_bos = self._tokenizer_adds_bos()
        self.attention = attention.choose(attention_impl, device)
        attention.install(model, self.attention)
        # Our own decode step where it computes what the model's forward does (the CPU,
        # grouped attention, a Llama-shaped model); transformers' forward everywhere else.
        self.decoder: LeanDecoder | None = None
        if lean_decode and device == "cpu" and self.attention == "grouped":
            self.decoder = lean_decoder(model)
        # Batching shares one cache; layers that cannot grow in place (a sliding window
        # keeps only its last positions) make the engine answer one request at a time.
        probe = new_cache(model.config)
        batchable = growable(probe) is not None
        self.sliding_window = sliding_window_of(model.config, probe)
        self._dtype_label = dtype_label or str(getattr(model, "dtype", "")).removeprefix("torch.")
        # The states keep the model's dtype unless `attention.cache_dtype` says otherwise.
        wide = attention.cache_dtype(self.attention, device, model.dtype)
        self._arrivals = itertools.count()
        self.prefix_cache = PrefixCache(prefix_cache_bytes)
        self._runner = Runner(
            model,
            eos_ids=self._eos_ids,
            context_tokens=self._context,
            device=device,
            max_batch=max_batch if batchable else 1,
            prefill_chunk=lambda: self.prefill_chunk_tokens,
            prefix_cache=self.prefix_cache,
            attention_name=self.attention,
            decoder=self.decoder,
            cache_dtype=wide or model.dtype,
        )
        why_alone = ""
        if not batchable:
            why_alone = (
                f" (sliding-window attention over {self.sliding_window} positions: its cache"
                " cannot be shared, so requests run one at a time)"
                if self.sliding_window is not None
                else " (its cache layers cannot be shared: requests run one at a time)"
            )
        log.info(
            "generation on %s: attention %s, decode steps %s, cache %s, up to %d requests at"
            " once%s",
            device,
            attention.describe(self.attention),
            self.decode_path,
            str(self._runner.cache_dtype).removeprefix("torch."),
            self._runner.max_batch,
            why_alone,
        )

    @classmethod
    def load(
        cls,
        model: str | None,
        *,
        device: str = "auto",
        data_dir: Path,
        progress: ProgressCallback | None = None,
        dtype: str = "auto",
        prefill_chunk_tokens: int | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        prefix_cache_bytes: int = DEFAULT_PREFIX_CACHE_BYTES,
        attention_impl: str = "auto",
        lean_decode: bool = True,
    ) -> TransformersEngine:
        """Load a model (blocking): None = embedded, a folder, a .gguf file or a hub id.

        In a thread of its own that ends with the load (`openmp.in_a_passing_thread`), so
        that the generation thread is the only one holding OpenMP workers."""
        return in_a_passing_thread(
            lambda: cls._load(
                model,
                device=device,
                data_dir=data_dir,
                progress=progress,
                dtype=dtype,
                prefill_chunk_tokens=prefill_chunk_tokens,
                max_batch=max_batch,
                prefix_cache_bytes=prefix_cache_bytes,
                attention_impl=attention_impl,
                lean_decode=lean_decode,
            )
        )

    @classmethod
    def _load(
        cls,
        model: str | None,
        *,
        device: str,
        data_dir: Path,
        progress: ProgressCallback | None,
        dtype: str,
        prefill_chunk_tokens: int | None,
        max_batch: int,
        prefix_cache_bytes: int,
        attention_impl: str,
        lean_decode: bool,
    ) -> TransformersEngine:
        source = resolve_model_spec(model)
        chosen_device = pick_device(device)
        if dtype == "auto" and chosen_device == "cpu" and cpu_has_bf16():
            dtype = "bfloat16"  # native bf16 dot products: prefill 3-5x faster, half the bytes
        int8 = dtype == "int8"
        # Opt-in weight-only kernels (engine/quantize.py); their figures: docs/performance.md.
        weight_bits = WEIGHT_ONLY.get(dtype)
        if (int8 or weight_bits) and chosen_device != "cpu":
            raise UnsupportedError(f"dtype {dtype} (quantized weights) runs on the CPU only")
        torch_dtype = pick_dtype("float32" if int8 or weight_bits else dtype, chosen_device)
        if chosen_device == "cpu":
            configure_cpu_threads()
        folder = model_folder(source, Path(data_dir), progress)
        if progress is not None:
            progress("load", 0, 1)
        started = time.perf_counter()
        weights, tokenizer = load_model_and_tokenizer(folder, chosen_device, torch_dtype)
        parameters = sum(p.numel() for p in weights.parameters())
        if int8:
            weights = quantize_int8(weights)
        elif weight_bits:
            weights = quantize_weights(weights, weight_bits)
        log.info(
            "loaded %s on %s (%s) in %.1f s",
            source.label,
            chosen_device,
            dtype if int8 or weight_bits else str(torch_dtype).removeprefix("torch."),
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
            max_batch=max_batch,
            prefix_cache_bytes=prefix_cache_bytes,
            attention_impl=attention_impl,
            dtype_label=dtype if int8 or weight_bits else None,
            parameters=parameters,
            lean_decode=lean_decode,
        )

    # -- what the engine is ---------------------------------------------------------------

    @property
    def model(self) -> str:
        return self._label

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset({SUMMARIZE, ASK, REWRITE, BATCHING, PREFIX_CACHE})

    @property
    def context_tokens(self) -> int:
        return self._context

    @property
    def reading(self) -> Reading:
        # Below this size a model loses facts in a long context and invents (docs/quality.md).
        return "evidence" if self.parameters < EVIDENCE_BELOW_PARAMETERS else "page"

    @property
    def decode_path(self) -> str:
        """What runs a decode step, as the log and the engine info say it."""
        return self.decoder.describe() if self.decoder is not None else "transformers"

    @property
    def failure(self) -> str | None:
        return self._runner.failure

    @property
    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "device": self.device,
            "dtype": self._dtype_label,
            "attention": attention.describe(self.attention),
            "decode": self.decode_path,
            "cache_dtype": str(self._runner.cache_dtype).removeprefix("torch."),
            "max_batch": self._runner.max_batch,
        }
        if self.sliding_window:
            out["sliding_window"] = self.sliding_window
        return out

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

    def prompt_and_prefix(self, messages: tuple[ChatMessage, ...]) -> tuple[list[int], int]:
        """The prompt's ids and how many of them are the system turn (the page prefix).

        The prefix is 0 when the first message is not a system message or the template does
        not tokenize the system turn the same alone as within the whole prompt.
        """
        ids = self.prompt_ids(messages)
        if len(messages) < 2 or messages[0].role != "system":
            return ids, 0
        head = self._tokenizer.apply_chat_template(
            [{"role": "system", "content": messages[0].content}],
            add_generation_prompt=False,
            tokenize=True,
            return_dict=True,
        )
        prefix = [int(i) for i in head["input_ids"]]
        bos = self._tokenizer.bos_token_id
        if self._adds_bos and bos is not None and prefix[:1] != [bos]:
            prefix.insert(0, bos)
        if ids[: len(prefix)] != prefix:
            return ids, 0
        return ids, len(prefix)

    @property
    def max_concurrency(self) -> int:
        return self._runner.max_batch

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
        queue: asyncio.Queue[Delta | Finish | BaseException] = asyncio.Queue()
        abandoned = threading.Event()

        def deliver(item: Delta | Finish | BaseException) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                abandoned.set()

        seq = self._sequence(job, list(logits_processors), deliver, cancel, abandoned)
        cancel.on_cancel(self._runner.wake)
        self._runner.submit(seq)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, Finish):
                    return
        finally:
            # A caller that walks away stops the request at its next chunk or step.
            abandoned.set()
            self._runner.wake()

    def _sequence(
        self,
        job: Job,
        extra: list[LogitsProcessor],
        deliver: Any,
        cancel: CancelToken,
        abandoned: threading.Event,
    ) -> Sequence:
        params = job.params
        messages = job.messages
        banned = self.banned_ngram
        holder: list[Sequence] = []

        def prepare() -> tuple[list[int], int]:
            ids, prefix = self.prompt_and_prefix(messages)
            if banned >= 2:  # the ban needs the prompt length, known only now
                holder[0].processors.insert(0, GeneratedNgramBan(len(ids), banned))
            return ids, prefix

        seq = Sequence(
            prepare=prepare,
            max_tokens=params.max_tokens,
            min_tokens=params.min_tokens,
            temperature=params.temperature,
            priority=job.priority,
            processors=extra,
            sink=TokenSink(self._tokenizer, params.stop, self._eos_ids),
            stopped=lambda: cancel.cancelled or abandoned.is_set(),
            deliver=deliver,
            arrival=next(self._arrivals),
            request_id=current_request(),
        )
        holder.append(seq)
        return seq

    async def aclose(self) -> None:
        self._runner.close()
        self.prefix_cache.clear()
        self._model = None
        if self.device == "cuda":
            torch.cuda.empty_cache()
