"""One exception tree for the whole service, and the one place it becomes a wire error.

    TiangongError                 code (wire)       retryable
    ├── BadRequestError           bad_request       no
    │   └── ModelNotFoundError    (a --model that names no model; reported at load time)
    ├── UnauthorizedError         unauthorized      no
    ├── ForbiddenError            forbidden         no
    ├── UnsupportedError          unsupported       no
    ├── TooLargeError             too_large         no
    ├── OverloadedError           overloaded        yes
    └── EngineFailedError         engine_failed     yes

Anything that is not a TiangongError is a bug: it reaches the client as `internal` with a
generic message (details stay in the log, never on the wire).
"""

from __future__ import annotations

from typing import Any, ClassVar


class TiangongError(Exception):
    code: ClassVar[str] = "internal"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # The id of the request the error belongs to, when it is known.
        self.request_id = request_id


class BadRequestError(TiangongError):
    code = "bad_request"


class ModelNotFoundError(BadRequestError):
    pass


class UnauthorizedError(TiangongError):
    code = "unauthorized"


class ForbiddenError(TiangongError):
    code = "forbidden"


class UnsupportedError(TiangongError):
    code = "unsupported"


class TooLargeError(TiangongError):
    code = "too_large"


class OverloadedError(TiangongError):
    code = "overloaded"
    retryable = True


class EngineFailedError(TiangongError):
    code = "engine_failed"
    retryable = True


INTERNAL_MESSAGE = "internal error; the server log has the details"


def wire_error(exc: BaseException) -> dict[str, Any]:
    """The `code`, `message` and `retryable` fields of an error frame for any exception."""
    if isinstance(exc, TiangongError):
        return {"code": exc.code, "message": exc.message, "retryable": exc.retryable}
    return {"code": "internal", "message": INTERNAL_MESSAGE, "retryable": False}
