"""Records summed up per system and split, as numbers and as text tables."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

from assistant.evaluation.data import QUESTION_TYPES
from assistant.evaluation.runner import ChangeRecord, Record, TurnRecord


def _mean(values) -> float | None:
    values = list(values)
    return round(sum(values) / len(values), 3) if values else None


def _latency(records) -> dict:
    secs = sorted(r.seconds for r in records)
    return {
        "latency_p50_s": round(statistics.median(secs), 2) if secs else None,
        "latency_p95_s": round(secs[max(0, int(0.95 * len(secs)) - 1)], 2) if secs else None,
    }


def by_type(records: list[Record]) -> dict:
    """Answers right per question type, over answerable questions: {type: {n, answers_right}}."""
    ans = [r for r in records if not r.unanswerable]
    return {t: {"n": len(rs), "answers_right": _mean(bool(r.right) for r in rs)}
            for t in QUESTION_TYPES if (rs := [r for r in ans if r.qtype == t])}


def summarize_records(records: list[Record], k: int, sources_indexed: bool = True) -> dict:
    """The headline numbers for a list of records (see the module docstring)."""
    ans = [r for r in records if not r.unanswerable]
    una = [r for r in records if r.unanswerable]
    stating = [r for r in ans if r.stated]
    generated = [r for r in ans if r.mode == "generate"]
    scored = [r for r in ans if r.em is not None]
    given = [r.words for r in records if not r.abstained]
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
        "exact_match": _mean(r.em for r in scored),
        "f1": _mean(r.f1 for r in scored),
        "answer_words_p50": statistics.median(given) if given else None,
        "answer_words_mean": round(statistics.mean(given), 1) if given else None,
        "citation_support": _mean(r.supported / r.stated for r in stating),
        "generated": len(generated),
        "citation_support_generated": _mean(r.supported / r.stated for r in generated if r.stated),
        "abstained_unanswerable": _mean(r.abstained for r in una),
        "abstained_left_out": _mean(r.abstained for r in una if r.kind == "left-out"),
        "abstained_deleted": _mean(r.abstained for r in una if r.kind == "deleted"),
        "wrong_abstentions": _mean(r.abstained for r in ans),
        **_latency(records),
    }
    out["by_type"] = by_type(records)
    return out


def summarize_changes(records: list[ChangeRecord]) -> dict:
    """The headline numbers for changes of subject (see the module docstring)."""
    return {
        "subject_changes": len(records),
        "after_turns": records[0].depth if records else None,
        "answers_right_after_change": _mean(r.right for r in records),
        "answers_right_asked_alone": _mean(r.right_alone for r in records),
        "cites_new_story": _mean(r.new for r in records),
        "cites_new_story_alone": _mean(r.new_alone for r in records),
        "cites_old_story": _mean(r.old for r in records),
        "abstained_after_change": _mean(r.abstained for r in records),
        **_latency(records),
    }


def summarize_turns(records: list[TurnRecord], k: int) -> dict:
    """The headline numbers for conversation turns (see the module docstring)."""
    first = [r for r in records if r.turn == 1]
    follow = [r for r in records if r.turn > 1 and r.kind != "standalone"]
    standalone = [r for r in records if r.kind == "standalone"]
    spanned = [r for r in follow if r.hit is not None]
    rewrites = [r for r in follow if r.rewritten]
    return {
        "conversations": len({r.conversation for r in records}),
        "turns": len(records),
        "followup_turns": len(follow),
        f"first_hit@{k}": _mean(r.hit for r in first if r.hit is not None),
        f"followup_hit@{k}": _mean(r.hit for r in spanned),
        f"followup_hit@{k}_raw": _mean(r.raw_hit for r in spanned),
        "answers_right_first": _mean(r.right for r in first if r.right is not None),
        "answers_right_followup": _mean(r.right for r in follow if r.right is not None),
        "scored_first": sum(r.right is not None for r in first),
        "scored_followup": sum(r.right is not None for r in follow),
        "abstained_first": _mean(r.abstained for r in first if r.kind != "unknown"),
        "abstained_followup": _mean(r.abstained for r in follow if r.kind != "unknown"),
        "abstained_unknown": _mean(r.abstained for r in records if r.kind == "unknown"),
        "rewritten_followups": _mean(bool(r.rewritten) for r in follow),
        "long_rewrites": _mean(r.long_rewrite for r in rewrites),
        "standalone_turns": len(standalone),
        "standalone_rewritten": _mean(bool(r.rewritten) for r in standalone),
        "answers_right_standalone": _mean(r.right for r in standalone if r.right is not None),
        **_latency(records),
    }


@dataclass
class Report:
    """Summaries per system and split, with every record."""

    k: int
    summaries: dict = field(default_factory=dict)  # system -> split -> summary
    records: dict = field(default_factory=dict)  # system -> [Record | TurnRecord]

    def add(self, system: str, records: list, sources_indexed: bool = True) -> None:
        self.records[system] = records
        if records and isinstance(records[0], TurnRecord):
            def summary(rs):
                return summarize_turns(rs, self.k)
        elif records and isinstance(records[0], ChangeRecord):
            summary = summarize_changes
        else:
            def summary(rs):
                return summarize_records(rs, self.k, sources_indexed)
        splits = sorted({r.split for r in records})
        self.summaries[system] = {s: summary([r for r in records if r.split == s]) for s in splits}
        self.summaries[system]["all"] = summary(records)

    def to_dict(self) -> dict:
        return {"k": self.k, "summaries": self.summaries,
                "records": {s: [asdict(r) for r in rs] for s, rs in self.records.items()}}

    def _columns(self) -> list[tuple[str, str]]:
        """(system, split) pairs; "all" only when a system has more than one split."""
        return [(system, split) for system, by_split in self.summaries.items() for split in by_split
                if split != "all" or len(by_split) > 2]

    def table(self) -> str:
        """A text table: one row per metric, one column per system and split (rows with no
        value anywhere are left out)."""
        columns = self._columns()
        metrics = [m for m, v in next(iter(next(iter(self.summaries.values())).values())).items()
                   if not isinstance(v, dict)]
        rows = [["metric"] + [f"{system} [{split}]" for system, split in columns]]
        for m in metrics:
            values = [self.summaries[system][split].get(m) for system, split in columns]
            if all(v is None for v in values):
                continue
            rows.append([m] + ["-" if v is None else str(v) for v in values])
        return _format(rows)

    def type_table(self) -> str:
        """Answers right per question type (with the number of questions), or "" when none."""
        columns = self._columns()
        if not all("by_type" in self.summaries[s][p] for s, p in columns):
            return ""
        rows = [["answers right by type"] + [f"{system} [{split}]" for system, split in columns]]
        for t in QUESTION_TYPES:
            cells = [self.summaries[s][p]["by_type"].get(t) for s, p in columns]
            if any(cells):
                rows.append([t] + ["-" if not c else f"{c['answers_right']} (n={c['n']})" for c in cells])
        return _format(rows) if len(rows) > 1 else ""


def _format(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
