"""Tune how the reader joins the evidence (assistant/pipeline/read_evidence.py) on dev questions.

Reads eval files of dev questions (``python -m assistant.evaluation.shifts wiki|reddit|reviews``),
indexes their documents, and for each dev question retrieves the candidate passages, scores
them by the rules and has the reader read them as the assistant does. Then:

- how often the best sentence holds a gold answer: the rules' ranking, and the rules' plus the
  reader's (``READ_RANK``, swept);
- how often the span the reader finds in it is exactly a gold answer, and leads (``LEAD_MARGIN``, swept);
- the share of answerable questions refused and of unanswerable ones (article or paragraph not
  indexed) refused: the rules alone, and with the reader rescuing at ``ANSWER_MARGIN`` (swept).

    .venv/bin/python -m assistant.evaluation.shifts wiki /tmp/shifts/wiki    # and reddit, reviews
    .venv/bin/python eval/fit_reader.py /tmp/shifts/wiki/wiki.jsonl:/tmp/shifts-idx/wiki \\
        /tmp/shifts/reddit/reddit.jsonl:/tmp/shifts-idx/reddit --save /tmp/fit-reader.json
    .venv/bin/python eval/fit_reader.py --rows /tmp/fit-reader.json   # the figures again, no reading

Only the dev split is read (the Wikipedia test half never).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant import Assistant, Settings  # noqa: E402
from assistant.evaluation.data import load_qa  # noqa: E402
from assistant.evaluation.metrics import exact_match, normalize_answer  # noqa: E402
from assistant.pipeline import evidence as rules  # noqa: E402
from assistant.pipeline.answering import CANDIDATE_PASSAGES  # noqa: E402
from assistant.pipeline.read_evidence import READ_RANK, UNREAD_MARGIN, combined, focus, log_odds  # noqa: E402


def holds_gold(text: str, golds: list[str]) -> bool:
    said = f" {normalize_answer(text)} "
    return any(g.strip() and f" {normalize_answer(g)} " in said for g in golds)


def describe(bot: Assistant, docs_by_id: dict, qa) -> dict:
    """The rules' and the reader's view of one question: every candidate sentence with its rule
    score, the reader's margin and span in it, and whether it holds a gold answer."""
    answering = bot.answering
    hits = answering.retriever.search(qa.q, CANDIDATE_PASSAGES)
    passages = answering.passages(hits, docs_by_id)
    texts = [p.text for p in passages]
    ev = rules.evidence(qa.q, passages, answering.idf, answering.similarity(qa.q))
    reads = answering.reader.read(qa.q, texts, focus(ev, texts)) if hits else None
    candidates = []
    for s in ev.sentences:
        r = reads.within(s.hit, s.start, s.end) if reads else None
        candidates.append([s.score, None if r is None else r.margin, holds_gold(s.text, qa.answers),
                           None if r is None else r.text,
                           bool(r) and any(exact_match(r.text, g) for g in qa.answers)])
    best = reads.best() if reads else []
    return {"q": qa.q, "unanswerable": qa.unanswerable, "answers": qa.answers,
            "rule_conf": ev.confidence, "missing": bool(ev.missing),
            "margin": best[0].margin if best else None, "candidates": candidates}


def collect(pairs: list[str]) -> list[dict]:
    rows = []
    for pair in pairs:
        qa_file, index, *docs_dir = pair.split(":")
        qas = [q for q in load_qa(Path(qa_file)) if q.split == "dev"]
        bot = Assistant(Settings.from_env(index_dir=Path(index), backend="none", mode="extractive"))
        docs = Path(docs_dir[0]) if docs_dir else Path(qa_file).parent / "docs"
        bot.ingest([docs])
        docs_by_id = {d.doc_id: d for d in bot.documents()}
        name = Path(qa_file).stem
        for qa in qas:
            row = describe(bot, docs_by_id, qa)
            row["set"] = name
            rows.append(row)
        print(f"{name}: {len(qas)} dev questions read", file=sys.stderr)
    return rows


