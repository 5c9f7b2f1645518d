"""The Firefox build in a real Firefox ESR, driven over WebDriver BiDi (tests/e2e/firefox/
drive.mjs, puppeteer-core): pairing from the panel and a summary of a real article, the
panel's hint when the service refuses the add-on's origin, a captioned video read from
its captions, and the service started through the native host with no token. The real
service (extractive engine) runs as a process; the add-on's origin is fixed before Firefox
starts so the service can allow it (or the host registers it). Skips, saying why, without
Firefox, node or puppeteer-core."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.e2e.conftest import OUTPUT, REPO, TOKEN, Pages, StartService
from tests.e2e.native_support import ARTICLE, HostStarted, install, pairing_token
from tests.support.fixture_pages import page_html

FIREFOX_CANDIDATES = [os.environ.get("TIANGONG_FIREFOX", ""), "/usr/lib/firefox-esr/firefox-esr"]
FIREFOX = next((p for p in FIREFOX_CANDIDATES if p and Path(p).exists()), None)
NODE = shutil.which("node")
DRIVER = REPO / "tests" / "e2e" / "firefox" / "drive.mjs"
PUPPETEER = REPO / "node_modules" / "puppeteer-core" / "package.json"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        FIREFOX is None,
        reason="Firefox tests need Firefox ESR (apt-get install firefox-esr, or set "
        "TIANGONG_FIREFOX)",
    ),
    pytest.mark.skipif(NODE is None, reason="Firefox tests need node"),
    pytest.mark.skipif(
        not PUPPETEER.exists(),
        reason="Firefox tests need puppeteer-core: PUPPETEER_SKIP_DOWNLOAD=1 npm ci",
    ),
]

# The add-on's moz-extension:// origin, chosen before Firefox starts (a random v4 UUID).
UUID = "5d1c8b0e-3f2a-4c6d-9e7b-1a2b3c4d5e6f"
ORIGIN = f"moz-extension://{UUID}"
# Launching Firefox and one scenario take seconds; this long means something hangs.
DRIVE_TIMEOUT = 90


@pytest.fixture(scope="module")
def addon(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Firefox build of the add-on, unpacked, from this checkout's extension/."""
    out = tmp_path_factory.mktemp("firefox-addon")
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "build_extension.py"),
            "--browser",
            "firefox",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return out / "firefox"


def drive(
    scenario: str, addon: Path, server_url: str, page_url: str, **extra: str
) -> dict[str, Any]:
    OUTPUT.mkdir(exist_ok=True)
    config = {
        **extra,
        "scenario": scenario,
        "firefox": FIREFOX,
        "addon": str(addon),
        "uuid": UUID,
        "serverUrl": server_url,
        "token": TOKEN,
        "pageUrl": page_url,
        "output": str(OUTPUT),
    }
    done = subprocess.run(
        [str(NODE), str(DRIVER), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=DRIVE_TIMEOUT,
        cwd=REPO,
    )
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and lines, f"driver failed: {done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert result["ok"], f"{result['error']}\npanel: {result['shown']}\n{done.stderr[-3000:]}"
    return result


def test_firefox_pairs_from_the_panel_and_summarizes_a_real_article(
    addon: Path, pages: Pages, start_service: StartService
) -> None:
    service = start_service("extractive", "--allow-origin", ORIGIN)
    url = pages.add("/firefox-titan.html", page_html("sciencealert-titan"))
    result = drive("pair-and-summarize", addon, service.url, url)

    assert result["unpaired"]["pairingShown"]
    assert result["connected"]["connection"] == "connected"
    assert "extractive" in result["connected"]["line"]
    assert not result["connected"]["pairingShown"]
    assert "Titan" in result["answer"]["text"]
    assert result["answer"]["citations"] >= 1


def test_firefox_names_the_allow_origin_command_when_the_service_refuses_the_addon(
    addon: Path, pages: Pages, start_service: StartService
) -> None:
    service = start_service("extractive")  # no --allow-origin: the add-on's origin is refused
    url = pages.add("/firefox-refused.html", "<title>Refused</title><p>The bridge opened.</p>")
    status = drive("refused", addon, service.url, url)["status"]

    assert status["connection"] == "offline"
    assert "Server not running" not in status["line"]
    assert f"tiangong serve --allow-origin {ORIGIN}" in status["detail"]
    assert "make run" not in status["detail"]


def test_firefox_reads_a_video_from_its_captions_and_a_chip_seeks_it(
    addon: Path, pages: Pages, start_service: StartService
) -> None:
    video = REPO / "tests" / "fixtures" / "video"
    url = pages.add("/video/tides.html", (video / "tides.html").read_text("utf-8"))
    for name in ("tides.en.vtt", "tides.fr.vtt"):
        pages.add_file(f"/video/{name}", (video / name).read_bytes(), "text/vtt")
    service = start_service("extractive", "--allow-origin", ORIGIN)
    result = drive("video", addon, service.url, url)

    answer = result["answer"]
    assert answer["state"] == "done", answer
    assert "Moon" in answer["text"] and "grandmother" not in answer["text"]
    english = {0.0, 5.0, 11.5, 16.0, 21.0, 27.25, 33.0, 39.0}
    assert answer["times"] and set(answer["times"]) <= english, answer["times"]
    assert result["seeked"] == answer["times"][-1]


def test_firefox_starts_the_service_through_the_native_host_and_registers_its_origin(
    addon: Path, pages: Pages, tmp_path: Path
) -> None:
    """`tiangong install --browser firefox` (the real command, HOME in tmp_path), no service
    and no token: the panel has the host start the service, which admits the add-on's origin
    the host registered (no --allow-origin), and summarizes a page."""
    home = tmp_path / "home"
    home.mkdir()
    data_dir = tmp_path / "data"
    install(data_dir, free_port(), "--browser", "firefox", home=home)
    assert (home / ".mozilla" / "native-messaging-hosts" / "local.tiangong.host.json").is_file()
    started = HostStarted(data_dir)
    try:
        url = pages.add("/firefox-native.html", ARTICLE)
        result = drive("native", addon, "", url, home=str(home))
        port, _pid = started.current()
    finally:
        started.kill_all()

    assert result["connected"]["connection"] == "connected"
    assert result["stored"] == {
        "serverUrl": f"ws://127.0.0.1:{port}/ws",
        "token": pairing_token(data_dir),
    }
    assert ORIGIN in (data_dir / "origins").read_text("utf-8").split()
    assert result["answer"]["state"] == "done", result["answer"]
    assert "lighthouse" in result["answer"]["text"].lower()
