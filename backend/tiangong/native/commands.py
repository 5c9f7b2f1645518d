"""The subcommands of zero set-up: `native-host`, `install`, `uninstall`, `extension`.

cli.py adds these parsers and hands the parsed arguments here; `add_engine_flags` is cli's
own (the serve options `install` saves), passed in so nothing here imports the CLI.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tiangong.native.browsers import BROWSERS
from tiangong.native.saved import DEFAULT_PORT, OPTIONS, SECRET_OPTIONS, SavedSettingsError
from tiangong.settings import Settings, default_data_dir

COMMANDS = ("native-host", "install", "uninstall", "extension")


def _data_dir_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("TIANGONG_DATA_DIR", str(default_data_dir()))),
        help="token, history, saved options and the install record (default: %(default)s)",
    )


def add_subcommands(sub: Any, add_engine_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    host = sub.add_parser(
        "native-host", help="the program the browser starts for the extension (not for you)"
    )
    host.add_argument("caller", nargs="*", help="what the browser passes: the caller's identity")
    host.add_argument("--parent-window", help=argparse.SUPPRESS)  # Chromium on Windows
    host.add_argument(
        "--foreground",
        action="store_true",
        help="run the service with the saved options in the foreground (the autostart unit)",
    )
    _data_dir_flag(host)

    install = sub.add_parser(
        "install",
        help="register the native host with your browsers, so the extension starts the service",
    )
    install.add_argument(
        "--browser",
        action="append",
        choices=[b.name for b in BROWSERS],
        help="repeatable (default: every browser that has a profile for this user)",
    )
    install.add_argument(
        "--user-data-dir",
        type=Path,
        help="a Chromium-family profile started with --user-data-dir DIR",
    )
    install.add_argument(
        "--autostart",
        action="store_true",
        help="also start the service at login (a systemd user unit; Linux)",
    )
    install.add_argument(
        "--port",
        type=int,
        default=os.environ.get("TIANGONG_PORT"),
        help=f"the port the service is started on (default: {DEFAULT_PORT}, or the next free)",
    )
    add_engine_flags(install)  # saved for the service the host starts; adds --data-dir

    uninstall = sub.add_parser("uninstall", help="remove everything `tiangong install` wrote")
    _data_dir_flag(uninstall)

    extension = sub.add_parser(
        "extension", help="print the extension folder to load unpacked in each browser"
    )
    extension.add_argument(
        "--browser", action="append", choices=["chromium", "opera", "firefox"], help="repeatable"
    )
    extension.add_argument(
        "--zip", action="store_true", help="write the zip a store takes, one per browser"
    )
    extension.add_argument(
        "--out", type=Path, default=Path.cwd(), help="where --zip writes (default: here)"
    )


def _serve_options(args: argparse.Namespace) -> dict[str, Any]:
    """The serve options given to install (as flags or TIANGONG_* variables) that differ from
    the service's defaults."""
    defaults = Settings()
    chosen: dict[str, Any] = {}
    for name in [*OPTIONS, *SECRET_OPTIONS]:
        value = getattr(args, name, None)
        if value is not None and value != getattr(defaults, name, None):
            chosen[name] = value
    return chosen


def run(args: argparse.Namespace) -> int:
    if args.command == "native-host":
        from tiangong.native.host import run_foreground, run_host

        try:
            if args.foreground:
                return run_foreground(args.data_dir)
        except SavedSettingsError as exc:
            print(f"tiangong: {exc}", file=sys.stderr)
            return 2
        return run_host(list(args.caller), args.data_dir)
    if args.command in ("install", "uninstall"):
        from tiangong.native.install import InstallError, InstallPlan, install, uninstall

        try:
            if args.command == "uninstall":
                lines = uninstall(args.data_dir)
            else:
                plan = InstallPlan(
                    data_dir=args.data_dir,
                    browsers=list(dict.fromkeys(args.browser or [])),
                    user_data_dir=args.user_data_dir.resolve() if args.user_data_dir else None,
                    autostart=args.autostart,
                    serve_options=_serve_options(args),
                )
                lines = install(plan)
        except (InstallError, SavedSettingsError) as exc:
            print(f"tiangong: {exc}", file=sys.stderr)
            return 2
        print("\n".join(lines))
        return 0
    from tiangong.native.bundle import (
        HOW_TO_LOAD,
        ExtensionMissingError,
        extension_builds,
        write_zip,
    )

    try:
        builds = extension_builds(tuple(dict.fromkeys(args.browser or HOW_TO_LOAD)))
    except ExtensionMissingError as exc:
        print(f"tiangong: {exc}", file=sys.stderr)
        return 1
    for browser, folder in builds.items():
        if args.zip:
            print(f"{browser}: {write_zip(browser, folder, args.out)}")
        else:
            browsers, how = HOW_TO_LOAD[browser]
            print(f"{browsers}:\n  {folder}\n  {how}")
    return 0
