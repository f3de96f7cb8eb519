"""The catalog: which documents are indexed, their chunks, and the index settings (SQLite).

The catalog is the index's source of truth. A document's new chunks are first
written, batch by batch, to a staging table queries never read (`stage_chunks`);
they become visible in one SQLite transaction (`commit_document`), after all their
vectors are in Chroma. Staged rows a crashed run left are dropped by the next one;
any vector Chroma holds that the catalog does not list is an orphan from an
interrupted run, never returned and removed by the next ingest.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
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
_COLUMNS = 'chunk_id, doc_id, n, start, "end", page, text'


@dataclass(frozen=True)
class Document:
    """One indexed file."""

    doc_id: str
    path: str
    source: str
    title: str | None
    hash: str
    size: int
    mtime: float
    chunks: int
    indexed_at: float

    def chunk_prefix(self) -> str:
        """Every chunk id of this version of the document starts with this (id and content hash)."""
        return f"{self.doc_id}-{self.hash[:12]}-"


@dataclass(frozen=True)
class Chunk:
    """One indexed passage: ``text == extracted_text[start:end]`` of its document."""

    chunk_id: str
    doc_id: str
    n: int
    start: int
    end: int
    page: int | None
    text: str


class Catalog:
    """SQLite catalog in the index folder. Safe to read while another process writes."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    # settings -------------------------------------------------------------
    def get_meta(self, key: str) -> dict | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_meta(self, key: str, value: dict) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value))
            )

    def generation(self) -> int:
        """A number that changes whenever the set of indexed chunks changes."""
        value = self.get_meta("generation")
        return int(value["n"]) if value else 0

    # documents ------------------------------------------------------------
    def documents(self) -> list[Document]:
        rows = self.db.execute(
            "SELECT doc_id, path, source, title, hash, size, mtime, chunks, indexed_at "
            "FROM documents ORDER BY source"
        ).fetchall()
        return [Document(*row) for row in rows]

    def document_by_path(self, path: str) -> Document | None:
        row = self.db.execute(
            "SELECT doc_id, path, source, title, hash, size, mtime, chunks, indexed_at "
            "FROM documents WHERE path=?",
            (path,),
        ).fetchone()
        return Document(*row) if row else None

    def stage_chunks(self, chunks: list[Chunk]) -> None:
        """Write chunks of a document being indexed; invisible until ``commit_document``."""
        with self.db:
            self.db.executemany(
                f"INSERT OR REPLACE INTO staged_chunks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(c.chunk_id, c.doc_id, c.n, c.start, c.end, c.page, c.text) for c in chunks],
            )

    def drop_staged(self, doc_id: str | None = None) -> list[str]:
        """Forget staged chunks (of one document, or all); returns their ids."""
        where, args = ("WHERE doc_id=?", (doc_id,)) if doc_id else ("", ())
        ids = [r[0] for r in self.db.execute(f"SELECT chunk_id FROM staged_chunks {where}", args)]
        with self.db:
            self.db.execute(f"DELETE FROM staged_chunks {where}", args)
        return ids

    def commit_document(self, doc: Document) -> None:
        """Replace a document and all its chunks by its staged ones, in one transaction."""
        with self.db:
            self.db.execute("DELETE FROM chunks WHERE doc_id=?", (doc.doc_id,))
            self.db.execute("DELETE FROM documents WHERE doc_id=? OR path=?", (doc.doc_id, doc.path))
            self.db.execute(
                "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (doc.doc_id, doc.path, doc.source, doc.title, doc.hash, doc.size, doc.mtime,
                 doc.chunks, doc.indexed_at),
            )
            self.db.execute(
                f"INSERT INTO chunks ({_COLUMNS}) SELECT {_COLUMNS} FROM staged_chunks WHERE doc_id=?",
                (doc.doc_id,),
            )
            self.db.execute("DELETE FROM staged_chunks WHERE doc_id=?", (doc.doc_id,))
            self._bump()

    def touch_document(self, doc_id: str, mtime: float) -> None:
        """Record a new mtime for a file whose content did not change."""
        with self.db:
            self.db.execute("UPDATE documents SET mtime=? WHERE doc_id=?", (mtime, doc_id))

    def remove_document(self, doc_id: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
            self.db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
            self._bump()

    def clear(self) -> None:
        with self.db:
            self.db.execute("DELETE FROM staged_chunks")
            self.db.execute("DELETE FROM chunks")
            self.db.execute("DELETE FROM documents")
            self._bump()

    def _bump(self) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('generation', ?)",
            (json.dumps({"n": time.time_ns()}),),
        )

    # chunks ---------------------------------------------------------------
    def chunk_ids(self, doc_id: str | None = None) -> set[str]:
        """Ids of all chunks, or of one document's."""
        if doc_id is None:
            return {row[0] for row in self.db.execute("SELECT chunk_id FROM chunks")}
        return {r[0] for r in self.db.execute("SELECT chunk_id FROM chunks WHERE doc_id=?", (doc_id,))}

    def count_chunks(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]

    def chunks(self, chunk_ids: list[str] | None = None) -> list[Chunk]:
        """Chunks by id (in the given order, unknown ids dropped), or all chunks."""
        sql = f"SELECT {_COLUMNS} FROM chunks"
        if chunk_ids is None:
            return [Chunk(*row) for row in self.db.execute(sql + " ORDER BY doc_id, n")]
        found: dict[str, Chunk] = {}
        for i in range(0, len(chunk_ids), 500):
            part = chunk_ids[i : i + 500]
            marks = ",".join("?" * len(part))
            for row in self.db.execute(f"{sql} WHERE chunk_id IN ({marks})", part):
                found[row[0]] = Chunk(*row)
        return [found[c] for c in chunk_ids if c in found]
