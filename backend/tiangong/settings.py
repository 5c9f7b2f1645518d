"""Settings of a running service: command-line flags, each also a TIANGONG_* variable.

Precedence: flag > environment variable > default.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

ENGINES = ("auto", "transformers", "extractive", "openai", "fake")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16", "int8")
# How a model reads pages (`Engine.reading`): auto lets the engine say (by its model's size).
READINGS = ("auto", "page", "evidence")

# The Chromium extension id pinned by the `key` in extension/manifest.json; Opera loads the
# same build and gets the same id. Other origins (Firefox's per-install moz-extension id)
# are added with --allow-origin.
EXTENSION_ID = "plghbdjilgipchcgmoniejacopnikcgh"
DEFAULT_ORIGINS = (f"chrome-extension://{EXTENSION_ID}",)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tiangong"


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8765
    engine: str = "auto"
    model: str | None = None
    device: str = "auto"
    # auto: bf16 on CUDA and on CPUs with native bf16, else fp32; int8: quantized CPU linears.
    dtype: str = "auto"
    # auto: what the engine's model reads best; page / evidence force one (docs/quality.md).
    reading: str = "auto"
    token: str | None = None
    allow_origins: tuple[str, ...] = ()
    data_dir: Path = field(default_factory=default_data_dir)
    # Requests waiting for the engine beyond this many are refused with `overloaded`.
    max_queue: int = 32
    max_requests_per_connection: int = 8
    page_frame_bytes: int = 8 * 1024 * 1024
    frame_bytes: int = 64 * 1024
    # Seconds one page may take to extract before the request fails with too_large.
    extract_timeout: float = 10.0
    # A client that does not take a frame within this many seconds is treated as gone.
    send_timeout: float = 10.0
    # WebSocket ping interval; a peer that misses a pong is closed.
    heartbeat: float = 20.0
    # Seconds a new WebSocket may take to send a valid hello.
    hello_timeout: float = 10.0
    # Seconds an HTTP connection may sit idle (also one that never sends a request).
    idle_timeout: float = 15.0
    log_level: str = "info"
    # `text` for people, `json` (one object a line) for log collectors.
    log_format: str = "text"
    # The `openai` engine: any OpenAI-compatible chat-completions server.
    openai_base_url: str = "http://127.0.0.1:8000/v1"
    openai_api_key: str | None = None
    # None: the first model the server lists.
    openai_model: str | None = None
    # None: what the server says (vLLM's `max_model_len`), else 8192.
    openai_context: int | None = None
    # Seconds without a byte from the server before a request fails.
    openai_timeout: float = 120.0
    # Requests streamed to the server at once; it batches them.
    openai_concurrency: int = 16

    @property
    def origins(self) -> frozenset[str]:
        return frozenset(DEFAULT_ORIGINS) | frozenset(self.allow_origins)

    @property
    def token_file(self) -> Path:
        return self.data_dir / "token"

    @property
    def database(self) -> Path:
        return self.data_dir / "history.sqlite3"

    def pairing_token(self) -> str:
        """The explicit token, else the stored one, else a new random one stored 0600."""
        if self.token:
            return self.token
        return load_or_create_token(self.token_file)


def load_or_create_token(path: Path) -> str:
    if path.exists():
        token = path.read_text("utf-8").strip()
        if token:
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                path.chmod(0o600)
            return token
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return token
