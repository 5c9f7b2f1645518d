"""The shared examples in protocol/examples/v1 against the Python codec (the extension's JS
codec is tested against the same files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tiangong.errors import TiangongError
from tiangong.protocol.codec import decode_client_frame, load_schema, server_frame_errors

EXAMPLES = Path(__file__).resolve().parents[2] / "protocol" / "examples" / "v1"
VALID_CLIENT = sorted((EXAMPLES / "valid").glob("client-*.json"))
VALID_SERVER = sorted((EXAMPLES / "valid").glob("server-*.json"))
INVALID = sorted((EXAMPLES / "invalid").glob("*.json"))
EXPECTED = json.loads((EXAMPLES / "expected-errors.json").read_text("utf-8"))


def test_every_example_folder_has_examples_and_every_invalid_one_an_expected_error() -> None:
    assert len(VALID_CLIENT) >= 6 and len(VALID_SERVER) >= 9 and len(INVALID) >= 10
    assert {p.name for p in INVALID} == set(EXPECTED)


def test_every_client_message_type_has_a_valid_example() -> None:
    types = {json.loads(p.read_text("utf-8"))["type"] for p in VALID_CLIENT}
    assert types == {ref["$ref"].split("/")[-1] for ref in load_schema("client")["oneOf"]}


def test_every_server_frame_type_has_a_valid_example() -> None:
    types = {json.loads(p.read_text("utf-8"))["type"] for p in VALID_SERVER}
    assert types == {ref["$ref"].split("/")[-1] for ref in load_schema("server")["oneOf"]}


@pytest.mark.parametrize("path", VALID_CLIENT, ids=lambda p: p.stem)
def test_valid_client_examples_decode(path: Path) -> None:
    message = decode_client_frame(path.read_text("utf-8"))
    assert type(message).__name__.lower() == json.loads(path.read_text("utf-8"))["type"]


@pytest.mark.parametrize("path", VALID_SERVER, ids=lambda p: p.stem)
def test_valid_server_examples_match_the_schema(path: Path) -> None:
    assert server_frame_errors(json.loads(path.read_text("utf-8"))) == []


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_examples_are_refused_with_a_message_naming_the_problem(path: Path) -> None:
    expected = EXPECTED[path.name]
    with pytest.raises(TiangongError) as caught:
        decode_client_frame(path.read_text("utf-8"))
    assert caught.value.code == expected["code"]
    assert expected["message_mentions"] in caught.value.message
