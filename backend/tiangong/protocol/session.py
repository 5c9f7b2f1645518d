"""The state of one connection, with no I/O: frames in, actions out.

The transport (server/ws.py) feeds every received frame to `Session.receive` and carries out
the actions it returns; tests drive a Session directly, without sockets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tiangong.errors import (
    BadRequestError,
    OverloadedError,
    TiangongError,
    UnauthorizedError,
    UnsupportedError,
)
from tiangong.protocol.codec import FrameLimits, decode_client_frame
from tiangong.protocol.frames import CLOSE_POLICY_VIOLATION, error_frame
from tiangong.protocol.messages import (
    PROTOCOL_VERSION,
    Cancel,
    Hello,
    History,
    Request,
)


@dataclass(frozen=True)
class Send:
    frame: dict[str, Any]


@dataclass(frozen=True)
class Close:
    code: int
    reason: str


@dataclass(frozen=True)
class Dispatch:
    """Start this request (summarize, ask, rewrite, history)."""

    message: Request | History


@dataclass(frozen=True)
class CancelRequest:
    request_id: str


Action = Send | Close | Dispatch | CancelRequest


class Session:
    def __init__(
        self,
        token_matches: Callable[[str], bool],
        welcome: Callable[[], dict[str, Any]],
        *,
        limits: FrameLimits | None = None,
        max_in_flight: int = 8,
    ) -> None:
        # The pairing token check (server/auth.py: constant time, with the other checks).
        self._token_matches = token_matches
        self._welcome = welcome
        self._limits = limits or FrameLimits()
        self._max_in_flight = max_in_flight
        self.authenticated = False
        self.closed = False
        self.in_flight: set[str] = set()

    def receive(self, data: str | bytes) -> list[Action]:
        if self.closed:
            return []
        try:
            message = decode_client_frame(data, self._limits)
        except TiangongError as exc:
            if not self.authenticated:
                return self._refuse(exc)
            return [Send(error_frame(exc))]
        if not self.authenticated:
            if not isinstance(message, Hello):
                return self._refuse(
                    UnauthorizedError("send hello with the pairing token before any request")
                )
            return self._greet(message)
        if isinstance(message, Hello):
            return [Send(error_frame(BadRequestError("hello was already received")))]
        if isinstance(message, Cancel):
            return [CancelRequest(message.id)] if message.id in self.in_flight else []
        if message.id in self.in_flight:
            return [
                Send(
                    error_frame(
                        BadRequestError(
                            f"id {message.id!r} is already in use by a running request"
                        ),
                        message.id,
                    )
                )
            ]
        if len(self.in_flight) >= self._max_in_flight:
            busy = OverloadedError(
                f"at most {self._max_in_flight} requests may run at once on one connection"
            )
            return [Send(error_frame(busy, message.id))]
        self.in_flight.add(message.id)
        return [Dispatch(message)]

    def finished(self, request_id: str) -> None:
        """The transport calls this once a dispatched request has sent its last frame."""
        self.in_flight.discard(request_id)

    def _greet(self, hello: Hello) -> list[Action]:
        if not self._token_matches(hello.token):
            return self._refuse(
                UnauthorizedError("wrong pairing token: run `tiangong token` to see the right one")
            )
        if hello.protocol != PROTOCOL_VERSION:
            return self._refuse(
                UnsupportedError(
                    f"protocol {hello.protocol} is not spoken here; "
                    f"this server speaks {PROTOCOL_VERSION}"
                )
            )
        self.authenticated = True
        return [Send(self._welcome())]

    def _refuse(self, exc: TiangongError) -> list[Action]:
        self.closed = True
        if not isinstance(exc, UnauthorizedError | UnsupportedError):
            exc = UnauthorizedError(f"expected hello first; {exc.message}")
        return [Send(error_frame(exc)), Close(CLOSE_POLICY_VIOLATION, exc.code)]
