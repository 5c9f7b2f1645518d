"""Conversation history in real SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tiangong.store.history import HistoryStore, new_turn
from tiangong.store.migrations import MIGRATIONS, migrate


def test_migrations_run_once_and_are_recorded(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "h.sqlite3", isolation_level=None)
    assert migrate(db) == [m[0] for m in MIGRATIONS]
    assert migrate(db) == []
    versions = [r[0] for r in db.execute("SELECT version FROM schema_migrations")]
    assert versions == [m[0] for m in MIGRATIONS]


def test_the_database_is_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.sqlite3")
    mode = store._db.execute("PRAGMA journal_mode").fetchone()[0]
    sync = store._db.execute("PRAGMA synchronous").fetchone()[0]
    assert mode == "wal" and sync == 2  # 2 = FULL


def test_exchanges_survive_reopening_in_order(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    store = HistoryStore(path)
    conv = store.create_conversation(
        kind="ask", url="https://e.com", title="T", page_text="text", page_lang="en"
    )
    for i in range(3):
        store.add_exchange(
            conv.id,
            new_turn("user", "ask", f"q{i}", request_id=f"r{i}"),
            new_turn(
                "assistant",
                "ask",
                f"a{i}",
                request_id=f"r{i}",
                finish_reason="stop",
                citations=[{"n": 1, "quote": "text"}],
            ),
        )
    store.close()
    again = HistoryStore(path)
    turns = again.turns(conv.id)
    assert [t.text for t in turns] == ["q0", "a0", "q1", "a1", "q2", "a2"]
    assert turns[1].citations == [{"n": 1, "quote": "text"}]
    assert again.get_conversation(conv.id).turns == 6  # type: ignore[union-attr]
    assert again.integrity_check() == "ok"


def test_conversations_list_newest_first(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.sqlite3")
    a = store.create_conversation(kind="ask", url="a", title="A", page_text="", page_lang=None)
    b = store.create_conversation(kind="ask", url="b", title="B", page_text="", page_lang=None)
    store.add_exchange(b.id, new_turn("user", "ask", "q"), new_turn("assistant", "ask", "x"))
    store.add_exchange(a.id, new_turn("user", "ask", "q"), new_turn("assistant", "ask", "x"))
    assert [c.id for c in store.list_conversations()] == [a.id, b.id]
    assert [c.id for c in store.list_conversations(limit=1)] == [a.id]


def test_a_regenerated_exchange_is_superseded_in_the_same_transaction(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.sqlite3")
    conv = store.create_conversation(kind="ask", url="u", title="T", page_text="", page_lang=None)
    store.add_exchange(
        conv.id,
        new_turn("user", "ask", "q", request_id="r1"),
        new_turn("assistant", "ask", "first answer", request_id="r1"),
    )
    store.add_exchange(
        conv.id,
        new_turn("user", "ask", "q", request_id="r2"),
        new_turn("assistant", "ask", "second answer", request_id="r2"),
        supersedes="r1",
    )
    assert [t.text for t in store.turns(conv.id)] == ["q", "second answer"]
    assert len(store.turns(conv.id, superseded=True)) == 4
    assert store.get_conversation(conv.id).turns == 2  # type: ignore[union-attr]


def test_a_conversation_whose_answers_were_all_regenerated_elsewhere_is_not_listed(
    tmp_path: Path,
) -> None:
    store = HistoryStore(tmp_path / "h.sqlite3")
    old = store.create_conversation(
        kind="summarize", url="u", title="A", page_text="", page_lang=None
    )
    store.add_exchange(
        old.id,
        new_turn("user", "summarize", "s", request_id="s1"),
        new_turn("assistant", "summarize", "one", request_id="s1"),
    )
    new = store.create_conversation(
        kind="summarize", url="u", title="A", page_text="", page_lang=None
    )
    store.add_exchange(
        new.id,
        new_turn("user", "summarize", "s", request_id="s2"),
        new_turn("assistant", "summarize", "two", request_id="s2"),
        supersedes="s1",
    )
    assert [c.id for c in store.list_conversations()] == [new.id]
