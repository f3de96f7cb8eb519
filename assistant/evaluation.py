"""Answer quality as numbers: retrieval, answers, citation support, abstention, latency.

QA files are JSON Lines, one question a line::

    {"q": str, "source": str|list|null, "expect": [str], "any": [str],
     "unanswerable": bool, "split": "dev"|"test",
     # optional, written by assistant.evalsets for the external sets:
     "answers": [str], "spans": [{"source": str, "start": int, "end": int}],
     "qtype": str, "kind": "answerable"|"left-out"|"deleted"}

Conversation files hold one conversation a line::

    {"conversation": str, "source": str, "split": str,
     "turns": [{"turn": int, "q": str, "answers": [str], "span": {"start": int, "end": int}|null,
                "qtype": str, "kind": "answerable"|"yes/no"|"unknown"}]}

How each number is computed. Facts (``expect``/``any``) are compared after lower-casing
and collapsing whitespace, so "Josip\\nRodin" in a PDF matches "Josip Rodin"; gold
``answers`` with the official SQuAD normalisation (``normalize_answer``).

- gold passage: with ``spans``, a passage from the span's source whose [start, end)
  covers a gold span entirely (holding the string elsewhere does not count); else a
  passage holding every ``expect`` fact and, when ``any`` is given, one ``any`` fact.
  hit@1 / hit@k: a gold passage ranks first / in the k passages given to the
  answerer; MRR: mean of 1/rank of the first gold passage (0 when none is in the k).
  Over answerable questions.
- source hit@1 / hit@k: the same for the first passage from a gold ``source`` file
  (reported only when the gold files are in the index).
- answer right: with ``answers``, not abstained and a normalised gold answer is a
  contiguous run of tokens within the normalised first ``LEAD_WORDS`` words of the
  answer (citation markers removed first): an answer must lead with what was asked,
  quoting more cannot help. Without ``answers``: not abstained, the answer holds every
  ``expect`` fact and one ``any`` fact when given. Over answerable questions, also
  per question type (``question_type``).
- exact match / F1: the official SQuAD exact match and token F1 (best over the gold
  answers) of the answer's leading span (``leading_span``); 0 when abstained. Over
  answerable questions with ``answers``.
- answer length: words in answers given (not abstained), markers removed; median, mean.
- citation support: for each answer, the gold facts it states (``expect``, ``any``
  and ``answers`` found in the answer) and the share of those found in the passages it
  cites; averaged over answers that state at least one gold fact. Also over generated
  answers only (``mode == "generate"``): a quoted answer supports itself.
- abstention: share of unanswerable questions abstained on (also per ``kind``:
  left-out article, deleted paragraph); wrong abstentions: share of answerable
  questions abstained on.
- latency: seconds per question, wall clock, median and 95th percentile.

Conversations (``evaluate_conversations``): each turn is asked with the earlier turns
as history (their questions and gold answers, or the assistant's own answers). On
follow-up turns (turn > 1), hit@k of the rationale span with the assistant's
follow-up handling (the chat answer's passages) and without it (the raw question
through the retriever); a passage hits when it is from the story and overlaps at least
half of the rationale. Answers right (rule above) on first and on follow-up turns,
over turns whose gold answer is neither yes/no nor unknown; the share of follow-up
turns rewritten, and of rewrites longer than ``2 x question words + 12``.

Changes of subject (``evaluate_subject_changes``): no conversation of the set changes its
subject, so one is made: the first question of the next conversation (another story) is
asked after the first ``depth`` turns of this one, and asked alone. Answers right (rule
above) both ways, and how often the answer cites the new story, and the old one.
"""

from __future__ import annotations

import json
import re
import statistics
import string
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from assistant.answer import WEAK_TEXT, Answer
from index.sentences import sentence_spans

