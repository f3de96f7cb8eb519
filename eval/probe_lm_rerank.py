"""Would the bundled LLM help choose the sentence that answers? A measurement, not shipped.

Query likelihood as a reranker: each of the best ``--top`` sentences (by the shipped
ranker, ``assistant/pipeline/evidence.py``) is scored by how much it raises the bundled
SmolLM2-135M's log-probability of the question,

    gain = log P(question | "Passage: <sentence>\\nQuestion:") - log P(question | "Question:")

and the ranker's score gets ``a`` times (gain - the best gain among them). Measured on
SQuADShifts training questions only (the pool ``eval/fit_evidence.py`` fits on; never a dev
part or a Wikipedia article), in two halves, for several ``a``:

    .venv/bin/python eval/probe_lm_rerank.py --work /tmp/fit --pool 900

Prints, per ``a``: how often the best sentence holds the answer, how often the quote
built from it is right (the gold answer within its first 30 words), and the seconds the
LLM scoring takes per question. docs/evaluation.md has the figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "eval"))

from assistant.pipeline import compose as an, evidence as ev  # noqa: E402
from assistant.pipeline.answering import CANDIDATE_PASSAGES  # noqa: E402
from assistant.evaluation import answer_right  # noqa: E402
from assistant.llm.gguf import prepared_model_path  # noqa: E402
from fit_evidence import describe, labelled, open_pool, pool_arguments  # noqa: E402


class QuestionLikelihood:
    """log P(question | prefix) under the bundled model (llama.cpp, all logits kept)."""

    def __init__(self) -> None:
        from llama_cpp import Llama

        self.llm = Llama(model_path=str(prepared_model_path()), n_ctx=1024, n_threads=2, n_batch=512,
                         logits_all=True, seed=0, verbose=False)

    def __call__(self, prefix: str, question: str) -> float:
        a = self.llm.tokenize(prefix.encode(), add_bos=True, special=False)
        b = self.llm.tokenize((" " + question).encode(), add_bos=False, special=False)[:64]
        a = a[-(1000 - len(b)):]
        self.llm.reset()
        self.llm.eval(a + b)
        logits = np.asarray(self.llm.scores[len(a) - 1:len(a) + len(b) - 1], dtype=np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return float(logp[np.arange(len(b)), b].sum())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    pool_arguments(parser, 900, "training questions to measure on")
    parser.add_argument("--top", type=int, default=5, help="sentences the LLM rescores per question")
    args = parser.parse_args(argv)

    bot, docs_by_id, pool = open_pool(args)
    likelihood = QuestionLikelihood()

    measured, seconds = [], []
    for q in pool:
        hits = bot.retriever.search(q["q"], CANDIDATE_PASSAGES)
        rows = labelled(describe(bot, docs_by_id, q["q"], hits, True), q)
        if not rows:
            continue
        texts = [p.text for p in bot.answering.passages(hits, docs_by_id)]
        scores = np.array([ev.logistic(ev.RANK_WEIGHTS, r["features"]) for r, _ in rows])
        logit = np.log(scores / (1 - scores))
        top = [int(j) for j in np.argsort(-logit, kind="stable")[:args.top]]
        started = time.perf_counter()
        alone = likelihood("Question:", q["q"])
        gains = {j: likelihood(f"Passage: {rows[j][0]['text']}\nQuestion:", q["q"]) - alone for j in top}
        seconds.append(time.perf_counter() - started)
        measured.append((q, rows, texts, logit, gains))

    half = {q["source"] for q, *_ in measured}
    half = set(sorted(half)[::2])
    for a in (0.0, 0.1, 0.2, 0.3, 0.5):
        out = {"first half": [0, 0, 0], "second half": [0, 0, 0]}
        for q, rows, texts, logit, gains in measured:
            s = logit.copy()
            best_gain = max(gains.values())
            for j, g in gains.items():
                s[j] += a * (g - best_gain)
            order = np.argsort(-s, kind="stable")
            sentences = [ev.Sentence(r["hit"], r["start"], r["end"], r["text"], float(1 / (1 + np.exp(-s[j]))),
                                     r["span"], r["label"], r["before"], r["features"])
                         for j in order for r in [rows[j][0]]]
            text, _ = an.quote(ev.Evidence(ev.analyse(q["q"]), sentences, 1.0), texts)
            tally = out["first half" if q["source"] in half else "second half"]
            tally[0] += 1
            tally[1] += rows[order[0]][1]
            tally[2] += answer_right(text, q["answers"])
        print(f"a={a}: " + "; ".join(f"{name} (n={n}): best sentence holds the answer {held / n:.3f}, "
                                     f"answers right {right / n:.3f}" for name, (n, held, right) in out.items()))
    print(f"LLM scoring per question: p50 {np.percentile(seconds, 50):.3f} s, "
          f"p95 {np.percentile(seconds, 95):.3f} s ({args.top} sentences)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
