"""Build the browser extension for each browser from the one source in extension/.

    python scripts/build_extension.py [--out dist] [--browser chromium --browser opera ...]

Writes dist/chromium/ (the source as is: side_panel, pinned key), dist/opera/ (sidebar_action,
same key so the same id) and dist/firefox/ (sidebar_action, background scripts, a gecko id
instead of the key). Links are copied as files: extension/schema points at
protocol/schema/v1, and each build carries real copies of those files. Standard library only.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "extension"
BROWSERS = ("chromium", "opera", "firefox")
FIREFOX_ID = "tiangong@tiangong.local"
FIREFOX_MIN_VERSION = "128.0"
PANEL = "sidepanel/panel.html"

Manifest = dict[str, Any]


def _sidebar_action(manifest: Manifest) -> dict[str, Any]:
    return {
        "default_panel": manifest.get("side_panel", {}).get("default_path", PANEL),
        "default_icon": manifest["action"]["default_icon"],
        "default_title": manifest["name"],
    }


def _without_side_panel(manifest: Manifest) -> Manifest:
    out = copy.deepcopy(manifest)
    out["sidebar_action"] = _sidebar_action(manifest)
    out.pop("side_panel", None)
    out["permissions"] = [p for p in out.get("permissions", []) if p != "sidePanel"]
    return out


def opera_manifest(manifest: Manifest) -> Manifest:
    """Opera ignores side_panel and has no chrome.sidePanel: it reads sidebar_action."""
    return _without_side_panel(manifest)


def firefox_manifest(manifest: Manifest) -> Manifest:
    """Firefox: sidebar_action, event-page scripts instead of a service worker, a gecko id."""
    out = _without_side_panel(manifest)
    out.pop("key", None)
    out.pop("minimum_chrome_version", None)
    worker = manifest["background"]["service_worker"]
    out["background"] = {"scripts": [worker], "type": manifest["background"].get("type", "module")}
    out["sidebar_action"]["open_at_install"] = False
    out["browser_specific_settings"] = {
        "gecko": {"id": FIREFOX_ID, "strict_min_version": FIREFOX_MIN_VERSION}
    }
    commands = out.get("commands", {})
    if "_execute_action" in commands:
        # Firefox opens the sidebar from a shortcut by itself with this reserved name.
        commands["_execute_sidebar_action"] = commands.pop("_execute_action")
    return out


TRANSFORMS = {
    "chromium": lambda manifest: copy.deepcopy(manifest),
    "opera": opera_manifest,
    "firefox": firefox_manifest,
}


def build(browser: str, out_dir: Path) -> Path:
    manifest = json.loads((SOURCE / "manifest.json").read_text("utf-8"))
    target = out_dir / browser
    if target.exists():
        shutil.rmtree(target)
    # symlinks=False copies what links point to (the protocol schema) as plain files.
    shutil.copytree(SOURCE, target, symlinks=False, ignore=shutil.ignore_patterns(".*", "*.map"))
    built = TRANSFORMS[browser](manifest)
    (target / "manifest.json").write_text(
        json.dumps(built, indent=2, ensure_ascii=False) + "\n", "utf-8"
    )
    for name in ("client.json", "server.json"):
        if not (target / "schema" / name).is_file():
            raise SystemExit(f"{browser}: schema/{name} is missing from the build")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="default: dist/")
    parser.add_argument(
        "--browser", action="append", choices=BROWSERS, help="repeatable; default: all three"
    )
    args = parser.parse_args(argv)
    for browser in args.browser or BROWSERS:
        target = build(browser, args.out)
        print(f"{browser}: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
