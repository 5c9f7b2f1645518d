"""The extension shipped with the service: the wheel carries the three builds and the
protocol schema (built by setup.py from a copy of the checkout), `tiangong extension` finds
them, and `--zip` writes what the stores take."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.service_process import service_env, tiangong_command
from tiangong import __version__
from tiangong.native.bundle import BUILDS, extension_builds, write_zip
from tiangong.native.caller import GECKO_ID

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    empty = tmp_path_factory.mktemp("no-package-copy")
    return extension_builds(packaged=empty, out=tmp_path_factory.mktemp("dist"))


def test_a_checkout_builds_each_browser_and_the_firefox_build_carries_our_add_on_id(
    builds: dict[str, Path],
) -> None:
    assert sorted(builds) == sorted(BUILDS)
    firefox = json.loads((builds["firefox"] / "manifest.json").read_text())
    assert firefox["browser_specific_settings"]["gecko"]["id"] == GECKO_ID


def test_the_store_zips_hold_the_build_with_its_manifest_at_the_root(
    builds: dict[str, Path], tmp_path: Path
) -> None:
    chromium = write_zip("chromium", builds["chromium"], tmp_path)
    assert chromium.name == f"tiangong-{__version__}-chromium.zip"
    with zipfile.ZipFile(chromium) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
    on_disk = {p.relative_to(builds["chromium"]).as_posix() for p in builds["chromium"].rglob("*")}
    assert names == {n for n in on_disk if (builds["chromium"] / n).is_file()}
    # The Chrome Web Store refuses `key`; everything else is the build's manifest.
    source = json.loads((builds["chromium"] / "manifest.json").read_text())
    assert "key" not in manifest and manifest == {k: v for k, v in source.items() if k != "key"}
    first = chromium.read_bytes()
    assert write_zip("chromium", builds["chromium"], tmp_path).read_bytes() == first
    with zipfile.ZipFile(write_zip("firefox", builds["firefox"], tmp_path)) as archive:
        gecko = json.loads(archive.read("manifest.json"))["browser_specific_settings"]["gecko"]
    assert gecko["id"] == GECKO_ID


def test_the_command_prints_the_folder_to_load_for_each_browser() -> None:
    done = subprocess.run(
        tiangong_command("extension", "--browser", "firefox"),
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.splitlines()[1].strip())
    assert (folder / "manifest.json").is_file() and "about:debugging" in done.stdout


@pytest.mark.slow
def test_the_wheel_carries_the_built_extension_and_the_protocol_schema(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for name in ("backend", "extension", "protocol", "scripts"):
        shutil.copytree(
            REPO / name,
            source / name,
            symlinks=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
        )
    wheels = tmp_path / "wheels"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*command, "-q", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = wheels.glob("tiangong-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        chromium = json.loads(archive.read("tiangong/extension/chromium/manifest.json"))
    for browser in BUILDS:
        assert f"tiangong/extension/{browser}/manifest.json" in names
        assert f"tiangong/extension/{browser}/schema/client.json" in names
    assert {
        "tiangong/protocol/schema/v1/client.json",
        "tiangong/protocol/schema/v1/server.json",
    } <= names
    assert "tiangong/native/host.py" in names and "tiangong/__main__.py" in names
    assert chromium["key"]  # loaded unpacked, the pinned key keeps the id the host allows
