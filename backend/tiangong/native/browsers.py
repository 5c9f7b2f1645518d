"""Where each browser looks for native messaging host manifests, per user, and what goes in
one.

Chromium-family browsers read `<user data dir>/NativeMessagingHosts/<host>.json` (so a
profile started with `--user-data-dir DIR` reads `DIR/NativeMessagingHosts/`); Firefox reads
one per-user folder whatever the profile. Sources: Chromium's and Chrome's native messaging
docs (Chrome, Chromium), MDN's native manifests page (Firefox), and each vendor's user data
folder (Edge, Brave, Vivaldi, Opera). Windows keeps the manifest's path in the registry
instead (docs/native-host.md lists the keys); `tiangong install` writes files on Linux and
macOS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tiangong.native.caller import CHROMIUM_ORIGIN, GECKO_ID, HOST_NAME

DESCRIPTION = "Tiangong: starts the local AI sidebar service and pairs the extension with it"


@dataclass(frozen=True)
class Browser:
    name: str  # what --browser takes
    title: str
    family: str  # "chromium" or "firefox"
    linux: str  # user data dir under $XDG_CONFIG_HOME (Chromium family) or under ~ (Firefox)
    macos: str  # under ~/Library/Application Support
    windows_key: str  # under HKEY_CURRENT_USER (documented; not written by install)


BROWSERS = (
    Browser("chromium", "Chromium", "chromium", "chromium", "Chromium", r"Software\Chromium"),
    Browser(
        "chrome",
        "Google Chrome",
        "chromium",
        "google-chrome",
        "Google/Chrome",
        r"Software\Google\Chrome",
    ),
    # Opera, Vivaldi and Brave read Chrome's registry key on Windows.
    Browser(
        "opera", "Opera", "chromium", "opera", "com.operasoftware.Opera", r"Software\Google\Chrome"
    ),
    Browser(
        "edge",
        "Microsoft Edge",
        "chromium",
        "microsoft-edge",
        "Microsoft Edge",
        r"Software\Microsoft\Edge",
    ),
    Browser(
        "brave",
        "Brave",
        "chromium",
        "BraveSoftware/Brave-Browser",
        "BraveSoftware/Brave-Browser",
        r"Software\Google\Chrome",
    ),
    Browser("vivaldi", "Vivaldi", "chromium", "vivaldi", "Vivaldi", r"Software\Google\Chrome"),
    Browser("firefox", "Firefox", "firefox", ".mozilla", "Mozilla", r"Software\Mozilla"),
)
BY_NAME = {b.name: b for b in BROWSERS}


def _config_home(home: Path, env: dict[str, str]) -> Path:
    xdg = env.get("XDG_CONFIG_HOME")
    return Path(xdg) if xdg and os.path.isabs(xdg) else home / ".config"


def profile_root(
    browser: Browser, *, platform: str, home: Path, env: dict[str, str] | None = None
) -> Path:
    """The folder whose presence says the browser is used by this user."""
    env = dict(os.environ) if env is None else env
    if platform == "darwin":
        base = home / "Library" / "Application Support"
        # Firefox keeps profiles under Firefox/, host manifests under Mozilla/.
        return base / ("Firefox" if browser.family == "firefox" else browser.macos)
    if browser.family == "firefox":
        return home / browser.linux
    return _config_home(home, env) / browser.linux


def manifest_dir(
    browser: Browser,
    *,
    platform: str,
    home: Path,
    env: dict[str, str] | None = None,
    user_data_dir: Path | None = None,
) -> Path:
    """The per-user folder `browser` reads host manifests from (Linux or macOS)."""
    if user_data_dir is not None:
        if browser.family != "chromium":
            raise ValueError(
                "Firefox reads host manifests from its per-user folder only, whatever the "
                "profile: drop --user-data-dir"
            )
        return user_data_dir / "NativeMessagingHosts"
    if platform == "darwin":
        base = home / "Library" / "Application Support" / browser.macos
        return base / "NativeMessagingHosts"
    if browser.family == "firefox":
        return home / browser.linux / "native-messaging-hosts"
    return profile_root(browser, platform=platform, home=home, env=env) / "NativeMessagingHosts"


def host_manifest(browser: Browser, launcher: Path) -> dict[str, Any]:
    """The manifest: our host's name, the launcher's absolute path, and the one extension
    the browser may start it for."""
    if not launcher.is_absolute():
        raise ValueError("the host's path must be absolute on Linux and macOS")
    manifest: dict[str, Any] = {
        "name": HOST_NAME,
        "description": DESCRIPTION,
        "path": str(launcher),
        "type": "stdio",
    }
    if browser.family == "firefox":
        manifest["allowed_extensions"] = [GECKO_ID]
    else:
        manifest["allowed_origins"] = [CHROMIUM_ORIGIN]
    return manifest


def windows_registry_key(browser: Browser) -> str:
    family = "NativeMessagingHosts"
    return rf"HKEY_CURRENT_USER\{browser.windows_key}\{family}\{HOST_NAME}"
