"""The per-browser builds have manifests their browsers accept (checked on the built files)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from scripts.build_extension import BROWSERS, main

REPO = Path(__file__).resolve().parents[2]
EXTENSION_ID = "plghbdjilgipchcgmoniejacopnikcgh"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    assert main(["--out", str(out)]) == 0
    return out


def manifest(dist: Path, browser: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((dist / browser / "manifest.json").read_text("utf-8"))
    return data


def files_named(dist: Path, browser: str, data: dict[str, Any]) -> list[str]:
    """Every file the manifest points at."""
    named = [data["background"].get("service_worker"), *data["background"].get("scripts", [])]
    named += list(data["icons"].values())
    named.append(data["options_ui"]["page"])
    for key in ("side_panel", "sidebar_action"):
        if key in data:
            named.append(data[key].get("default_path") or data[key].get("default_panel"))
    return [n for n in named if n]


def extension_id(key: str) -> str:
    digest = hashlib.sha256(base64.b64decode(key)).hexdigest()[:32]
    return "".join(chr(ord("a") + int(c, 16)) for c in digest)


def test_the_pinned_key_gives_the_id_the_service_allows_by_default(dist: Path) -> None:
    from tiangong.settings import EXTENSION_ID as SERVICE_ALLOWS

    for browser in ("chromium", "opera"):
        assert extension_id(manifest(dist, browser)["key"]) == EXTENSION_ID == SERVICE_ALLOWS


def test_chromium_build_is_the_source_manifest_with_a_side_panel(dist: Path) -> None:
    data = manifest(dist, "chromium")
    assert data == json.loads((REPO / "extension" / "manifest.json").read_text("utf-8"))
    assert data["side_panel"]["default_path"] == "sidepanel/panel.html"
    assert "sidePanel" in data["permissions"]
    assert data["background"] == {"service_worker": "service-worker.js", "type": "module"}


def test_opera_build_uses_sidebar_action_and_no_side_panel(dist: Path) -> None:
    data = manifest(dist, "opera")
    assert data["sidebar_action"]["default_panel"] == "sidepanel/panel.html"
    assert data["sidebar_action"]["default_icon"]
    assert "side_panel" not in data
    assert "sidePanel" not in data["permissions"]
    assert data["background"]["service_worker"] == "service-worker.js"


def test_firefox_build_uses_sidebar_action_background_scripts_and_a_gecko_id(dist: Path) -> None:
    data = manifest(dist, "firefox")
    assert data["sidebar_action"]["default_panel"] == "sidepanel/panel.html"
    assert data["background"] == {"scripts": ["service-worker.js"], "type": "module"}
    assert data["browser_specific_settings"]["gecko"]["id"]
    assert "key" not in data and "side_panel" not in data
    assert "sidePanel" not in data["permissions"]
    assert "_execute_sidebar_action" in data["commands"]
    assert "_execute_action" not in data["commands"]


@pytest.mark.parametrize("browser", BROWSERS)
def test_every_file_a_manifest_names_is_in_its_build(dist: Path, browser: str) -> None:
    data = manifest(dist, browser)
    for name in files_named(dist, browser, data):
        assert (dist / browser / name).is_file(), f"{browser}: {name} is missing"


@pytest.mark.parametrize("browser", BROWSERS)
def test_every_build_may_ask_the_native_host(dist: Path, browser: str) -> None:
    # runtime.connectNative (the host `tiangong install` registers) needs the permission.
    assert "nativeMessaging" in manifest(dist, browser)["permissions"]


@pytest.mark.parametrize("browser", BROWSERS)
def test_builds_carry_real_copies_of_the_protocol_schema(dist: Path, browser: str) -> None:
    for name in ("client.json", "server.json"):
        built = dist / browser / "schema" / name
        assert not built.is_symlink()
        source = REPO / "protocol" / "schema" / "v1" / name
        assert built.read_bytes() == source.read_bytes()


def test_builds_carry_the_sanitiser_with_its_licence(dist: Path) -> None:
    for browser in BROWSERS:
        vendor = dist / browser / "vendor" / "dompurify"
        assert (vendor / "purify.es.mjs").is_file() and (vendor / "LICENSE").is_file()
