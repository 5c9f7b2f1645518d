"""Decode speed levers on the CPU, side by side in one run (the embedded SmolLM2-135M):

    python bench/decode_levers.py                      # all variants, 3 interleaved rounds
    python bench/decode_levers.py --variants fp32 int8-weights --reps 5
    python bench/decode_levers.py --profile --variants bf16   # where a decode step's time goes

Variants: fp32 (the reference: the GGUF's weights exactly), bf16 (the default on CPUs with
bf16: decode steps through engine/lean_decode.py, exact int4 layers, the output layer
estimated from int4 with its best candidates exact, key/value states as fp32), the default
with one lever taken away (bf16-bf16-cache: states in bf16; bf16-exact-output: the output
layer's own product for every score), bf16-transformers (transformers' forward for decode
steps), int8-dynamic (`--dtype int8`: quantize_dynamic),
int8-weights and int4-weights (engine/quantize.py: weight-only kernels over every layer,
fp32 activations). Each round loads and runs every variant once on the same ~500-token
summary (64 forced new tokens, through `engine.stream`), so a busy machine slows them
alike; ratios are to fp32. Then each variant's greedy answers to a few pages (128 tokens,
the engine's default settings) are compared with fp32's, token for token (`--pages`,
`--new-tokens`; `--no-speed` for that alone). Prints figures and the load average; asserts
nothing.
"""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "backend"), str(ROOT), str(ROOT / "bench")]

from tiangong.openmp import configure_waiting, in_a_passing_thread, waiting  # noqa: E402

configure_waiting()  # before torch loads: as the service waits

import torch  # noqa: E402

from speed import page_of, run, say, summary_job  # noqa: E402
from tiangong.engine.base import GenerationParams, Job  # noqa: E402
from tiangong.engine.embedded import embedded_gguf_path  # noqa: E402
from tiangong.engine.kv import new_cache  # noqa: E402
from tiangong.engine.lean_decode import LeanDecoder  # noqa: E402
from tiangong.engine.models import (  # noqa: E402
    configure_cpu_threads,
    ensure_gguf_converted,
    load_model_and_tokenizer,
    quantize_int8,
)
from tiangong.engine.quantize import quantize_weights  # noqa: E402
from tiangong.engine.transformers_engine import TransformersEngine  # noqa: E402

VARIANTS = (
    "fp32",
    "bf16",
    "bf16-bf16-cache",
    "bf16-exact-output",
    "bf16-transformers",
    "int8-dynamic",
    "int8-weights",
    "int4-weights",
)
# The default (bf16) with one of its levers taken away, to show what each gives.
LEAN = ("bf16", "bf16-bf16-cache", "bf16-exact-output")


def load_variant(folder: Path, variant: str) -> TransformersEngine:
    dtype = torch.bfloat16 if variant.startswith("bf16") else torch.float32
    model, tokenizer = load_model_and_tokenizer(folder, "cpu", dtype)
    if variant == "int8-dynamic":
        model = quantize_int8(model)
    elif variant == "int8-weights":
        model = quantize_weights(model, 8)
    elif variant == "int4-weights":
        model = quantize_weights(model, 4)
    # Only the LEAN variants run decode steps through engine/lean_decode.py (bf16 is the
    # default on CPUs with bf16); every other variant through transformers' forward.
    engine = TransformersEngine(
        model,
        tokenizer,
        label=variant,
        device="cpu",
        dtype_label=variant,
        lean_decode=variant in LEAN,
    )
    if variant == "bf16-bf16-cache":  # key/value states in the model's dtype
        engine._runner.cache_dtype = torch.bfloat16
    if variant == "bf16-exact-output":  # the output layer's own product for every score
        assert isinstance(engine.decoder, LeanDecoder)
        engine.decoder.lm_head.int4 = None
    return engine


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@asynccontextmanager
async def engine_of(folder: Path, variant: str) -> AsyncIterator[TransformersEngine]:
    """A variant's engine for one use, loaded in a passing thread and closed after: GNU
    OpenMP stops spinning once more threads hold workers than there are cores
    (tiangong/openmp.py), so only one generation thread may have run at a time."""
    engine = in_a_passing_thread(lambda: load_variant(folder, variant))
    try:
        yield engine
    finally:
        await engine.aclose()


