"""The catalog: which documents are indexed, their chunks, sections and settings (SQLite).

The catalog is the index's source of truth: a document's chunks are staged while its vectors
are written and listed in one transaction when it is whole, together with their keyword terms
(``index.keywords``). Each thread has its own connection; ``snapshot()`` groups reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from index import keywords as sqlite_keywords
from index.errors import IndexBusy
from index.keywords import CANDIDATE_POOL, candidate_terms, keyword_totals, put_keyword_state
from index.schema import SCHEMA, read_meta, write_meta, write_transaction
from index.text.terms import bm25, terms

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
    author: str | None = None
    date: str | None = None

    def chunk_prefix(self) -> str:
        """Every chunk id of this version of the document starts with this (id and content hash)."""
        return f"{self.doc_id}-{self.hash[:12]}-"


@dataclass(frozen=True)
class SectionRow:
    """A structural span of a document: ``kind`` is heading, term, code, row, title, author or date."""

    doc_id: str
    start: int
    end: int
    kind: str
    level: int
    text: str


_DOC_COLUMNS = "doc_id, path, source, title, hash, size, mtime, chunks, indexed_at, author, date"


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
    transactions; ``snapshot()`` groups reads. ``index.postgres.catalog.PostgresCatalog`` is the
    same catalog in PostgreSQL: it shares every method here but the connections, the lock and
    the keyword index (``keywords``, a module of the same functions as ``index.keywords``).
    """

    keywords = sqlite_keywords  # the keyword index's implementation
    _BEGIN_SNAPSHOT = "BEGIN"  # deferred: the snapshot is taken at the first read

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._start_connections()
        db = self._db
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(documents)")}
        for name in ("author", "date"):  # catalogs written before these existed
            if name not in columns:
                db.execute(f"ALTER TABLE documents ADD COLUMN {name} TEXT")
        self._ensure_keyword_index()  # creates the keyword index, or fills it again when needed

    @property
    def where(self) -> str:
        """Where the catalog is, as messages name it."""
        return str(self.path.parent)

    def vector_collection(self, shared: bool) -> str:
        """The name of the Chroma collection holding this index's vectors: one per index folder,
        named after its path when the Chroma server is ``shared`` by several indexes."""
        digest = hashlib.sha256(str(self.path.parent.resolve()).encode()).hexdigest()[:12]
        return f"chunks-{digest}" if shared else "chunks"

    def writer_lock(self, timeout: float = 0):
        """The one-writer lock (``release()`` it); raises IndexBusy when not acquired within
        ``timeout`` seconds."""
        lock = FileLock(str(self.path.parent / "write.lock"))
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise IndexBusy(
                f"another process is writing to the index at {self.where}; wait for it to finish "
                "(or pass --wait SECONDS to wait for it)"
            ) from None
        return lock

    # connections ------------------------------------------------------------
    def _start_connections(self) -> None:
        self._local = threading.local()
        self._open: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._open_lock = threading.Lock()

    def _connect(self):
        """A new connection for this thread."""
        db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None,
                             check_same_thread=False)  # only ``close`` uses it from another thread
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.keyword_vocab "
                   "USING fts5vocab(main, keyword, 'row')")
        return db

    def _usable(self, db) -> bool:
        """Whether a thread's connection still works (a server's may have dropped)."""
        return True

    @property
    def _db(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        holder = getattr(self._local, "holder", None)
        if holder is None or not self._usable(holder.db):
            holder = self._local.holder = _Connection(self._connect())
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

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One write transaction on this thread's connection (rolled back on an exception)."""
        return write_transaction(self._db)

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
        db.execute(self._BEGIN_SNAPSHOT)
        try:
            yield
        finally:
            db.execute("COMMIT")  # nothing was written: this only ends the snapshot

    # settings -------------------------------------------------------------
    def get_meta(self, key: str) -> dict | None:
        return read_meta(self._db, key)

    def set_meta(self, key: str, value: dict) -> None:
        with self._write() as db:
            write_meta(db, key, value)

    def generation(self) -> int:
        """A number that changes whenever the set of indexed chunks changes."""
        value = self.get_meta("generation")
        return int(value["n"]) if value else 0

    # documents ------------------------------------------------------------
    def documents(self) -> list[Document]:
        rows = self._db.execute(f"SELECT {_DOC_COLUMNS} FROM documents ORDER BY source").fetchall()
        return [Document(*row) for row in rows]

    def document_by_path(self, path: str) -> Document | None:
        row = self._db.execute(f"SELECT {_DOC_COLUMNS} FROM documents WHERE path=?", (path,)).fetchone()
        return Document(*row) if row else None

    def stage_chunks(self, chunks: list[Chunk]) -> None:
        """Write chunks of a document being indexed; invisible until ``commit_document``."""
        with self._write() as db:
            db.executemany(
                f"INSERT INTO staged_chunks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (chunk_id) "
                'DO UPDATE SET doc_id=excluded.doc_id, n=excluded.n, start=excluded.start, "end"=excluded."end", '
                "page=excluded.page, text=excluded.text",
                [(c.chunk_id, c.doc_id, c.n, c.start, c.end, c.page, c.text) for c in chunks],
            )

    def drop_staged(self, doc_id: str | None = None) -> list[str]:
        """Forget staged chunks (of one document, or all); returns their ids."""
        where, args = ("WHERE doc_id=?", (doc_id,)) if doc_id else ("", ())
        with self._write() as db:
            ids = [r[0] for r in db.execute(f"SELECT chunk_id FROM staged_chunks {where}", args)]
            db.execute(f"DELETE FROM staged_chunks {where}", args)
        return ids

    def commit_document(self, doc: Document, sections: list[SectionRow] = ()) -> None:
        """Replace a document, its chunks and its sections by the new ones, in one transaction.

        The keyword index changes in the same transaction: the new chunks' terms
        become searchable exactly when the chunks are listed.
        """
        with self._write() as db:
            removed = self.keywords.unlist_chunks(db, doc.doc_id)
            db.execute("DELETE FROM documents WHERE doc_id=? OR path=?", (doc.doc_id, doc.path))
            db.execute(
                f"INSERT INTO documents ({_DOC_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (doc.doc_id, doc.path, doc.source, doc.title, doc.hash, doc.size, doc.mtime,
                 doc.chunks, doc.indexed_at, doc.author, doc.date),
            )
            db.executemany('INSERT INTO sections (doc_id, start, "end", kind, level, text) '
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           [(doc.doc_id, x.start, x.end, x.kind, x.level, x.text) for x in sections])
            db.execute(
                f"INSERT INTO chunks ({_COLUMNS}) SELECT {_COLUMNS} FROM staged_chunks WHERE doc_id=?",
                (doc.doc_id,),
            )
            db.execute("DELETE FROM staged_chunks WHERE doc_id=?", (doc.doc_id,))
            added = self.keywords.list_keywords(db, doc.doc_id)
            self._changed(db, added[0] - removed[0], added[1] - removed[1])

    def sections(self, doc_id: str, start: int = 0, end: int | None = None,
                 kinds: tuple[str, ...] | None = None) -> list[SectionRow]:
        """A document's sections overlapping ``[start, end)`` (the whole document by default),
        and the last heading of each level and the last term before ``start``: what a
        passage sits under. In document order."""
        end = (1 << 62) if end is None else end
        cols = 'doc_id, start, "end", kind, level, text'
        db = self._db
        rows = db.execute(f'SELECT {cols} FROM sections WHERE doc_id=? AND start<? AND "end">? '
                          "ORDER BY start", (doc_id, end, start)).fetchall()
        before = db.execute(f"SELECT {cols} FROM sections WHERE doc_id=? AND start<? AND kind IN "
                            "('heading', 'term') ORDER BY start DESC LIMIT 24", (doc_id, start)).fetchall()
        under, levels, term = [], set(), False
        for row in before:  # nearest first: one heading per level above the last, one term
            kind, level = row[3], row[4]
            if kind == "term" and not term and not levels:
                term = True
                under.append(row)
            elif kind == "heading" and level not in levels and all(level < x for x in levels):
                levels.add(level)
                under.append(row)
        found = [SectionRow(*r) for r in sorted(set(under)) + rows]
        found.sort(key=lambda x: (x.start, x.end))
        return [x for x in found if kinds is None or x.kind in kinds]

    def touch_document(self, doc_id: str, mtime: float) -> None:
        """Record a new mtime for a file whose content did not change."""
        with self._write() as db:
            db.execute("UPDATE documents SET mtime=? WHERE doc_id=?", (mtime, doc_id))

    def remove_document(self, doc_id: str) -> None:
        """Take a document, its chunks and their keyword terms out, in one transaction."""
        with self._write() as db:
            chunks, tokens = self.keywords.unlist_chunks(db, doc_id)
            db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
            db.execute("DELETE FROM sections WHERE doc_id=?", (doc_id,))
            self._changed(db, -chunks, -tokens)

    def clear(self) -> None:
        """Forget every document, chunk (staged or listed) and keyword term, in one transaction."""
        with self._write() as db:
            db.execute("DELETE FROM staged_chunks")
            chunks, tokens = self.keywords.unlist_chunks(db, None)
            db.execute("DELETE FROM documents")
            db.execute("DELETE FROM sections")
            self._changed(db, -chunks, -tokens)

    def _changed(self, db: sqlite3.Connection, chunks: int, tokens: int) -> None:
        """Record a change of the listed chunks, inside the transaction that made it.

        ``chunks`` and ``tokens`` are what the keyword index gained (negative: lost).
        """
        chunks_now, tokens_now = keyword_totals(db)
        generation = time.time_ns()
        write_meta(db, "generation", {"n": generation})
        put_keyword_state(db, generation, chunks_now + chunks, tokens_now + tokens)

    # the keyword index ------------------------------------------------------
    def _ensure_keyword_index(self) -> None:
        """Fill the keyword index from the chunks when it is not in step with them
        (``index.keywords.keywords_in_step``). One transaction."""
        if self.keywords.keywords_in_step(self._db):
            return
        with self._write() as db:
            if self.keywords.keywords_in_step(db):  # another process filled it meanwhile
                return
            self.keywords.refill_keywords(db)

    def keyword_search(self, query: str, n: int,
                       doc_ids: list[str] | None = None) -> list[tuple[Chunk, float]]:
        """The ``n`` chunks that best match ``query`` by BM25, best first.

        The query is analysed like the chunks (``index.text.terms``). The keyword index picks
        the ``CANDIDATE_POOL`` chunks it ranks first among those holding any of the query's
        less common terms (``index.keywords.candidate_terms``; ``keywords.candidates``);
        ``index.text.terms.bm25`` scores them with every query term, from their stored terms.

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
            searched = candidate_terms(present, frequency, count)
            if not searched:
                return []
            tokens = keyword_totals(self._db)[1]
            average = tokens / count if count else 1.0
            rows = self.keywords.candidates(self._db, searched, max(n, CANDIDATE_POOL), doc_ids,
                                            (count, frequency, average))
        scored = []
        for *row, joined in rows:
            words = joined.split()
            counts = {t: words.count(t) for t in present}  # only the question's terms matter
            score = bm25(counts, len(words), present, frequency, count, average)
            scored.append((Chunk(*row), score))
        scored.sort(key=lambda cs: (-cs[1], cs[0].doc_id, cs[0].n))
        return scored[:n]

    def term_stats(self, terms: list[str]) -> tuple[int, dict[str, int]]:
        """How many chunks are listed, and how many of them hold each term.

        Args:
            terms: analysed terms, as ``index.text.terms.terms`` returns them.

        Returns:
            ``(chunk_count, {term: chunks holding it})``; unknown terms map to 0.
            Costs time in proportion to the chunks holding each term
            (docs/keyword-index.md).
        """
        unique = sorted(set(terms))
        found: dict[str, int] = {}
        with self.snapshot():
            count = keyword_totals(self._db)[0]
            for i in range(0, len(unique), 500):
                part = unique[i : i + 500]
                found.update(self.keywords.term_frequencies(self._db, part))
        return count, {t: found.get(t, 0) for t in unique}

    def common_terms(self, n: int) -> list[tuple[str, int]]:
        """The ``n`` terms held by the most chunks, with how many hold each (most first)."""
        with self.snapshot():
            return self.keywords.common_terms(self._db, n)

    def texts_with_term(self, term: str, n: int) -> list[str]:
        """The texts of up to ``n`` chunks holding the analysed ``term`` (any of them, unranked:
        a cheap look at how the documents spell it)."""
        with self.snapshot():
            return self.keywords.texts_with_term(self._db, term, n)

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
