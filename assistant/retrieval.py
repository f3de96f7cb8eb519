"""Hybrid retrieval: dense (Chroma) and BM25 (over the catalog), fused by reciprocal rank.

Both sides only ever see chunks the catalog lists, so they agree with each other
and never return a passage twice, even while an ingest is running.

Fused score of a chunk = DENSE_WEIGHT / (60 + dense rank) + BM25_WEIGHT / (60 + BM25
rank), ranks from 1 among each side's top ``CANDIDATES``; a chunk missing from one
ranking gets nothing from it. Higher is better; with the weights 1 and 3 the maximum
is 4/61 ~= 0.0656 (first in both).
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass

from index.catalog import Chunk
from index.sync import Index

RRF_K = 60
CANDIDATES = 10
DENSE_WEIGHT = 1.0
BM25_WEIGHT = 3.0  # tuned on the Debian Reference dev split (README, "Evaluation")

STOPWORDS = frozenset(
    """a an the and or but if of at by for with about against between into through during before
    after above below to from up down in out on off over under again further then once here there
    when where why how all any both each few more most other some such no nor not only own same so
    than too very s t can will just don should now is are was were be been being have has had
    having do does did doing i me my we our you your he him his she her it its they them their
    what which who whom this that these those am would could also may might must shall""".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)


@functools.lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _porter().stem(word)


@functools.lru_cache(maxsize=1)
def _porter():
    from nltk.stem import PorterStemmer  # pure Python, needs no NLTK data

    return PorterStemmer()


def terms(text: str) -> list[str]:
    """Lower-cased, Porter-stemmed content words (stopwords dropped)."""
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


class BM25:
    """Okapi BM25 over chunk texts with an inverted index (k1=1.2, b=0.75)."""

    def __init__(self, chunks: list[Chunk], k1: float = 1.2, b: float = 0.75):
        self.chunks = chunks
        self.k1, self.b = k1, b
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.lengths: list[int] = []
        for i, chunk in enumerate(chunks):
            counts = Counter(terms(chunk.text))
            self.lengths.append(sum(counts.values()))
            for term, tf in counts.items():
                self.postings[term].append((i, tf))
        self.avg_len = (sum(self.lengths) / len(self.lengths)) if self.lengths else 1.0

    def search(self, query: str, n: int, doc_ids: set[str] | None = None) -> list[tuple[Chunk, float]]:
        scores: dict[int, float] = defaultdict(float)
        total = len(self.chunks)
        for term in set(terms(query)):
            plist = self.postings.get(term)
            if not plist:
                continue
            idf = math.log(1 + (total - len(plist) + 0.5) / (len(plist) + 0.5))
            for i, tf in plist:
                norm = tf + self.k1 * (1 - self.b + self.b * self.lengths[i] / self.avg_len)
                scores[i] += idf * tf * (self.k1 + 1) / norm
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        out = []
        for i, score in ranked:
            if doc_ids is None or self.chunks[i].doc_id in doc_ids:
                out.append((self.chunks[i], score))
                if len(out) == n:
                    break
        return out


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score and the dense similarity (cosine) behind it."""

    chunk: Chunk
    score: float
    similarity: float | None


class Retriever:
    """Dense + BM25 retrieval over one index; the BM25 side is rebuilt when the catalog changes."""

    def __init__(self, index: Index, candidates: int = CANDIDATES):
        self.index = index
        self.candidates = candidates
        self._bm25: BM25 | None = None
        self._generation: int | None = None
        self._lock = threading.Lock()

    def bm25(self) -> BM25:
        generation = self.index.catalog.generation()
        with self._lock:
            if self._bm25 is None or generation != self._generation:
                self._bm25 = BM25(self.index.catalog.chunks())
                self._generation = generation
            return self._bm25

    def search(self, query: str, k: int, doc_ids: list[str] | None = None) -> list[Hit]:
        """The ``k`` best chunks for ``query``, optionally only from ``doc_ids``.

        Args:
            query: the question (or rewritten question).
            k: how many passages to return.
            doc_ids: restrict both retrievers to these documents.

        Returns:
            Hits, best first.
        """
        allowed = set(doc_ids) if doc_ids is not None else None
        n = max(self.candidates, k)
        vector = self.index.embedder.embed([query])[0]
        dense = self.index.store.query(vector, n, doc_ids=doc_ids)
        similarity = dict(dense)
        dense_chunks = self.index.catalog.chunks([cid for cid, _ in dense])
        sparse = self.bm25().search(query, n, allowed)
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
