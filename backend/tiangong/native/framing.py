"""Native messaging framing: each message is UTF-8 JSON preceded by its length as a 32-bit
unsigned integer in the machine's own byte order, in both directions (Chromium's and
Firefox's native messaging docs). stdout carries these frames and nothing else.

Limits: the browsers drop a host message over 1 MB, so `encode` refuses to build one; our
requests are a few hundred bytes, so anything over `MAX_REQUEST_BYTES` is read past (the
stream stays in step) and answered with an error instead of being parsed.
"""

from __future__ import annotations

import json
import struct
from typing import IO, Any

HEADER = struct.Struct("=I")  # native byte order, standard 4-byte size
# What Chromium and Firefox accept from a host in one message.
MAX_REPLY_BYTES = 1024 * 1024
MAX_REQUEST_BYTES = 64 * 1024
_SKIP_CHUNK = 64 * 1024


class FramingError(Exception):
    """A message that cannot be used; the stream is still in step and the host answers."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    data = body.encode("utf-8")
    if len(data) > MAX_REPLY_BYTES:
        raise ValueError(f"a native message may hold at most {MAX_REPLY_BYTES} bytes")
    return HEADER.pack(len(data)) + data


def write_message(stream: IO[bytes], message: dict[str, Any]) -> None:
    stream.write(encode(message))
    stream.flush()


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    """`size` bytes, or None when the stream ends first (the browser closed the port)."""
    chunks: list[bytes] = []
    left = size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _skip(stream: IO[bytes], size: int) -> bool:
    while size:
        chunk = stream.read(min(size, _SKIP_CHUNK))
        if not chunk:
            return False
        size -= len(chunk)
    return True


def read_message(stream: IO[bytes]) -> dict[str, Any] | None:
    """The next message; None when the stream has ended (a partial message at the end is an
    end too: the browser is gone). Raises `FramingError` for a message it cannot use."""
    header = _read_exactly(stream, HEADER.size)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    if length > MAX_REQUEST_BYTES:
        if not _skip(stream, length):
            return None
        raise FramingError(
            "too_large", f"a request may hold at most {MAX_REQUEST_BYTES} bytes, not {length}"
        )
    body = _read_exactly(stream, length)
    if body is None:
        return None
    try:
        message = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FramingError("bad_request", f"the request is not UTF-8 JSON: {exc}") from None
    if not isinstance(message, dict):
        raise FramingError("bad_request", "a request must be a JSON object")
    return message
