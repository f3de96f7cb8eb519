"""The keyword index in PostgreSQL: the same functions as ``index.keywords`` (SQLite FTS5), over
postings kept in tables and BM25 computed in SQL.

    keyword_rows      each listed chunk's analysed terms (``index.text.terms``) and their number
    keyword_postings  (term, row): how often the term occurs in the chunk, and the chunk's length
    keyword_terms     how many chunks hold each term

The analysis is ours on both sides (PostgreSQL's own text search would stem differently).
Candidates are ranked by ``index.text.terms.bm25`` itself, computed in SQL over the postings of
the query's less common terms; the catalog then scores them with every query term, as it does
on SQLite (docs/deploy.md has the measurements).
"""

from __future__ import annotations

from collections import Counter

from index.keywords import keyword_totals, keywords_in_step, put_keyword_state  # noqa: F401 (the same)
from index.schema import read_meta
from index.text.terms import B, K1, joined_terms

BATCH = 500  # chunks analysed and written at a time

__all__ = ["candidates", "common_terms", "keyword_totals", "keywords_in_step", "list_keywords",
           "put_keyword_state", "refill_keywords", "term_frequencies", "texts_with_term", "unlist_chunks"]


def refill_keywords(db) -> None:
    """Empty the keyword tables and fill them from the listed chunks (inside the caller's write
    transaction)."""
    _empty(db)
    chunks, tokens = list_keywords(db, None)
    generation = (read_meta(db, "generation") or {}).get("n", 0)
    put_keyword_state(db, generation, chunks, tokens)


def _empty(db) -> None:
    """Delete every keyword row (DELETE, not TRUNCATE: readers' snapshots stay whole and
    are not blocked by an exclusive lock)."""
    for table in ("keyword_postings", "keyword_rows", "keyword_terms"):
        db.execute(f"DELETE FROM {table}")


def unlist_chunks(db, doc_id: str | None) -> tuple[int, int]:
    """Delete one document's listed chunks (or all) and their keyword terms.

    Returns:
        The chunks and terms taken out of the keyword index.
    """
    if doc_id is None:
        removed = keyword_totals(db)
        _empty(db)
        db.execute("DELETE FROM chunks")
        return removed
    chunks, tokens = db.execute("SELECT COUNT(*), COALESCE(SUM(length), 0) FROM keyword_rows WHERE doc_id=?",
                                (doc_id,)).fetchone()
    if chunks:
        db.execute("UPDATE keyword_terms t SET df = t.df - d.n FROM (SELECT p.term, COUNT(*) AS n "
                   "FROM keyword_postings p JOIN keyword_rows r ON r.row = p.row WHERE r.doc_id = ? "
                   "GROUP BY p.term) d WHERE t.term = d.term", (doc_id,))
        db.execute("DELETE FROM keyword_postings p USING keyword_rows r WHERE r.row = p.row AND r.doc_id = ?",
                   (doc_id,))
        db.execute("DELETE FROM keyword_rows WHERE doc_id=?", (doc_id,))
        db.execute("DELETE FROM keyword_terms WHERE df <= 0 AND term IN (SELECT term FROM keyword_terms "
                   "WHERE df <= 0 LIMIT 10000)")  # the terms no chunk holds any more
    db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
    return int(chunks), int(tokens)


def list_keywords(db, doc_id: str | None) -> tuple[int, int]:
    """Add the terms of one document's listed chunks (or of all) to the keyword index.

    Returns:
        The chunks and terms added.
    """
    if doc_id is None:
        docs = [d for (d,) in db.execute("SELECT DISTINCT doc_id FROM chunks ORDER BY doc_id").fetchall()]
    else:
        docs = [doc_id]
    chunks = tokens = 0
    for doc in docs:  # a batch of chunks at a time: a document may have any number of them
        after = -1
        while True:
            rows = db.execute("SELECT chunk_id, text, n FROM chunks WHERE doc_id=? AND n>? ORDER BY n LIMIT ?",
                              (doc, after, BATCH)).fetchall()
            if not rows:
                break
            after = rows[-1][2]
            added = _list_batch(db, doc, [(chunk_id, joined_terms(text)) for chunk_id, text, _ in rows])
            chunks, tokens = chunks + len(rows), tokens + added
    return chunks, tokens


