"""Who may connect: origin allowlist, loopback Host only, pairing token. Real server, real
clients (the fake engine serves; no request reaches it unless it is allowed)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import aiohttp
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import TOKEN, run_server
from tests.wsclient import client
from tiangong.engine.fake import FakeEngine
from tiangong.settings import DEFAULT_ORIGINS, Settings

EXTENSION = DEFAULT_ORIGINS[0]


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "null",
        "chrome-extension://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        EXTENSION + ".evil.example",
        EXTENSION[:-1],
        "http://127.0.0.1:8765",
        "HTTPS://EVIL.EXAMPLE",
    ],
)
async def test_websockets_from_other_origins_are_refused_before_upgrade(
    tmp_path: Path, origin: str
) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        with pytest.raises(InvalidStatus) as refused:
            async with client(server.ws_url, origin=origin, hello=False):
                pass
    assert refused.value.response.status_code == 403


async def test_the_pinned_extension_and_origin_less_clients_are_allowed(tmp_path: Path) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        async with client(server.ws_url, origin=EXTENSION) as c:
            assert c.frames[-1]["type"] == "welcome"
        async with client(server.ws_url) as c:
            assert c.frames[-1]["type"] == "welcome"


async def test_allow_origin_adds_exactly_that_origin(tmp_path: Path) -> None:
    firefox = "moz-extension://0b8c3f4e-5a6d-4e7f-8a9b-0c1d2e3f4a5b"
    async with run_server(tmp_path, serve_with=FakeEngine(), allow_origins=(firefox,)) as server:
        async with client(server.ws_url, origin=firefox) as c:
            assert c.frames[-1]["type"] == "welcome"
        with pytest.raises(InvalidStatus):
            async with client(server.ws_url, origin=firefox.upper(), hello=False):
                pass


async def test_health_says_whether_a_named_origin_is_allowed(tmp_path: Path) -> None:
    """Firefox sends no Origin on an add-on's fetch of /health (only on the WebSocket
    upgrade), so the add-on names its origin to learn that the service refuses it."""
    firefox = "moz-extension://0b8c3f4e-5a6d-4e7f-8a9b-0c1d2e3f4a5b"
    other = "moz-extension://11111111-2222-4333-8444-555555555555"
    async with run_server(tmp_path, serve_with=FakeEngine(), allow_origins=(firefox,)) as server:
        async with aiohttp.ClientSession() as http:
            verdicts = {}
            for origin in (firefox, other, EXTENSION, "null", firefox.upper()):
                async with http.get(server.http_url + "/health", params={"origin": origin}) as r:
                    assert r.status == 200
                    verdicts[origin] = (await r.json())["origin_allowed"]
            async with http.get(server.http_url + "/health") as response:
                plain = await response.json()
            async with http.get(server.http_url + "/health", params={"origin": "x" * 513}) as r:
                too_long = (r.status, await r.json())
    assert verdicts == {
        firefox: True,
        other: False,
        EXTENSION: True,
        "null": False,
        firefox.upper(): False,
    }
    assert "origin_allowed" not in plain
    assert too_long[0] == 400 and "origin must be 1 to 512" in too_long[1]["error"]["message"]


@pytest.mark.parametrize(
    "host", ["evil.example:{port}", "127.0.0.1.nip.io:{port}", "127.0.0.1:1", "localhost"]
)
async def test_dns_rebinding_hosts_are_refused_on_every_route(tmp_path: Path, host: str) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        header = host.format(port=server.port)
        headers = {"Host": header} if header else {}
        async with aiohttp.ClientSession(skip_auto_headers=["Host"]) as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(server.ws_url, headers=headers)
            async with http.get(server.http_url + "/health", headers=headers) as response:
                body = await response.json()
    assert refused.value.status == 403
    assert response.status == 403 and body["error"]["code"] == "forbidden"


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "[::1]"])
async def test_loopback_names_with_our_port_are_accepted(tmp_path: Path, name: str) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        async with aiohttp.ClientSession() as http:
            headers = {"Host": f"{name}:{server.port}"}
            async with http.get(server.http_url + "/health", headers=headers) as response:
                assert response.status == 200
    assert response.headers.get("Access-Control-Allow-Origin") is None


async def test_wrong_or_missing_token_is_unauthorized_and_closed_with_1008(
    tmp_path: Path,
) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        for token in ("wrong", "", TOKEN + "x", TOKEN[:-1]):
            async with client(server.ws_url, hello=False) as c:
                error = await c.hello(token)
                with pytest.raises(ConnectionClosed) as closed:
                    await c.recv(timeout=5)
            assert error["code"] == "unauthorized" and "tiangong token" in error["message"]
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_any_request_before_hello_is_unauthorized(tmp_path: Path) -> None:
    engine = FakeEngine()
    async with run_server(tmp_path, serve_with=engine) as server:
        async with client(server.ws_url, hello=False) as c:
            await c.send({"type": "history", "id": "h"})
            error = await c.recv()
            with pytest.raises(ConnectionClosed) as closed:
                await c.recv(timeout=5)
        async with client(server.ws_url, hello=False) as c:
            await c.send("garbage before hello")
            garbage = await c.recv()
    assert error["code"] == "unauthorized" and closed.value.rcvd.code == 1008  # type: ignore[union-attr]
    assert garbage["code"] == "unauthorized"
    assert engine.jobs == []


async def test_an_unknown_protocol_version_is_refused(tmp_path: Path) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        async with client(server.ws_url, hello=False) as c:
            await c.send({"type": "hello", "protocol": 2, "token": TOKEN})
            error = await c.recv()
    assert error["code"] == "unsupported" and "protocol 2" in error["message"]


def test_the_stored_token_is_random_private_and_stable(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path / "a").pairing_token()
    again = Settings(data_dir=tmp_path / "a").pairing_token()
    other = Settings(data_dir=tmp_path / "b").pairing_token()
    assert first == again and first != other and len(first) >= 40
    mode = stat.S_IMODE(os.stat(tmp_path / "a" / "token").st_mode)
    assert mode == 0o600


def test_an_explicit_token_wins_and_is_not_written(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, token="given")
    assert settings.pairing_token() == "given"
    assert not (tmp_path / "token").exists()


async def test_the_token_never_reaches_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        async with client(server.ws_url) as c:
            await c.request(
                {"type": "summarize", "id": "s", "page": {"url": "u", "text": "Some text."}}
            )
        async with client(server.ws_url, hello=False) as c:
            await c.hello(TOKEN + "-wrong")
    assert caplog.records  # the server did log
    assert TOKEN not in caplog.text
