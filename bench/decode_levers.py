"""Decode speed levers on the CPU, side by side in one run (the embedded SmolLM2-135M):

    python bench/decode_levers.py                      # all variants, 3 interleaved rounds
    python bench/decode_levers.py --variants fp32 int8-weights --reps 5
    python bench/decode_levers.py --profile            # where a decode step's time goes

Variants: fp32, bf16, int8-dynamic (`--dtype int8`: quantize_dynamic), int8-weights and
int4-weights (engine/quantize.py: weight-only kernels, fp32 activations). Each round runs
every variant once on the same ~500-token summary (64 forced new tokens, through
`engine.stream`), so a busy machine slows them alike; ratios are to fp32. Then each
variant's greedy answers to a few pages (128 tokens, the engine's default settings) are
compared with fp32's, token for token (`--pages`, `--new-tokens`; `--no-speed` for that
alone). Prints figures and the load average; asserts nothing.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "backend"), str(ROOT), str(ROOT / "bench")]

import torch  # noqa: E402

from speed import page_of, run, say, summary_job  # noqa: E402
from tiangong.engine.base import GenerationParams, Job  # noqa: E402
from tiangong.engine.embedded import embedded_gguf_path  # noqa: E402
from tiangong.engine.kv import new_cache  # noqa: E402
from tiangong.engine.models import (  # noqa: E402
    configure_cpu_threads,
    ensure_gguf_converted,
    load_model_and_tokenizer,
    quantize_int8,
)
from tiangong.engine.quantize import quantize_weights  # noqa: E402
from tiangong.engine.transformers_engine import TransformersEngine  # noqa: E402

VARIANTS = ("fp32", "bf16", "int8-dynamic", "int8-weights", "int4-weights")


def load_variant(folder: Path, variant: str) -> TransformersEngine:
    dtype = torch.bfloat16 if variant == "bf16" else torch.float32
    model, tokenizer = load_model_and_tokenizer(folder, "cpu", dtype)
    if variant == "int8-dynamic":
        model = quantize_int8(model)
    elif variant == "int8-weights":
        model = quantize_weights(model, 8)
    elif variant == "int4-weights":
        model = quantize_weights(model, 4)
    return TransformersEngine(model, tokenizer, label=variant, device="cpu", dtype_label=variant)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def speed(engines: dict[str, TransformersEngine], reps: int) -> None:
    first = next(iter(engines.values()))
    job = summary_job(page_of(first, 440), 64)
    tokens = first.count_prompt_tokens(job.messages)
    decode: dict[str, list[float]] = {name: [] for name in engines}
    prefill: dict[str, list[float]] = {name: [] for name in engines}
    for engine in engines.values():  # warm-up
        await run(engine, job)
    say(f"load average before: {load_average()}")
    for _ in range(reps):
        for name, engine in engines.items():
            engine.prefix_cache.clear()
            ttft, total, _, finish = await run(engine, job)
            decode[name].append((finish.completion_tokens - 1) / (total - ttft))
            prefill[name].append(ttft)
    say(f"load average after: {load_average()}")
    base = statistics.median(decode["fp32"]) if "fp32" in decode else None
    for name in engines:
        rate = statistics.median(decode[name])
        ratio = f" ({rate / base:.2f}x fp32)" if base else ""
        say(
            f"speed: {name}: decode {rate:.1f} tok/s{ratio}, first token after "
            f"{statistics.median(prefill[name]) * 1000:.0f} ms ({tokens}-token prompt); "
            f"rounds: {', '.join(f'{r:.1f}' for r in decode[name])}"
        )


async def agreement(engines: dict[str, TransformersEngine], pages: int, new_tokens: int) -> None:
    if "fp32" not in engines:
        return
    first = engines["fp32"]
    jobs = []
    for i in range(pages):
        job = summary_job(page_of(first, 400, offset=23 * i), new_tokens)
        jobs.append(Job(job.task, job.messages, GenerationParams(new_tokens)))
    answers: dict[str, list[list[int]]] = {}
    for name, engine in engines.items():
        answers[name] = []
        for job in jobs:
            engine.prefix_cache.clear()
            text = "".join((await run(engine, job))[2])
            answers[name].append(engine.tokenizer.encode(text, add_special_tokens=False))
    for name in engines:
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


def profile(folder: Path, steps: int = 40) -> None:
    """Where a decode step's time goes: fp32, one request, ~500 positions cached."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    engine = load_variant(folder, "fp32")
    model = engine._model
    ids = torch.tensor([engine.prompt_ids(summary_job(page_of(engine, 440), 1).messages)])
    with torch.inference_mode():
        cache = new_cache(model.config)
        out = model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        position = ids.shape[1]

        def step() -> None:
            nonlocal token, position
            out = model(
                input_ids=token,
                position_ids=torch.tensor([[position]]),
                cache=cache,
                use_cache=True,
            )
            token = out.logits[:, -1].argmax(-1, keepdim=True)
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
    policy = os.environ["OMP_WAIT_POLICY"]
    say(f"threads {threads}, OMP_WAIT_POLICY={policy}, torch {torch.__version__}")
    if args.profile:
        profile(folder)
        return
    engines = {name: load_variant(folder, name) for name in args.variants}
    if not args.no_speed:
        await speed(engines, args.reps)
    await agreement(engines, args.pages, args.new_tokens)
    for engine in engines.values():
        await engine.aclose()


if __name__ == "__main__":
    asyncio.run(main())
