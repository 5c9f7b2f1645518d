"""The connection state machine, driven without sockets."""

from __future__ import annotations

import json

from tiangong.protocol.messages import Summarize
from tiangong.protocol.session import CancelRequest, Close, Dispatch, Send, Session

WELCOME = {"type": "welcome"}


def session(**kwargs: int) -> Session:
    return Session(lambda token: token == "secret", lambda: WELCOME, **kwargs)  # type: ignore[arg-type]


def hello(token: str = "secret") -> str:
    return json.dumps({"type": "hello", "protocol": 1, "token": token})


def summarize(rid: str) -> str:
    return json.dumps({"type": "summarize", "id": rid, "page": {"url": "u", "text": "t"}})


def test_hello_with_the_token_is_welcomed() -> None:
    s = session()
    assert s.receive(hello()) == [Send(WELCOME)]
    assert s.authenticated


def test_a_wrong_token_closes_with_policy_violation_and_nothing_after_is_read() -> None:
    s = session()
    actions = s.receive(hello("nope"))
    assert isinstance(actions[0], Send) and actions[0].frame["code"] == "unauthorized"
    assert actions[1] == Close(1008, "unauthorized")
    assert s.receive(hello()) == []


def test_requests_are_dispatched_once_and_ids_are_freed_when_finished() -> None:
    s = session()
    s.receive(hello())
    (dispatch,) = s.receive(summarize("a"))
    assert isinstance(dispatch, Dispatch) and isinstance(dispatch.message, Summarize)
    (dup,) = s.receive(summarize("a"))
    assert isinstance(dup, Send) and dup.frame["code"] == "bad_request"
    s.finished("a")
    assert isinstance(s.receive(summarize("a"))[0], Dispatch)


def test_cancel_reaches_only_running_requests() -> None:
    s = session()
    s.receive(hello())
    s.receive(summarize("a"))
    assert s.receive(json.dumps({"type": "cancel", "id": "a"})) == [CancelRequest("a")]
    assert s.receive(json.dumps({"type": "cancel", "id": "zzz"})) == []


def test_the_per_connection_limit_answers_overloaded() -> None:
    s = session(max_in_flight=1)
    s.receive(hello())
    s.receive(summarize("a"))
    (refused,) = s.receive(summarize("b"))
    assert isinstance(refused, Send)
    assert refused.frame == {**refused.frame, "id": "b", "code": "overloaded", "retryable": True}


def test_a_second_hello_is_a_bad_request_not_a_disconnect() -> None:
    s = session()
    s.receive(hello())
    (again,) = s.receive(hello())
    assert isinstance(again, Send) and again.frame["code"] == "bad_request"
    assert s.authenticated and not s.closed