LEAD_WORDS = 30  # an answer is right when a gold answer lies within its first 30 words
LEAD_SPAN_WORDS = 12  # "<span> — ..." counts as a leading span when the span has at most 12 words
LEAD_SEPARATOR = " — "
QUESTION_TYPES = ("who", "when", "where", "how many", "what", "why", "other")
KINDS = ("answerable", "left-out", "deleted")
TURN_KINDS = ("answerable", "yes/no", "unknown")
REWRITE_SLACK_WORDS = 12  # a rewrite may be 2 x the question's words + 12 words long


# --------------------------------------------------------------------------- files
@dataclass(frozen=True)
class Span:
    """A gold answer's place: ``text[start:end]`` of the document ``source``."""

    source: str
    start: int
    end: int


@dataclass(frozen=True)
class QA:
    q: str
    source: tuple[str, ...] = ()
    expect: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    unanswerable: bool = False
    split: str = "test"
    answers: tuple[str, ...] = ()
    spans: tuple[Span, ...] = ()
    qtype: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class Turn:
    turn: int
    q: str
    answers: tuple[str, ...] = ()
    span: tuple[int, int] | None = None  # the rationale in the story's document
    qtype: str | None = None
    kind: str = "answerable"


@dataclass(frozen=True)
class Conversation:
    id: str
    source: str
    split: str
    turns: tuple[Turn, ...]


def _qa_from_row(row: dict) -> QA:
    source = row.get("source")
    sources = tuple([source] if isinstance(source, str) else source or [])
    spans = tuple(Span(s["source"], int(s["start"]), int(s["end"])) for s in row.get("spans") or [])
    kind = row.get("kind")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    qtype = row.get("qtype")
    if qtype is not None and qtype not in QUESTION_TYPES:
        raise ValueError(f"qtype must be one of {', '.join(QUESTION_TYPES)}, not {qtype!r}")
    return QA(row["q"], sources, tuple(row.get("expect", [])), tuple(row.get("any", [])),
              bool(row.get("unanswerable", False)), row.get("split", "test"),
              tuple(a for a in row.get("answers") or [] if a.strip()), spans, qtype, kind)


def _rows(path: Path):
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not JSON ({exc})") from exc


def load_qa(path: Path) -> list[QA]:
    """Read a QA file; raises ValueError naming the line of a malformed entry."""
    out = []
    for n, row in _rows(path):
        try:
            qa = _qa_from_row(row)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{path}:{n}: not a QA entry ({exc})") from exc
        if not qa.unanswerable and not (qa.expect or qa.any or qa.answers):
            raise ValueError(f"{path}:{n}: an answerable question needs expect or any facts (or answers)")
        out.append(qa)
    return out


def is_conversation_file(path: Path) -> bool:
    """True when the file's first entry is a conversation (has ``turns``)."""
    for _, row in _rows(path):
        return isinstance(row, dict) and "turns" in row
    return False


def load_conversations(path: Path) -> list[Conversation]:
    """Read a conversation file; raises ValueError naming the line of a malformed entry."""
    out = []
    for n, row in _rows(path):
        try:
            turns = []
            for t in row["turns"]:
                span = t.get("span")
                kind = t.get("kind", "answerable")
                if kind not in TURN_KINDS:
                    raise ValueError(f"kind must be one of {', '.join(TURN_KINDS)}, not {kind!r}")
                answers = tuple(a for a in t.get("answers") or [] if a.strip())
                turns.append(Turn(int(t["turn"]), t["q"], answers,
                                  (int(span["start"]), int(span["end"])) if span else None,
                                  t.get("qtype"), kind))
            out.append(Conversation(str(row["conversation"]), row["source"], row.get("split", "test"),
                                    tuple(turns)))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{path}:{n}: not a conversation entry ({exc})") from exc
    return out


# --------------------------------------------------------------------------- text rules
_MARKER = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_MARKER_IN_WORDS = re.compile(_MARKER.pattern + r"(?=\w)")
_PUNCTUATION = frozenset(string.punctuation)


def strip_markers(text: str) -> str:
    """The text without citation markers like [1] or [1, 2], whitespace collapsed."""
    return " ".join(_MARKER.sub("", _MARKER_IN_WORDS.sub(" ", text)).split())


