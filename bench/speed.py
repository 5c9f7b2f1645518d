"""Speed figures of the transformers engine, measured side by side in one run (medians).

    python bench/speed.py --model embedded            # SmolLM2-135M-Instruct, all sections
    python bench/speed.py --model bench                # the offline ~35M test model
    python bench/speed.py --model embedded --only peer followup
    python bench/speed.py --model /path/to/folder --device cuda --dtype bfloat16

Sections: peer (llama.cpp on the same GGUF, skipped when llama_cpp is not installed),
ttft (first token on a ~4k-token page, cold), streams (tok/s per stream with 1, 8 and 32
requests at once), followup (prefix-cache TTFT), concurrent (8 requests vs one after
another), websocket (streaming through the server vs the engine alone), cancel, long
(map-reduce summaries of 5k/20k/50k-token pages), memory (peak RSS with 8 requests in
flight; GPU memory too on CUDA). The service reads whole pages here (`--reading page`), so
the figures are the engine's whatever the model's size. Prints figures; it asserts nothing
about time.
"""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import asyncio
import importlib.util
import itertools
import json
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "backend"), str(ROOT)]

from tiangong.openmp import configure_waiting, waiting  # noqa: E402

configure_waiting()  # before torch loads: as the service waits
WAITING = waiting()  # (later imports of the tests' settings change the variable, not torch)

from tests.support.offline_models import bench_llama, corpus_lines  # noqa: E402

from tiangong.engine.base import CancelToken, Delta, Finish, GenerationParams, Job  # noqa: E402
from tiangong.engine.embedded import embedded_gguf_path  # noqa: E402
from tiangong.engine.transformers_engine import TransformersEngine  # noqa: E402
from tiangong.pipeline.prompts import PriorTurn, ask_messages, summary_messages  # noqa: E402
from tiangong.protocol.messages import SummarizeOptions  # noqa: E402

ALL = (
    "peer",
    "ttft",
    "streams",
    "followup",
    "concurrent",
    "websocket",
    "cancel",
    "long",
    "memory",
)


