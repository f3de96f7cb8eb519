"""Hybrid retrieval: dense (Chroma) and BM25 (the catalog's keyword index), fused by reciprocal rank.

Fused score of a chunk = DENSE_WEIGHT / (60 + dense rank) + BM25_WEIGHT / (60 + BM25 rank), ranks
from 1 among each side's top ``CANDIDATES``; a chunk missing from one ranking gets nothing from it.
Both sides see only the chunks the catalog lists, read in one snapshot, so they agree and a document
swapped meanwhile is seen whole. The keyword side is the catalog's keyword index (``index.catalog``:
SQLite FTS5, or postings in PostgreSQL) over the terms of ``index.text.terms`` (re-exported here as ``terms`` and ``STOPWORDS``).
More: docs/design.md ("Retrieval"), docs/keyword-index.md, docs/api.md (the score's range).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from index.catalog import Chunk
from index.index import Index
from index.text.terms import STOPWORDS, terms

__all__ = ["BM25_WEIGHT", "CANDIDATES", "DENSE_WEIGHT", "RRF_K", "STOPWORDS", "Hit", "Retriever", "terms"]

RRF_K = 60
CANDIDATES = 10
DENSE_WEIGHT = 1.0
BM25_WEIGHT = 1.0  # both sides count equally: tuned on SQuAD dev + Debian Reference dev (docs/design.md)


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score and the dense similarity (cosine) behind it."""

    chunk: Chunk
    score: float
    similarity: float | None


class Retriever:
    """Dense + BM25 retrieval over one index (nothing is held in memory between questions)."""

    def __init__(self, index: Index, candidates: int = CANDIDATES):
        self.index = index
        self.candidates = candidates
        self._last_query: tuple[str, list[float]] | None = None

    def query_vector(self, query: str) -> list[float]:
        """The embedding of ``query``; the last one is kept, since the evidence check asks
        for the vector of the question just searched."""
        last = self._last_query
        if last is not None and last[0] == query:
            return last[1]
        vector = self.index.embedder.embed([query])[0]
        self._last_query = (query, vector)
        return vector

    def warm_up(self) -> None:
        """Load the stemmer and read the keyword index once, so the first question is quick."""
        self.index.catalog.keyword_search("warm up", 1)

    def keyword_search(self, query: str, n: int,
                       doc_ids: list[str] | None = None) -> list[tuple[Chunk, float]]:
        """The BM25 side alone: ``n`` (chunk, score) pairs, best first."""
        return self.index.catalog.keyword_search(query, n, doc_ids)

    def search(self, query: str, k: int, doc_ids: list[str] | None = None) -> list[Hit]:
        """The ``k`` best chunks for ``query``, optionally only from ``doc_ids``.

        Args:
            query: the question (or rewritten question).
            k: how many passages to return.
            doc_ids: restrict both retrievers to these documents.

        Returns:
            Hits, best first.
        """
        n = max(self.candidates, k)
        vector = self.query_vector(query)
        dense = self.index.store.query(vector, n, doc_ids=doc_ids)
        similarity = dict(dense)
        catalog = self.index.catalog
        with catalog.snapshot():  # both sides see the same version of every document
            dense_chunks = catalog.chunks([cid for cid, _ in dense])
            sparse = catalog.keyword_search(query, n, doc_ids)
        fused: dict[str, float] = defaultdict(float)
        by_id: dict[str, Chunk] = {}
        for weight, ranking in ((DENSE_WEIGHT, dense_chunks), (BM25_WEIGHT, [c for c, _ in sparse])):
            for rank, chunk in enumerate(ranking, 1):
                fused[chunk.chunk_id] += weight / (RRF_K + rank)
                by_id[chunk.chunk_id] = chunk
        order = sorted(fused, key=lambda cid: (-fused[cid], cid))[:k]
        missing = [cid for cid in order if cid not in similarity]
        if missing:  # BM25-only hits: their dense similarity (for the evidence check) from stored vectors
            stored = self.index.store.vectors(missing)
            unstored = [c for c in missing if c not in stored]
            stored.update(zip(unstored, self.index.embedder.embed([by_id[c].text for c in unstored])))
            for cid in missing:
                similarity[cid] = sum(a * b for a, b in zip(vector, stored[cid]))
        return [Hit(by_id[cid], fused[cid], similarity.get(cid)) for cid in order]
