"""`tiangong install` / `tiangong uninstall`: register the native host with the browsers.

Install writes, for each browser: the host manifest and, beside it, a launcher (a shell
script: the browsers pass the host no arguments of ours) that runs this same Python with
`-m tiangong native-host`. Optionally it saves the serve options the host starts the service
with, and a systemd user unit that starts the service at login (`--autostart`). Everything it
writes is recorded, with a checksum, in `<data dir>/installed.json`; uninstall removes
exactly those files (not one it finds changed since), the folders install created when they
are empty again, and the record.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tiangong
from tiangong.native.browsers import BROWSERS, BY_NAME, Browser, host_manifest, manifest_dir
from tiangong.native.browsers import profile_root as browser_profile_root
from tiangong.native.caller import HOST_NAME
from tiangong.native.saved import save

RECORD_FILE = "installed.json"
UNIT_NAME = "tiangong.service"


class InstallError(Exception):
    """Install cannot do what was asked; the message says what to change."""


@dataclass
class Record:
    """What install wrote: files with their checksum, folders it created, the unit state."""

    files: dict[str, str] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)
    unit_enabled: bool = False

    @classmethod
    def load(cls, path: Path) -> Record:
        try:
            raw = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            raise InstallError(f"{path} is not readable: {exc}") from None
        return cls(
            dict(raw.get("files", {})), list(raw.get("dirs", [])), raw.get("unit_enabled", False)
        )

    def store(self, path: Path) -> None:
        body = {"files": self.files, "dirs": self.dirs, "unit_enabled": self.unit_enabled}
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(json.dumps(body, indent=2) + "\n", "utf-8")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _make_dirs(folder: Path, record: Record) -> None:
    """Create `folder` and its missing parents, recording each one created."""
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for created in reversed(missing):
        created.mkdir(mode=0o755)
        if str(created) not in record.dirs:
            record.dirs.append(str(created))


def _write(path: Path, text: str, record: Record, mode: int = 0o644) -> None:
    _make_dirs(path.parent, record)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, "utf-8")
    tmp.chmod(mode)
    os.replace(tmp, path)
    record.files[str(path)] = _digest(path)


def _python_path_entries(env: Mapping[str, str]) -> list[str]:
    """The folder tiangong was imported from when only PYTHONPATH made it importable (a
    checkout run without installing): the launcher then needs it too."""
    package_parent = str(Path(tiangong.__file__).resolve().parents[1])
    entries = [e for e in env.get("PYTHONPATH", "").split(os.pathsep) if e]
    resolved = {str(Path(e).resolve()) for e in entries}
    return [package_parent] if package_parent in resolved else []


def launcher_script(data_dir: Path, env: Mapping[str, str]) -> str:
    command = [sys.executable, "-m", "tiangong", "native-host", "--data-dir", str(data_dir)]
    lines = [
        "#!/bin/sh",
        "# Written by `tiangong install` (removed by `tiangong uninstall`): the browser starts",
        "# this for the Tiangong extension; it passes the caller's identity as arguments.",
    ]
    extra = _python_path_entries(env)
    if extra:
        lines.append(f"PYTHONPATH={shlex.quote(os.pathsep.join(extra))}; export PYTHONPATH")
    lines.append(f'exec {" ".join(shlex.quote(c) for c in command)} "$@"')
    return "\n".join(lines) + "\n"


def _systemd_quote(arg: str) -> str:
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def autostart_unit(data_dir: Path, env: Mapping[str, str]) -> str:
    command = [sys.executable, "-m", "tiangong", "native-host", "--foreground"]
    command += ["--data-dir", str(data_dir)]
    lines = [
        "# Written by `tiangong install --autostart` (removed by `tiangong uninstall`).",
        "[Unit]",
        "Description=Tiangong local AI sidebar service",
        "",
        "[Service]",
        # The saved options are read at start: the unit holds no option and no secret.
        f"ExecStart={' '.join(_systemd_quote(c) for c in command)}",
    ]
    extra = _python_path_entries(env)
    if extra:
        lines.append(f"Environment={_systemd_quote('PYTHONPATH=' + os.pathsep.join(extra))}")
    lines += ["Restart=on-failure", "", "[Install]", "WantedBy=default.target", ""]
    return "\n".join(lines)


def _config_home(home: Path, env: Mapping[str, str]) -> Path:
    xdg = env.get("XDG_CONFIG_HOME")
    return Path(xdg) if xdg and os.path.isabs(xdg) else home / ".config"


def _systemctl(*args: str) -> bool:
    """Run `systemctl --user ARGS` when there is a user manager to talk to."""
    if shutil.which("systemctl") is None or not os.environ.get("XDG_RUNTIME_DIR"):
        return False
    done = subprocess.run(["systemctl", "--user", *args], capture_output=True, check=False)
    return done.returncode == 0


@dataclass
class InstallPlan:
    data_dir: Path
    browsers: list[str]  # empty: every browser this user has
    user_data_dir: Path | None = None
    autostart: bool = False
    serve_options: dict[str, Any] = field(default_factory=dict)
    platform: str = sys.platform
    home: Path = field(default_factory=Path.home)
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))


def chosen_browsers(plan: InstallPlan) -> list[Browser]:
    if plan.browsers:
        return [BY_NAME[name] for name in plan.browsers]
    if plan.user_data_dir is not None:
        return [BY_NAME["chromium"]]
    found = [
        b
        for b in BROWSERS
        if browser_profile_root(b, platform=plan.platform, home=plan.home, env=plan.env).is_dir()
    ]
    if not found:
        names = ", ".join(b.name for b in BROWSERS)
        raise InstallError(
            f"no browser profile found for this user; pick one: --browser NAME ({names})"
        )
    return found


def install(plan: InstallPlan) -> list[str]:
    """Write everything; returns lines saying what was written where."""
    if plan.platform not in ("linux", "darwin"):
        raise InstallError(
            "install writes files on Linux and macOS; on Windows register the manifest in the "
            "registry as docs/native-host.md shows"
        )
    browsers = chosen_browsers(plan)
    record_path = plan.data_dir / RECORD_FILE
    record = Record.load(record_path)
    said: list[str] = []
    launcher_text = launcher_script(plan.data_dir, plan.env)
    for browser in browsers:
        try:
            folder = manifest_dir(
                browser,
                platform=plan.platform,
                home=plan.home,
                env=plan.env,
                user_data_dir=plan.user_data_dir,
            )
        except ValueError as exc:
            raise InstallError(str(exc)) from None
        launcher = folder / f"{HOST_NAME}.sh"
        manifest = folder / f"{HOST_NAME}.json"
        _write(launcher, launcher_text, record, mode=0o755)
        _write(manifest, json.dumps(host_manifest(browser, launcher), indent=2) + "\n", record)
        said.append(f"{browser.title}: {manifest}")
    if plan.serve_options:
        path = save(plan.data_dir, plan.serve_options)
        record.files[str(path)] = _digest(path)
        said.append(f"serve options: {path}")
    if plan.autostart:
        if plan.platform != "linux":
            raise InstallError("--autostart writes a systemd user unit: Linux only")
        unit = _config_home(plan.home, plan.env) / "systemd" / "user" / UNIT_NAME
        _write(unit, autostart_unit(plan.data_dir, plan.env), record)
        said.append(f"autostart: {unit}")
        if _systemctl("daemon-reload") and _systemctl("enable", "--now", UNIT_NAME):
            record.unit_enabled = True
            said.append(f"autostart: enabled and started ({UNIT_NAME})")
        else:
            said.append(f"autostart: run `systemctl --user enable --now {UNIT_NAME}`")
    record.store(record_path)
    said.append(f"record: {record_path} (`tiangong uninstall` removes all of the above)")
    return said


def uninstall(data_dir: Path) -> list[str]:
    record_path = data_dir / RECORD_FILE
    if not record_path.exists():
        return [f"nothing to remove: no {record_path} (was install given another --data-dir?)"]
    record = Record.load(record_path)
    said: list[str] = []
    has_unit = any(Path(name).name == UNIT_NAME for name in record.files)
    # Also when the user enabled it by hand: no link to a removed unit may stay behind.
    if (record.unit_enabled or has_unit) and _systemctl("disable", "--now", UNIT_NAME):
        said.append(f"autostart: disabled and stopped ({UNIT_NAME})")
    for name, digest in record.files.items():
        path = Path(name)
        if not path.exists():
            said.append(f"already gone: {path}")
        elif _digest(path) != digest:
            said.append(f"left in place (changed since install): {path}")
        else:
            path.unlink()
            said.append(f"removed: {path}")
    for name in sorted(record.dirs, key=len, reverse=True):
        folder = Path(name)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            said.append(f"removed folder: {folder}")
    record_path.unlink()
    return said