def _list_batch(db, doc: str, analysed: list[tuple[str, str]]) -> int:
    """Add chunks' rows, postings and term counts; returns their number of terms."""
    lengths = [len(joined.split()) for _, joined in analysed]
    ids = db.execute(
        "INSERT INTO keyword_rows (chunk_id, doc_id, length, terms) "
        "SELECT c, ?, l, t FROM unnest(?::text[], ?::int[], ?::text[]) AS x(c, l, t) RETURNING chunk_id, row",
        (doc, [c for c, _ in analysed], lengths, [j for _, j in analysed])).fetchall()
    row_of = dict(ids)
    postings, held = [], Counter()
    for (chunk_id, joined), length in zip(analysed, lengths):
        row = row_of[chunk_id]
        for term, tf in Counter(joined.split()).items():
            postings.append((term, row, tf, length))
            held[term] += 1
    if postings:
        db.execute("INSERT INTO keyword_postings (term, row, tf, length) "
                   "SELECT * FROM unnest(?::text[], ?::bigint[], ?::int[], ?::int[])",
                   tuple(map(list, zip(*postings))))
        db.execute("INSERT INTO keyword_terms (term, df) SELECT * FROM unnest(?::text[], ?::int[]) "
                   "ON CONFLICT (term) DO UPDATE SET df = keyword_terms.df + excluded.df",
                   (list(held), list(held.values())))
    return sum(lengths)


def candidates(db, searched: list[str], limit: int, doc_ids: list[str] | None, stats: tuple) -> list[tuple]:
    """The ``limit`` chunks that ``index.text.terms.bm25`` ranks first over the ``searched`` terms
    (of ``doc_ids`` only, when given): rows of the chunk's columns and its joined terms.

    Args:
        stats: (chunks listed, {term: chunks holding it}, mean chunk length).
    """
    import math

    count, frequency, average = stats
    idf = [math.log(1 + (count - frequency[t] + 0.5) / (frequency[t] + 0.5)) for t in searched]
    only = "JOIN keyword_rows o ON o.row = p.row AND o.doc_id = ANY(?::text[])" if doc_ids is not None else ""
    best = ("SELECT p.row, SUM(q.idf * p.tf * ? / (p.tf + ? * (1 - ? + ? * p.length / ?))) AS score "
            "FROM unnest(?::text[], ?::float8[]) AS q(term, idf) "
            f"JOIN keyword_postings p ON p.term = q.term {only} "
            "GROUP BY p.row ORDER BY score DESC, p.row LIMIT ?")
    args = [K1 + 1, K1, B, B, float(average or 1.0), searched, idf, *([list(doc_ids)] if doc_ids is not None else []),
            limit]
    return db.execute(
        'SELECT c.chunk_id, c.doc_id, c.n, c.start, c."end", c.page, c.text, k.terms '
        f"FROM ({best}) b JOIN keyword_rows k ON k.row = b.row JOIN chunks c ON c.chunk_id = k.chunk_id "
        "ORDER BY b.score DESC, b.row", args).fetchall()


def term_frequencies(db, terms: list[str]) -> list[tuple[str, int]]:
    """(term, chunks holding it) for those of ``terms`` the index holds."""
    return db.execute("SELECT term, df FROM keyword_terms WHERE term = ANY(?::text[]) AND df > 0",
                      (list(terms),)).fetchall()


def common_terms(db, n: int) -> list[tuple[str, int]]:
    """The ``n`` terms held by the most chunks, with how many hold each (most first)."""
    return db.execute("SELECT term, df FROM keyword_terms WHERE df > 0 ORDER BY df DESC, term LIMIT ?",
                      (n,)).fetchall()


def texts_with_term(db, term: str, n: int) -> list[str]:
    """The texts of up to ``n`` chunks holding ``term`` (any of them, unranked)."""
    rows = db.execute("SELECT c.text FROM keyword_postings p JOIN keyword_rows k ON k.row = p.row "
                      "JOIN chunks c ON c.chunk_id = k.chunk_id WHERE p.term = ? LIMIT ?", (term, n)).fetchall()
    return [text for (text,) in rows]
