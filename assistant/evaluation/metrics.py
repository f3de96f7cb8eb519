"""How an answer is scored against its gold answers: SQuAD's normalisation, exact match and
F1, "answer right", question types, gold passages (definitions: docs/evaluation.md)."""

from __future__ import annotations

import re
import string
from collections import Counter

from assistant.evaluation.data import QA, AnswerSpan
from assistant.pipeline.compose import WEAK_TEXT
from index.text.sentences import sentence_spans


LEAD_WORDS = 30  # an answer is right when a gold answer lies within its first 30 words


LEAD_SPAN_WORDS = 12  # "<span> — ..." counts as a leading span when the span has at most 12 words


LEAD_SEPARATOR = " — "




_MARKER = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")


_MARKER_IN_WORDS = re.compile(_MARKER.pattern + r"(?=\w)")


_PUNCTUATION = frozenset(string.punctuation)


def without_markers(text: str) -> str:
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


def answer_right(answer: str, golds, abstained: bool = False, cited: str | None = None) -> bool:
    """Not abstained, and a normalised gold answer is a run of tokens in the first LEAD_WORDS
    words and (when ``cited``, the cited passages' text, is given) in a cited passage."""
    if abstained:
        return False
    lead = normalize_answer(" ".join(without_markers(answer).split()[:LEAD_WORDS])).split()
    where = normalize_answer(cited).split() if cited is not None else None
    return any(gold and _contains(lead, gold) and (where is None or _contains(where, gold))
               for gold in (normalize_answer(g).split() for g in golds))


def leading_span(answer: str) -> str:
    """What the answer leads with: "<span> — ..." gives the span (at most LEAD_SPAN_WORDS
    words), else the first sentence; citation markers and a "nearest passage" note removed."""
    text = without_markers(answer).removeprefix(WEAK_TEXT).strip()
    head, sep, _ = text.partition(LEAD_SEPARATOR)
    if sep and head.strip() and len(head.split()) <= LEAD_SPAN_WORDS:
        return head.strip()
    spans = sentence_spans(text)
    return text[spans[0][0]:spans[0][1]] if spans else text


def answer_words(answer: str) -> int:
    return len(without_markers(answer).split())


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


def fact_form(text: str) -> str:
    return " ".join(text.split()).lower()


def holds(text: str, qa: QA) -> bool:
    """True when ``text`` holds every expect fact and (if any are given) one any fact."""
    t = fact_form(text)
    return all(fact_form(f) in t for f in qa.expect) and (
        not qa.any or any(fact_form(f) in t for f in qa.any))


def same_source(source: str, gold: str) -> bool:
    return source == gold or source.endswith("/" + gold)


def covers(source: str, start: int, end: int, span: AnswerSpan) -> bool:
    """A passage covers a gold span: same document and [start, end) holds all of it."""
    return same_source(source, span.source) and start <= span.start and span.end <= end


def overlaps_half(start: int, end: int, span: tuple[int, int]) -> bool:
    """A passage [start, end) overlaps at least half of ``span``."""
    overlap = min(end, span[1]) - max(start, span[0])
    return overlap > 0 and 2 * overlap >= span[1] - span[0]
