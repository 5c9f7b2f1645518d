"""A Firefox add-on's origin registered while the service runs (real server, real
WebSocket clients; the fake engine serves, only the Origin check matters here)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus

from tests.conftest import run_server
from tests.wsclient import client
from tiangong.engine.fake import FakeEngine
from tiangong.origins import moz_extension_origin, origins_path, register_origin

ADDON = "moz-extension://0b8c3f4e-5a6d-4e7f-8a9b-0c1d2e3f4a5b"


async def test_a_registered_add_on_origin_is_allowed_without_a_restart(tmp_path: Path) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        with pytest.raises(InvalidStatus) as refused:
            async with client(server.ws_url, origin=ADDON, hello=False):
                pass
        assert refused.value.response.status_code == 403
        assert register_origin(tmp_path, ADDON) is True
        async with client(server.ws_url, origin=ADDON) as c:
            assert c.frames[-1]["type"] == "welcome"
        other = "moz-extension://11111111-2222-4333-8444-555555555555"
        with pytest.raises(InvalidStatus):
            async with client(server.ws_url, origin=other, hello=False):
                pass


async def test_the_file_can_only_ever_allow_add_on_pages(tmp_path: Path) -> None:
    origins_path(tmp_path).write_text(
        "https://evil.example\nnull\nmoz-extension://not-a-uuid\n" + ADDON + "\n", "utf-8"
    )
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        for origin in ("https://evil.example", "null", "moz-extension://not-a-uuid"):
            with pytest.raises(InvalidStatus) as refused:
                async with client(server.ws_url, origin=origin, hello=False):
                    pass
            assert refused.value.response.status_code == 403
        async with client(server.ws_url, origin=ADDON) as c:
            assert c.frames[-1]["type"] == "welcome"


def test_registering_keeps_each_origin_once_in_a_private_file(tmp_path: Path) -> None:
    assert register_origin(tmp_path, ADDON) is True
    assert register_origin(tmp_path, ADDON) is False
    path = origins_path(tmp_path)
    assert path.read_text("utf-8") == ADDON + "\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with pytest.raises(ValueError):
        register_origin(tmp_path, "https://evil.example")


@pytest.mark.parametrize(
    ("claimed", "origin"),
    [
        (ADDON + "/", ADDON),
        (ADDON, ADDON),
        (ADDON.upper() + "/", None),
        ("moz-extension://0b8c3f4e-5a6d-4e7f-8a9b-0c1d2e3f4a5b.evil.example/", None),
        ("chrome-extension://plghbdjilgipchcgmoniejacopnikcgh/", None),
        (ADDON + "/page.html", None),
        ("", None),
    ],
)
def test_only_the_exact_add_on_base_url_names_an_origin(claimed: str, origin: str | None) -> None:
    assert moz_extension_origin(claimed) == origin
