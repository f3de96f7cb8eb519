"""Refit the evidence weights (assistant/pipeline/evidence.py) on SQuADShifts training questions.

Only the training parts of the Reddit posts and product reviews are read
(``assistant.evaluation.shifts.training_articles``): never a dev part, never a Wikipedia
article, so every figure ``assistant eval`` reports on them stays unfitted.

    .venv/bin/python eval/fit_evidence.py --work /tmp/fit             # prints the tables
    .venv/bin/python eval/fit_evidence.py --work /tmp/fit --write     # and writes them

Prints the three weight tables to paste into assistant/pipeline/evidence.py, and how often the
best sentence holds the answer with them (on the fitting questions, and on a held-apart
fifth of them). The shipped tables were fitted on SQuAD v1.1 dev articles, which can no
longer be fetched (docs/evaluation.md); they are kept until a refit here beats them on dev.

Steps: index ``--articles`` posts and products, one document each; for each question
retrieve ``CANDIDATE_PASSAGES`` passages and describe every candidate sentence
(``assistant.pipeline.evidence.gather``); a sentence is right when it covers a gold answer's
offsets. Then logistic regressions (Newton's method, L2 1.0): PRESCORE (no dense
feature), RANK (all features, on the sentences production embeds), ANSWER (the best
sentence of answerable questions against unanswerable ones made from the same questions
by hiding their article, or the passages holding their answer, from retrieval).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import string
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant import Assistant, Settings  # noqa: E402
from assistant.pipeline import evidence as ev  # noqa: E402
from assistant.pipeline.answering import CANDIDATE_PASSAGES  # noqa: E402
from assistant.evaluation.datasets import gold_spans, squad_document  # noqa: E402
from assistant.evaluation.shifts import training_articles  # noqa: E402

RANK = ["coverage", "context_coverage", "bigrams", "dense", "kind", "kind_near", "rank", "coverage_gap",
        "dense_gap"]
PRESCORE = ["coverage", "context_coverage", "bigrams", "kind", "kind_near", "rank", "coverage_gap"]
ANSWER = ["coverage", "context_coverage", "dense", "bigrams", "kind", "names_near"]


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 40) -> np.ndarray:
    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-xb @ w))
        grad = xb.T @ (p - y) + l2 * np.r_[0, w[1:]]
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + l2 * np.eye(len(w))
        hess[0, 0] -= l2
        w -= np.linalg.solve(hess, grad)
    return w


def table(names: list[str], w: np.ndarray) -> dict:
    return {"bias": round(float(w[0]), 2), **{n: round(float(v), 2) for n, v in zip(names, w[1:])}}


def _norm(s: str) -> str:
    s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())


def pool_questions(articles: list[dict], docs: Path, n: int) -> list[dict]:
    """Write one document per article into ``docs``; their questions with gold offsets, ``n``
    of them (seeded)."""
    docs.mkdir(parents=True, exist_ok=True)
    out = []
    for article in articles:
        name = re.sub(r"[^\w.-]+", "_", article["title"]) + ".txt"
        text, offsets = squad_document(article["title"], [p["context"] for p in article["paragraphs"]])
        (docs / name).write_text(text, encoding="utf-8")
        for para, offset in zip(article["paragraphs"], offsets):
            for qa in para["qas"]:
                spans = [(offset + start, offset + start + len(answer))
                         for answer, start in gold_spans(para["context"], qa["answers"])]
                if spans:
                    out.append({"q": qa["question"], "source": name, "spans": spans,
                                "answers": [a["text"] for a in qa["answers"]]})
    random.Random(5).shuffle(out)
    return out[:n]


def describe(bot: Assistant, docs_by_id: dict, q: str, hits: list, dense: bool) -> list[dict]:
    passages = bot.answering.passages(hits, docs_by_id)
    _, rows = ev.gather(q, passages, bot.answering.idf, bot.answering.similarity(q) if dense else None)
    for r in rows:
        chunk = hits[r["hit"]].chunk
        r["abs"] = (docs_by_id[chunk.doc_id].source, chunk.start + r["start"], chunk.start + r["end"])
    return rows


def labelled(rows: list[dict], question: dict) -> list[tuple[dict, bool]]:
    return [(r, r["abs"][0] == question["source"] and any(r["abs"][1] <= s and e <= r["abs"][2]
                                                           for s, e in question["spans"])) for r in rows]


def matrix(rows: list[dict], names: list[str]) -> np.ndarray:
    return np.array([[r["features"].get(n, 0.0) for n in names] for r in rows])


def write(tables: dict) -> None:
    """Replace the weight tables in assistant/pipeline/evidence.py (each a one-statement dict literal)."""
    path = ROOT / "assistant" / "pipeline" / "evidence.py"
    source = path.read_text(encoding="utf-8")
    for name, weights in tables.items():
        items = [f'"{k}": {v}' for k, v in weights.items()]
        lines, line = [], f"{name} = {{"
        for item in items:
            if len(line) + len(item) + 2 > 110:
                lines.append(line.rstrip())
                line = " " * (len(name) + 4)
            line += item + ", "
        lines.append(line.rstrip(", ") + "}")
        source = re.sub(rf"^{name} = {{.*?}}\n", "\n".join(lines) + "\n", source, count=1, flags=re.S | re.M)
    path.write_text(source, encoding="utf-8")


def pool_arguments(parser: argparse.ArgumentParser, pool: int, pool_help: str) -> None:
    """The arguments naming the training sets, how many of their posts/products, a work folder
    and the pool's size."""
    parser.add_argument("--sets", nargs="+", default=["reddit", "reviews"], help="SQuADShifts training sets")
    parser.add_argument("--articles", type=int, default=600, help="posts / products indexed (seeded)")
    parser.add_argument("--work", type=Path, required=True, help="a folder for the documents and the index")
    parser.add_argument("--pool", type=int, default=pool, help=pool_help)


