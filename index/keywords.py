"""The keyword index inside the catalog: each listed chunk's analysed terms, an FTS5 index over
them, and the totals BM25 needs. Every change happens inside the catalog transaction that lists
or unlists the chunks, so a document's terms are searchable exactly when its chunks are listed.
Design and measurements: docs/keyword-index.md.
"""

from __future__ import annotations

import sqlite3

from index.schema import read_meta, write_meta
from index.text.terms import analysis, joined_terms

# The keyword index: each listed chunk's analysed terms (index/text/terms.py) joined by spaces, in
# keyword_rows, and an FTS5 index over them that keeps no copy (external content). Its tokenizer
# splits on spaces and ASCII punctuation only, which our terms never contain: FTS5 sees our terms.
# Created, or dropped and created again, by ``refill_keywords``.
KEYWORD_SCHEMA = [
    """CREATE TABLE keyword_rows (
        row INTEGER PRIMARY KEY,  -- the FTS5 rowid (not chunks' implicit rowid: VACUUM may renumber it)
        chunk_id TEXT NOT NULL,
        doc_id TEXT NOT NULL,
        terms TEXT NOT NULL
    )""",
    "CREATE INDEX keyword_rows_doc ON keyword_rows (doc_id)",
    """CREATE VIRTUAL TABLE keyword USING fts5(
        terms, content='keyword_rows', content_rowid='row', tokenize="ascii tokenchars '_'"
    )""",
]
# FTS5 finds this many candidates (by its own bm25()), which are then scored by
# ``index.text.terms.bm25``: enough that the final top 10 are those of scoring every chunk
# (docs/keyword-index.md).
CANDIDATE_POOL = 50
# Terms held by more than this share of the chunks do not select candidates (unless all the
# question's terms are that common); they still count in the score. Each term costs time in
# proportion to the chunks holding it, and FTS5's bm25() gives a term in half of them no weight.
COMMON_TERM_SHARE = 0.5
# How the keyword index is laid out; a catalog recording another layout is refilled when opened.
KEYWORD_FORMAT = 2


def keywords_in_step(db: sqlite3.Connection) -> bool:
    """Whether the keyword index holds the listed chunks' terms as this code makes them.

    Not so for a catalog written before the keyword index existed (or by a version without
    it: the generation it recorded is not the catalog's), or one analysed another way
    (``index.text.terms.analysis``).
    """
    state = read_meta(db, "keyword") or {}
    generation = (read_meta(db, "generation") or {}).get("n", 0)
    same = all(state.get(key) == value for key, value in analysis().items())
    return same and state.get("format") == KEYWORD_FORMAT and state.get("generation") == generation


def refill_keywords(db: sqlite3.Connection) -> None:
    """Drop the keyword tables, create them again and fill them from the listed chunks
    (inside the caller's write transaction)."""
    db.execute("DROP TABLE IF EXISTS keyword")
    db.execute("DROP TABLE IF EXISTS keyword_rows")
    for statement in KEYWORD_SCHEMA:
        db.execute(statement)
    chunks, tokens = list_keywords(db, None)
    generation = (read_meta(db, "generation") or {}).get("n", 0)
    put_keyword_state(db, generation, chunks, tokens)


def put_keyword_state(db: sqlite3.Connection, generation: int, chunks: int, tokens: int) -> None:
    """Record what the keyword index holds and how it was made (checked when a catalog opens)."""
    write_meta(db, "keyword", {"format": KEYWORD_FORMAT, **analysis(), "generation": generation,
                               "chunks": chunks, "tokens": tokens})


def keyword_totals(db: sqlite3.Connection) -> tuple[int, int]:
    """Chunks in the keyword index and their terms in all (for BM25's average length)."""
    state = read_meta(db, "keyword") or {}
    return state.get("chunks", 0), state.get("tokens", 0)


def candidate_terms(present: list[str], frequency: dict[str, int], count: int) -> list[str]:
    """The terms FTS5 searches for candidates: those in at most ``COMMON_TERM_SHARE`` of the chunks."""
    return [t for t in present if frequency[t] <= COMMON_TERM_SHARE * count] or present


_TERM_COUNT = "length(terms) - length(replace(terms, ' ', '')) + (terms <> '')"


def unlist_chunks(db: sqlite3.Connection, doc_id: str | None) -> tuple[int, int]:
    """Delete one document's listed chunks (or all) and their keyword terms.

    Returns:
        The chunks and terms taken out of the keyword index.
    """
    if doc_id is None:
        removed = keyword_totals(db)
        db.execute("INSERT INTO keyword (keyword) VALUES ('delete-all')")
        db.execute("DELETE FROM keyword_rows")
        db.execute("DELETE FROM chunks")
        return removed
    chunks, tokens = db.execute(f"SELECT COUNT(*), COALESCE(SUM({_TERM_COUNT}), 0) FROM keyword_rows "
                                "WHERE doc_id=?", (doc_id,)).fetchone()
    # an external-content FTS5 row is deleted by giving it the terms it was indexed with
    db.execute("INSERT INTO keyword (keyword, rowid, terms) SELECT 'delete', row, terms FROM keyword_rows "
               "WHERE doc_id=?", (doc_id,))
    db.execute("DELETE FROM keyword_rows WHERE doc_id=?", (doc_id,))
    db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
    return chunks, tokens


def list_keywords(db: sqlite3.Connection, doc_id: str | None) -> tuple[int, int]:
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
        row = db.execute("INSERT INTO keyword_rows (chunk_id, doc_id, terms) VALUES (?, ?, ?)",
                         (chunk_id, doc, joined)).lastrowid
        db.execute("INSERT INTO keyword (rowid, terms) VALUES (?, ?)", (row, joined))
        chunks, tokens = chunks + 1, tokens + (joined.count(" ") + 1 if joined else 0)
    return chunks, tokens
