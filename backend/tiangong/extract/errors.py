"""The extractor's own error: input that cannot be turned into an article."""

from __future__ import annotations

from tiangong.errors import BadRequestError


class ExtractionError(BadRequestError):
    """The page cannot be handled (not HTML, nothing to read, unparseable); the message says why."""
