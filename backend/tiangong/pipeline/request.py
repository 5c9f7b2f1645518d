"""The pieces one request is made of, shared by `service` and `many_pages`: the page it
reads, what it stores, its `done` frame, and the history that fits beside the page."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tiangong.engine.base import CancelToken, Engine, Finish, TaskKind
from tiangong.extract.pdf import PdfDocument
from tiangong.pipeline.prompts import PriorTurn
from tiangong.store.history import Conversation
from tiangong.text import count_words

Emit = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class PageDoc:
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


@dataclass
class Exchange:
    """What one request stores: the user's side and the conversation it belongs to."""

    conversation: Conversation
    kind: TaskKind
    user_text: str
    cite_from: str | None
    sources: tuple[PageDoc, ...] = ()  # where citations are looked up (PDF page, which tab)
    supersedes: str | None = None  # the request id of the answer this one regenerates


class RequestCancelled(Exception):
    """The request was cancelled before its answer started."""


def check_cancel(cancel: CancelToken) -> None:
    """Stop a request that was cancelled while it read or planned its page."""
    if cancel.cancelled:
        raise RequestCancelled


def done_frame(
    request_id: str,
    conversation_id: str | None,
    finish: Finish,
    first_token: float | None,
    started: float,
) -> dict[str, Any]:
    now = time.monotonic()
    frame: dict[str, Any] = {
        "type": "done",
        "id": request_id,
        "finish_reason": finish.finish_reason,
        "usage": {
            "prompt_tokens": finish.prompt_tokens,
            "completion_tokens": finish.completion_tokens,
        },
        "timing": {
            "ttft_ms": round((first_token - started) * 1000, 1) if first_token else None,
            "total_ms": round((now - started) * 1000, 1),
        },
    }
    if conversation_id:
        frame["conversation_id"] = conversation_id
    return frame


def doc_from_text(
    url: str, title: str, text: str, lang: str | None, *, selection: bool = False
) -> PageDoc:
    blocks = tuple(b.strip() for b in text.split("\n\n") if b.strip())
    return PageDoc(url, title, text.strip(), blocks, lang, count_words(text), selection)


def fit_history(history: list[PriorTurn], engine: Engine, budget: int) -> list[PriorTurn]:
    """The most recent turns that fit the budget (whole exchanges, oldest dropped first)."""
    kept: list[PriorTurn] = []
    used = 0
    for turn in reversed(history):
        used += engine.count_tokens(turn.text) + 8
        if used > budget:
            break
        kept.append(turn)
    kept.reverse()
    if kept and kept[0].role == "assistant":
        kept = kept[1:]
    return kept


@dataclass
class ReadingProgress:
    """`progress` frames of the map step: chunks read so far out of all."""

    request_id: str
    emit: Emit
    total: int
    done: int = 0

    async def send(self) -> None:
        frame = {"type": "progress", "id": self.request_id, "stage": "reading"}
        await self.emit({**frame, "done": self.done, "total": self.total})
