"""`tiangong install` / `uninstall` in a home folder of the test's own: the manifests each
browser reads, the launcher they name, and an uninstall that removes exactly what install
wrote."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.service_process import service_env, tiangong_command
from tiangong.native.browsers import BY_NAME, manifest_dir
from tiangong.native.caller import CHROMIUM_ORIGIN, GECKO_ID, HOST_NAME
from tiangong.native.install import InstallError, InstallPlan, install, uninstall

LINUX_FOLDERS = {
    "chromium": ".config/chromium/NativeMessagingHosts",
    "chrome": ".config/google-chrome/NativeMessagingHosts",
    "opera": ".config/opera/NativeMessagingHosts",
    "edge": ".config/microsoft-edge/NativeMessagingHosts",
    "brave": ".config/BraveSoftware/Brave-Browser/NativeMessagingHosts",
    "vivaldi": ".config/vivaldi/NativeMessagingHosts",
    "firefox": ".mozilla/native-messaging-hosts",
}
MACOS_FOLDERS = {
    "chromium": "Library/Application Support/Chromium/NativeMessagingHosts",
    "chrome": "Library/Application Support/Google/Chrome/NativeMessagingHosts",
    "opera": "Library/Application Support/com.operasoftware.Opera/NativeMessagingHosts",
    "edge": "Library/Application Support/Microsoft Edge/NativeMessagingHosts",
    "brave": "Library/Application Support/BraveSoftware/Brave-Browser/NativeMessagingHosts",
    "vivaldi": "Library/Application Support/Vivaldi/NativeMessagingHosts",
    "firefox": "Library/Application Support/Mozilla/NativeMessagingHosts",
}


def plan(tmp_path: Path, **fields: object) -> InstallPlan:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    defaults: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "browsers": [],
        "platform": "linux",
        "home": home,
        "env": {"PATH": os.environ.get("PATH", "")},
    }
    return InstallPlan(**{**defaults, **fields})  # type: ignore[arg-type]


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize("name", sorted(LINUX_FOLDERS))
def test_each_browser_gets_its_manifest_in_its_own_folder(tmp_path: Path, name: str) -> None:
    chosen = plan(tmp_path, browsers=[name])
    lines = install(chosen)
    manifest_path = chosen.home / LINUX_FOLDERS[name] / f"{HOST_NAME}.json"
    manifest = json.loads(manifest_path.read_text())
    assert any(str(manifest_path) in line for line in lines)
    assert manifest["name"] == HOST_NAME and manifest["type"] == "stdio"
    if name == "firefox":
        assert manifest["allowed_extensions"] == [GECKO_ID] and "allowed_origins" not in manifest
    else:
        assert manifest["allowed_origins"] == [CHROMIUM_ORIGIN]
        assert "allowed_extensions" not in manifest
    launcher = Path(manifest["path"])
    assert launcher.is_absolute() and launcher.parent == manifest_path.parent
    assert stat.S_IMODE(launcher.stat().st_mode) & 0o111
    text = launcher.read_text()
    assert text.startswith("#!/bin/sh\n") and "-m tiangong native-host" in text
    assert str(chosen.data_dir) in text and text.rstrip().endswith('"$@"')


@pytest.mark.parametrize("name", sorted(MACOS_FOLDERS))
def test_macos_folders_are_each_browsers_application_support_folder(
    tmp_path: Path, name: str
) -> None:
    folder = manifest_dir(BY_NAME[name], platform="darwin", home=tmp_path, env={})
    assert folder == tmp_path / MACOS_FOLDERS[name]


def test_chromium_honours_xdg_config_home(tmp_path: Path) -> None:
    config = tmp_path / "cfg"
    folder = manifest_dir(
        BY_NAME["chrome"], platform="linux", home=tmp_path, env={"XDG_CONFIG_HOME": str(config)}
    )
    assert folder == config / "google-chrome" / "NativeMessagingHosts"


def test_without_browser_names_only_browsers_this_user_has_are_registered(tmp_path: Path) -> None:
    chosen = plan(tmp_path)
    (chosen.home / ".config" / "chromium").mkdir(parents=True)
    (chosen.home / ".mozilla").mkdir()
    lines = install(chosen)
    assert [line.split(":")[0] for line in lines[:2]] == ["Chromium", "Firefox"]
    assert not (chosen.home / ".config" / "google-chrome").exists()
    assert not (chosen.home / ".config" / "opera").exists()


def test_no_browser_found_says_how_to_pick_one(tmp_path: Path) -> None:
    with pytest.raises(InstallError, match="--browser NAME"):
        install(plan(tmp_path))


def test_a_profile_started_with_user_data_dir_reads_its_own_folder(tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    install(plan(tmp_path, browsers=["chromium"], user_data_dir=profile))
    manifest = json.loads((profile / "NativeMessagingHosts" / f"{HOST_NAME}.json").read_text())
    assert manifest["allowed_origins"] == [CHROMIUM_ORIGIN]
    with pytest.raises(InstallError, match="Firefox reads"):
        install(plan(tmp_path, browsers=["firefox"], user_data_dir=profile))


def test_uninstall_removes_exactly_what_install_wrote(tmp_path: Path) -> None:
    chosen = plan(tmp_path, browsers=["chromium", "firefox"], autostart=True)
    chosen.serve_options = {"engine": "extractive", "port": 8799}
    theirs = chosen.home / ".config" / "chromium" / "NativeMessagingHosts" / "other.host.json"
    theirs.parent.mkdir(parents=True)
    theirs.write_text("{}")
    chosen.data_dir.mkdir()
    (chosen.data_dir / "token").write_text("kept\n")
    before = files_under(tmp_path)
    install(chosen)
    written = files_under(tmp_path) - before
    unit = chosen.home / ".config" / "systemd" / "user" / "tiangong.service"
    assert unit in written and (chosen.data_dir / "serve.json") in written
    assert "native-host --foreground" in unit.read_text().replace('" "', " ")
    lines = uninstall(chosen.data_dir)
    assert files_under(tmp_path) == before
    assert theirs.read_text() == "{}" and (chosen.data_dir / "token").exists()
    assert sum(line.startswith("removed: ") for line in lines) == 6


def test_uninstall_leaves_a_file_changed_since_install(tmp_path: Path) -> None:
    chosen = plan(tmp_path, browsers=["firefox"])
    install(chosen)
    manifest = chosen.home / LINUX_FOLDERS["firefox"] / f"{HOST_NAME}.json"
    manifest.write_text('{"edited": true}')
    lines = uninstall(chosen.data_dir)
    assert manifest.read_text() == '{"edited": true}'
    assert any("changed since install" in line and str(manifest) in line for line in lines)
    assert uninstall(chosen.data_dir)[0].startswith("nothing to remove")


def test_the_command_prints_what_it_wrote_and_saves_the_serve_options(tmp_path: Path) -> None:
    home = tmp_path / "home"
    data = tmp_path / "data"
    env = service_env(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    for name in ("TIANGONG_PORT", "TIANGONG_LOG_LEVEL", "TIANGONG_ENGINE"):
        env.pop(name, None)
    args = ["install", "--browser", "chromium", "--data-dir", str(data)]
    args += ["--engine", "extractive", "--port", "8799"]
    done = subprocess.run(
        tiangong_command(*args), env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    manifest = home / LINUX_FOLDERS["chromium"] / f"{HOST_NAME}.json"
    assert f"Chromium: {manifest}" in done.stdout
    assert json.loads((data / "serve.json").read_text()) == {"engine": "extractive", "port": 8799}
    # The checkout is importable only through PYTHONPATH here: the launcher carries it.
    assert "PYTHONPATH=" in Path(json.loads(manifest.read_text())["path"]).read_text()
    removed = subprocess.run(
        tiangong_command("uninstall", "--data-dir", str(data)),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert removed.returncode == 0 and f"removed: {manifest}" in removed.stdout
    assert not manifest.exists() and not (data / "serve.json").exists()
