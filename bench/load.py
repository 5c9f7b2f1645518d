"""Load test: many connections, many requests, one `tiangong serve` with the offline-built test
model. Prints completed / failed / overloaded, TTFT percentiles, the service's peak memory, and
checks that every answer whose `done` arrived is in the history store (lost turns: 0).

    .venv/bin/python bench/load.py [--connections 50] [--requests 200] [--max-tokens 16]

Only loopback traffic; bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "backend")]

# The tests' settings (tests/conftest.py) make workers wait passively; the service here
# waits as it does for users unless this command was given a policy.
WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")
from tests.conftest import free_port  # noqa: E402
from tests.support.offline_models import bench_llama  # noqa: E402
from tests.support.service_process import service_env, start_serve  # noqa: E402

TOKEN = "load-test-token"
PAGE = " ".join(
    f"Paragraph {i}: the committee met on a rainy afternoon and discussed budgets, rail lines "
    "and the new library at length before voting."
    for i in range(12)
)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def one_connection(
    url: str, requests: list[int], max_tokens: int, results: list[dict[str, Any]]
) -> None:
    async with connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "hello", "protocol": 1, "token": TOKEN}))
        json.loads(await ws.recv())
        for n in requests:
            rid = f"r{n}"
            sent = time.monotonic()
            await ws.send(
                json.dumps(
                    {
                        "type": "summarize",
                        "id": rid,
                        "page": {"url": f"https://example.com/{n}", "text": f"{PAGE} Request {n}."},
                        "options": {"type": "tldr", "length": "short", "max_tokens": max_tokens},
                    }
                )
            )
            ttft = None
            text = []
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("id") != rid:
                    continue
                if frame["type"] == "delta":
                    ttft = ttft if ttft is not None else time.monotonic() - sent
                    text.append(frame["text"])
                elif frame["type"] in ("done", "error"):
                    results.append({"id": rid, "frame": frame, "ttft": ttft, "text": "".join(text)})
                    break


def start_service(data_dir: Path, model: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = service_env(TIANGONG_TOKEN=TOKEN)
    if WAIT_POLICY is None:
        env.pop("OMP_WAIT_POLICY", None)
    args = ("--engine", "transformers", "--model", str(model), "--data-dir", str(data_dir))
    return start_serve(port, *args, env=env, until_ready=True, timeout=120), port


async def run(args: argparse.Namespace) -> int:
    data_dir = Path(tempfile.mkdtemp(prefix="tiangong-load-"))
    model = bench_llama()
    proc, port = await asyncio.to_thread(start_service, data_dir, model)
    try:
        per_conn: list[list[int]] = [[] for _ in range(args.connections)]
        for n in range(args.requests):
            per_conn[n % args.connections].append(n)
        results: list[dict[str, Any]] = []
        started = time.monotonic()
        await asyncio.wait_for(
            asyncio.gather(
                *(
                    one_connection(f"ws://127.0.0.1:{port}/ws", reqs, args.max_tokens, results)
                    for reqs in per_conn
                )
            ),
            args.time_limit,
        )
        wall = time.monotonic() - started
        peak = peak_rss_mib(proc.pid)
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
    done = [r for r in results if r["frame"]["type"] == "done"]
    errors = [r["frame"]["code"] for r in results if r["frame"]["type"] == "error"]
    ttfts = sorted(r["ttft"] for r in done if r["ttft"] is not None)
    db = sqlite3.connect(data_dir / "history.sqlite3")
    stored = dict(db.execute("SELECT request_id, text FROM turns WHERE role='assistant'"))
    lost = [r["id"] for r in done if stored.get(r["id"]) != r["text"]]
    print(
        f"connections {args.connections}, requests {args.requests}, "
        f"max_tokens {args.max_tokens}, model {model.name}"
    )
    print(
        f"completed {len(done)}  overloaded {errors.count('overloaded')}  "
        f"failed {len(errors) - errors.count('overloaded')}  wall {wall:.1f} s"
    )
    if ttfts:
        p99 = ttfts[min(len(ttfts) - 1, int(len(ttfts) * 0.99))]
        print(f"TTFT p50 {statistics.median(ttfts) * 1000:.0f} ms  p99 {p99 * 1000:.0f} ms")
    print(f"service peak RSS {peak:.0f} MiB")
    print(f"lost turns {len(lost)}")
    return 1 if lost or len(results) != args.requests else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--time-limit", type=float, default=900)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