def normalize_answer(text: str) -> str:
    """The official SQuAD v1.1 normalisation: lower case, no punctuation, no a/an/the, one space."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(gold)


def f1(prediction: str, gold: str) -> float:
    """The official SQuAD token F1 of one prediction against one gold answer."""
    pred, truth = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = Counter(pred) & Counter(truth)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(truth)
    return 2 * precision * recall / (precision + recall)


def _contains(tokens: list[str], part: list[str]) -> bool:
    n = len(part)
    return any(tokens[i:i + n] == part for i in range(len(tokens) - n + 1))


def answer_right(answer: str, golds, abstained: bool = False) -> bool:
    """Not abstained, and a normalised gold answer is a run of tokens in the first LEAD_WORDS words."""
    if abstained:
        return False
    lead = normalize_answer(" ".join(strip_markers(answer).split()[:LEAD_WORDS])).split()
    return any(gold and _contains(lead, gold) for gold in (normalize_answer(g).split() for g in golds))


def leading_span(answer: str) -> str:
    """What the answer leads with: "<span> — ..." gives the span (at most LEAD_SPAN_WORDS
    words), else the first sentence; citation markers and a "nearest passage" note removed."""
    text = strip_markers(answer).removeprefix(WEAK_TEXT).strip()
    head, sep, _ = text.partition(LEAD_SEPARATOR)
    if sep and head.strip() and len(head.split()) <= LEAD_SPAN_WORDS:
        return head.strip()
    spans = sentence_spans(text)
    return text[spans[0][0]:spans[0][1]] if spans else text


def answer_words(answer: str) -> int:
    return len(strip_markers(answer).split())


_WH = re.compile(r"\b(who|whom|whose|when|where|why|what|which|how)\b")
_HOW_MANY = re.compile(r"how\s+(many|much)\b")
_WHAT_TIME = re.compile(r"(what|which)\s+(year|day|date|time|month|century|decade)s?\b")


def question_type(question: str) -> str:
    """The kind of question by its first wh-word: who, when, where, how many, what, why or other.

    "whose"/"whom" count as who, "how many/much" as how many, "what/which year, day,
    date, time, month, century, decade" (as in "in what year") as when; any other
    "how" is other.
    """
    q = question.lower()
    m = _WH.search(q)
    if not m:
        return "other"
    word, rest = m.group(1), q[m.start():]
    if word in ("who", "whom", "whose"):
        return "who"
    if word in ("when", "where", "why"):
        return word
    if word == "how":
        return "how many" if _HOW_MANY.match(rest) else "other"
    return "when" if _WHAT_TIME.match(rest) else "what"


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def holds(text: str, qa: QA) -> bool:
    """True when ``text`` holds every expect fact and (if any are given) one any fact."""
    t = _norm(text)
    return all(_norm(f) in t for f in qa.expect) and (
        not qa.any or any(_norm(f) in t for f in qa.any))


def _same_source(source: str, gold: str) -> bool:
    return source == gold or source.endswith("/" + gold)


def covers(source: str, start: int, end: int, span: Span) -> bool:
    """A passage covers a gold span: same document and [start, end) holds all of it."""
    return _same_source(source, span.source) and start <= span.start and span.end <= end


def overlaps_half(start: int, end: int, span: tuple[int, int]) -> bool:
    """A passage [start, end) overlaps at least half of ``span``."""
    overlap = min(end, span[1]) - max(start, span[0])
    return overlap > 0 and 2 * overlap >= span[1] - span[0]


# --------------------------------------------------------------------------- questions
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
        if rec.source_rank is None and any(_same_source(c.source, s) for s in qa.source):
            rec.source_rank = c.n
    if qa.answers:
        rec.right = answer_right(answer.answer, qa.answers, answer.abstained)
        rec.lead = leading_span(answer.answer)
        rec.em = 0.0 if answer.abstained else float(max(exact_match(rec.lead, g) for g in qa.answers))
        rec.f1 = 0.0 if answer.abstained else round(max(f1(rec.lead, g) for g in qa.answers), 4)
    else:
        rec.right = not answer.abstained and holds(answer.answer, qa)
    cited = _norm(" ".join(c.text for c in answer.citations if c.cited))
    said = _norm(answer.answer)
    stated = {_norm(f) for f in qa.expect + qa.any + qa.answers if _norm(f) and _norm(f) in said}
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


def _mean(values) -> float | None:
    values = list(values)
    return round(sum(values) / len(values), 3) if values else None


def _latency(records) -> dict:
    secs = sorted(r.seconds for r in records)
    return {
        "latency_p50_s": round(statistics.median(secs), 2) if secs else None,
        "latency_p95_s": round(secs[max(0, int(0.95 * len(secs)) - 1)], 2) if secs else None,
    }


def by_type(records: list[Record]) -> dict:
    """Answers right per question type, over answerable questions: {type: {n, answers_right}}."""
    ans = [r for r in records if not r.unanswerable]
    return {t: {"n": len(rs), "answers_right": _mean(bool(r.right) for r in rs)}
            for t in QUESTION_TYPES if (rs := [r for r in ans if r.qtype == t])}


def summarize(records: list[Record], k: int, sources_indexed: bool = True) -> dict:
    """The headline numbers for a list of records (see the module docstring)."""
    ans = [r for r in records if not r.unanswerable]
    una = [r for r in records if r.unanswerable]
    stating = [r for r in ans if r.stated]
    generated = [r for r in ans if r.mode == "generate"]
    scored = [r for r in ans if r.em is not None]
    given = [r.words for r in records if not r.abstained]
    out = {
        "questions": len(records),
        "answerable": len(ans),
        "unanswerable": len(una),
        "hit@1": _mean(r.gold_rank == 1 for r in ans),
        f"hit@{k}": _mean(r.gold_rank is not None for r in ans),
        "mrr": _mean(1 / r.gold_rank if r.gold_rank else 0 for r in ans),
        "source_hit@1": _mean(r.source_rank == 1 for r in ans) if sources_indexed else None,
        f"source_hit@{k}": _mean(r.source_rank is not None for r in ans) if sources_indexed else None,
        "answers_right": _mean(bool(r.right) for r in ans),
        "exact_match": _mean(r.em for r in scored),
        "f1": _mean(r.f1 for r in scored),
        "answer_words_p50": statistics.median(given) if given else None,
        "answer_words_mean": round(statistics.mean(given), 1) if given else None,
        "citation_support": _mean(r.supported / r.stated for r in stating),
        "generated": len(generated),
        "citation_support_generated": _mean(r.supported / r.stated for r in generated if r.stated),
        "abstained_unanswerable": _mean(r.abstained for r in una),
        "abstained_left_out": _mean(r.abstained for r in una if r.kind == "left-out"),
        "abstained_deleted": _mean(r.abstained for r in una if r.kind == "deleted"),
        "wrong_abstentions": _mean(r.abstained for r in ans),
        **_latency(records),
    }
    out["by_type"] = by_type(records)
    return out


# --------------------------------------------------------------------------- conversations
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
    return any(_same_source(s, source) and overlaps_half(start, end, span) for s, start, end in passages)


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
                if t.kind == "answerable" and t.answers else None,
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
        return any(_same_source(c.source, source) for c in a.citations if c.cited)

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


def summarize_changes(records: list[ChangeRecord]) -> dict:
    """The headline numbers for changes of subject (see the module docstring)."""
    return {
        "subject_changes": len(records),
        "after_turns": records[0].depth if records else None,
        "answers_right_after_change": _mean(r.right for r in records),
        "answers_right_asked_alone": _mean(r.right_alone for r in records),
        "cites_new_story": _mean(r.new for r in records),
        "cites_new_story_alone": _mean(r.new_alone for r in records),
        "cites_old_story": _mean(r.old for r in records),
        "abstained_after_change": _mean(r.abstained for r in records),
        **_latency(records),
    }


def summarize_turns(records: list[TurnRecord], k: int) -> dict:
    """The headline numbers for conversation turns (see the module docstring)."""
    first = [r for r in records if r.turn == 1]
    follow = [r for r in records if r.turn > 1]
    spanned = [r for r in follow if r.hit is not None]
    rewrites = [r for r in follow if r.rewritten]
    return {
        "conversations": len({r.conversation for r in records}),
        "turns": len(records),
        "followup_turns": len(follow),
        f"first_hit@{k}": _mean(r.hit for r in first if r.hit is not None),
        f"followup_hit@{k}": _mean(r.hit for r in spanned),
        f"followup_hit@{k}_raw": _mean(r.raw_hit for r in spanned),
        "answers_right_first": _mean(r.right for r in first if r.right is not None),
        "answers_right_followup": _mean(r.right for r in follow if r.right is not None),
        "scored_first": sum(r.right is not None for r in first),
        "scored_followup": sum(r.right is not None for r in follow),
        "abstained_first": _mean(r.abstained for r in first if r.kind != "unknown"),
        "abstained_followup": _mean(r.abstained for r in follow if r.kind != "unknown"),
        "abstained_unknown": _mean(r.abstained for r in records if r.kind == "unknown"),
        "rewritten_followups": _mean(bool(r.rewritten) for r in follow),
        "long_rewrites": _mean(r.long_rewrite for r in rewrites),
        **_latency(records),
    }


# --------------------------------------------------------------------------- report
@dataclass
class Report:
    """Summaries per system and split, with every record."""

    k: int
    summaries: dict = field(default_factory=dict)  # system -> split -> summary
    records: dict = field(default_factory=dict)  # system -> [Record | TurnRecord]

    def add(self, system: str, records: list, sources_indexed: bool = True) -> None:
        self.records[system] = records
        if records and isinstance(records[0], TurnRecord):
            def summary(rs):
                return summarize_turns(rs, self.k)
        elif records and isinstance(records[0], ChangeRecord):
            summary = summarize_changes
        else:
            def summary(rs):
                return summarize(rs, self.k, sources_indexed)
        splits = sorted({r.split for r in records})
        self.summaries[system] = {s: summary([r for r in records if r.split == s]) for s in splits}
        self.summaries[system]["all"] = summary(records)

    def to_dict(self) -> dict:
        return {"k": self.k, "summaries": self.summaries,
                "records": {s: [asdict(r) for r in rs] for s, rs in self.records.items()}}

    def _columns(self) -> list[tuple[str, str]]:
        """(system, split) pairs; "all" only when a system has more than one split."""
        return [(system, split) for system, by_split in self.summaries.items() for split in by_split
                if split != "all" or len(by_split) > 2]

    def table(self) -> str:
        """A text table: one row per metric, one column per system and split (rows with no
        value anywhere are left out)."""
        columns = self._columns()
        metrics = [m for m, v in next(iter(next(iter(self.summaries.values())).values())).items()
                   if not isinstance(v, dict)]
        rows = [["metric"] + [f"{system} [{split}]" for system, split in columns]]
        for m in metrics:
            values = [self.summaries[system][split].get(m) for system, split in columns]
            if all(v is None for v in values):
                continue
            rows.append([m] + ["-" if v is None else str(v) for v in values])
        return _format(rows)

    def type_table(self) -> str:
        """Answers right per question type (with the number of questions), or "" when none."""
        columns = self._columns()
        if not all("by_type" in self.summaries[s][p] for s, p in columns):
            return ""
        rows = [["answers right by type"] + [f"{system} [{split}]" for system, split in columns]]
        for t in QUESTION_TYPES:
            cells = [self.summaries[s][p]["by_type"].get(t) for s, p in columns]
            if any(cells):
                rows.append([t] + ["-" if not c else f"{c['answers_right']} (n={c['n']})" for c in cells])
        return _format(rows) if len(rows) > 1 else ""


def _format(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
