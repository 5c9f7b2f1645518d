"""Origins registered while the service runs: the Firefox add-on's `moz-extension://<uuid>`.

Firefox gives each installation of an add-on its own random UUID, so its origin cannot be
pinned like the Chromium extension id. The native host (which Firefox starts only for our
add-on) writes the origin the add-on reports into `<data dir>/origins`, one a line; the
service's Origin check re-reads that file whenever it changes, so no `--allow-origin` flag
and no restart are needed. Only `moz-extension://` origins with a UUID are ever accepted
from the file: it can widen the allowlist to Firefox add-on pages and nothing else.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

log = logging.getLogger(__name__)

ORIGINS_FILE = "origins"
# At most this many registered origins are kept (newest last): one per Firefox profile.
MAX_ORIGINS = 32
_MOZ_EXTENSION = re.compile(
    r"moz-extension://[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


def moz_extension_origin(claimed: str) -> str | None:
    """The exact Origin a Firefox add-on page sends, from what `runtime.getURL("")` gives
    (`moz-extension://<uuid>/`), or None when `claimed` is anything else."""
    origin = claimed[:-1] if claimed.endswith("/") else claimed
    return origin if _MOZ_EXTENSION.fullmatch(origin) else None


def origins_path(data_dir: Path) -> Path:
    return data_dir / ORIGINS_FILE


def read_origins(path: Path) -> frozenset[str]:
    """The valid origins in the file (none when it is missing); other lines are skipped."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        return frozenset()
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read the registered origins in %s: %s", path, exc)
        return frozenset()
    valid = {line for line in (raw.strip() for raw in lines) if moz_extension_origin(line)}
    return frozenset(valid)


def register_origin(data_dir: Path, origin: str) -> bool:
    """Add `origin` (already checked with `moz_extension_origin`) to the file, written 0600
    and replaced atomically. Returns False when it was there already."""
    if moz_extension_origin(origin) != origin:
        raise ValueError(f"not a moz-extension origin: {origin[:100]!r}")
    path = origins_path(data_dir)
    current = [o for o in _lines(path) if moz_extension_origin(o) == o]
    if origin in current:
        return False
    kept = [*current, origin][-MAX_ORIGINS:]
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{ORIGINS_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("".join(f"{o}\n" for o in kept))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return True


def _lines(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text("utf-8").splitlines() if line.strip()]
    except (FileNotFoundError, UnicodeDecodeError):
        return []


class RegisteredOrigins:
    """The file's origins, re-read only when its modification time or size changes (one
    `stat` per request that carries an Origin not already allowed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._origins: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def current(self) -> frozenset[str]:
        try:
            st = self.path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        with self._lock:
            if stamp != self._seen:
                self._origins = read_origins(self.path) if stamp else frozenset()
                self._seen = stamp
            return self._origins