def say(line: str) -> None:
    print(line, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def page_of(engine: TransformersEngine, tokens: int, offset: int = 0) -> str:
    """Real news text, about `tokens` tokens long (paragraphs cut whole)."""
    lines = [line for line in corpus_lines() if len(line.split()) > 8]
    out: list[str] = []
    used = 0
    i = offset
    while used < tokens:
        line = lines[i % len(lines)]
        n = engine.count_tokens(line)
        if used + n > tokens and out:
            break
        out.append(line)
        used += n
        i += 1
    return "\n\n".join(out)


def summary_job(text: str, new_tokens: int) -> Job:
    messages = summary_messages("Article", "", text, SummarizeOptions())
    return Job("summarize", messages, GenerationParams(new_tokens, min_tokens=new_tokens))


async def run(
    engine: TransformersEngine, job: Job, cancel: CancelToken | None = None
) -> tuple[float, float, list[str], Finish]:
    """(ttft, total seconds, deltas, finish)."""
    started = time.perf_counter()
    first = 0.0
    deltas: list[str] = []
    finish: Finish | None = None
    async for item in engine.stream(job, cancel or CancelToken()):
        if isinstance(item, Delta):
            if not deltas:
                first = time.perf_counter() - started
            deltas.append(item.text)
        else:
            finish = item
    assert finish is not None
    return first, time.perf_counter() - started, deltas, finish


# -- sections -----------------------------------------------------------------------------


def llama_worker(conn: Any, gguf: str, threads: int) -> None:
    """llama.cpp in a process of its own: its threads and ours never share a machine's
    cores or an OpenMP runtime while either side is timed (one process each, as users run
    them). Answers each prompt (token ids) with (seconds to the first new token, seconds to
    the 128th)."""
    import llama_cpp

    llm = llama_cpp.Llama(gguf, n_ctx=4096, n_threads=threads, verbose=False, seed=0)
    eos = llm.token_eos()
    conn.send("ready")
    while (prompt := conn.recv()) is not None:
        llm.reset()
        started = time.perf_counter()
        first, tokens = 0.0, 0
        for _ in llm.create_completion(
            prompt, max_tokens=128, temperature=0.0, top_k=1, logit_bias={eos: -1e9}, stream=True
        ):
            tokens += 1
            if tokens == 1:
                first = time.perf_counter() - started
        seconds = time.perf_counter() - started
        assert tokens >= 128, tokens  # one chunk per token, then the one that says "length"
        conn.send((first, seconds))


async def peer(engine: TransformersEngine, gguf: Path | None, reps: int) -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        say("peer: skipped: llama_cpp is not installed (pip install llama-cpp-python; see docs)")
        return
    if gguf is None:
        say("peer: skipped: only the embedded model has a GGUF to compare against")
        return
    threads = len(os.sched_getaffinity(0))
    ours_end, theirs_end = multiprocessing.get_context("spawn").Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=llama_worker, args=(theirs_end, str(gguf), threads), daemon=True
    )
    child.start()
    assert ours_end.recv() == "ready"
    try:
        for size in (512, 2048):
            text = page_of(engine, size - 60)
            job = summary_job(text, 128)
            prompt = engine.prompt_ids(job.messages)
            ours: list[tuple[float, float]] = []
            theirs: list[tuple[float, float]] = []
            for _ in range(reps):  # interleaved
                engine.prefix_cache.clear()
                first, total, _, _ = await run(engine, job)
                ours.append((first, total))
                ours_end.send(prompt)
                theirs.append(ours_end.recv())
            a, b = median([t for _, t in ours]), median([t for _, t in theirs])
            # Decode speed: the 127 tokens after the first, over the time they took.
            rate_a = median([127 / (t - f) for f, t in ours])
            rate_b = median([127 / (t - f) for f, t in theirs])
            target = 1.0 if size == 512 else 0.8
            say(
                f"peer: {len(prompt)}-token prompt + 128 new tokens: tiangong {a:.2f} s, "
                f"llama.cpp {b:.2f} s -> tiangong/llama.cpp {a / b:.2f} "
                f"({'met' if a / b <= target else 'NOT met'}: <= {target}); first token "
                f"{median([f for f, _ in ours]):.2f} s vs {median([f for f, _ in theirs]):.2f} s; "
                f"decode {rate_a:.1f} vs {rate_b:.1f} tok/s "
                f"({'met' if rate_a >= rate_b else 'NOT met'}: at least llama.cpp's)"
            )
    finally:
        ours_end.send(None)
        child.join(timeout=30)


async def ttft(engine: TransformersEngine, reps: int) -> None:
    size = min(4000, engine.context_tokens - 600)
    job = summary_job(page_of(engine, size), 8)
    tokens = engine.count_prompt_tokens(job.messages)
    firsts: list[float] = []
    for _ in range(reps):
        engine.prefix_cache.clear()
        firsts.append((await run(engine, job))[0])
    say(
        f"ttft: {tokens}-token prompt, cold: first token after {median(firsts) * 1000:.0f} ms "
        f"(prefill {tokens / median(firsts):.0f} tok/s; chunk {engine.prefill_chunk_tokens})"
    )


async def streams(engine: TransformersEngine, counts: list[int], new_tokens: int = 64) -> None:
    for n in counts:
        jobs = [summary_job(page_of(engine, 300, offset=11 * i), new_tokens) for i in range(n)]
        engine.prefix_cache.clear()
        await run(engine, jobs[0])  # warm
        engine.prefix_cache.clear()
        engine._runner.widest_batch = 0
        started = time.perf_counter()
        results = await asyncio.gather(*(run(engine, job) for job in jobs))
        took = time.perf_counter() - started
        # Per stream: its answer's tokens over the time from its first token to its last.
        per_stream = [
            (finish.completion_tokens - 1) / max(total - first, 1e-9)
            for first, total, _, finish in results
        ]
        say(
            f"streams: {n} at once x {new_tokens} tokens: {median(per_stream):.1f} tok/s per "
            f"stream (median), {n * new_tokens / took:.1f} tok/s in all, widest batch "
            f"{engine._runner.widest_batch} (max_batch {engine.max_concurrency})"
        )


