"""Answers rated in the chat, as a QA file ``assistant eval`` runs (docs/ui.md).

- rated good, answered: the question must again be answered with what it led with (its lead, else
  the sentence it quoted), from the same documents;
- rated good, abstained: the question must again be refused (``unanswerable``);
- rated wrong, with the user's correction: the answer must hold the correction;
- rated wrong without a correction: left out (nothing says what is right), and counted.

Each row keeps where it came from (conversation, turn, rating, the cited documents' versions).
"""

from __future__ import annotations

import json
from pathlib import Path

from assistant.conversations import Rating


def feedback_rows(ratings: list[Rating], collection: str) -> tuple[list[dict], int]:
    """QA rows from the ratings of answers about ``collection``; returns (rows, left out)."""
    rows, left_out = [], 0
    for r in ratings:
        if collection not in r.collections:
            continue  # asked of other collections only
        row = _row(r, collection)
        if row is None:
            left_out += r.rating < 0  # a down-rating without a correction (not another collection's answer)
        else:
            rows.append(row)
    return rows, left_out


def _row(r: Rating, collection: str) -> dict | None:
    answer = r.answer
    origin = {"conversation": r.conversation, "turn": r.n, "rating": r.rating,
              "collections": list(r.collections), "versions": r.versions, "answer": answer.answer}
    mine = [c for c in answer.cited if (c.collection or collection) == collection]
    sources = sorted({c.source for c in mine})
    if r.rating < 0:
        if not r.correction:
            return None
        return {"q": r.question, "answers": [r.correction], "split": "test", "feedback": origin}
    if answer.abstained:
        return {"q": r.question, "unanswerable": True, "split": "test", "feedback": origin}
    if not mine:
        return None  # answered from another collection asked with it: a test of that one
    said = (answer.lead if len(mine) == len(answer.cited) else None) or _quoted(mine)
    if not said:
        return None
    return {"q": r.question, "source": sources, "answers": [said], "split": "test", "feedback": origin}


def _quoted(cited) -> str | None:
    """The first sentence the answer quoted from these passages (the first one's first highlight)."""
    for c in cited:
        for start, end in c.highlights:
            return " ".join(c.text[start:end].split())
    return None


def write_rows(path: Path, rows: list[dict]) -> None:
    """Write the rows as JSON Lines, whole or not at all."""
    part = path.with_name(path.name + ".part")
    part.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    part.replace(path)
