"""The service options saved for the times the browser starts the service (no terminal, no
shell variables): `<data dir>/serve.json`, written by `tiangong install [serve options]`.

It holds `tiangong serve` options by their flag names (`port`, `engine`, `model`, …). The
upstream API key, when saved, is handed to the service in its environment, never in its
arguments (other local users can read those in the process list). File mode 0600.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiangong.settings import DEVICES, DTYPES, ENGINES, READINGS

SAVED_FILE = "serve.json"
DEFAULT_PORT = 8765

# option → (type, allowed values or None). Flags of `tiangong serve`, without --host/--token.
OPTIONS: dict[str, tuple[type, tuple[str, ...] | None]] = {
    "port": (int, None),
    "engine": (str, tuple(e for e in ENGINES if e != "fake")),
    "model": (str, None),
    "device": (str, DEVICES),
    "dtype": (str, DTYPES),
    "reading": (str, READINGS),
    "log_level": (str, ("debug", "info", "warning", "error")),
    "log_format": (str, ("text", "json")),
    "openai_base_url": (str, None),
    "openai_model": (str, None),
    "openai_context": (int, None),
    "openai_timeout": (float, None),
    "openai_concurrency": (int, None),
}
SECRET_OPTIONS = {"openai_api_key": "TIANGONG_OPENAI_API_KEY"}
_KINDS = {int: "a whole number", float: "a number", str: "a string"}


class SavedSettingsError(Exception):
    """serve.json cannot be used; the message names the file and the option."""


@dataclass(frozen=True)
class SavedSettings:
    options: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.options.get("port", DEFAULT_PORT))

    def serve_args(self, port: int) -> list[str]:
        """Flags for `tiangong serve` on `port` (no secret among them)."""
        args = ["--port", str(port)]
        for name, value in self.options.items():
            if name != "port":
                args += [f"--{name.replace('_', '-')}", str(value)]
        return args

    def serve_env(self, base: Mapping[str, str]) -> dict[str, str]:
        env = dict(base)
        for name, value in self.secrets.items():
            env[SECRET_OPTIONS[name]] = value
        return env


def saved_path(data_dir: Path) -> Path:
    return data_dir / SAVED_FILE


def _checked(path: Path, name: str, value: Any) -> Any:
    kind, allowed = OPTIONS[name]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise SavedSettingsError(f"{path}: {name} must be {_KINDS[kind]}, not {value!r}")
    if allowed is not None and value not in allowed:
        raise SavedSettingsError(f"{path}: {name} must be one of {', '.join(allowed)}")
    if name == "port" and isinstance(value, int) and not 1 <= value <= 65535:
        raise SavedSettingsError(f"{path}: port must be between 1 and 65535, not {value}")
    return value


def load_saved(data_dir: Path) -> SavedSettings:
    """The saved options (none when the file is missing); `SavedSettingsError` when it is not
    a JSON object of known options with values of the right kind."""
    path = saved_path(data_dir)
    try:
        raw = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return SavedSettings()
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SavedSettingsError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise SavedSettingsError(f"{path} must hold a JSON object of serve options")
    options: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for name, value in raw.items():
        if name in SECRET_OPTIONS:
            if not isinstance(value, str):
                raise SavedSettingsError(f"{path}: {name} must be a string")
            secrets[name] = value
        elif name in OPTIONS:
            if value is not None:
                options[name] = _checked(path, name, value)
        else:
            known = ", ".join([*OPTIONS, *SECRET_OPTIONS])
            raise SavedSettingsError(f"{path}: unknown option {name!r} (known: {known})")
    return SavedSettings(options, secrets)


def save(data_dir: Path, values: Mapping[str, Any]) -> Path:
    """Write the options in `values` that are set (checked as `load_saved` checks them)."""
    path = saved_path(data_dir)
    kept = {k: v for k, v in values.items() if v is not None}
    for name, value in kept.items():
        if name in OPTIONS:
            kept[name] = _checked(path, name, value)
        elif name not in SECRET_OPTIONS:
            raise SavedSettingsError(f"{path}: unknown option {name!r}")
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{SAVED_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(kept, indent=2) + "\n")
    os.replace(tmp, path)
    return path
