"""Answer quality as numbers: retrieval, answers, citation support, abstention, latency.

QA files are JSON Lines: ``{"q": str, "source": str|list|null, "expect": [str],
"any": [str], "unanswerable": bool, "split": "dev"|"test"}``.

How each number is computed (facts are compared after lower-casing and collapsing
whitespace, so "Josip\\nRodin" in a PDF matches "Josip Rodin"):

- gold passage: a passage holding every ``expect`` fact and, when ``any`` is given,
  at least one ``any`` fact. hit@1 / hit@k: a gold passage ranks first / in the k
  passages given to the answerer; MRR: mean of 1/rank of the first gold passage
  (0 when none is in the k). Over answerable questions.
- source hit@1 / hit@k: the same for the first passage from a gold ``source`` file
  (reported only when the gold files are in the index).
- answer right: not abstained, and the answer holds every ``expect`` fact and at
  least one ``any`` fact when given. Over answerable questions.
- citation support: for each answer, the gold facts it states (``expect`` and ``any``
  facts found in the answer) and the share of those found in the passages it cites;
  averaged over answers that state at least one gold fact.
- abstention: share of unanswerable questions abstained on; wrong abstentions: share
  of answerable questions abstained on.
- latency: seconds per question, wall clock, median and 95th percentile.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from assistant.answer import Answer


@dataclass(frozen=True)
class QA:
    q: str
    source: tuple[str, ...] = ()
    expect: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    unanswerable: bool = False
    split: str = "test"


def load_qa(path: Path) -> list[QA]:
    """Read a QA file; raises ValueError naming the line of a malformed entry."""
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            source = row.get("source")
            sources = tuple([source] if isinstance(source, str) else source or [])
            qa = QA(row["q"], sources, tuple(row.get("expect", [])), tuple(row.get("any", [])),
                    bool(row.get("unanswerable", False)), row.get("split", "test"))
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}:{n}: not a QA entry ({exc})") from exc
        if not qa.unanswerable and not (qa.expect or qa.any):
            raise ValueError(f"{path}:{n}: an answerable question needs expect or any facts")
        out.append(qa)
    return out


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def holds(text: str, qa: QA) -> bool:
    """True when ``text`` holds every expect fact and (if any are given) one any fact."""
    t = _norm(text)
    return all(_norm(f) in t for f in qa.expect) and (
        not qa.any or any(_norm(f) in t for f in qa.any))


@dataclass
class Record:
    """One question's outcome."""

    q: str
    split: str
    unanswerable: bool
    answer: str
    abstained: bool
    seconds: float
    gold_rank: int | None = None
    source_rank: int | None = None
    right: bool | None = None
    stated: int = 0
    supported: int = 0


def score(qa: QA, answer: Answer, seconds: float) -> Record:
    """Measure one answer against its QA entry."""
    rec = Record(qa.q, qa.split, qa.unanswerable, answer.answer, answer.abstained, seconds)
    if qa.unanswerable:
        return rec
    for c in answer.citations:
        if rec.gold_rank is None and holds(c.text, qa):
            rec.gold_rank = c.n
        if rec.source_rank is None and any(c.source == s or c.source.endswith("/" + s)
                                           for s in qa.source):
            rec.source_rank = c.n
    rec.right = not answer.abstained and holds(answer.answer, qa)
    cited = _norm(" ".join(c.text for c in answer.citations if c.cited))
    stated = [f for f in qa.expect + qa.any if _norm(f) in _norm(answer.answer)]
    rec.stated = len(stated)
    rec.supported = sum(_norm(f) in cited for f in stated)
    return rec


def evaluate(ask: Callable[[str], Answer], qas: list[QA], progress=None) -> list[Record]:
    """Ask every question and score it."""
    records = []
    for i, qa in enumerate(qas, 1):
        started = time.perf_counter()
        answer = ask(qa.q)
        records.append(score(qa, answer, time.perf_counter() - started))
        if progress:
            progress(i, len(qas), qa.q)
    return records


def _mean(values) -> float | None:
    values = list(values)
    return round(sum(values) / len(values), 3) if values else None


def summarize(records: list[Record], k: int, sources_indexed: bool = True) -> dict:
    """The headline numbers for a list of records (see the module docstring)."""
    ans = [r for r in records if not r.unanswerable]
    una = [r for r in records if r.unanswerable]
    stating = [r for r in ans if r.stated]
    secs = sorted(r.seconds for r in records)
    out = {
        "questions": len(records),
        "answerable": len(ans),
        "unanswerable": len(una),
        "hit@1": _mean(r.gold_rank == 1 for r in ans),
        f"hit@{k}": _mean(r.gold_rank is not None for r in ans),
        "mrr": _mean(1 / r.gold_rank if r.gold_rank else 0 for r in ans),
        "source_hit@1": _mean(r.source_rank == 1 for r in ans) if sources_indexed else None,
        f"source_hit@{k}": _mean(r.source_rank is not None for r in ans) if sources_indexed else None,
        "answers_right": _mean(bool(r.right) for r in ans),
        "citation_support": _mean(r.supported / r.stated for r in stating),
        "abstained_unanswerable": _mean(r.abstained for r in una),
        "wrong_abstentions": _mean(r.abstained for r in ans),
        "latency_p50_s": round(statistics.median(secs), 2) if secs else None,
        "latency_p95_s": round(secs[max(0, int(0.95 * len(secs)) - 1)], 2) if secs else None,
    }
    return out


@dataclass
class Report:
    """Summaries per system and split, with every record."""

    k: int
    summaries: dict = field(default_factory=dict)  # system -> split -> summary
    records: dict = field(default_factory=dict)  # system -> [Record]

    def add(self, system: str, records: list[Record], sources_indexed: bool) -> None:
        self.records[system] = records
        splits = sorted({r.split for r in records})
        self.summaries[system] = {s: summarize([r for r in records if r.split == s], self.k,
                                               sources_indexed) for s in splits}
        self.summaries[system]["all"] = summarize(records, self.k, sources_indexed)

    def to_dict(self) -> dict:
        return {"k": self.k, "summaries": self.summaries,
                "records": {s: [asdict(r) for r in rs] for s, rs in self.records.items()}}

    def table(self) -> str:
        """A text table: one row per metric, one column per system and split."""
        columns = [(system, split) for system, by_split in self.summaries.items() for split in by_split]
        metrics = list(next(iter(next(iter(self.summaries.values())).values())))
        head = ["metric"] + [f"{system} [{split}]" for system, split in columns]
        rows = [head]
        for m in metrics:
            row = [m]
            for system, split in columns:
                v = self.summaries[system][split][m]
                row.append("-" if v is None else str(v))
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)
