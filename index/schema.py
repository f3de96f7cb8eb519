"""The catalog's SQLite tables, its meta rows (named JSON values: settings, state) in one table,
and the one way a write transaction is taken."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from typing import Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    title TEXT,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    chunks INTEGER NOT NULL,
    indexed_at REAL NOT NULL
);
-- where each document's structure is: headings, definition terms, code, table rows, and
-- the title/author/date found in it (offsets into its extracted text; index.readers.Section)
CREATE TABLE IF NOT EXISTS sections (
    doc_id TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    kind TEXT NOT NULL,
    level INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sections_doc ON sections (doc_id, start);
CREATE TABLE IF NOT EXISTS chunks {chunk_columns};
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks (doc_id);
-- a document's chunks while it is being indexed; moved into chunks when it is whole
CREATE TABLE IF NOT EXISTS staged_chunks {chunk_columns};
CREATE INDEX IF NOT EXISTS staged_doc ON staged_chunks (doc_id);
""".format(chunk_columns="""(
    chunk_id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    page INTEGER,
    text TEXT NOT NULL
)""")


def read_meta(db: sqlite3.Connection, key: str) -> dict | None:
    """The meta value stored under ``key``, or None."""
    row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return json.loads(row[0]) if row else None


def write_meta(db: sqlite3.Connection, key: str, value: dict) -> None:
    """Store ``value`` under ``key`` (replacing what was there)."""
    db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value=excluded.value",
               (key, json.dumps(value)))


@contextlib.contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on ``db`` (autocommit mode), rolled back on an exception. The write
    lock is taken at once (``BEGIN IMMEDIATE``): no deadlock upgrading a read."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
