"""The native messaging framing, read and written as the browsers do: a 4-byte length in
the machine's byte order, then UTF-8 JSON."""

from __future__ import annotations

import io
import json
import struct
import sys

import pytest

from tiangong.native.framing import (
    MAX_REPLY_BYTES,
    MAX_REQUEST_BYTES,
    FramingError,
    encode,
    read_message,
    write_message,
)


def frame(body: bytes) -> bytes:
    return struct.pack(f"{'<' if sys.byteorder == 'little' else '>'}I", len(body)) + body


def test_a_message_is_its_length_in_native_byte_order_then_utf8_json() -> None:
    message = {"type": "connect", "id": "c1", "note": "天宫"}
    data = encode(message)
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
    assert data == frame(body)
    assert int.from_bytes(data[:4], sys.byteorder) == len(body)
    assert read_message(io.BytesIO(data)) == message


def test_messages_follow_one_another_and_the_end_of_stdin_ends_reading() -> None:
    out = io.BytesIO()
    write_message(out, {"type": "connect", "id": "a"})
    write_message(out, {"type": "connect", "id": "b"})
    stream = io.BytesIO(out.getvalue())
    assert read_message(stream) == {"type": "connect", "id": "a"}
    assert read_message(stream) == {"type": "connect", "id": "b"}
    assert read_message(stream) is None


@pytest.mark.parametrize("cut", [0, 2, 4, 10])
def test_a_message_cut_short_by_the_browser_closing_is_the_end(cut: int) -> None:
    whole = frame(b'{"type":"connect","id":"abc"}')
    assert read_message(io.BytesIO(whole[:cut])) is None


def test_no_reply_over_one_megabyte_is_ever_built() -> None:
    assert len(encode({"text": "x" * (MAX_REPLY_BYTES - 100)})) <= MAX_REPLY_BYTES + 4
    with pytest.raises(ValueError, match="at most"):
        encode({"text": "x" * MAX_REPLY_BYTES})


def test_an_oversized_request_is_read_past_and_the_next_one_still_arrives() -> None:
    stream = io.BytesIO(frame(b"[" + b" " * MAX_REQUEST_BYTES + b"]") + encode({"id": "next"}))
    with pytest.raises(FramingError) as refused:
        read_message(stream)
    assert refused.value.code == "too_large"
    assert read_message(stream) == {"id": "next"}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "not UTF-8 JSON"),
        (b'{"id": NaN}', "not UTF-8 JSON"),
        (b"\xff\xfe{}", "not UTF-8 JSON"),
        (b"[" * 30_000 + b"]" * 30_000, "not UTF-8 JSON"),
        (b'["connect"]', "JSON object"),
        (b'"connect"', "JSON object"),
    ],
)
def test_malformed_requests_are_refused_with_a_reason_and_reading_goes_on(
    body: bytes, says: str
) -> None:
    stream = io.BytesIO(frame(body) + encode({"id": "after"}))
    with pytest.raises(FramingError) as refused:
        read_message(stream)
    assert refused.value.code == "bad_request" and says in refused.value.message
    assert read_message(stream) == {"id": "after"}
