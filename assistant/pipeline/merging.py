"""One answer from the answers of several collections asked at once.

Each collection answers on its own (its own retrieval, reading and abstention); the merged answer
puts the collections that answered first, the one whose best cited passage scored highest first,
each part headed by its collection's name, and numbers every passage once, in that order, with the
``[n]`` markers renumbered to match. When every collection abstains, so does the merged answer.
"""

from __future__ import annotations

import dataclasses
import re

from assistant.types import Answer

MARKER = re.compile(r"\[(\d+)\]")


def stamped(answer: Answer, collection: str) -> Answer:
    """``answer`` with every citation naming ``collection``."""
    citations = [dataclasses.replace(c, collection=collection) for c in answer.citations]
    return dataclasses.replace(answer, citations=citations)


def _best_score(answer: Answer) -> float:
    return max((c.score for c in answer.cited), default=0.0)


def merge_answers(question: str, answers: list[tuple[str, Answer]]) -> Answer:
    """The answers of several collections, given as (collection, answer) in the order asked, as one."""
    if len(answers) == 1:
        return answers[0][1]
    answered = [(name, a) for name, a in answers if not a.abstained]
    answered.sort(key=lambda pair: -_best_score(pair[1]))  # stable: ties keep the order asked
    rest = [(name, a) for name, a in answers if a.abstained]
    ordered = answered + rest
    citations, parts = [], []
    for name, answer in ordered:
        numbers = {}
        for c in answer.citations:
            numbers[c.n] = len(citations) + 1
            citations.append(dataclasses.replace(c, n=numbers[c.n], cited=c.cited and not answer.abstained))
        if not answer.abstained:
            text = MARKER.sub(lambda m: f"[{numbers.get(int(m.group(1)), m.group(1))}]", answer.answer)
            parts.append(f"{name}: {text}" if len(answered) > 1 else text)
    first = (answered or rest)[0][1]
    text = "\n\n".join(parts) if answered else first.answer
    return dataclasses.replace(first, question=question, answer=text, citations=citations,
                               abstained=not answered)
