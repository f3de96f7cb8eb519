"""Training windows for the reader from SQuADShifts' Reddit posts and product reviews; no torch here.

Each question gives one window that holds its (first) answer, labelled with the answer's tokens;
some give a window of the same passage that does not hold it, and some a window of another
post or product, both labelled "no answer" (SQuAD 2.0 style). Only the training part of a set
is read (``assistant.evaluation.shifts.training_articles``): the Wikipedia articles and the dev
parts are refused, whatever asks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from assistant.evaluation.shifts import EVALUATION_ONLY, training_articles
from assistant.pipeline.reading import Window, answer_tokens, room_for, spans_of, window

TRAINING_SETS = ("reddit", "reviews")


@dataclass(frozen=True)
class Mix:
    """How many "no answer" windows go with the answered ones: the chance that a question also
    gives a window of its own passage without the answer, and one of another passage."""

    same_passage: float = 0.5
    other_passage: float = 0.25


def check_trainable(names) -> None:
    """Raise ValueError unless every set in ``names`` may be trained on."""
    for name in names:
        if name in EVALUATION_ONLY:
            raise ValueError(f"the {name} set is for evaluation only: the reader is never trained on it")
        if name not in TRAINING_SETS:
            raise ValueError(f"no training set {name!r}; choose from {', '.join(TRAINING_SETS)}")


def passages(names=TRAINING_SETS) -> list[dict]:
    """The training paragraphs of the named sets: ``{"context", "qas", "source"}`` each."""
    check_trainable(names)
    return [{"context": p["context"], "qas": p["qas"], "source": f"{name}:{a['title']}"}
            for name in names for a in training_articles(name) for p in a["paragraphs"]]


def build(paragraphs: list[dict], encode, seed: int = 0, mix: Mix = Mix(),
          limit: int | None = None) -> list[Window]:
    """The training windows of ``paragraphs``, shuffled by ``seed``.

    Args:
        paragraphs: from :func:`passages`.
        encode: text -> (token ids, character offsets), without [CLS]/[SEP].
        limit: keep the windows of this many questions (a quick recipe), picked by ``seed``.
    """
    rng = random.Random(seed)
    encoded = [encode(p["context"]) for p in paragraphs]
    questions = [(n, qa) for n, p in enumerate(paragraphs) for qa in p["qas"] if qa.get("answers")]
    rng.shuffle(questions)
    if limit is not None:
        questions = questions[:limit]
    out: list[Window] = []
    for n, qa in questions:
        ids, offsets = encoded[n]
        q_ids = encode(qa["question"])[0]
        gold = qa["answers"][0]
        answer = answer_tokens(offsets, gold["answer_start"], gold["answer_start"] + len(gold["text"]))
        if answer is None:
            continue
        ranges = spans_of(len(ids), room_for(q_ids))
        holding = [r for r in ranges if r[0] <= answer[0] and answer[1] < r[1]]
        if not holding:  # longer than a window
            continue
        lo, hi = rng.choice(holding)
        out.append(window(q_ids, ids, lo, hi, answer))
        golds = [answer_tokens(offsets, a["answer_start"], a["answer_start"] + len(a["text"]))
                 for a in qa["answers"]]
        empty = [r for r in ranges if all(g is None or g[1] < r[0] or r[1] <= g[0] for g in golds)]
        if empty and rng.random() < mix.same_passage:
            lo, hi = rng.choice(empty)
            out.append(window(q_ids, ids, lo, hi))
        if rng.random() < mix.other_passage:
            other = rng.randrange(len(paragraphs))
            if paragraphs[other]["source"] != paragraphs[n]["source"]:
                o_ids = encoded[other][0]
                lo, hi = rng.choice(spans_of(len(o_ids), room_for(q_ids)))
                out.append(window(q_ids, o_ids, lo, hi))
    rng.shuffle(out)
    return out


def tokenizer_encoder(tokenizer):
    """``encode`` for :func:`build` from a ``tokenizers.Tokenizer``."""

    def encode(text: str):
        e = tokenizer.encode(text, add_special_tokens=False)
        return e.ids, e.offsets

    return encode
