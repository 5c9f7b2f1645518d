"""What an operator sees: Prometheus metrics after real requests, and JSON-lines logs that
carry request ids but never page text or secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TOKEN, run_server
from tests.wsclient import client
from tiangong.engine.fake import FakeEngine
from tiangong.logs import REDACTED, bind_request, configure_logging, unbind_request

PAGE = {"url": "https://example.com/p", "text": "The secret recipe uses three eggs and flour."}


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{url}/metrics", headers=headers) as response,
    ):
        assert response.status == 200
        text = await response.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_count_answers_errors_and_time_them(tmp_path: Path) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        async with client(server.ws_url) as c:
            await c.request({"type": "summarize", "id": "s1", "page": PAGE})
            await c.request({"type": "ask", "id": "q1", "question": "x", "conversation_id": "no"})
        async with aiohttp.ClientSession() as http, http.get(f"{server.http_url}/health"):
            pass
        metrics = await scrape(server.http_url)
    done = ("tiangong_requests_total", (("outcome", "stop"), ("task", "summarize")))
    assert metrics[done] == 1
    assert metrics[("tiangong_errors_total", (("api", "ws"), ("code", "bad_request")))] == 1
    ttft = ("tiangong_time_to_first_token_seconds_count", (("task", "summarize"),))
    assert metrics[ttft] == 1
    speed = ("tiangong_decode_tokens_per_second_count", (("task", "summarize"),))
    assert metrics[speed] == 1
    assert metrics[("tiangong_queue_depth", ())] == 0
    assert metrics[("tiangong_running_jobs", ())] == 0
    info = ("name", "fake"), ("state", "ready")
    assert any(k[0] == "tiangong_engine_info" and set(info) <= set(k[1]) for k in metrics)
    health = ("tiangong_http_responses_total", (("route", "/health"), ("status", "200")))
    assert metrics[health] == 1
    assert metrics[("tiangong_context_tokens", ())] == 4096


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("info", "json", secrets=[TOKEN], stream=stream)
    yield stream
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def test_json_lines_carry_the_request_id_and_hide_secrets(json_log: io.StringIO) -> None:
    log = logging.getLogger("tiangong.test")
    bound = bind_request("r-42")
    try:
        log.info("answer for %s done", "r-42", extra={"tokens": 12})
        log.warning("someone passed %s", TOKEN)
    finally:
        unbind_request(bound)
    log.info("outside any request")
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert lines[0]["request_id"] == "r-42" and lines[0]["tokens"] == 12
    assert lines[0]["message"] == "answer for r-42 done" and lines[0]["level"] == "info"
    assert lines[1]["message"] == f"someone passed {REDACTED}"
    assert "request_id" not in lines[2]
    assert TOKEN not in json_log.getvalue()


async def test_a_served_request_logs_its_id_and_not_the_page(
    tmp_path: Path, json_log: io.StringIO
) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        async with client(server.ws_url) as c:
            await c.request({"type": "summarize", "id": "s-log", "page": PAGE})
        async with aiohttp.ClientSession() as http:
            body = {"model": "m", "messages": [{"role": "user", "content": "secret recipe"}]}
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with http.post(
                f"{server.http_url}/v1/chat/completions", json=body, headers=headers
            ) as response:
                chat_id = response.headers["X-Request-Id"]
                assert (await response.json())["id"] == chat_id
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    ids = {line.get("request_id") for line in lines}
    assert "s-log" in ids and chat_id in ids
    assert "secret recipe" not in json_log.getvalue()
    assert "three eggs" not in json_log.getvalue()


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="text, json"):
        configure_logging("info", "xml")
