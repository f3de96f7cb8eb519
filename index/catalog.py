"""The catalog: which documents are indexed, their chunks, the keyword index and the settings (SQLite).

The catalog is the index's source of truth. A document's new chunks are first
written, batch by batch, to a staging table queries never read (`stage_chunks`);
they become visible in one SQLite transaction (`commit_document`), after all their
vectors are in Chroma. Staged rows a crashed run left are dropped by the next one;
any vector Chroma holds that the catalog does not list is an orphan from an
interrupted run, never returned and removed by the next ingest.

The keyword index is an SQLite FTS5 table in the same file, changed in the same
transactions as the chunks: a document's terms become searchable when it commits,
never while it is staged, and nothing is rebuilt in memory. FTS5 ranks with its
``bm25()`` (k1=1.2, b=0.75). Design and measurements: docs/keyword-index.md.

Each thread gets its own SQLite connection; ``snapshot()`` makes several reads see
one state of the catalog while another thread or process commits.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from index.terms import analysis, joined_terms, terms

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
-- the keyword index: each listed chunk's analysed terms (index/terms.py) joined by spaces;
-- contentless (content=''): it keeps the postings, not a second copy of the text
CREATE VIRTUAL TABLE IF NOT EXISTS keyword USING fts5(
    terms, content='', tokenize="ascii tokenchars '_'"
);
-- which chunk each keyword row stands for (a contentless FTS5 row is only its rowid)
CREATE TABLE IF NOT EXISTS keyword_rows (
    row INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL,
    doc_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS keyword_rows_doc ON keyword_rows (doc_id);
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
_JOINED_COLUMNS = 'c.chunk_id, c.doc_id, c.n, c.start, c."end", c.page, c.text'
# A search leaves out terms held by more than this share of the chunks: FTS5's bm25() gives
# a term in half of them or more no weight, and a term costs time in proportion to the chunks
# holding it (docs/keyword-index.md has the measurements).
COMMON_TERM_SHARE = 0.5


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
    """SQLite catalog in the index folder. Safe to read while another process writes.

    Every thread uses its own connection (closed by ``close``). Writes are single
    transactions; ``snapshot()`` groups reads.
    """

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        self._open: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._open_lock = threading.Lock()
        db = self._db
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
        self._ensure_keyword_index()

    # connections ------------------------------------------------------------
    @property
    def _db(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        holder = getattr(self._local, "holder", None)
        if holder is None:
            db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None,
                                 check_same_thread=False)  # only ``close`` uses it from another thread
            db.execute("PRAGMA synchronous=NORMAL")
            db.create_function("analysed", 1, joined_terms, deterministic=True)
            db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.keyword_vocab "
                       "USING fts5vocab(main, keyword, 'row')")
            holder = self._local.holder = _Connection(db)
            with self._open_lock:
                self._open.add(holder)
        return holder.db

    def close(self) -> None:
        """Close every thread's connection; a later call opens new ones."""
        with self._open_lock:
            holders, self._open = list(self._open), weakref.WeakSet()
            self._local = threading.local()
        for holder in holders:
            holder.db.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on this thread's connection (rolled back on an exception)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")  # take the write lock now: no deadlock upgrading a read
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads on this thread inside the block all see the same committed state.

        A document another thread or process swaps meanwhile is seen whole, either
        as it was or as it is. Nested blocks share the outer snapshot.
        """
        db = self._db
        if db.in_transaction:
            yield
            return
        db.execute("BEGIN")  # deferred: the snapshot is taken at the first read
        try:
            yield
        finally:
            db.execute("COMMIT")  # nothing was written: this only ends the snapshot

    # settings -------------------------------------------------------------
    def get_meta(self, key: str) -> dict | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_meta(self, key: str, value: dict) -> None:
        with self._write() as db:
            _put_meta(db, key, value)

    def generation(self) -> int:
        """A number that changes whenever the set of indexed chunks changes."""
        value = self.get_meta("generation")
        return int(value["n"]) if value else 0

    # documents ------------------------------------------------------------
    def documents(self) -> list[Document]:
        rows = self._db.execute(
            "SELECT doc_id, path, source, title, hash, size, mtime, chunks, indexed_at "
            "FROM documents ORDER BY source"
        ).fetchall()
        return [Document(*row) for row in rows]

    def document_by_path(self, path: str) -> Document | None:
        row = self._db.execute(
            "SELECT doc_id, path, source, title, hash, size, mtime, chunks, indexed_at "
            "FROM documents WHERE path=?",
            (path,),
        ).fetchone()
        return Document(*row) if row else None

    def stage_chunks(self, chunks: list[Chunk]) -> None:
        """Write chunks of a document being indexed; invisible until ``commit_document``."""
        with self._write() as db:
            db.executemany(
                f"INSERT OR REPLACE INTO staged_chunks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(c.chunk_id, c.doc_id, c.n, c.start, c.end, c.page, c.text) for c in chunks],
            )

    def drop_staged(self, doc_id: str | None = None) -> list[str]:
        """Forget staged chunks (of one document, or all); returns their ids."""
        where, args = ("WHERE doc_id=?", (doc_id,)) if doc_id else ("", ())
        with self._write() as db:
            ids = [r[0] for r in db.execute(f"SELECT chunk_id FROM staged_chunks {where}", args)]
            db.execute(f"DELETE FROM staged_chunks {where}", args)
        return ids

    def commit_document(self, doc: Document) -> None:
        """Replace a document and all its chunks by its staged ones, in one transaction.

        The keyword index changes in the same transaction: the new chunks' terms
        become searchable exactly when the chunks are listed.
        """
        with self._write() as db:
            _unlist(db, doc.doc_id)
            db.execute("DELETE FROM documents WHERE doc_id=? OR path=?", (doc.doc_id, doc.path))
            db.execute(
                "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (doc.doc_id, doc.path, doc.source, doc.title, doc.hash, doc.size, doc.mtime,
                 doc.chunks, doc.indexed_at),
            )
            db.execute(
                f"INSERT INTO chunks ({_COLUMNS}) SELECT {_COLUMNS} FROM staged_chunks WHERE doc_id=?",
                (doc.doc_id,),
            )
            db.execute("DELETE FROM staged_chunks WHERE doc_id=?", (doc.doc_id,))
            _list_keywords(db, doc.doc_id)
            self._changed(db)

    def touch_document(self, doc_id: str, mtime: float) -> None:
        """Record a new mtime for a file whose content did not change."""
        with self._write() as db:
            db.execute("UPDATE documents SET mtime=? WHERE doc_id=?", (mtime, doc_id))

    def remove_document(self, doc_id: str) -> None:
        """Take a document, its chunks and their keyword terms out, in one transaction."""
        with self._write() as db:
            _unlist(db, doc_id)
            db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
            self._changed(db)

    def clear(self) -> None:
        """Forget every document, chunk (staged or listed) and keyword term, in one transaction."""
        with self._write() as db:
            db.execute("DELETE FROM staged_chunks")
            _unlist(db, None)
            db.execute("DELETE FROM documents")
            self._changed(db)

    def _changed(self, db: sqlite3.Connection) -> None:
        """Mark a change of the listed chunks (inside the transaction that made it)."""
        generation = time.time_ns()
        _put_meta(db, "generation", {"n": generation})
        _put_meta(db, "keyword", {**analysis(), "generation": generation})

    # the keyword index ------------------------------------------------------
    def _ensure_keyword_index(self) -> None:
        """Fill the keyword index from the chunks when it is not in step with them.

        That is: a catalog written before the keyword index existed (or by a
        version without it: the generation it recorded is not the catalog's), or
        one analysed another way (``index.terms.analysis``). One transaction.
        """
        def in_step(db) -> bool:
            state = _meta(db, "keyword") or {}
            generation = (_meta(db, "generation") or {}).get("n", 0)
            return state == {**analysis(), "generation": generation}

        if in_step(self._db):
            return
        with self._write() as db:
            if in_step(db):  # another process filled it meanwhile
                return
            db.execute("INSERT INTO keyword (keyword) VALUES ('delete-all')")
            db.execute("DELETE FROM keyword_rows")
            _list_keywords(db, None)
            generation = (_meta(db, "generation") or {}).get("n", 0)
            _put_meta(db, "keyword", {**analysis(), "generation": generation})

    def keyword_search(self, query: str, n: int,
                       doc_ids: list[str] | None = None) -> list[tuple[Chunk, float]]:
        """The ``n`` chunks whose terms best match ``query`` by FTS5's BM25, best first.

        The query is analysed like the chunks (``index.terms``); a chunk matches when
        it holds any of its terms. Terms held by more than ``COMMON_TERM_SHARE`` of
        the chunks are left out (unless all are that common).

        Args:
            query: the question.
            n: how many chunks at most.
            doc_ids: only chunks of these documents (ranked among all chunks' statistics).

        Returns:
            (chunk, score) pairs; a higher score is a better match.
        """
        wanted = sorted(set(terms(query)))
        if not wanted or n <= 0:
            return []
        with self.snapshot():
            count, frequency = self.term_stats(wanted)
            present = [t for t in wanted if frequency[t]]
            kept = [t for t in present if frequency[t] <= COMMON_TERM_SHARE * count]
            kept = kept or present
            if not kept:
                return []
            match = " OR ".join(f'"{t}"' for t in kept)  # quoted: never read as FTS5 syntax
            where, args = "", [match]
            if doc_ids is not None:
                if not doc_ids:
                    return []
                where = f"AND k.doc_id IN ({','.join('?' * len(doc_ids))})"
                args += list(doc_ids)
            rows = self._db.execute(
                f"SELECT {_JOINED_COLUMNS}, -keyword.rank FROM keyword "
                "JOIN keyword_rows k ON k.row = keyword.rowid JOIN chunks c ON c.chunk_id = k.chunk_id "
                f"WHERE keyword MATCH ? {where} ORDER BY keyword.rank LIMIT ?",
                [*args, n],
            ).fetchall()
        return [(Chunk(*row[:-1]), row[-1]) for row in rows]

    def term_stats(self, terms: list[str]) -> tuple[int, dict[str, int]]:
        """How many chunks are listed, and how many of them hold each term.

        Args:
            terms: analysed terms, as ``index.terms.terms`` returns them.

        Returns:
            ``(chunk_count, {term: chunks holding it})``; unknown terms map to 0.
            Costs time in proportion to the chunks holding each term (about 4 ms
            for a term in all of 100k chunks).
        """
        unique = sorted(set(terms))
        with self.snapshot():
            count = self._db.execute("SELECT COUNT(*) FROM keyword_rows").fetchone()[0]
            found: dict[str, int] = {}
            for i in range(0, len(unique), 500):
                part = unique[i : i + 500]
                found.update(self._db.execute(
                    f"SELECT term, doc FROM temp.keyword_vocab WHERE term IN ({','.join('?' * len(part))})",
                    part,
                ).fetchall())
        return count, {t: found.get(t, 0) for t in unique}

    # chunks ---------------------------------------------------------------
    def chunk_ids(self, doc_id: str | None = None) -> set[str]:
        """Ids of all chunks, or of one document's."""
        if doc_id is None:
            return {row[0] for row in self._db.execute("SELECT chunk_id FROM chunks")}
        return {r[0] for r in self._db.execute("SELECT chunk_id FROM chunks WHERE doc_id=?", (doc_id,))}

    def count_chunks(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]

    def chunks(self, chunk_ids: list[str] | None = None) -> list[Chunk]:
        """Chunks by id (in the given order, unknown ids dropped), or all chunks."""
        sql = f"SELECT {_COLUMNS} FROM chunks"
        if chunk_ids is None:
            return [Chunk(*row) for row in self._db.execute(sql + " ORDER BY doc_id, n")]
        found: dict[str, Chunk] = {}
        with self.snapshot():
            for i in range(0, len(chunk_ids), 500):
                part = chunk_ids[i : i + 500]
                marks = ",".join("?" * len(part))
                for row in self._db.execute(f"{sql} WHERE chunk_id IN ({marks})", part):
                    found[row[0]] = Chunk(*row)
        return [found[c] for c in chunk_ids if c in found]


class _Connection:
    """Holds one thread's connection: ``close`` finds it through a weak reference, and it
    closes the connection when its thread ends (a connection alone lingers until the
    garbage collector finds it: it is in a reference cycle with its statement cache)."""

    __slots__ = ("db", "__weakref__")

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __del__(self) -> None:
        self.db.close()


def _meta(db: sqlite3.Connection, key: str) -> dict | None:
    row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return json.loads(row[0]) if row else None


def _put_meta(db: sqlite3.Connection, key: str, value: dict) -> None:
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))


