"""What every step of a request is handed: its context (id, where its frames go, its cancel
token, when it started, the parts it may use) and the page it reads, as a `PageDoc`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tiangong.engine.base import CancelToken, Engine, Reading
from tiangong.extract.pdf import PdfDocument
from tiangong.extract.worker import ExtractionWorker
from tiangong.serving.host import EngineHost
from tiangong.serving.scheduler import Scheduler
from tiangong.store.history import HistoryStore
from tiangong.text import count_words

Emit = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Resources:
    """The long-lived parts requests share (built once, by `tiangong.runtime`)."""

    host: EngineHost
    scheduler: Scheduler
    store: HistoryStore
    extractor: ExtractionWorker
    # `--reading`: auto (the engine says) or a forced `Reading`.
    reading: str = "auto"


@dataclass
class RequestContext:
    id: str
    emit: Emit  # delivers one frame to whoever asked (a WebSocket, the terminal)
    cancel: CancelToken
    resources: Resources
    started: float = field(default_factory=time.monotonic)

    def reading(self, engine: Engine) -> Reading:
        """How `engine` reads this request's page: the flag when one was given, else what
        the engine's model reads best."""
        forced = self.resources.reading
        if forced in ("page", "evidence"):
            return "evidence" if forced == "evidence" else "page"
        return engine.reading

    def check_cancel(self) -> None:
        """Stop a request that was cancelled while it read or planned its page."""
        if self.cancel.cancelled:
            raise RequestCancelled


class RequestCancelled(Exception):
    """The request was cancelled before its answer started."""


@dataclass(frozen=True)
class PageDoc:
    """The text a request works on, whatever it came from (selection, article, PDF, text)."""

    url: str
    title: str
    text: str
    blocks: tuple[str, ...]
    lang: str | None
    words: int
    from_selection: bool = False
    pdf: PdfDocument | None = None

    def page_of(self, quote: str) -> int | None:
        return self.pdf.page_of(quote) if self.pdf is not None else None


def doc_from_text(
    url: str, title: str, text: str, lang: str | None, *, selection: bool = False
) -> PageDoc:
    blocks = tuple(b.strip() for b in text.split("\n\n") if b.strip())
    return PageDoc(url, title, text.strip(), blocks, lang, count_words(text), selection)
