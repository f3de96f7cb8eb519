"""Asking an evaluation set: one record per question, per conversation turn, or per change of
subject."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from assistant.evaluation.data import QA, Conversation
from assistant.evaluation.metrics import (answer_right, answer_words, covers, exact_match, f1, fact_form, holds,
                                          leading_span, overlaps_half, question_type, same_source)
from assistant.types import Answer


REWRITE_SLACK_WORDS = 12  # a rewrite may be 2 x the question's words + 12 words long


@dataclass
class Record:
    """One question's outcome."""

    q: str
    split: str
    unanswerable: bool
    answer: str
    abstained: bool
    seconds: float
    gold_rank: int | None = None
    source_rank: int | None = None
    right: bool | None = None
    stated: int = 0
    supported: int = 0
    mode: str = ""
    kind: str | None = None
    qtype: str = "other"
    lead: str | None = None
    em: float | None = None
    f1: float | None = None
    words: int = 0


def score(qa: QA, answer: Answer, seconds: float) -> Record:
    """Measure one answer against its QA entry."""
    rec = Record(qa.q, qa.split, qa.unanswerable, answer.answer, answer.abstained, seconds,
                 mode=answer.mode, qtype=qa.qtype or question_type(qa.q),
                 kind=qa.kind or ("answerable" if not qa.unanswerable else None),
                 words=answer_words(answer.answer))
    if qa.unanswerable:
        return rec
    for c in answer.citations:
        gold = any(covers(c.source, c.start, c.end, s) for s in qa.spans) if qa.spans else holds(c.text, qa)
        if rec.gold_rank is None and gold:
            rec.gold_rank = c.n
        if rec.source_rank is None and any(same_source(c.source, s) for s in qa.source):
            rec.source_rank = c.n
    if qa.answers:
        cited = " ".join(c.text for c in answer.citations if c.cited)
        rec.right = answer_right(answer.answer, qa.answers, answer.abstained, cited)
        # the answer's lead span (a missing one is a miss); a written answer without one: its first sentence
        rec.lead = answer.lead
        if rec.lead is None and answer.mode == "generate":
            rec.lead = leading_span(answer.answer)
        if rec.lead is None or answer.abstained:
            rec.em, rec.f1 = 0.0, 0.0
        else:
            rec.em = float(max(exact_match(rec.lead, g) for g in qa.answers))
            rec.f1 = round(max(f1(rec.lead, g) for g in qa.answers), 4)
    else:
        rec.right = not answer.abstained and holds(answer.answer, qa)
    cited = fact_form(" ".join(c.text for c in answer.citations if c.cited))
    said = fact_form(answer.answer)
    stated = {fact_form(f) for f in qa.expect + qa.any + qa.answers if fact_form(f) and fact_form(f) in said}
    rec.stated = len(stated)
    rec.supported = sum(f in cited for f in stated)
    return rec


def evaluate(ask: Callable[[str], Answer], qas: list[QA], progress=None) -> list[Record]:
    """Ask every question and score it."""
    records = []
    for i, qa in enumerate(qas, 1):
        started = time.perf_counter()
        answer = ask(qa.q)
        records.append(score(qa, answer, time.perf_counter() - started))
        if progress:
            progress(i, len(qas), qa.q)
    return records


@dataclass
class TurnRecord:
    """One conversation turn's outcome. ``hit``/``raw_hit``: the rationale among the chat
    answer's passages / among the raw question's passages (None: the turn has no rationale);
    ``right``: None for yes/no and unknown turns."""

    conversation: str
    turn: int
    q: str
    split: str
    kind: str
    qtype: str
    answer: str
    abstained: bool
    mode: str
    seconds: float
    rewritten: str | None = None
    hit: bool | None = None
    raw_hit: bool | None = None
    right: bool | None = None
    long_rewrite: bool | None = None


def long_rewrite(question: str, rewritten: str) -> bool:
    """A rewrite longer than twice the question's words plus REWRITE_SLACK_WORDS (history stuffed in)."""
    return len(rewritten.split()) > 2 * len(question.split()) + REWRITE_SLACK_WORDS


