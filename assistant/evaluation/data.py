"""The question and conversation files an evaluation reads (formats: docs/evaluation.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


QUESTION_TYPES = ("who", "when", "where", "how many", "what", "why", "other")


KINDS = ("answerable", "left-out", "deleted")


TURN_KINDS = ("answerable", "yes/no", "unknown", "standalone")  # standalone: about another document, names its subject


@dataclass(frozen=True)
class AnswerSpan:
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
    spans: tuple[AnswerSpan, ...] = ()
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
    spans = tuple(AnswerSpan(s["source"], int(s["start"]), int(s["end"])) for s in row.get("spans") or [])
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
