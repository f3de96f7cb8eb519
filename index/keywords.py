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


def candidates(db: sqlite3.Connection, searched: list[str], limit: int, doc_ids: list[str] | None,
               stats: tuple) -> list[tuple]:
    """The ``limit`` chunks FTS5's ``bm25()`` ranks first among those holding any ``searched``
    term (of ``doc_ids`` only, when given): rows of the chunk's columns and its joined terms.
    ``stats`` (chunk count, frequencies, average length) is for implementations that score
    themselves; FTS5 keeps its own."""
    match = " OR ".join(f'"{t}"' for t in searched)  # quoted: never read as FTS5 syntax
    if doc_ids is None:  # SQLite sorting by bm25() is faster than FTS5's own ORDER BY rank
        best = "SELECT rowid AS r FROM keyword WHERE keyword MATCH ? ORDER BY bm25(keyword) LIMIT ?"
        args = [match]
    else:
        best = ("SELECT keyword.rowid AS r FROM keyword JOIN keyword_rows k ON k.row = keyword.rowid "
                f"WHERE keyword MATCH ? AND k.doc_id IN ({','.join('?' * len(doc_ids))}) "
                "ORDER BY keyword.rank LIMIT ?")
        args = [match, *doc_ids]
    return db.execute(
        'SELECT c.chunk_id, c.doc_id, c.n, c.start, c."end", c.page, c.text, k.terms '
        f"FROM ({best}) JOIN keyword_rows k ON k.row = r JOIN chunks c ON c.chunk_id = k.chunk_id",
        [*args, limit],
    ).fetchall()


def term_frequencies(db: sqlite3.Connection, terms: list[str]) -> list[tuple[str, int]]:
    """(term, chunks holding it) for those of ``terms`` the index holds."""
    return db.execute(f"SELECT term, doc FROM temp.keyword_vocab WHERE term IN ({','.join('?' * len(terms))})",
                      terms).fetchall()


def common_terms(db: sqlite3.Connection, n: int) -> list[tuple[str, int]]:
    """The ``n`` terms held by the most chunks, with how many hold each (most first)."""
    return db.execute("SELECT term, doc FROM temp.keyword_vocab ORDER BY doc DESC LIMIT ?", [n]).fetchall()


def texts_with_term(db: sqlite3.Connection, term: str, n: int) -> list[str]:
    """The texts of up to ``n`` chunks holding ``term`` (any of them, unranked)."""
    rows = db.execute(
        "SELECT c.text FROM (SELECT rowid AS r FROM keyword WHERE keyword MATCH ? LIMIT ?) "
        "JOIN keyword_rows k ON k.row = r JOIN chunks c ON c.chunk_id = k.chunk_id",
        [f'"{term}"', n],  # quoted: never read as FTS5 syntax
    ).fetchall()
    return [text for (text,) in rows]
