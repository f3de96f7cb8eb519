"""Text analysis and BM25 scoring for the keyword index: lower-cased words, stopwords dropped, stems.

Stems are Snowball's English stemmer (Porter2, the pure-Python ``snowballstemmer``). The same
``terms`` analyses a chunk when it is indexed and a question when it is asked, so both sides
agree. ``analysis()`` names the analysis; the catalog records it with the keyword index and
refills the index from the chunks when it differs, since other stems could not be found or deleted.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from typing import Mapping

STOPWORDS = frozenset(
    """a an the and or but if of at by for with about against between into through during before
    after above below to from up down in out on off over under again further then once here there
    when where why how all any both each few more most other some such no nor not only own same so
    than too very s t can will just don should now is are was were be been being have has had
    having do does did doing i me my we our you your he him his she her it its they them their
    what which who whom this that these those am would could also may might must shall""".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)
# Bump whenever terms() would return something else for the same text: every keyword index is
# then refilled from its chunks when its catalog is next opened.
ANALYSIS_VERSION = 2
K1 = 1.2  # BM25 term-frequency saturation
B = 0.75  # BM25 length normalisation


_LOCAL = threading.local()


@functools.lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


def _stemmer():
    """This thread's stemmer: a Snowball stemmer keeps the word it works on in itself, so two
    threads sharing one get each other's letters (wrong stems, or an IndexError)."""
    stemmer = getattr(_LOCAL, "stemmer", None)
    if stemmer is None:
        import snowballstemmer

        stemmer = _LOCAL.stemmer = snowballstemmer.stemmer("english")
    return stemmer


def terms(text: str) -> list[str]:
    """Lower-cased, stemmed content words (stopwords dropped), in text order.

    Args:
        text: any text (a passage or a question).

    Returns:
        The terms, repeats kept: ``terms("The cats sat on mats")`` is ``["cat", "sat", "mat"]``.
    """
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def joined_terms(text: str) -> str:
    """The terms of ``text`` separated by single spaces: what the keyword index stores."""
    return " ".join(terms(text))


@functools.lru_cache(maxsize=1)
def analysis() -> dict:
    """What produced the stored terms; the keyword index is refilled when this changes."""
    from importlib.metadata import version

    return {"version": ANALYSIS_VERSION, "stemmer": f"snowballstemmer {version('snowballstemmer')} english"}


def bm25(counts: Mapping[str, int], length: int, query: list[str], frequency: dict[str, int],
         chunk_count: int, average_length: float) -> float:
    """Okapi BM25 of one chunk for a query (k1=1.2, b=0.75; IDF ``log(1 + (N - df + 0.5) / (df + 0.5))``).

    FTS5's own ``bm25()`` uses ``log((N - df + 0.5) / (df + 0.5))``, which gives a term in
    half the chunks or more no weight; this IDF keeps a small weight for common terms.

    Args:
        counts: how often each query term occurs in the chunk (others may be left out).
        length: the chunk's number of terms.
        query: the query's unique terms.
        frequency: chunks holding each query term.
        chunk_count: chunks in the index.
        average_length: mean number of terms per chunk.

    Returns:
        The score; higher is better, 0 when no query term occurs.
    """
    score = 0.0
    norm = K1 * (1 - B + B * length / (average_length or 1.0))
    for term in query:
        tf = counts.get(term, 0)
        df = frequency.get(term, 0)
        if tf and df:
            idf = math.log(1 + (chunk_count - df + 0.5) / (df + 0.5))
            score += idf * tf * (K1 + 1) / (tf + norm)
    return score