def open_pool(args: argparse.Namespace) -> tuple[Assistant, dict, list[dict]]:
    """The assistant over ``args.articles`` posts and products of the training parts (indexed
    first), its documents by id, and ``args.pool`` of their questions."""
    articles = [a for name in args.sets for a in training_articles(name)]  # never wiki, never a dev part
    random.Random(5).shuffle(articles)
    pool = pool_questions(articles[:args.articles], args.work / "docs", args.pool)
    bot = Assistant(Settings.from_env(index_dir=args.work / "index", backend="none", reader="off"))
    bot.ingest([args.work / "docs"])
    docs_by_id = {d.doc_id: d for d in bot.documents()}
    return bot, docs_by_id, pool


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    pool_arguments(parser, 1500, "training questions to fit on")
    parser.add_argument("--write", action="store_true", help="write the weights into assistant/pipeline/evidence.py")
    args = parser.parse_args(argv)

    bot, docs_by_id, pool = open_pool(args)
    by_source = {d.source: d.doc_id for d in docs_by_id.values()}
    print(f"{len(pool)} training questions", file=sys.stderr)

    # 1. PRESCORE: every candidate, no dense feature
    retrieved = [bot.retriever.search(q["q"], CANDIDATE_PASSAGES) for q in pool]
    pairs = [p for q, hits in zip(pool, retrieved) for p in labelled(describe(bot, docs_by_id, q["q"], hits, False), q)]
    pre = fit(matrix([r for r, _ in pairs], PRESCORE), np.array([y for _, y in pairs], float))
    ev.PRESCORE_WEIGHTS = table(PRESCORE, pre)

    # 2. RANK: the sentences production embeds (the best DENSE_CANDIDATES by PRESCORE)
    per_question = [labelled(describe(bot, docs_by_id, q["q"], hits, True), q) for q, hits in zip(pool, retrieved)]
    folds = [per_question[i::5] for i in range(5)]
    train = [p for f in folds[1:] for rows in f for p in rows]
    held = folds[0]
    w_held = fit(matrix([r for r, _ in train], RANK), np.array([y for _, y in train], float))
    allrows = [p for rows in per_question for p in rows]
    rank = fit(matrix([r for r, _ in allrows], RANK), np.array([y for _, y in allrows], float))
    ev.RANK_WEIGHTS = table(RANK, rank)

    def best(rows, w):
        scores = w[0] + matrix([r for r, _ in rows], RANK) @ w[1:]
        return rows[int(np.argmax(scores))]

    found = [rows for rows in per_question if any(y for _, y in rows)]
    top1 = np.mean([best(rows, rank)[1] for rows in found])
    held_found = [rows for rows in held if any(y for _, y in rows)]
    top1_held = np.mean([best(rows, w_held)[1] for rows in held_found])

    # 3. ANSWER: best sentences of answerable questions against hidden-answer versions of them
    positives = [best(rows, rank)[0] for rows in found]
    negatives = []
    for n, q in enumerate(pool[: len(pool) // 2]):
        own = by_source[q["source"]]
        if n % 2 == 0:  # the article is not in the index
            hits = bot.retriever.search(q["q"], CANDIDATE_PASSAGES, [d for d in docs_by_id if d != own])
        else:  # the paragraph is not: drop passages holding the answer; skip when it is said elsewhere
            hits = [h for h in bot.retriever.search(q["q"], 2 * CANDIDATE_PASSAGES)
                    if not (h.chunk.doc_id == own and any(h.chunk.start < e and s < h.chunk.end
                                                          for s, e in q["spans"]))][:CANDIDATE_PASSAGES]
            if any(_norm(a) in _norm(h.chunk.text) for a in q["answers"] for h in hits if h.chunk.doc_id == own):
                continue
        rows = describe(bot, docs_by_id, q["q"], hits, True)
        if rows:
            negatives.append(max(rows, key=lambda r: ev.logistic(ev.RANK_WEIGHTS, r["features"])))
    answer = fit(matrix(positives + negatives, ANSWER),
                 np.array([1.0] * len(positives) + [0.0] * len(negatives)))
    tables = {"PRESCORE_WEIGHTS": table(PRESCORE, pre), "RANK_WEIGHTS": table(RANK, rank),
              "ANSWER_WEIGHTS": table(ANSWER, answer)}
    print(json.dumps(tables, indent=1))
    if args.write:
        write(tables)
    print(f"best sentence holds the answer, when a candidate does: {top1:.3f} "
          f"({len(found)} questions); held-apart fifth: {top1_held:.3f}; "
          f"answerable {len(positives)} vs unanswerable {len(negatives)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
