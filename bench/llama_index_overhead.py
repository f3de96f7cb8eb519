"""What llama-index adds: ``ask()`` against ``as_query_engine().query()``, and the start-up cost.

    python -m assistant.evaluation.shifts wiki /tmp/eval/wiki   # once
    python bench/llama_index_overhead.py /tmp/eval/wiki

1. The answer path: the SQuADShifts Wikipedia dev half's questions (300; at least 200) over
   its 22 indexed articles, extractive mode (no LLM: what is timed is the assistant's own work), each
   question asked both ways, interleaved (which goes first alternates), after a warm-up. The
   overhead is the per-question difference; the engine's answer must equal ``ask``'s. The
   conversion alone (``Answer`` -> llama-index ``Response`` with its nodes) is timed too.
2. Start-up: wall time of fresh interpreters importing the CLI, the CLI plus llama-index's
   core, and the CLI plus the assistant's llama-index modules (best of 7 each).

The index is built once into ``--index`` (default under ~/.cache/doc-assistant/bench) and
reused. Prints JSON. Nothing here asserts a time: benchmarks measure, tests assert.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE = Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "doc-assistant" / "bench"))
MIN_QUESTIONS = 200
QUESTIONS = "wiki.jsonl"  # what `python -m assistant.evaluation.shifts wiki` writes
IMPORTS = {
    "cli": "import assistant.interfaces.cli",
    "cli + llama_index.core": "import assistant.interfaces.cli, llama_index.core",
    "cli + assistant.llamaindex/llms": "import assistant.interfaces.cli, assistant.llamaindex, assistant.llm.bundled",
}


def questions(squad: Path) -> list[str]:
    rows = [json.loads(line) for line in (squad / QUESTIONS).read_text().splitlines() if line.strip()]
    found = [r["q"] for r in rows if r.get("split") == "dev"]
    if len(found) < MIN_QUESTIONS:
        sys.exit(f"{squad}/{QUESTIONS} has {len(found)} dev questions; {MIN_QUESTIONS} are needed")
    return found


def summary(values_ms: list[float]) -> dict:
    ordered = sorted(values_ms)
    return {"mean_ms": round(statistics.fmean(values_ms), 3), "median_ms": round(statistics.median(values_ms), 3),
            "p10_ms": round(ordered[len(ordered) // 10], 3), "p90_ms": round(ordered[len(ordered) * 9 // 10], 3)}


def answer_path(squad: Path, index_dir: Path) -> dict:
    from assistant import Assistant, Settings
    from assistant.llamaindex import answer_response

    bot = Assistant(Settings.from_env(index_dir=index_dir, backend="none", mode="extractive"))
    report = bot.ingest([squad / "docs"])
    if report.failed:
        sys.exit(f"ingest failed: {report.failed[:3]}")
    engine = bot.as_query_engine(mode="extractive")
    asked = questions(squad)
    for q in asked[:10]:  # warm-up: models loaded, caches filled
        bot.ask(q, mode="extractive")
        engine.query(q)
    plain, engined, converted, mismatched = [], [], [], 0
    for i, q in enumerate(asked):
        def time_ask():
            started = time.perf_counter()
            answer = bot.ask(q, mode="extractive")
            plain.append((time.perf_counter() - started) * 1000)
            return answer

        def time_engine():
            started = time.perf_counter()
            response = engine.query(q)
            engined.append((time.perf_counter() - started) * 1000)
            return response

        if i % 2:
            response, answer = time_engine(), time_ask()
        else:
            answer, response = time_ask(), time_engine()
        same = response.response == answer.answer and \
            [n.node.node_id for n in response.source_nodes] == [c.chunk_id for c in answer.citations]
        mismatched += not same
        started = time.perf_counter()
        answer_response(answer)
        converted.append((time.perf_counter() - started) * 1000)
    overhead = [e - p for e, p in zip(engined, plain)]
    return {"questions": len(asked), "documents": len(bot.documents()), "mismatched_answers": mismatched,
            "ask": summary(plain), "query_engine": summary(engined), "overhead": summary(overhead),
            "conversion_only": summary(converted)}


def startup(runs: int = 7) -> dict:
    out = {}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name, code in IMPORTS.items():
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)
            times.append(time.perf_counter() - started)
        out[name] = {"best_s": round(min(times), 3), "median_s": round(statistics.median(times), 3)}
    check = "import sys, assistant.interfaces.cli; print(any(m.startswith('llama_index') for m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=ROOT, env=env)
    out["cli_imports_llama_index"] = loaded.stdout.strip() == "True"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("squad", type=Path, nargs="?", default=Path("/tmp/eval/wiki"),
                        help=f"a folder made by `python -m assistant.evaluation.shifts wiki` (docs/ and {QUESTIONS})")
    parser.add_argument("--index", type=Path, default=CACHE / "llama-index-wiki", help="index folder (reused)")
    parser.add_argument("--skip-answers", action="store_true", help="only the start-up cost")
    args = parser.parse_args()
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version()}
    if not args.skip_answers:
        if not (args.squad / QUESTIONS).exists():
            sys.exit(f"no {args.squad}/{QUESTIONS}: run python -m assistant.evaluation.shifts wiki {args.squad}")
        result["answer_path"] = answer_path(args.squad, args.index)
    result["startup"] = startup()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