def _span_hit(passages, source: str, span: tuple[int, int] | None) -> bool | None:
    if span is None:
        return None
    return any(same_source(s, source) and overlaps_half(start, end, span) for s, start, end in passages)


def evaluate_conversations(chat: Callable[[str, list[dict]], Answer],
                           search: Callable[[str], list[tuple[str, int, int]]],
                           conversations: list[Conversation], own_history: bool = False,
                           max_turns: int | None = None, progress=None) -> list[TurnRecord]:
    """Ask every turn of every conversation with the turns before it as history.

    Args:
        chat: answers a question given history (role/content messages).
        search: the passages (source, start, end) the raw question alone retrieves.
        conversations: what to ask.
        own_history: put the assistant's own earlier answers in the history instead of
            the gold answers.
        max_turns: ask at most this many turns of each conversation.
        progress: called as ``progress(done, total, question)``.
    """
    total = sum(len(c.turns[:max_turns]) for c in conversations)
    records, done = [], 0
    for conv in conversations:
        history: list[dict] = []
        for t in conv.turns[:max_turns]:
            started = time.perf_counter()
            answer = chat(t.q, list(history))
            seconds = time.perf_counter() - started
            rewritten = answer.rewritten_question
            records.append(TurnRecord(
                conv.id, t.turn, t.q, conv.split, t.kind, t.qtype or question_type(t.q),
                answer.answer, answer.abstained, answer.mode, seconds, rewritten,
                hit=_span_hit([(c.source, c.start, c.end) for c in answer.citations], conv.source, t.span),
                raw_hit=_span_hit(search(t.q), conv.source, t.span) if t.turn > 1 else None,
                right=answer_right(answer.answer, t.answers, answer.abstained)
                if t.kind in ("answerable", "standalone") and t.answers else None,
                long_rewrite=long_rewrite(t.q, rewritten) if rewritten else None,
            ))
            said = answer.answer if own_history else (t.answers[0] if t.answers else "unknown")
            history += [{"role": "user", "content": t.q}, {"role": "assistant", "content": said}]
            done += 1
            if progress:
                progress(done, total, t.q)
    return records


@dataclass
class ChangeRecord:
    """A question from another conversation's story, asked after ``depth`` turns of this one
    (``right``, ``new``/``old``: cites the question's story / the conversation's) and alone."""

    conversation: str
    depth: int
    q: str
    split: str
    answer: str
    abstained: bool
    seconds: float
    right: bool
    new: bool
    old: bool
    right_alone: bool
    new_alone: bool


def evaluate_subject_changes(chat: Callable[[str, list[dict]], Answer], conversations: list[Conversation],
                             depth: int = 3, progress=None) -> list[ChangeRecord]:
    """Ask each conversation's next neighbour's first question after ``depth`` of its turns
    (with their gold answers), and alone; over neighbours whose first turn is answerable."""
    pairs = [(c, n) for c, n in zip(conversations, conversations[1:] + conversations[:1])
             if n.source != c.source and n.turns and n.turns[0].kind == "answerable" and n.turns[0].answers]

    def cites(a: Answer, source: str) -> bool:
        return any(same_source(c.source, source) for c in a.citations if c.cited)

    records = []
    for done, (conv, nxt) in enumerate(pairs, 1):
        t = nxt.turns[0]
        history: list[dict] = []
        for u in conv.turns[:depth]:
            history += [{"role": "user", "content": u.q},
                        {"role": "assistant", "content": u.answers[0] if u.answers else "unknown"}]
        started = time.perf_counter()
        answer = chat(t.q, history)
        seconds = time.perf_counter() - started
        alone = chat(t.q, [])
        records.append(ChangeRecord(
            conv.id, depth, t.q, conv.split, answer.answer, answer.abstained, seconds,
            answer_right(answer.answer, t.answers, answer.abstained), cites(answer, nxt.source),
            cites(answer, conv.source), answer_right(alone.answer, t.answers, alone.abstained),
            cites(alone, nxt.source)))
        if progress:
            progress(done, len(pairs), t.q)
    return records