async def followup(engine: TransformersEngine, reps: int) -> None:
    size = min(4000, engine.context_tokens - 600)
    text = page_of(engine, size)
    history = [PriorTurn("user", "What is this page about?"), PriorTurn("assistant", "News.")]
    first_messages = ask_messages(
        "Article", "", text, history=[], question="What is this page about?"
    )
    follow_messages = ask_messages("Article", "", text, history=history, question="Who is quoted?")
    params = GenerationParams(32, min_tokens=32)
    first_job = Job("ask", first_messages, params)
    follow_job = Job("ask", follow_messages, params)
    cold: list[float] = []
    warm: list[float] = []
    same = True
    for _ in range(reps):
        engine.prefix_cache.clear()
        await run(engine, first_job)  # the first question fills the cache
        ttft_warm, _, warm_deltas, _ = await run(engine, follow_job)
        engine.prefix_cache.clear()
        ttft_cold, _, cold_deltas, _ = await run(engine, follow_job)
        cold.append(ttft_cold)
        warm.append(ttft_warm)
        same = same and warm_deltas == cold_deltas
    tokens = engine.count_prompt_tokens(follow_messages)
    ratio = median(cold) / median(warm)
    say(
        f"followup: {tokens}-token prompt: TTFT cold {median(cold) * 1000:.0f} ms, "
        f"with the page prefix cached {median(warm) * 1000:.0f} ms -> {ratio:.1f}x "
        f"({'met' if ratio >= 10 else 'NOT met'}: >= 10x); identical tokens: {same}"
    )


async def concurrent(engine: TransformersEngine, reps: int, n: int = 8) -> None:
    jobs = [summary_job(page_of(engine, 200 + 40 * i, offset=17 * i), 64) for i in range(n)]
    seq: list[float] = []
    par: list[float] = []
    for _ in range(reps):
        engine.prefix_cache.clear()
        started = time.perf_counter()
        for job in jobs:
            await run(engine, job)
        seq.append(time.perf_counter() - started)
        engine.prefix_cache.clear()
        started = time.perf_counter()
        await asyncio.gather(*(run(engine, job) for job in jobs))
        par.append(time.perf_counter() - started)
    tokens = 64 * n
    a, b = tokens / median(seq), tokens / median(par)
    say(
        f"concurrent: {n} requests x 64 tokens: one after another {a:.1f} tok/s, "
        f"together {b:.1f} tok/s -> {b / a:.2f}x ({'met' if b / a >= 2 else 'NOT met'}: >= 2x)"
    )


