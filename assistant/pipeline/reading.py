"""How the reader sees a question and a passage, and how its scores become a span; no model here.

The reader (``assistant.pipeline.reader``) reads ``[CLS] question [SEP] window [SEP]``: the question
cut to ``QUESTION_TOKENS``, then a window of the passage's word pieces, windows overlapping by
``STRIDE``. It scores each token as a span's start and as its end; the [CLS] token's pair of
scores is the score of "no answer here" (SQuAD 2.0's convention). Training (``assistant.training``)
builds its windows with the same functions, so the model is read the way it was taught.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LENGTH = 128  # word pieces a window holds, question and markers included
QUESTION_TOKENS = 40  # a longer question is cut, not refused
STRIDE = 48  # word pieces two neighbouring windows of one passage share
MAX_ANSWER_TOKENS = 30  # the longest span the reader may lead with
CLS, SEP = 101, 102  # the tokenizer's markers


@dataclass(frozen=True)
class Window:
    """One model input: token ids, segment ids, and which passage tokens it holds.

    ``first`` is the index in ``ids`` of passage token ``lo``; passage tokens ``lo``..``hi-1``
    follow it. ``start``/``end`` are the answer's positions in ``ids`` (0, 0: no answer).
    """

    ids: tuple[int, ...]
    type_ids: tuple[int, ...]
    lo: int
    hi: int
    first: int
    start: int = 0
    end: int = 0


def spans_of(n_tokens: int, room: int, stride: int = STRIDE) -> list[tuple[int, int]]:
    """Token ranges [lo, hi) of the windows over a passage of ``n_tokens``, ``room`` tokens each,
    neighbours sharing ``stride``; the last window ends at the passage's end."""
    if room <= stride:
        raise ValueError(f"a window of {room} tokens cannot overlap its neighbour by {stride}")
    if n_tokens <= room:
        return [(0, n_tokens)]
    out, lo = [], 0
    while True:
        hi = min(lo + room, n_tokens)
        out.append((hi - room, hi) if hi == n_tokens else (lo, hi))
        if hi == n_tokens:
            return out
        lo += room - stride


def around(offsets: list[tuple[int, int]], start: int, end: int, room: int) -> tuple[int, int] | None:
    """The token range [lo, hi) of a window of ``room`` tokens with characters [start, end) of the
    text in its middle (cut at the text's ends); None when no token lies there."""
    inside = answer_tokens(offsets, start, end)
    if inside is None:
        return None
    n = len(offsets)
    middle = (inside[0] + inside[1]) // 2
    lo = max(0, min(middle - room // 2, n - room))
    return lo, min(n, lo + room)


def window(question: list[int], passage: list[int], lo: int, hi: int,
           answer: tuple[int, int] | None = None) -> Window:
    """The input for ``question`` (ids, no markers) against passage tokens ``lo``..``hi-1``.

    ``answer`` is the answer's first and last passage token (inclusive); outside the window
    (or None) the window is labelled "no answer".
    """
    q = question[:QUESTION_TOKENS]
    ids = (CLS, *q, SEP, *passage[lo:hi], SEP)
    type_ids = (0,) * (len(q) + 2) + (1,) * (hi - lo + 1)
    first = len(q) + 2
    start = end = 0
    if answer is not None and lo <= answer[0] and answer[1] < hi:
        start, end = first + answer[0] - lo, first + answer[1] - lo
    return Window(ids, type_ids, lo, hi, first, start, end)


def room_for(question: list[int]) -> int:
    """Passage tokens a window holds next to ``question``."""
    return MAX_LENGTH - min(len(question), QUESTION_TOKENS) - 3


def answer_tokens(offsets: list[tuple[int, int]], start: int, end: int) -> tuple[int, int] | None:
    """The first and last token whose characters overlap [start, end) of the text; None when no
    token does (an answer of spaces only)."""
    inside = [i for i, (a, b) in enumerate(offsets) if a < end and b > start]
    return (inside[0], inside[-1]) if inside else None


@dataclass(frozen=True)
class SpanScore:
    """The best span of one window: passage tokens ``lo``..``hi`` (inclusive), its score
    (start + end logit), and the window's no-answer score ([CLS] start + end)."""

    lo: int
    hi: int
    score: float
    null: float

    @property
    def margin(self) -> float:
        """How much the span beats "no answer": above 0, the reader answers from this window."""
        return self.score - self.null


def best_span(start_logits, end_logits, w: Window, max_tokens: int = MAX_ANSWER_TOKENS,
              within: tuple[int, int] | None = None) -> SpanScore | None:
    """The highest-scoring span inside the passage part of window ``w`` (start <= end, at most
    ``max_tokens`` long), in passage token numbers; ties go to the earlier, shorter span.
    ``within`` limits it to passage tokens [lo, hi) (one sentence); None when the window holds
    none of them."""
    import numpy as np

    lo, hi = (w.lo, w.hi) if within is None else (max(w.lo, within[0]), min(w.hi, within[1]))
    n = hi - lo
    if n <= 0:
        return None
    first = w.first + lo - w.lo
    starts = np.asarray(start_logits[first:first + n], dtype=np.float64)
    ends = np.asarray(end_logits[first:first + n], dtype=np.float64)
    pairs = starts[:, None] + ends[None, :]
    length = np.arange(n)[None, :] - np.arange(n)[:, None]  # end - start
    pairs[(length < 0) | (length >= max_tokens)] = -np.inf
    i, j = divmod(int(np.argmax(pairs)), n)  # the first maximum in row order: earliest, then shortest
    null = float(start_logits[0]) + float(end_logits[0])
    return SpanScore(lo + i, lo + j, float(pairs[i, j]), null)
