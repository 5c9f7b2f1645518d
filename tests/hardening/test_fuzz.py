"""Malformed messages: the codec refuses them with a wire error, never a crash, and a real
connection keeps serving valid requests after any of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import run_server
from tests.wsclient import client
from tiangong.errors import TiangongError
from tiangong.protocol.codec import decode_client_frame

TYPES = ["hello", "summarize", "ask", "rewrite", "cancel", "history", "bogus", ""]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
fields = st.sampled_from(
    [
        "id",
        "page",
        "options",
        "question",
        "text",
        "conversation_id",
        "token",
        "protocol",
        "url",
        "html",
        "type",
        "length",
        "max_tokens",
        "limit",
        "selection",
    ]
)
frames = st.builds(
    lambda kind, extra: {"type": kind, **extra},
    st.sampled_from(TYPES),
    st.dictionaries(fields, json_values, max_size=5),
)
raw_text = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("utf-8", "surrogateescape")),
    st.just('{"type": "ask", "id": "\\ud800", "question": "x", "conversation_id": "c"}'),
    st.just('{"type": "summarize", "id": "r", "page": {"url": "u", "text": "t"}, "x": 1e999}'),
    st.just("[" * 5000 + "]" * 5000),
)


@given(frames)
@settings(max_examples=400, deadline=None)
def test_any_structured_frame_decodes_or_is_refused_cleanly(frame: dict[str, Any]) -> None:
    try:
        decode_client_frame(json.dumps(frame))
    except TiangongError as exc:
        assert exc.code in ("bad_request", "too_large") and exc.message


@given(raw_text)
@settings(max_examples=300, deadline=None)
def test_any_text_is_refused_cleanly(data: str) -> None:
    try:
        decode_client_frame(data)
    except TiangongError as exc:
        assert exc.code in ("bad_request", "too_large")


@given(st.binary(max_size=300))
@settings(max_examples=100, deadline=None)
def test_any_bytes_are_refused_cleanly(data: bytes) -> None:
    try:
        decode_client_frame(data)
        raise AssertionError("binary frames must be refused")
    except TiangongError as exc:
        assert exc.code == "bad_request"


async def test_a_live_connection_survives_a_barrage_of_malformed_frames(tmp_path: Path) -> None:
    barrage: list[str | bytes] = [
        "",
        "null",
        "[]",
        "{}",
        '{"type": null}',
        "\x00\x00",
        "\ud800".encode("utf-8", "surrogatepass"),
        b"\xff\xfe\xfd",
        '{"type": "ask", "id": "q", "question": 7, "conversation_id": "c"}',
        '{"type": "summarize", "id": "r", "page": {"url": "u", "text": "t"}, '
        '"options": {"max_tokens": 1e400}}',
        '{"type": "summarize", "id": "' + "x" * 500 + '", "page": {"url": "u", "text": "t"}}',
        '{"type": "history", "id": "h", "limit": 99999999999999999999999}',
        '{"type": "cancel", "id": {"$gt": ""}}',
        "[" * 100_000,
    ]
    async with run_server(tmp_path) as server, client(server.ws_url) as c:
        for frame in barrage:
            if isinstance(frame, bytes):
                try:
                    await c.ws.send(frame.decode("utf-8"))
                except UnicodeDecodeError:
                    await c.ws.send(frame)
            else:
                await c.send(frame)
            error = await c.next_of("error")
            assert error["code"] in ("bad_request", "too_large"), error
        result = await c.request(
            {"type": "summarize", "id": "ok", "page": {"url": "u", "text": "Still serving."}}
        )
    assert result[-1]["type"] == "done"


async def test_lone_surrogates_in_text_frames_are_refused(tmp_path: Path) -> None:
    async with run_server(tmp_path) as server, client(server.ws_url) as c:
        # A client that escapes a lone surrogate in JSON: valid JSON, not valid text.
        await c.send('{"type": "rewrite", "id": "w", "text": "bad \\udc80 text"}')
        error = await c.next_of("error")
        frames = await c.request({"type": "rewrite", "id": "ok", "text": "fine text"})
    assert error["id"] == "w" and "surrogate" in error["message"]
    assert frames[-1]["type"] == "done"