def _unlist(db: sqlite3.Connection, doc_id: str | None) -> None:
    """Delete one document's listed chunks (or all) and their keyword terms.

    A row of a contentless FTS5 table is deleted by giving the terms it was indexed
    with; they are analysed again from the chunk's text (``_ensure_keyword_index``
    makes sure the analysis is the one that indexed them).
    """
    if doc_id is None:
        db.execute("INSERT INTO keyword (keyword) VALUES ('delete-all')")
        db.execute("DELETE FROM keyword_rows")
        db.execute("DELETE FROM chunks")
        return
    db.execute(
        "INSERT INTO keyword (keyword, rowid, terms) SELECT 'delete', k.row, analysed(c.text) "
        "FROM keyword_rows k JOIN chunks c ON c.chunk_id = k.chunk_id WHERE k.doc_id=?",
        (doc_id,),
    )
    db.execute("DELETE FROM keyword_rows WHERE doc_id=?", (doc_id,))
    db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))


def _list_keywords(db: sqlite3.Connection, doc_id: str | None) -> None:
    """Add the terms of one document's listed chunks (or of all) to the keyword index."""
    if doc_id is None:
        db.execute("INSERT INTO keyword_rows (chunk_id, doc_id) SELECT chunk_id, doc_id FROM chunks "
                   "ORDER BY doc_id, n")
        select, args = "", ()
    else:
        db.execute("INSERT INTO keyword_rows (chunk_id, doc_id) SELECT chunk_id, doc_id FROM chunks "
                   "WHERE doc_id=? ORDER BY n", (doc_id,))
        select, args = "WHERE k.doc_id=?", (doc_id,)
    db.execute(
        "INSERT INTO keyword (rowid, terms) SELECT k.row, analysed(c.text) "
        f"FROM keyword_rows k JOIN chunks c ON c.chunk_id = k.chunk_id {select}",
        args,
    )
