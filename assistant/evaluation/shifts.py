"""SQuADShifts (eval/data/squadshifts): crowd-written questions on Wikipedia, Reddit and reviews.

The Wikipedia articles are for evaluation only: a dev half to tune on and a test half to report,
split by article. Reddit posts and product reviews are split by post and by product into a part
a reader may be trained on and a dev part kept out of it. Each becomes documents and a question
file in the eval format (docs/evaluation.md)::

    python -m assistant.evaluation.shifts wiki /tmp/wiki       # /tmp/wiki/docs/*.txt + wiki.jsonl
    python -m assistant.evaluation.shifts followups /tmp/fu    # conversations over the same articles

Same data and seed, byte-identical output.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import re
import sys
from pathlib import Path

from assistant.evaluation.datasets import (SEED, SquadSizes, article_halves, convert_squad, gold_spans,
                                           squad_document, write_set)
from assistant.evaluation.metrics import question_type

DATA = Path(__file__).resolve().parents[2] / "eval" / "data" / "squadshifts"
FILES = {
    "wiki": "squadshifts_new_wiki_24_articles.json.gz",
    "reddit": "squadshifts_reddit_all.json.gz",
    "reviews": "squadshifts_amazon_reviews_338_products.json.gz",
}
EVALUATION_ONLY = frozenset({"wiki"})  # never trained on, whatever asks
DEV_SHARE = 0.2  # of the posts / products, kept out of training
# Questions per split. Wikipedia: one article of each half left out of the index (its questions are
# unanswerable), and paragraphs deleted from others. A Reddit post is one paragraph, so it has none
# to delete: more posts are left out instead.
SIZES = {
    "wiki": SquadSizes(answerable=240, deleted=30, left_out=30, left_out_articles=1),
    "reddit": SquadSizes(answerable=240, deleted=0, left_out=30, left_out_articles=8),
    "reviews": SquadSizes(answerable=240, deleted=30, left_out=30, left_out_articles=2),
}


def load_articles(name: str, data: Path = DATA) -> list[dict]:
    """The articles of one set, in file order; each Reddit post is an article of its own.

    Raises:
        ValueError: an unknown set, or a file that is missing or not SQuAD JSON.
    """
    if name not in FILES:
        raise ValueError(f"no SQuADShifts set {name!r}; choose one of {', '.join(FILES)}")
    path = Path(data) / FILES[name]
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            articles = json.load(f)["data"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot read {path} as gzipped SQuAD JSON ({exc}); it ships in the repository") from exc
    if name != "reddit":
        return articles
    posts = [p for a in articles for p in a["paragraphs"]]
    return [{"title": f"Reddit post {n:04d}", "paragraphs": [p]} for n, p in enumerate(posts, 1)]


def dev_and_training(name: str, seed: int = SEED, data: Path = DATA) -> tuple[list[dict], list[dict]]:
    """(dev part, training part) of Reddit or reviews: ``DEV_SHARE`` of the posts or products,
    picked by a seeded hash of their titles, are dev.

    Raises:
        ValueError: the set is for evaluation only (the Wikipedia articles).
    """
    if name in EVALUATION_ONLY:
        raise ValueError(f"the {name} set is for evaluation only: it is never split for training")
    articles = load_articles(name, data)
    ranked = sorted(articles, key=lambda a: hashlib.sha256(f"{seed}:{a['title']}".encode()).hexdigest())
    cut = round(DEV_SHARE * len(ranked))
    dev = {a["title"] for a in ranked[:cut]}
    return [a for a in articles if a["title"] in dev], [a for a in articles if a["title"] not in dev]


def training_articles(name: str, seed: int = SEED, data: Path = DATA) -> list[dict]:
    """What a reader may be trained on: the training part of Reddit or reviews; refuses the rest."""
    return dev_and_training(name, seed, data)[1]


def evaluation_set(name: str, seed: int = SEED, data: Path = DATA) -> tuple[dict[str, str], list[dict]]:
    """(documents by file name, question rows) for one set: the Wikipedia halves (dev and test),
    or the dev part of Reddit or reviews (split ``dev``)."""
    if name in EVALUATION_ONLY:
        return convert_squad({"data": load_articles(name, data)}, SIZES[name], seed)
    dev, _ = dev_and_training(name, seed, data)
    return convert_squad({"data": dev}, SIZES[name], seed, splits={"dev": list(range(len(dev)))})


FOLLOWUPS_PER_SPLIT = 60  # pair conversations per Wikipedia half, at most PAIRS_PER_ARTICLE per article
PAIRS_PER_ARTICLE = 4
# What may stand right before a subject made a pronoun: the start, or a verb or preposition ("does
# Rotterdam have", "in the Senate"), never an adjective or an article ("liquid precipitation").
_BEFORE_SUBJECT = re.compile(r"(?:^|\b(?:is|was|are|were|does|did|do|has|had|have|can|could|will|would|"
                             r"should|of|in|on|at|to|for|from|by|with|about|into|than|that|which)\s+)$"
                             r"(?<!type of )(?<!kind of )(?<!form of )(?<!sort of )(?<!types of )(?<!kinds of )",
                             re.I)
# ... and right after it: the end, punctuation, or a verb or function word, so that the subject is
# the whole noun phrase ("Rotterdam is", "the Senate typically sits"), not a modifier ("Latin words").
_AFTER_SUBJECT = re.compile(r"\s*(?:$|[?,.;:)]|(?:is|was|are|were|has|had|have|do|does|did|can|could|will|"
                            r"would|should|may|might|in|on|at|to|for|from|by|with|about|over|during|after|"
                            r"before|since|and|or|\w+ly|\w+ed|\w+es)\b)", re.I)


def subject(title: str) -> str:
    """What an article is about, as a question names it: its title without a qualifier in brackets."""
    return re.sub(r"\s*\(.*\)$", "", title.replace("_", " ")).strip()


def with_pronoun(question: str, name: str) -> str | None:
    """``question`` with its subject ``name`` ("the Senate", "Rotterdam's") replaced by a pronoun
    ("it", "its"); None when it does not name it once, as a whole noun phrase."""
    pattern = re.compile(rf"(?<![\w-])(?:the\s+)?{re.escape(name)}('s)?(?![\w-])", re.I)
    found = list(pattern.finditer(question))
    if (len(found) != 1 or not _BEFORE_SUBJECT.search(question[:found[0].start()])
            or not (found[0].group(1) or _AFTER_SUBJECT.match(question[found[0].end():]))):  # its + noun
        return None
    pronoun = "its" if found[0].group(1) else "it"
    if found[0].start() == 0:
        pronoun = pronoun.capitalize()
    return question[:found[0].start()] + pronoun + question[found[0].end():]


def _turn(n: int, question: str, answers: list[str], span: dict | None, kind: str) -> dict:
    return {"turn": n, "q": question, "answers": answers, "span": span, "qtype": question_type(question),
            "kind": kind}


def _pairs(article: dict, offset: list[int]) -> list[tuple[dict, dict]]:
    """(first turn, follow-up turn) pairs of one article: two questions about one paragraph that
    both name the article's subject, the second with the subject made a pronoun."""
    name, out = subject(article["title"]), []
    for p, para in enumerate(article["paragraphs"]):
        named = []
        for qa in para["qas"]:
            golds = gold_spans(para["context"], qa["answers"])
            if golds and with_pronoun(qa["question"], name):
                start, answer = offset[p] + golds[0][1], golds[0][0]
                named.append((qa["question"].strip(), [g for g, _ in golds],
                              {"start": start, "end": start + len(answer)}))
        for (q1, a1, s1), (q2, a2, s2) in zip(named[0::2], named[1::2]):
            out.append((_turn(1, q1, a1, s1, "answerable"), _turn(2, with_pronoun(q2, name), a2, s2, "answerable")))
    return out


