"""The history as files: one export document per conversation (the JSON shape the panel's
Export JSON writes too, docs/extension.md "Export") and its Markdown. The panel renders the
same Markdown from the same document (extension/lib/conversation-export.js); both are checked
against one fixture (tests/fixtures/export/)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from tiangong.store.history import Conversation, HistoryStore, Turn

EXPORT_FORMAT = "tiangong-conversation"
EXPORT_VERSION = 1
QUESTION_CHARS = 200
UNFINISHED = {"cancelled": "Stopped.", "error": "Incomplete."}


def _citation(raw: dict[str, Any], url: str) -> dict[str, Any]:
    """A stored citation with the URL it is found at; none for a passage of another tab."""
    citation: dict[str, Any] = {"n": raw.get("n"), "quote": raw.get("quote", "")}
    if raw.get("page") is not None:
        citation["page"] = raw["page"]
    if raw.get("source") is not None:
        citation["source"] = raw["source"]
    elif url and "page" in citation:
        citation["url"] = f"{url.split('#')[0]}#page={citation['page']}"
    elif url:
        citation["url"] = url
    return citation


def conversation_document(conversation: Conversation, turns: Iterable[Turn]) -> dict[str, Any]:
    """One conversation: each answer with the question (or task) before it."""
    exchanges: list[dict[str, Any]] = []
    question = ""
    for turn in turns:
        if turn.role == "user":
            question = turn.text
            continue
        exchanges.append(
            {
                "kind": turn.kind,
                "question": question,
                "answer": turn.text,
                "url": conversation.url,
                "finish_reason": turn.finish_reason,
                "citations": [_citation(c, conversation.url) for c in turn.citations],
            }
        )
        question = ""
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "title": conversation.title or conversation.url,
        "url": conversation.url,
        "conversation_id": conversation.id,
        "exchanges": exchanges,
    }


def history_documents(
    store: HistoryStore, *, url: str | None = None, conversation_id: str | None = None
) -> list[dict[str, Any]]:
    """The stored conversations, oldest first: one by id, or those whose page URL contains
    `url`, or all of them."""
    if conversation_id is not None:
        found = store.get_conversation(conversation_id)
        conversations = [found] if found else []
    else:
        conversations = sorted(store.list_conversations(limit=None), key=lambda c: c.created_at)
    if url is not None:
        conversations = [c for c in conversations if url in c.url]
    return [conversation_document(c, store.turns(c.id)) for c in conversations]


def _one_line(text: str | None) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def _clip(text: str, chars: int) -> str:
    return f"{text[: chars - 1]}…" if len(text) > chars else text


def conversation_markdown(doc: dict[str, Any]) -> str:
    """Title and address, then each question, its answer and its numbered citations."""
    lines = [f"# {_one_line(doc['title']) or _one_line(doc['url']) or 'Tiangong'}", ""]
    if doc["url"]:
        lines += [f"<{doc['url']}>", ""]
    for exchange in doc["exchanges"]:
        question = _clip(_one_line(exchange["question"]), QUESTION_CHARS) or "…"
        lines += [f"## {question}", "", exchange["answer"].strip(), ""]
        if exchange.get("finish_reason") in UNFINISHED:
            lines += [f"_{UNFINISHED[exchange['finish_reason']]}_", ""]
        if not exchange["citations"]:
            continue
        lines += ["Sources:", ""]
        for citation in exchange["citations"]:
            where = f" (p. {citation['page']})" if citation.get("page") else ""
            link = f" — <{citation['url']}>" if citation.get("url") else ""
            lines.append(f"- [{citation['n']}] “{_one_line(citation['quote'])}”{where}{link}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def history_markdown(docs: list[dict[str, Any]]) -> str:
    """Several conversations in one file, a rule between them."""
    return "\n---\n\n".join(conversation_markdown(doc) for doc in docs)
