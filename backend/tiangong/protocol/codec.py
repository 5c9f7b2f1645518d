"""Frames in and out: JSON text ⇄ typed messages, validated against protocol/schema/v1.

Every refusal is a `BadRequestError` (or `TooLargeError`) whose message names the problem and
carries the request id when the frame had a readable one, so the reply can echo it.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from tiangong.errors import BadRequestError, TooLargeError
from tiangong.protocol.messages import ClientMessage, message_from_wire

MAX_DEPTH = 32
CLIENT_TYPES = ("hello", "summarize", "ask", "rewrite", "cancel", "history")
# Frames that may carry a whole page; every other frame is small.
PAGE_TYPES = ("summarize", "ask")


@dataclass(frozen=True)
class FrameLimits:
    page_frame_bytes: int = 8 * 1024 * 1024
    frame_bytes: int = 64 * 1024


def schema_dir() -> Path:
    """The copy an installed package carries (setup.py puts protocol/schema/v1 there), else
    protocol/schema/v1 of this checkout; TIANGONG_SCHEMA_DIR overrides both."""
    override = os.environ.get("TIANGONG_SCHEMA_DIR")
    if override:
        return Path(override)
    packaged = Path(__file__).resolve().parent / "schema" / "v1"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "protocol" / "schema" / "v1"


@cache
def load_schema(side: str) -> dict[str, Any]:
    """The schema for `client` or `server` frames."""
    schema: dict[str, Any] = json.loads((schema_dir() / f"{side}.json").read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    return schema


@cache
def _validator(side: str, kind: str) -> Draft202012Validator:
    schema = load_schema(side)
    # Validate against the one definition the frame's type names: errors then point at the
    # field that is wrong instead of at "not valid under any of the given schemas".
    return Draft202012Validator({"$ref": f"#/$defs/{kind}", "$defs": schema["$defs"]})


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def _describe(error: ValidationError) -> str:
    where = ".".join(str(part) for part in error.absolute_path)
    message = error.message
    if (
        error.validator == "anyOf"
        and error.validator_value
        and all("required" in option for option in error.validator_value)
    ):
        names = " or ".join(f"'{option['required'][0]}'" for option in error.validator_value)
        message = f"needs {names}"
    elif error.validator == "maxLength" and isinstance(error.instance, str):
        # The text itself stays out of the reply: it can be thousands of characters.
        message = f"is {len(error.instance)} characters long; the limit is {error.validator_value}"
    elif error.validator == "pattern" and where.endswith(("lang", "language")):
        message = f"{error.instance!r} is not a language tag such as en, zh-CN or pt-BR"
    return f"{where}: {message}" if where else message


def _request_id(data: dict[str, Any]) -> str | None:
    value = data.get("id")
    if isinstance(value, str) and 0 < len(value) <= 128:
        return value
    return None


def parse_json(data: str | bytes) -> Any:
    """Strict JSON: no NaN/Infinity, no binary frames, no absurd nesting."""
    if isinstance(data, bytes | bytearray):
        raise BadRequestError("binary frames are not accepted: send JSON text frames")
    try:
        value = json.loads(data, parse_constant=_reject_constant)
    except RecursionError:
        raise BadRequestError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise BadRequestError(f"malformed JSON: {exc}") from None
    if _depth_exceeds(value, MAX_DEPTH):
        raise BadRequestError(f"JSON nested deeper than {MAX_DEPTH} levels")
    return value


_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def decode_client_frame(data: str | bytes, limits: FrameLimits | None = None) -> ClientMessage:
    limits = limits or FrameLimits()
    size = (
        len(data) if isinstance(data, bytes | bytearray) else len(data.encode("utf-8", "replace"))
    )
    if size > limits.page_frame_bytes:
        raise TooLargeError(
            f"frame of {size} bytes is over the {limits.page_frame_bytes}-byte limit"
        )
    value = parse_json(data)
    if not isinstance(value, dict):
        raise BadRequestError("a frame must be a JSON object with a 'type' field")
    request_id = _request_id(value)
    # An escaped lone surrogate ("\\ud800") is valid JSON but not valid text.
    if isinstance(data, str) and _ESCAPED_SURROGATE.search(data) and _has_lone_surrogate(value):
        raise BadRequestError(
            "a string holds a lone UTF-16 surrogate (not valid Unicode)", request_id=request_id
        )
    kind = value.get("type")
    if kind is None:
        raise BadRequestError("the frame has no 'type' field", request_id=request_id)
    if kind not in CLIENT_TYPES:
        shown = kind if isinstance(kind, str) else json.dumps(kind)[:40]
        raise BadRequestError(
            f"unknown message type {shown!r}; expected one of {', '.join(CLIENT_TYPES)}",
            request_id=request_id,
        )
    if kind not in PAGE_TYPES and size > limits.frame_bytes:
        raise TooLargeError(
            f"{kind} frame of {size} bytes is over the {limits.frame_bytes}-byte limit",
            request_id=request_id,
        )
    error = best_match(_validator("client", kind).iter_errors(value))
    if error is not None:
        raise BadRequestError(f"{kind}: {_describe(error)}", request_id=request_id)
    return message_from_wire(value)


def _finite(value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("server frames never carry NaN or infinity")


def encode_frame(frame: dict[str, Any]) -> str:
    """Compact JSON; non-ASCII stays as is (Chinese text stays readable and small)."""
    for value in frame.values():
        _finite(value)
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def server_frame_errors(frame: dict[str, Any]) -> list[str]:
    """Schema problems of a server frame (tests and debug mode check every frame sent)."""
    kind = frame.get("type")
    if kind not in load_schema("server")["$defs"]:
        return [f"unknown server frame type {kind!r}"]
    return [_describe(e) for e in _validator("server", str(kind)).iter_errors(frame)]