async def websocket(engine: TransformersEngine, reps: int) -> None:
    from tests.conftest import run_server
    from tests.wsclient import Client
    from websockets.asyncio.client import connect

    class LeanClient(Client):
        """The test client without its per-frame schema check (that costs milliseconds)."""

        async def recv(self, timeout: float = 30) -> dict[str, Any]:  # noqa: ASYNC109
            frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            self.frames.append(frame)
            return frame

    text = page_of(engine, 500)
    question = "What happened?"
    messages = ask_messages("Article", "https://example.com/a", text, history=[], question=question)
    page = {"url": "https://example.com/a", "title": "Article", "text": text}
    direct: list[float] = []
    socket: list[float] = []
    with tempfile.TemporaryDirectory() as data:
        async with (
            run_server(Path(data), serve_with=engine, reading="page") as server,
            connect(server.ws_url, max_size=None) as ws,
        ):
            c = LeanClient(ws)
            await c.hello()
            for i in range(reps):
                engine.prefix_cache.clear()
                _, total, deltas, finish = await run(
                    engine, Job("ask", messages, GenerationParams(128))
                )
                direct.append(total)
                engine.prefix_cache.clear()
                started = time.perf_counter()
                frames = await c.request(
                    {
                        "type": "ask",
                        "id": f"w{i}",
                        "question": question,
                        "page": page,
                        "options": {"max_tokens": 128},
                    },
                    timeout=600,
                )
                socket.append(time.perf_counter() - started)
                done = frames[-1]
                assert done["usage"]["completion_tokens"] == finish.completion_tokens, done
                assert "".join(f["text"] for f in frames if f["type"] == "delta") == "".join(deltas)
    slower = median(socket) / median(direct) - 1
    say(
        f"websocket: same prompt, {finish.completion_tokens} tokens: "
        f"engine {median(direct):.2f} s, "
        f"through the WebSocket {median(socket):.2f} s -> {slower * 100:+.1f}% "
        f"({'met' if slower <= 0.05 else 'NOT met'}: at most +5%)"
    )


async def cancel(engine: TransformersEngine, reps: int) -> None:
    decode_ack: list[float] = []
    steps: list[float] = []
    job = summary_job(page_of(engine, 300), 2000)
    for _ in range(reps):
        token = CancelToken()
        stamps: list[float] = []
        cancelled_at = 0.0
        async for item in engine.stream(job, token):
            if isinstance(item, Delta):
                stamps.append(time.perf_counter())
                if len(stamps) == 20:
                    cancelled_at = time.perf_counter()
                    token.cancel()
            else:
                decode_ack.append(time.perf_counter() - cancelled_at)
                assert item.finish_reason == "cancelled"
        steps.append(median([b - a for a, b in itertools.pairwise(stamps[5:20])]))
    step = median(steps)
    ack = median(decode_ack)
    say(
        f"cancel during decode: acknowledged after {ack * 1000:.0f} ms; one decode step "
        f"{step * 1000:.0f} ms ({'met' if ack <= step * 1.5 else 'NOT met'}: within one step)"
    )
    size = min(4000, engine.context_tokens - 500)
    long_job = summary_job(page_of(engine, size), 8)
    prefill_ack: list[float] = []
    for _ in range(reps):
        engine.prefix_cache.clear()
        token = CancelToken()
        task = asyncio.create_task(run(engine, long_job, token))
        await asyncio.sleep(0.5)
        cancelled_at = time.perf_counter()
        token.cancel()
        _, _, deltas, finish = await task
        prefill_ack.append(time.perf_counter() - cancelled_at)
        assert finish.finish_reason == "cancelled" and not deltas
    ack = median(prefill_ack)
    say(
        f"cancel during a {size}-token prefill: acknowledged after {ack * 1000:.0f} ms "
        f"({'met' if ack <= 0.15 else 'NOT met'}: <= 150 ms; prefill chunk "
        f"{engine.prefill_chunk_tokens} tokens)"
    )


async def long_pages(engine: TransformersEngine, sizes: list[int]) -> None:
    from tests.conftest import run_server
    from tests.wsclient import client

    with tempfile.TemporaryDirectory() as data:
        async with (
            run_server(Path(data), serve_with=engine, reading="page") as server,
            client(server.ws_url) as c,
        ):
            for size in sizes:
                text = page_of(engine, size)
                page = {"url": "https://example.com/long", "title": "Long", "text": text}
                started = time.perf_counter()
                frames = await c.request(
                    {"type": "summarize", "id": f"l{size}", "page": page, "options": {}},
                    timeout=3600,
                )
                took = time.perf_counter() - started
                plan = frames[0]["page"]["plan"]
                tokens = frames[0]["page"]["tokens"]
                reading = [f for f in frames if f["type"] == "progress" and f["stage"] == "reading"]
                say(
                    f"long: {tokens}-token page: {plan['strategy']}, coverage "
                    f"{plan['coverage']:.0%}, {reading[-1]['total'] if reading else 0} chunks, "
                    f"{took:.1f} s = {took / tokens * 1000:.2f} s per 1,000 tokens "
                    f"({frames[-1]['finish_reason']})"
                )


