"""The chat features' figures (docs/ui.md): showing a page of a long PDF, and a watched folder's
delay from a file's save to an answer that cites it.

    python bench/chat_features.py pages [--pages 300]   # view a page: first, then others
    python bench/chat_features.py watch [--runs 5]      # save -> indexed -> answered, settle 1 s

Both use the bundled embedder and the facade (``Assistant.view``, ``Assistant.watch``), as the chat
does; the page is rendered at the chat's scale (1.5). Results are printed as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _long_pdf(path: Path, pages: int) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for n in range(1, pages + 1):
        pdf.add_page()
        pdf.multi_cell(0, 6, f"Section {n}. " + " ".join(
            f"Paragraph {n}.{k}: the gauge at station {n * 7 + k} reads {n + k} units at dawn." for k in range(12)))
    pdf.output(str(path))


def bench_pages(pages: int) -> dict:
    from assistant import Assistant, Settings

    work = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    (work / "docs").mkdir()
    _long_pdf(work / "docs" / "manual.pdf", pages)
    bot = Assistant(Settings.from_env(index_dir=work / "idx", backend="none"))
    t0 = time.perf_counter()
    bot.ingest([work / "docs"])
    ingest_s = time.perf_counter() - t0
    hit = bot.search("Which gauge reads at station 1405?", 1)[0].chunk
    t0 = time.perf_counter()
    first = bot.view("manual.pdf", hit.start, hit.end)
    first_s = time.perf_counter() - t0
    times = []
    for page in list(range(2, pages, max(1, pages // 20)))[:20]:
        t0 = time.perf_counter()
        bot.view("manual.pdf", hit.start, hit.end, page=page)
        times.append(time.perf_counter() - t0)
    return {"bench": "pages", "pages": pages, "ingest_s": round(ingest_s, 1), "first_view_s": round(first_s, 3),
            "page_boxed": first.image.page, "boxes": len(first.passage_boxes), "next_views": len(times),
            "next_p50_s": round(statistics.median(times), 3), "next_max_s": round(max(times), 3)}


def bench_watch(runs: int) -> dict:
    from assistant import Assistant, Settings

    work = Path(tempfile.mkdtemp(prefix="bench-watch-"))
    folder = work / "watched"
    folder.mkdir()
    (folder / "seed.md").write_text("# Seed\n\nThe seed document is here so the index is not empty.\n")
    bot = Assistant(Settings.from_env(index_dir=work / "idx", backend="none"))
    bot.warm_up()
    watcher = bot.watch([folder])
    watcher.start()
    _wait(lambda: bot.documents(), 60)
    indexed, answered = [], []
    for n in range(runs):
        saved = time.perf_counter()
        (folder / f"ferry{n}.md").write_text(
            f"# Ferry {n}\n\nThe Kestrel ferry number {n} leaves the north quay at 7:{10 + n} every morning.\n")
        _wait(lambda: any(d.source == f"ferry{n}.md" for d in bot.documents()), 60)
        indexed.append(time.perf_counter() - saved)
        answer = bot.ask(f"When does Kestrel ferry number {n} leave the north quay?", mode="extractive")
        assert any(c.source == f"ferry{n}.md" for c in answer.cited), answer.answer
        answered.append(time.perf_counter() - saved)
        time.sleep(1.5)
    watcher.stop()
    return {"bench": "watch", "runs": runs, "settle_s": 1.0,
            "save_to_indexed_p50_s": round(statistics.median(indexed), 2), "save_to_indexed_max_s": round(max(indexed), 2),
            "save_to_answer_p50_s": round(statistics.median(answered), 2), "save_to_answer_max_s": round(max(answered), 2)}


def _wait(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("not reached in time")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["pages", "watch"])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    result = bench_pages(args.pages) if args.what == "pages" else bench_watch(args.runs)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
