"""Who may use the HTTP API and /metrics: each refusal on its own, with everything else right.
A refused request never reaches the engine, and no response ever allows cross-origin reads."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import TOKEN, run_server
from tiangong.engine.fake import FakeEngine

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
GOOD = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


async def call(
    url: str, method: str, path: str, *, headers: dict[str, str], data: Any = None
) -> tuple[int, dict[str, Any], Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url + path, headers=headers, data=data) as response,
    ):
        text = await response.text()
        body = json.loads(text) if response.content_type == "application/json" else text
        return response.status, dict(response.headers), body


async def test_the_token_and_json_open_the_api(tmp_path: Path) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        status, headers, body = await call(
            server.http_url, "POST", "/v1/chat/completions", headers=GOOD, data=json.dumps(CHAT)
        )
    assert status == 200 and body["choices"][0]["message"]["content"] == "Fake answer about "
    assert "Access-Control-Allow-Origin" not in headers


@pytest.mark.parametrize(
    "headers, status, code",
    [
        ({"Content-Type": "application/json"}, 401, "unauthorized"),
        ({**GOOD, "Authorization": "Bearer wrong-token"}, 401, "unauthorized"),
        ({**GOOD, "Authorization": f"Bearer {TOKEN}x"}, 401, "unauthorized"),
        ({**GOOD, "Authorization": f"Basic {TOKEN}"}, 401, "unauthorized"),
        ({**GOOD, "Authorization": TOKEN}, 401, "unauthorized"),
        ({**GOOD, "Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        ({**GOOD, "Content-Type": "application/x-www-form-urlencoded"}, 415, None),
        ({**GOOD, "Content-Type": "multipart/form-data; boundary=x"}, 415, None),
        ({**GOOD, "Sec-Fetch-Site": "cross-site"}, 403, "forbidden"),
        ({**GOOD, "Origin": "https://evil.example"}, 403, "forbidden"),
        ({**GOOD, "Host": "evil.example:8765"}, 403, "forbidden"),
    ],
)
async def test_chat_requests_are_refused_without_token_json_or_same_site(
    tmp_path: Path, headers: dict[str, str], status: int, code: str | None
) -> None:
    engine = FakeEngine()
    async with run_server(tmp_path, serve_with=engine) as server:
        got, response_headers, body = await call(
            server.http_url, "POST", "/v1/chat/completions", headers=headers, data=json.dumps(CHAT)
        )
    assert got == status
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    assert engine.jobs == []
    assert "Access-Control-Allow-Origin" not in response_headers
    if status == 401:
        assert response_headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ["/v1/models", "/metrics"])
async def test_models_and_metrics_need_the_token_too(tmp_path: Path, path: str) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        anonymous = await call(server.http_url, "GET", path, headers={})
        cross_site = await call(
            server.http_url, "GET", path, headers={**GOOD, "Sec-Fetch-Site": "cross-site"}
        )
        allowed = await call(server.http_url, "GET", path, headers=GOOD)
    assert anonymous[0] == 401 and cross_site[0] == 403 and allowed[0] == 200


async def test_a_preflight_gets_no_cross_origin_permission(tmp_path: Path) -> None:
    preflight = {
        "Origin": "chrome-extension://plghbdjilgipchcgmoniejacopnikcgh",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        status, headers, _ = await call(
            server.http_url, "OPTIONS", "/v1/chat/completions", headers=preflight
        )
    assert status == 405
    assert not any(h.lower().startswith("access-control-") for h in headers)


async def test_the_token_is_never_logged_even_when_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        await call(server.http_url, "GET", "/v1/models", headers={"Authorization": "Bearer nope"})
        await call(
            server.http_url, "POST", "/v1/chat/completions", headers=GOOD, data=json.dumps(CHAT)
        )
    assert caplog.records
    assert all(TOKEN not in r.getMessage() and "nope" not in r.getMessage() for r in caplog.records)


async def test_bodies_that_are_not_json_objects_are_bad_requests(tmp_path: Path) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        results = [
            await call(server.http_url, "POST", "/v1/chat/completions", headers=GOOD, data=data)
            for data in ("{", "[]", '{"model": "m", "messages": NaN}', "")
        ]
    assert [status for status, _, _ in results] == [400, 400, 400, 400]
    assert all(body["error"]["type"] == "invalid_request_error" for _, _, body in results)
