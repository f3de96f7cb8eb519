"""The catalog: which documents are indexed, their chunks, the keyword index and the settings (SQLite).

The catalog is the index's source of truth. A document's new chunks are first
written, batch by batch, to a staging table queries never read (`stage_chunks`);
they become visible in one SQLite transaction (`commit_document`), after all their
vectors are in Chroma. Staged rows a crashed run left are dropped by the next one;
any vector Chroma holds that the catalog does not list is an orphan from an
interrupted run, never returned and removed by the next ingest.

The keyword index is an SQLite FTS5 table in the same file, changed in the same
transactions as the chunks: a document's terms become searchable when it commits,
never while it is staged, and nothing is rebuilt in memory. FTS5 finds candidates,
which are scored with Okapi BM25 (``index.terms.bm25``) from the statistics the
catalog keeps. Design and measurements: docs/keyword-index.md.

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
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from index.terms import analysis, bm25, joined_terms, terms

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
# FTS5 finds this many candidates (by its own bm25()), which are then scored by ``index.terms.bm25``:
# on the Debian Reference (85 questions, HTML and PDF) the final top 10 were the same as scoring
# every chunk (docs/keyword-index.md).
CANDIDATE_POOL = 50
# Terms held by more than this share of the chunks do not select candidates (they still count in
# the score): each costs time in proportion to the chunks holding it, and FTS5's bm25() gives a
# term in half of them no weight anyway. Same top 10 as above with it.
COMMON_TERM_SHARE = 0.5
# How the keyword index is laid out; a catalog recording another layout is refilled when opened.
KEYWORD_FORMAT = 1


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
            removed = _unlist(db, doc.doc_id)
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
            added = _list_keywords(db, doc.doc_id)
            self._changed(db, added[0] - removed[0], added[1] - removed[1])

    def touch_document(self, doc_id: str, mtime: float) -> None:
        """Record a new mtime for a file whose content did not change."""
        with self._write() as db:
            db.execute("UPDATE documents SET mtime=? WHERE doc_id=?", (mtime, doc_id))

    def remove_document(self, doc_id: str) -> None:
        """Take a document, its chunks and their keyword terms out, in one transaction."""
        with self._write() as db:
            chunks, tokens = _unlist(db, doc_id)
            db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
            self._changed(db, -chunks, -tokens)

    def clear(self) -> None:
        """Forget every document, chunk (staged or listed) and keyword term, in one transaction."""
        with self._write() as db:
            db.execute("DELETE FROM staged_chunks")
            chunks, tokens = _unlist(db, None)
            db.execute("DELETE FROM documents")
            self._changed(db, -chunks, -tokens)

    def _changed(self, db: sqlite3.Connection, chunks: int, tokens: int) -> None:
        """Record a change of the listed chunks, inside the transaction that made it.

        ``chunks`` and ``tokens`` are what the keyword index gained (negative: lost).
        """
        chunks_now, tokens_now = _keyword_totals(db)
        generation = time.time_ns()
        _put_meta(db, "generation", {"n": generation})
        _put_keyword_state(db, generation, chunks_now + chunks, tokens_now + tokens)

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
            same = all(state.get(key) == value for key, value in analysis().items())
            return same and state.get("format") == KEYWORD_FORMAT and state.get("generation") == generation

        if in_step(self._db):
            return
        with self._write() as db:
            if in_step(db):  # another process filled it meanwhile
                return
            db.execute("INSERT INTO keyword (keyword) VALUES ('delete-all')")
            db.execute("DELETE FROM keyword_rows")
            chunks, tokens = _list_keywords(db, None)
            generation = (_meta(db, "generation") or {}).get("n", 0)
            _put_keyword_state(db, generation, chunks, tokens)

    def keyword_search(self, query: str, n: int,
                       doc_ids: list[str] | None = None) -> list[tuple[Chunk, float]]:
        """The ``n`` chunks that best match ``query`` by BM25, best first.

        The query is analysed like the chunks (``index.terms``). FTS5 picks the
        ``CANDIDATE_POOL`` chunks its ``bm25()`` ranks first among those holding any
        query term (terms in more than ``COMMON_TERM_SHARE`` of the chunks left out
        unless all are); ``index.terms.bm25`` scores them with every query term.

        Args:
            query: the question.
            n: how many chunks at most.
            doc_ids: only chunks of these documents (scored with all chunks' statistics).

        Returns:
            (chunk, score) pairs, best first; a higher score is a better match.
        """
        wanted = sorted(set(terms(query)))
        if not wanted or n <= 0 or (doc_ids is not None and not doc_ids):
            return []
        with self.snapshot():
            count, frequency = self.term_stats(wanted)
            present = [t for t in wanted if frequency[t]]
            searched = [t for t in present if frequency[t] <= COMMON_TERM_SHARE * count] or present
            if not searched:
                return []
            match = " OR ".join(f'"{t}"' for t in searched)  # quoted: never read as FTS5 syntax
            where, args = "", [match]
            if doc_ids is not None:
                where = f"AND k.doc_id IN ({','.join('?' * len(doc_ids))})"
                args += list(doc_ids)
            rows = self._db.execute(
                f"SELECT {_JOINED_COLUMNS} FROM keyword "
                "JOIN keyword_rows k ON k.row = keyword.rowid JOIN chunks c ON c.chunk_id = k.chunk_id "
                f"WHERE keyword MATCH ? {where} ORDER BY keyword.rank LIMIT ?",
                [*args, max(n, CANDIDATE_POOL)],
            ).fetchall()
            tokens = _keyword_totals(self._db)[1]
        average = tokens / count if count else 1.0
        scored = []
        for row in rows:
            chunk = Chunk(*row)
            counts = Counter(terms(chunk.text))
            scored.append((chunk, bm25(counts, sum(counts.values()), present, frequency, count, average)))
        scored.sort(key=lambda cs: (-cs[1], cs[0].doc_id, cs[0].n))
        return scored[:n]

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
        found: dict[str, int] = {}
        with self.snapshot():
            count = _keyword_totals(self._db)[0]
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


def _put_keyword_state(db: sqlite3.Connection, generation: int, chunks: int, tokens: int) -> None:
    """Record what the keyword index holds and how it was made (checked when a catalog opens)."""
    _put_meta(db, "keyword", {"format": KEYWORD_FORMAT, **analysis(), "generation": generation,
                              "chunks": chunks, "tokens": tokens})


def _keyword_totals(db: sqlite3.Connection) -> tuple[int, int]:
    """Chunks in the keyword index and their terms in all (for BM25's average length)."""
    state = _meta(db, "keyword") or {}
    return state.get("chunks", 0), state.get("tokens", 0)


def _unlist(db: sqlite3.Connection, doc_id: str | None) -> tuple[int, int]:
    """Delete one document's listed chunks (or all) and their keyword terms.

    A row of a contentless FTS5 table is deleted by giving the terms it was indexed
    with; they are analysed again from the chunk's text (``_ensure_keyword_index``
    makes sure the analysis is the one that indexed them).

    Returns:
        The chunks and terms taken out of the keyword index.
    """
    if doc_id is None:
        removed = _keyword_totals(db)
        db.execute("INSERT INTO keyword (keyword) VALUES ('delete-all')")
        db.execute("DELETE FROM keyword_rows")
        db.execute("DELETE FROM chunks")
        return removed
    chunks = tokens = 0
    rows = db.execute("SELECT k.row, c.text FROM keyword_rows k JOIN chunks c ON c.chunk_id = k.chunk_id "
                      "WHERE k.doc_id=?", (doc_id,))
    for row, text in rows:  # streamed: a document may have any number of chunks
        joined = joined_terms(text)
        db.execute("INSERT INTO keyword (keyword, rowid, terms) VALUES ('delete', ?, ?)", (row, joined))
        chunks, tokens = chunks + 1, tokens + _count(joined)
    db.execute("DELETE FROM keyword_rows WHERE doc_id=?", (doc_id,))
    db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
    return chunks, tokens


def _list_keywords(db: sqlite3.Connection, doc_id: str | None) -> tuple[int, int]:
    """Add the terms of one document's listed chunks (or of all) to the keyword index.

    Returns:
        The chunks and terms added.
    """
    if doc_id is None:
        rows = db.execute("SELECT chunk_id, doc_id, text FROM chunks ORDER BY doc_id, n")
    else:
        rows = db.execute("SELECT chunk_id, doc_id, text FROM chunks WHERE doc_id=? ORDER BY n", (doc_id,))
    chunks = tokens = 0
    for chunk_id, doc, text in rows:  # streamed: a document may have any number of chunks
        joined = joined_terms(text)
        row = db.execute("INSERT INTO keyword_rows (chunk_id, doc_id) VALUES (?, ?)",
                         (chunk_id, doc)).lastrowid
        db.execute("INSERT INTO keyword (rowid, terms) VALUES (?, ?)", (row, joined))
        chunks, tokens = chunks + 1, tokens + _count(joined)
    return chunks, tokens


def _count(joined: str) -> int:
    return joined.count(" ") + 1 if joined else 0
