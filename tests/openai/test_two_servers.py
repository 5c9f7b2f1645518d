"""Done when: a second Tiangong with `--engine openai`, pointed at a first one, answers the
sidebar end to end. The first serves a real offline-built model; the sidebar's protocol runs
over real WebSockets (tests/wsclient.py) against the second."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp

from tests.conftest import REPO, TOKEN, free_port, run_server
from tests.support.offline_models import tiny_llama
from tests.wsclient import answer_text, client
from tiangong.engine.transformers_engine import TransformersEngine

ARTICLE = """<html lang="en"><head><title>Night trains return</title></head><body>
<nav>Home | World | Sport</nav><article><h1>Night trains return to Europe</h1>
<p>Night trains are coming back across Europe as travellers look for low-carbon journeys.</p>
<p>A new sleeper service links Brussels and Prague three times a week since May.</p>
<p>Operators say tickets for the summer months sold out within days.</p>
</article></body></html>"""
PAGE = {"url": "https://example.com/trains", "title": "Trains", "html": ARTICLE}
SUMMARIZE = {
    "type": "summarize",
    "id": "s1",
    "page": PAGE,
    "options": {"type": "key-points", "length": "short", "max_tokens": 16},
}


async def test_a_second_server_answers_the_sidebar_through_the_first(tmp_path: Path) -> None:
    model = TransformersEngine.load(str(tiny_llama()), data_dir=tmp_path, dtype="float32")
    async with run_server(tmp_path / "a", serve_with=model, reading="page") as first:
        async with client(first.ws_url) as c:
            direct = await c.request(SUMMARIZE)
        async with run_server(
            tmp_path / "b",
            engine="openai",
            openai_base_url=f"{first.http_url}/v1",
            openai_api_key=TOKEN,
        ) as second:
            async with client(second.ws_url, hello=False) as c:
                engine = (await c.hello())["engine"]
                while engine["state"] == "loading":
                    engine = (await c.next_of("status", timeout=30))["engine"]
                proxied = await c.request(SUMMARIZE)
                conversation = proxied[-1]["conversation_id"]
                follow_up = await c.request(
                    {
                        "type": "ask",
                        "id": "q1",
                        "question": "Which cities does the sleeper link?",
                        "conversation_id": conversation,
                        "options": {"max_tokens": 8},
                    }
                )
    assert engine["name"] == "openai" and engine["state"] == "ready"
    assert engine["model"] == model.model and engine["context_tokens"] == model.context_tokens
    assert "fallback_reason" not in engine
    # Same page, same plan, same prompt, greedy: the same answer, whichever way it came.
    assert proxied[0]["page"]["plan"]["strategy"] == "whole"
    assert answer_text(proxied) == answer_text(direct) and answer_text(direct)
    assert proxied[-1]["usage"] == direct[-1]["usage"]
    assert follow_up[-1]["type"] == "done" and follow_up[-1]["conversation_id"] == conversation
    assert 0 < follow_up[-1]["usage"]["completion_tokens"] <= 8


async def wait_ready(port: int, process: asyncio.subprocess.Process) -> dict[str, object]:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            if process.returncode is not None:
                break
            try:
                async with http.get(f"http://127.0.0.1:{port}/health") as response:
                    health: dict[str, object] = await response.json()
                    if health["engine"]["state"] == "ready":  # type: ignore[index]
                        return health
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the second server did not get ready")


async def test_tiangong_serve_with_engine_openai_answers_the_sidebar(tmp_path: Path) -> None:
    model = TransformersEngine.load(str(tiny_llama()), data_dir=tmp_path, dtype="float32")
    port = free_port()
    async with run_server(tmp_path / "a", serve_with=model, reading="page") as first:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO / "backend"),
            "TIANGONG_OPENAI_API_KEY": TOKEN,
        }
        env.pop("TIANGONG_ENGINE", None)
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tiangong.cli", "serve", "--port", str(port)),
            *("--engine", "openai", "--openai-base-url", f"{first.http_url}/v1"),
            *("--token", TOKEN, "--data-dir", str(tmp_path / "b"), "--log-format", "json"),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            health = await wait_ready(port, process)
            async with client(f"ws://127.0.0.1:{port}/ws") as c:
                frames = await c.request(SUMMARIZE)
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert health["engine"]["name"] == "openai"  # type: ignore[index]
    assert frames[-1]["type"] == "done" and answer_text(frames)
    records = [json.loads(line) for line in stderr.decode().splitlines() if line.strip()]
    assert any(r.get("request_id") == "s1" for r in records)
    assert all({"ts", "level", "logger", "message"} <= r.keys() for r in records)
    logged = stderr.decode()
    assert TOKEN not in logged and "sleeper service" not in logged