def report(rows: list[dict], threshold: float) -> dict:
    out = {}
    for name in sorted({r["set"] for r in rows}) + ["all"]:
        part = [r for r in rows if name in ("all", r["set"])]
        ans = [r for r in part if not r["unanswerable"]]
        unans = [r for r in part if r["unanswerable"]]

        def conf(r, w):
            if not w:
                return r["rule_conf"]
            return r["rule_conf"] if r["margin"] is None else combined(r["rule_conf"], r["margin"])

        def answers(r, w):
            return not r["missing"] and conf(r, w) >= threshold

        out[name] = {
            "answerable": len(ans), "unanswerable": len(unans),
            "best_sentence_right_rules": _mean(bool(r["candidates"]) and r["candidates"][0][2] for r in ans),
            "best_sentence_right_reader": _mean(_pick(r, READ_RANK)[2] for r in ans),
            "span_exact": _mean(_pick(r, READ_RANK)[4] for r in ans),
            "wrong_abstentions_rules": _mean(not answers(r, False) for r in ans),
            "unanswerable_refused_rules": _mean(not answers(r, False) for r in unans),
            "wrong_abstentions_with_reader": _mean(not answers(r, True) for r in ans),
            "unanswerable_refused_with_reader": _mean(not answers(r, True) for r in unans),
            # the missing-names rule: answerable questions it refuses, unanswerable ones only it refuses
            "missing_refuses_answerable": _mean(r["missing"] for r in ans),
            "missing_alone_refuses_unanswerable": _mean(r["missing"] and conf(r, True) >= threshold for r in unans),
        }
    return out


def _pick(row: dict, rank: float, unread: float = UNREAD_MARGIN) -> list:
    """The candidate the assistant quotes with ranking weight ``rank`` (as read_evidence does)."""
    if not row["candidates"]:
        return [0.0, None, False, None, False]
    return max(row["candidates"], key=lambda c: log_odds(c[0]) + rank * (unread if c[1] is None else c[1]))


def _answers(row: dict, threshold: float, answer_margin: float) -> bool:
    """Whether the assistant answers, the reader's margin rescuing at ``answer_margin``."""
    if row["missing"]:
        return False
    rescued = row["margin"] is not None and row["rule_conf"] > 0 and row["margin"] >= answer_margin
    return row["rule_conf"] >= threshold or rescued


def sweeps(rows: list[dict], threshold: float = rules.ANSWER_THRESHOLD) -> dict:
    """Per dev set: refusals at several rescuing margins (``ANSWER_MARGIN``), how often the span
    would lead and be exactly right at several lead margins, and how often the best sentence
    holds the answer at several ranking weights (``READ_RANK``)."""
    out = {}
    for name in sorted({r["set"] for r in rows}):
        part = [r for r in rows if r["set"] == name and r["margin"] is not None]
        ans = [r for r in part if not r["unanswerable"]]
        unans = [r for r in part if r["unanswerable"]]
        out[name] = {
            "answer_margin": {m: [_mean(not _answers(r, threshold, m) for r in ans),
                                  _mean(not _answers(r, threshold, m) for r in unans)]
                              for m in (6.0, 7.0, 8.0, 9.0, 10.0, 12.0, 99.0)},
            "lead_margin": {m: [_mean(_pick(r, READ_RANK)[1] is not None and _pick(r, READ_RANK)[1] >= m for r in ans),
                                _mean(_pick(r, READ_RANK)[1] is not None and _pick(r, READ_RANK)[1] >= m
                                      and _pick(r, READ_RANK)[4] for r in ans)]
                            for m in (-2.0, 0.0, 2.0, 4.0)},
            "read_rank (best sentence right)": {k: _mean(_pick(r, k)[2] for r in ans)
                                                for k in (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0)},
        }
    return out


def _mean(values) -> float | None:
    values = list(values)
    return round(sum(values) / len(values), 3) if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pairs", nargs="*", help="QA_FILE:INDEX_DIR[:DOCS_DIR], one per dev set "
                        "(documents by default in the QA file's folder's docs/)")
    parser.add_argument("--save", type=Path, help="write the rows and the report here (JSON)")
    parser.add_argument("--rows", type=Path, help="read the rows saved by --save instead of collecting them")
    parser.add_argument("--threshold", type=float, default=rules.ANSWER_THRESHOLD)
    args = parser.parse_args()
    rows = json.loads(args.rows.read_text())["rows"] if args.rows else collect(args.pairs)
    result = {"report": report(rows, args.threshold),
              "sweeps (answer_margin: [wrong abstentions, unanswerable refused]; lead_margin: [led, led and exact])":
              sweeps(rows)}
    print(json.dumps(result, indent=1))
    if args.save:
        args.save.write_text(json.dumps({**result, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