async def memory(engine: TransformersEngine) -> None:
    import torch

    cuda = engine.device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    jobs = [summary_job(page_of(engine, 400, offset=9 * i), 64) for i in range(8)]
    await asyncio.gather(*(run(engine, job) for job in jobs))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gpu = ""
    if cuda:
        gpu = f"; GPU peak allocated {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
    say(f"memory: peak RSS of this process with 8 requests in flight: {peak:.0f} MiB{gpu}")


# -- main ---------------------------------------------------------------------------------


def load(args: argparse.Namespace) -> tuple[TransformersEngine, Path | None]:
    gguf: Path | None = None
    spec: str | None
    if args.model == "embedded":
        spec, gguf = None, embedded_gguf_path()
    elif args.model == "bench":
        spec = str(bench_llama())
    else:
        spec = args.model
    data = Path(args.data_dir)
    started = time.perf_counter()
    engine = TransformersEngine.load(
        spec,
        data_dir=data,
        device=args.device,
        dtype=args.dtype,
        max_batch=args.max_batch,
        attention_impl=args.attention,
        lean_decode=args.decode == "lean",
    )
    say(
        f"model: {engine.model} ({engine._model.dtype}, {engine.device}, "
        f"attention {engine.details['attention']}, decode {engine.decode_path}, "
        f"max_batch {engine.max_concurrency}, "
        f"{sum(p.numel() for p in engine._model.parameters()) / 1e6:.1f}M parameters), "
        f"loaded in {time.perf_counter() - started:.1f} s; threads "
        f"{__import__('torch').get_num_threads()}, {WAITING}"
    )
    return engine, gguf


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded", help="embedded | bench | folder | hub id")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--only", nargs="*", choices=ALL, default=list(ALL))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--max-batch", type=int, default=8, help="requests decoded together")
    parser.add_argument("--attention", default="auto", help="auto | grouped | sdpa | eager")
    parser.add_argument(
        "--decode", default="lean", choices=("lean", "transformers"), help="what runs decode steps"
    )
    parser.add_argument("--streams", default="1,8,32", help="concurrency levels of 'streams'")
    parser.add_argument("--long-sizes", default="5000,20000,50000")
    parser.add_argument(
        "--data-dir", default=str(ROOT / ".test-cache" / "embedded-data"), help="converted models"
    )
    args = parser.parse_args()
    engine, gguf = load(args)
    sections: dict[str, Callable[[], Any]] = {
        "peer": lambda: peer(engine, gguf, args.reps),
        "ttft": lambda: ttft(engine, args.reps),
        "streams": lambda: streams(engine, [int(n) for n in args.streams.split(",")]),
        "followup": lambda: followup(engine, args.reps),
        "concurrent": lambda: concurrent(engine, args.reps),
        "cancel": lambda: cancel(engine, args.reps),
        "memory": lambda: memory(engine),
        # Both run the real server, which closes the engine it serves with: they go last.
        "websocket": lambda: websocket(engine, args.reps),
        "long": lambda: long_pages(engine, [int(s) for s in args.long_sizes.split(",")]),
    }
    order = [
        "memory",
        "peer",
        "ttft",
        "streams",
        "followup",
        "concurrent",
        "cancel",
        "websocket",
        "long",
    ]
    chosen = [name for name in order if name in args.only]
    for name in chosen:
        if name == "long" and "websocket" in chosen:
            engine, gguf = load(args)  # the websocket section's server closed the last one
        await sections[name]()
    say(json.dumps({"done": chosen}))


if __name__ == "__main__":
    asyncio.run(main())
