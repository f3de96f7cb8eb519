"""The reader's say in the evidence: which sentence answers, what leads the quote, whether to answer.

The rules of ``evidence`` find and rank the candidate sentences; the reader (``reader``) reads
the best of them in their passages, in windows. Each candidate's rank then adds the reader's
margin for its best span; the best sentence's span is its answer span (the only one a quote may
lead with); and a reader sure enough of a span answers where the rules would abstain. Tuned on
the SQuADShifts dev splits with eval/fit_reader.py (docs/reader.md).
"""

from __future__ import annotations

import dataclasses
import math

from assistant.pipeline.evidence import ANSWER_THRESHOLD, REQUIRED_KINDS, Evidence, Sentence, logistic
from assistant.pipeline.spans import candidates
from index.text.sentences import sentence_spans
from index.text.terms import terms

# Whether the passages answer: the rules decide (evidence.ANSWER_THRESHOLD), except that a span
# the reader finds this far above "no answer" answers when the rules doubt. Its "no answer"
# score does not separate the unanswerable questions better than the rules do (docs/reader.md).
ANSWER_MARGIN = 9.0
# Ranking: the rules' log-odds plus this much per point of the reader's margin in the sentence;
# a candidate sentence no window read counts this margin.
READ_RANK = 0.5
UNREAD_MARGIN = -5.0
# A span the reader finds leads the quote when it beats "no answer" by this much and is this
# short; a longer span is the sentence's own words, read in the quote anyway.
LEAD_MARGIN = 2.0
LEAD_WORDS = 10


def focus(ev: Evidence, texts: list[str]) -> list[tuple[int, int, int]]:
    """What the reader reads, most promising first: the rules' candidate sentences, then each
    passage's sentences in retrieval order (it stops at its window cap)."""
    out = [(s.hit, s.start, s.end) for s in ev.sentences]
    for n, text in enumerate(texts):
        out += [(n, a, b) for a, b in sentence_spans(text)]
    return out


def read_into(ev: Evidence, texts: list[str], reads) -> Evidence:
    """``ev`` re-ranked with what the reader read (``reads``: ``reader.Reads``).

    Each candidate sentence of the rules scores its rank log-odds plus ``READ_RANK`` times the
    reader's margin for its best span (``UNREAD_MARGIN`` when no window read it); the best
    sentence keeps the reader's span as its answer span when the reader beats "no answer" there
    by ``LEAD_MARGIN``, says more than the question's own words and, for a "when" or "how many"
    question, holds a date or a number. The reader's best margin anywhere may raise the rules'
    confidence (``combined``). Only the rules' candidates are ranked: no code line, heading or
    repeated sentence is quoted.
    """
    plain = [dataclasses.replace(s, span=None) for s in ev.sentences]
    if not reads or not ev.sentences:
        return dataclasses.replace(ev, read=True, margin=None, sentences=plain)
    scored = []
    for s in ev.sentences:
        r = reads.within(s.hit, s.start, s.end)
        z = log_odds(s.score) + READ_RANK * (r.margin if r is not None else UNREAD_MARGIN)
        scored.append((z, s, r))
    scored.sort(key=lambda t: (-t[0], t[1].hit, t[1].start))
    sentences = [dataclasses.replace(s, score=logistic({"bias": z}, {}), span=None) for z, s, _ in scored]
    _, best, reading = scored[0]
    span = _answer_span(ev, best, reading)
    sentences[0] = dataclasses.replace(sentences[0], span=span)
    confidence = combined(ev.confidence, max(r.margin for r in reads.best()))
    return dataclasses.replace(ev, sentences=sentences, confidence=confidence, read=True,
                               margin=reading.margin if span is not None else None)


def _answer_span(ev: Evidence, sentence: Sentence, reading) -> tuple[int, int] | None:
    """The reader's span as (start, end) in ``sentence``, when it may be the answer span."""
    if reading is None or reading.margin < LEAD_MARGIN:
        return None
    a = max(0, reading.start - sentence.start)
    b = min(len(sentence.text), reading.end - sentence.start)
    while b > a and (sentence.text[b - 1].isspace() or sentence.text[b - 1] in ".,;:"):
        b -= 1  # a span running to the sentence's end stops before its full stop
    if b <= a or (ev.question.kind in REQUIRED_KINDS and not candidates(sentence.text[a:b], ev.question.kind)):
        return None
    # "three categories" for "What are the three categories?"; but "Republican" for "Republican or Democrat?"
    if set(terms(sentence.text[a:b])) <= set(ev.question.terms) and " or " not in ev.question.text:
        return None
    return a, b


def log_odds(p: float) -> float:
    """The log-odds of a probability (kept off 0 and 1): the inverse of ``evidence.logistic``."""
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def combined(rule_confidence: float, margin: float) -> float:
    """The confidence that the passages answer: the rules', raised to the answer threshold when
    the reader's best span beats "no answer" by ``ANSWER_MARGIN``; 0 when the rules rule the
    passages out (``owned_by_others``)."""
    if rule_confidence <= 0.0 or margin < ANSWER_MARGIN:
        return rule_confidence
    return max(rule_confidence, ANSWER_THRESHOLD)


def reader_lead(ev: Evidence) -> str | None:
    """The reader's span in the best sentence, when it may lead a quote: found, short, beating
    "no answer" by ``LEAD_MARGIN``, and the evidence more than ``nearest_only``."""
    best = ev.sentences[0] if ev.sentences else None
    if best is None or best.span is None or ev.margin is None or ev.margin < LEAD_MARGIN or ev.nearest_only:
        return None
    lead = " ".join(best.text[best.span[0]:best.span[1]].split())
    return lead if lead and len(lead.split()) <= LEAD_WORDS else None