def followup_set(seed: int = SEED, data: Path = DATA) -> tuple[dict[str, str], list[dict]]:
    """Conversations over the Wikipedia articles (all 24 indexed, whole), split by article as the
    Wikipedia set is: a question that names its subject, then one about the same paragraph with the
    subject made a pronoun; and a third turn, a question about another article of the same half that
    names its own subject (``standalone``: it must not be rewritten)."""
    articles = load_articles("wiki", data)
    documents, offsets = {}, {}
    for i, a in enumerate(articles):
        documents[f"{a['title']}.txt"], offsets[i] = squad_document(a["title"], [p["context"] for p in a["paragraphs"]])
    rows = []
    for split, ids in article_halves(articles).items():
        rng = random.Random(f"{seed}:{split}:followups")
        per_article = {i: rng.sample(found, min(PAIRS_PER_ARTICLE, len(found))) for i in ids
                       if (found := _pairs(articles[i], offsets[i]))}
        order = sorted(per_article)
        chosen = [(i, pair) for i in order for pair in per_article[i]][:FOLLOWUPS_PER_SPLIT]
        for n, (i, (first, second)) in enumerate(chosen):
            j = next((x for x in order if x > i), order[0])  # the next article of the half, round
            third = {**per_article[j][0][0], "turn": 3, "span": None, "kind": "standalone"}
            rows.append({"conversation": f"{split}-{n:03d}", "source": f"{articles[i]['title']}.txt",
                         "split": split, "about_third": f"{articles[j]['title']}.txt",
                         "turns": [first, second, third]})
    return documents, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assistant.evaluation.shifts",
                                     description="Write a SQuADShifts set as documents and an eval file.")
    parser.add_argument("set", choices=sorted(FILES) + ["followups"])
    parser.add_argument("out", type=Path, help="output folder: docs/ and SET.jsonl")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    try:
        if args.set == "followups":
            documents, rows = followup_set(args.seed)
        else:
            documents, rows = evaluation_set(args.set, args.seed)
        write_set(args.out, documents, f"{args.set}.jsonl", rows)
    except (ValueError, OSError) as exc:
        print(f"shifts: {exc}", file=sys.stderr)
        return 2
    if args.set == "followups":
        print(f"{len(documents)} documents in {args.out / 'docs'}, {len(rows)} conversations in "
              f"{args.out / 'followups.jsonl'}")
        return 0
    kinds = {}
    for r in rows:
        kinds[(r["split"], r["kind"])] = kinds.get((r["split"], r["kind"]), 0) + 1
    print(f"{len(documents)} documents in {args.out / 'docs'}, {len(rows)} questions in "
          f"{args.out / (args.set + '.jsonl')} (" + ", ".join(f"{s} {k}: {n}" for (s, k), n in kinds.items()) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
