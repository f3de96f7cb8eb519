"""SQuADShifts (eval/data/squadshifts): crowd-written questions on Wikipedia, Reddit and reviews.

The Wikipedia articles are for evaluation only: a dev half to tune on and a test half to report,
split by article. Reddit posts and product reviews are split by post and by product into a part
a reader may be trained on and a dev part kept out of it. Each becomes documents and a question
file in the eval format (docs/evaluation.md)::

    python -m assistant.evaluation.shifts wiki /tmp/wiki       # /tmp/wiki/docs/*.txt + wiki.jsonl

Same data and seed, byte-identical output.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from pathlib import Path

from assistant.evaluation.datasets import SEED, SquadSizes, convert_squad, write_set

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assistant.evaluation.shifts",
                                     description="Write a SQuADShifts set as documents and an eval file.")
    parser.add_argument("set", choices=sorted(FILES))
    parser.add_argument("out", type=Path, help="output folder: docs/ and SET.jsonl")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    try:
        documents, rows = evaluation_set(args.set, args.seed)
        write_set(args.out, documents, f"{args.set}.jsonl", rows)
    except (ValueError, OSError) as exc:
        print(f"shifts: {exc}", file=sys.stderr)
        return 2
    kinds = {}
    for r in rows:
        kinds[(r["split"], r["kind"])] = kinds.get((r["split"], r["kind"]), 0) + 1
    print(f"{len(documents)} documents in {args.out / 'docs'}, {len(rows)} questions in "
          f"{args.out / (args.set + '.jsonl')} (" + ", ".join(f"{s} {k}: {n}" for (s, k), n in kinds.items()) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
