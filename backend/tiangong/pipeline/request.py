"""What every step of a request is handed: its context (id, where its frames go, its cancel
token, when it started, the parts it may use) and the page it reads, as a `PageDoc`."""

from __future__ import annotations

import bisect
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tiangong.engine.base import CancelToken, Engine, Reading
from tiangong.extract.pdf import PdfDocument
from tiangong.extract.worker import ExtractionWorker
from tiangong.protocol.messages import Cue
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
    # A transcript's cues: (offset in `text`, start in seconds), in order.
    cue_starts: tuple[tuple[int, float], ...] = ()

    def page_of(self, quote: str) -> int | None:
        return self.pdf.page_of(quote) if self.pdf is not None else None

    def time_of(self, quote: str) -> float | None:
        """The start of the cue a verbatim quote begins in (None: not a transcript, not found)."""
        if not self.cue_starts:
            return None
        at = self.text.find(quote.strip()[:80])
        if at < 0:
            return None
        index = bisect.bisect_right([offset for offset, _ in self.cue_starts], at) - 1
        return self.cue_starts[max(index, 0)][1]


def doc_from_text(
    url: str, title: str, text: str, lang: str | None, *, selection: bool = False
) -> PageDoc:
    blocks = tuple(b.strip() for b in text.split("\n\n") if b.strip())
    return PageDoc(url, title, text.strip(), blocks, lang, count_words(text), selection)


# Cues run together into paragraphs of about this many characters (the planner's blocks).
TRANSCRIPT_BLOCK_CHARS = 600


def doc_from_transcript(url: str, title: str, cues: Sequence[Cue], lang: str | None) -> PageDoc:
    """A video's captions as the text the model reads: the cues joined into sentences and
    paragraphs, with where each cue starts kept for citations' `time`."""
    blocks: list[str] = []
    starts: list[tuple[int, float]] = []
    block: list[str] = []
    offset = 0  # where the current block starts in the text
    for cue in cues:
        words = " ".join(cue.text.split())
        if not words:
            continue
        here = offset + sum(len(part) + 1 for part in block)
        starts.append((here, cue.start))
        block.append(words)
        if sum(len(part) + 1 for part in block) >= TRANSCRIPT_BLOCK_CHARS:
            blocks.append(" ".join(block))
            offset += len(blocks[-1]) + 2
            block = []
    if block:
        blocks.append(" ".join(block))
    text = "\n\n".join(blocks)
    return PageDoc(
        url, title, text, tuple(blocks), lang, count_words(text), cue_starts=tuple(starts)
    )
