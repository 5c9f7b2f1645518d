"""Numbered schema migrations, applied in order and recorded in `schema_migrations`.

Append new steps; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "conversations and turns",
        """
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            url TEXT NOT NULL,
            title TEXT NOT NULL,
            page_text TEXT NOT NULL,
            page_lang TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX conversations_updated ON conversations(updated_at DESC);
        CREATE TABLE turns (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            request_id TEXT,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            kind TEXT NOT NULL,
            text TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'complete' CHECK (status IN ('complete', 'incomplete')),
            finish_reason TEXT,
            citations TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL
        );
        CREATE INDEX turns_conversation ON turns(conversation_id, id);
        """,
    ),
    (
        2,
        "regenerated answers supersede earlier ones",
        """
        ALTER TABLE turns ADD COLUMN superseded_by TEXT;
        CREATE INDEX turns_request ON turns(request_id);
        """,
    ),
)


def migrate(db: sqlite3.Connection) -> list[int]:
    """Apply the missing migrations; returns the versions applied now."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
    applied = []
    for version, name, sql in MIGRATIONS:
        if version in done:
            continue
        # executescript commits first; wrap each step so it lands whole or not at all.
        db.executescript(
            "BEGIN;\n" + sql + "\nINSERT INTO schema_migrations VALUES "
            f"({version}, '{name}', '{datetime.now(UTC).isoformat()}');\nCOMMIT;"
        )
        applied.append(version)
    return applied
