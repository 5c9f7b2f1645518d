"""Conversation history in SQLite (WAL, synchronous=FULL): every finished turn is committed
before the client is told `done`, so what the user saw answered is what survives a crash.

One connection guarded by a lock; callers on the event loop use the `a*` wrappers, which run
the work in a thread.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from tiangong.store.migrations import migrate

P = ParamSpec("P")
T = TypeVar("T")


# Turns of an exchange a regenerated answer replaced stay stored but are not shown or used.
VISIBLE_TURNS = (
    "(SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id AND t.superseded_by IS NULL)"
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Conversation:
    id: str
    kind: str
    url: str
    title: str
    page_text: str
    page_lang: str | None
    created_at: str
    updated_at: str
    turns: int = 0


@dataclass(frozen=True)
class Turn:
    role: str
    kind: str
    text: str
    created_at: str
    request_id: str | None = None
    status: str = "complete"
    finish_reason: str | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)


class HistoryStore:
    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        migrate(self._db)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a store method in a thread so the event loop never waits on disk."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def create_conversation(
        self, *, kind: str, url: str, title: str, page_text: str, page_lang: str | None
    ) -> Conversation:
        now = _now()
        conv = Conversation(secrets.token_hex(8), kind, url, title, page_text, page_lang, now, now)
        with self._lock:
            self._db.execute(
                "INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (conv.id, kind, url, title, page_text, page_lang, now, now),
            )
        return conv

    def update_page(
        self, conversation_id: str, *, url: str, title: str, page_text: str, page_lang: str | None
    ) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE conversations SET url=?, title=?, page_text=?, page_lang=?, updated_at=? "
                "WHERE id=?",
                (url, title, page_text, page_lang, _now(), conversation_id),
            )

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT c.*, {VISIBLE_TURNS} FROM conversations c WHERE c.id = ?",
                (conversation_id,),
            ).fetchone()
        return Conversation(*row) if row else None

    def list_conversations(self, limit: int | None = 50) -> list[Conversation]:
        """The newest first; `limit=None`: all of them."""
        with self._lock:
            rows = self._db.execute(
                # Conversations whose every answer was regenerated elsewhere are not listed.
                f"SELECT c.*, {VISIBLE_TURNS} AS n FROM conversations c WHERE n > 0 "
                "ORDER BY c.updated_at DESC, c.rowid DESC LIMIT ?",
                (-1 if limit is None else limit,),  # SQLite: a negative LIMIT is none
            ).fetchall()
        return [Conversation(*row) for row in rows]

    def add_exchange(
        self, conversation_id: str, user: Turn, assistant: Turn, *, supersedes: str | None = None
    ) -> None:
        """Both turns of one exchange in one transaction, durable when this returns; with
        `supersedes`, the newest exchange of that request id is superseded in the same one."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if supersedes is not None:
                    self._db.execute(
                        "UPDATE turns SET superseded_by = ? WHERE request_id = ? AND "
                        "superseded_by IS NULL AND conversation_id = (SELECT conversation_id "
                        "FROM turns WHERE request_id = ? ORDER BY id DESC LIMIT 1)",
                        (user.request_id, supersedes, supersedes),
                    )
                for turn in (user, assistant):
                    self._db.execute(
                        "INSERT INTO turns (conversation_id, request_id, role, kind, text, status,"
                        " finish_reason, citations, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            conversation_id,
                            turn.request_id,
                            turn.role,
                            turn.kind,
                            turn.text,
                            turn.status,
                            turn.finish_reason,
                            json.dumps(turn.citations, ensure_ascii=False),
                            turn.created_at,
                        ),
                    )
                self._db.execute(
                    "UPDATE conversations SET updated_at=? WHERE id=?", (_now(), conversation_id)
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def turns(self, conversation_id: str, *, superseded: bool = False) -> list[Turn]:
        """The conversation's turns in order; those a regenerated answer replaced only when
        `superseded` is asked for."""
        visible = "" if superseded else " AND superseded_by IS NULL"
        with self._lock:
            rows = self._db.execute(
                "SELECT role, kind, text, created_at, request_id, status, finish_reason, citations"
                f" FROM turns WHERE conversation_id = ?{visible} ORDER BY id",
                (conversation_id,),
            ).fetchall()
        return [
            Turn(*row[:7], citations=json.loads(row[7]))  # type: ignore[misc]
            for row in rows
        ]

    def conversation_of_request(
        self, request_id: str, conversation_id: str | None = None
    ) -> str | None:
        """The conversation holding the newest turn of this request id."""
        query = "SELECT conversation_id FROM turns WHERE request_id = ?"
        args: tuple[str, ...] = (request_id,)
        if conversation_id is not None:
            query += " AND conversation_id = ?"
            args += (conversation_id,)
        with self._lock:
            row = self._db.execute(query + " ORDER BY id DESC LIMIT 1", args).fetchone()
        return str(row[0]) if row else None

    def integrity_check(self) -> str:
        with self._lock:
            return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])


def new_turn(role: str, kind: str, text: str, **extra: Any) -> Turn:
    return Turn(role=role, kind=kind, text=text, created_at=_now(), **extra)
