"""Every frame the server sends, built in one place (protocol/schema/v1/server.json is the truth).

The request steps, the WebSocket transport and the HTTP routes call these builders with
typed values; nothing else writes a frame's fields, so a field is renamed here or nowhere.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tiangong import __version__
from tiangong.engine.base import Finish
from tiangong.errors import wire_error
from tiangong.protocol.messages import PROTOCOL_VERSION
from tiangong.serving.host import EngineStatus
from tiangong.store.history import Conversation, Turn

# WebSocket close codes the server uses (RFC 6455).
CLOSE_GOING_AWAY = 1001  # the server shuts down
CLOSE_POLICY_VIOLATION = 1008  # no hello, a wrong token, an unknown protocol version

Frame = dict[str, Any]


def engine_info(status: EngineStatus) -> dict[str, Any]:
    """The `engine` object of welcome and status frames (and of /health)."""
    out: dict[str, Any] = {
        "name": status.name,
        "model": status.model,
        "capabilities": list(status.capabilities),
        "context_tokens": status.context_tokens,
        "state": status.state,
    }
    if status.details:
        out["details"] = dict(status.details)
    if status.failure is not None:
        out["failure"] = status.failure
    if status.fallback_reason:
        out["fallback_reason"] = status.fallback_reason
    return out


def welcome_frame(
    status: EngineStatus, *, page_frame_bytes: int, frame_bytes: int, requests_per_connection: int
) -> Frame:
    return {
        "type": "welcome",
        "protocol": PROTOCOL_VERSION,
        "server": {"version": __version__},
        "engine": engine_info(status),
        "limits": {
            "page_frame_bytes": page_frame_bytes,
            "frame_bytes": frame_bytes,
            "requests_per_connection": requests_per_connection,
        },
    }


def status_frame(status: EngineStatus) -> Frame:
    frame: Frame = {"type": "status", "engine": engine_info(status)}
    if status.loading is not None:
        loading = status.loading
        frame["loading"] = {"stage": loading.stage, "done": loading.done, "total": loading.total}
    return frame


def progress_frame(request_id: str, stage: str, done: int, total: int) -> Frame:
    return {"type": "progress", "id": request_id, "stage": stage, "done": done, "total": total}


@dataclass(frozen=True)
class PageFacts:
    """What the start frame says of one page (or, with several, of each)."""

    title: str
    url: str
    words: int
    tokens: int
    lang: str | None
    coverage: float = 1.0  # said of each of several pages
    pdf_pages: int | None = None  # said of the page a request reads alone

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "title": self.title,
            "url": self.url,
            "words": self.words,
            "tokens": self.tokens,
            "lang": self.lang,
        }
        if self.pdf_pages is not None:
            out["pages"] = self.pdf_pages
        return out


@dataclass(frozen=True)
class PlanFacts:
    strategy: str
    coverage: float
    prompt_tokens: int


def start_frame(
    request_id: str,
    *,
    conversation_id: str,
    page: PageFacts,
    plan: PlanFacts,
    sources: Sequence[PageFacts] = (),
) -> Frame:
    shown = page.to_wire()
    shown["plan"] = {
        "strategy": plan.strategy,
        "coverage": plan.coverage,
        "prompt_tokens": plan.prompt_tokens,
    }
    if sources:
        shown["sources"] = [
            {
                "title": s.title,
                "url": s.url,
                "words": s.words,
                "tokens": s.tokens,
                "lang": s.lang,
                "coverage": s.coverage,
            }
            for s in sources
        ]
    return {"type": "start", "id": request_id, "conversation_id": conversation_id, "page": shown}


def delta_frame(request_id: str, text: str) -> Frame:
    return {"type": "delta", "id": request_id, "text": text}


def citation_fields(
    n: int,
    quote: str,
    *,
    source: int | None = None,
    page: int | None = None,
    time: float | None = None,
) -> dict[str, Any]:
    """One citation as the citation frame carries it and the history stores it."""
    out: dict[str, Any] = {"n": n, "quote": quote}
    if source is not None:
        out["source"] = source
    if page is not None:
        out["page"] = page
    if time is not None:
        out["time"] = time
    return out


def citation_frame(request_id: str, citation: dict[str, Any]) -> Frame:
    return {"type": "citation", "id": request_id, **citation}


def done_frame(
    request_id: str,
    finish: Finish,
    *,
    conversation_id: str | None,
    started: float,
    first_token: float | None,
) -> Frame:
    """`started` and `first_token` are `time.monotonic()` readings."""
    now = time.monotonic()
    frame: Frame = {
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


def error_frame(exc: BaseException, request_id: str | None = None) -> Frame:
    frame: Frame = {"type": "error"}
    rid = request_id or getattr(exc, "request_id", None)
    if rid:
        frame["id"] = rid
    frame.update(wire_error(exc))
    return frame


def conversation_summary(conv: Conversation) -> dict[str, Any]:
    return {
        "id": conv.id,
        "url": conv.url,
        "title": conv.title,
        "created_at": conv.created_at,
        "updated_at": conv.updated_at,
        "turns": conv.turns,
    }


def turn_fields(turn: Turn) -> dict[str, Any]:
    out: dict[str, Any] = {
        "role": turn.role,
        "kind": turn.kind,
        "text": turn.text,
        "created_at": turn.created_at,
        "status": turn.status,
    }
    if turn.request_id is not None:
        out["request_id"] = turn.request_id
    if turn.finish_reason is not None:
        out["finish_reason"] = turn.finish_reason
    if turn.citations:
        out["citations"] = turn.citations
    return out


def history_frame(
    request_id: str,
    *,
    conversation: Conversation | None = None,
    conversations: Sequence[Conversation] | None = None,
    turns: Sequence[Turn] = (),
) -> Frame:
    """The conversations listed, or one conversation with its turns."""
    frame: Frame = {"type": "history", "id": request_id}
    if conversations is not None:
        frame["conversations"] = [conversation_summary(c) for c in conversations]
        return frame
    assert conversation is not None
    frame["conversation"] = conversation_summary(conversation)
    frame["turns"] = [turn_fields(t) for t in turns]
    return frame