async def speed(folder: Path, variants: list[str], reps: int) -> None:
    async with engine_of(folder, variants[0]) as first:
        job = summary_job(page_of(first, 440), 64)
        tokens = first.count_prompt_tokens(job.messages)
    decode: dict[str, list[float]] = {name: [] for name in variants}
    prefill: dict[str, list[float]] = {name: [] for name in variants}
    say(f"load average before: {load_average()}")
    for _ in range(reps):
        for name in variants:
            async with engine_of(folder, name) as engine:
                await run(engine, job)  # warm-up
                engine.prefix_cache.clear()
                ttft, total, _, finish = await run(engine, job)
            decode[name].append((finish.completion_tokens - 1) / (total - ttft))
            prefill[name].append(ttft)
    say(f"load average after: {load_average()}")
    base = statistics.median(decode["fp32"]) if "fp32" in decode else None
    for name in variants:
        rate = statistics.median(decode[name])
        ratio = f" ({rate / base:.2f}x fp32)" if base else ""
        say(
            f"speed: {name}: decode {rate:.1f} tok/s{ratio}, first token after "
            f"{statistics.median(prefill[name]) * 1000:.0f} ms ({tokens}-token prompt); "
            f"rounds: {', '.join(f'{r:.1f}' for r in decode[name])}"
        )


async def agreement(folder: Path, variants: list[str], pages: int, new_tokens: int) -> None:
    if "fp32" not in variants:
        return
    jobs = []
    answers: dict[str, list[list[int]]] = {}
    for name in variants:
        answers[name] = []
        async with engine_of(folder, name) as engine:
            if not jobs:
                for i in range(pages):
                    job = summary_job(page_of(engine, 400, offset=23 * i), new_tokens)
                    jobs.append(Job(job.task, job.messages, GenerationParams(new_tokens)))
            for job in jobs:
                engine.prefix_cache.clear()
                text = "".join((await run(engine, job))[2])
                answers[name].append(engine.tokenizer.encode(text, add_special_tokens=False))
    for name in variants:
        if name == "fp32":
            continue
        same = 0
        shared: list[float] = []
        for ours, theirs in zip(answers[name], answers["fp32"], strict=True):
            same += ours == theirs
            prefix = next(
                (i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b),
                min(len(ours), len(theirs)),
            )
            shared.append(prefix / max(len(theirs), 1))
        say(
            f"agreement: {name} vs fp32 greedy answers: {same}/{len(jobs)} identical; "
            f"first difference after {statistics.mean(shared):.0%} of fp32's tokens (mean)"
        )


def profile(folder: Path, variant: str, steps: int = 40) -> None:
    """Where a decode step's time goes: one request, ~500 positions cached. Run in a thread
    that then ends, as the engine's generation thread does (tiangong/openmp.py)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    engine = load_variant(folder, variant)
    model = engine._model
    decoder = engine.decoder
    ids = torch.tensor([engine.prompt_ids(summary_job(page_of(engine, 440), 1).messages)])
    with torch.inference_mode():
        cache = new_cache(model.config, engine._runner.cache_dtype)
        out = model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        position = ids.shape[1]

        def step() -> None:
            nonlocal token, position
            where = torch.tensor([[position]])
            if decoder is not None:
                scores = decoder(input_ids=token, position_ids=where, valid=None, cache=cache)
            else:
                out = model(input_ids=token, position_ids=where, cache=cache, use_cache=True)
                scores = out.logits[:, -1]
            token = scores.argmax(-1, keepdim=True)
            position += 1

        for _ in range(5):
            step()
        started = time.perf_counter()
        for _ in range(steps):
            step()
        plain = (time.perf_counter() - started) / steps
        started = time.perf_counter()
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                step()
        wall = (time.perf_counter() - started) / steps
    events = prof.key_averages()
    total_self = sum(e.self_cpu_time_total for e in events) / steps / 1000
    say(
        f"profile: {steps} decode steps at ~{position} positions: {plain * 1000:.1f} ms a step "
        f"({wall * 1000:.1f} ms under the profiler); operators' own time {total_self:.1f} ms "
        "a step; ops a step "
        f"{sum(e.count for e in events) / steps:.0f}; load {load_average()}"
    )
    rows: list[Any] = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:12]
    for e in rows:
        share = e.self_cpu_time_total / steps / 1000 / total_self
        say(
            f"profile:   {e.key:<32} {e.self_cpu_time_total / steps / 1000:6.2f} ms a step "
            f"({share:4.0%}), {e.count / steps:.0f} calls"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="*", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--pages", type=int, default=4, help="pages for the agreement check")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-speed", action="store_true", help="only the agreement check")
    parser.add_argument("--new-tokens", type=int, default=128, help="agreement answer length")
    parser.add_argument("--data-dir", default=str(ROOT / ".test-cache" / "embedded-data"))
    args = parser.parse_args()
    threads = configure_cpu_threads()
    folder = ensure_gguf_converted(embedded_gguf_path(), Path(args.data_dir))
    say(f"threads {threads}, {waiting()}, torch {torch.__version__}")
    if args.profile:
        in_a_passing_thread(lambda: profile(folder, args.variants[0]))
        return
    variants = ["fp32", *[v for v in args.variants if v != "fp32"]]  # the reference first
    if not args.no_speed:
        await speed(folder, variants, args.reps)
    await agreement(folder, variants, args.pages, args.new_tokens)


if __name__ == "__main__":
    asyncio.run(main())
