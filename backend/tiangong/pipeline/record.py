"""Step: the history. A request's conversation, and the exchange it adds to it: both turns in
one transaction, committed before `done` is sent (a broken answer is kept as `incomplete`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tiangong.engine.base import TaskKind
from tiangong.pipeline.request import PageDoc
from tiangong.store.history import Conversation, HistoryStore, new_turn


@dataclass(frozen=True, kw_only=True)
class Exchange:
    """What one request stores: the user's side and the conversation it belongs to."""

    conversation: Conversation
    kind: TaskKind
    user_text: str
    cite_from: str | None  # the text citations quote (None: the answer cites nothing)
    sources: tuple[PageDoc, ...] = ()  # where citations are looked up (PDF page, which tab)
    supersedes: str | None = None  # the request id of the answer this one regenerates


async def new_conversation(store: HistoryStore, kind: TaskKind, doc: PageDoc) -> Conversation:
    """A conversation about `doc`, whose text later questions in it read."""
    return await store.run(
        store.create_conversation,
        kind=kind,
        url=doc.url,
        title=doc.title,
        page_text=doc.text,
        page_lang=doc.lang,
    )


async def record(
    store: HistoryStore,
    exchange: Exchange,
    *,
    request_id: str,
    answer: str,
    finish_reason: str,
    citations: list[dict[str, Any]],
) -> None:
    complete = finish_reason in ("stop", "length")
    user = new_turn("user", exchange.kind, exchange.user_text, request_id=request_id)
    assistant = new_turn(
        "assistant",
        exchange.kind,
        answer,
        request_id=request_id,
        status="complete" if complete else "incomplete",
        finish_reason=finish_reason,
        citations=citations,
    )
    await store.run(
        store.add_exchange,
        exchange.conversation.id,
        user,
        assistant,
        supersedes=exchange.supersedes,
    )
