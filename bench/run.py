"""Benchmarks: ingestion, re-sync, retrieval, answers, memory; one command, results as JSON + Markdown.

    scripts/bench                 # everything (about 20 minutes on 2 cores)
    scripts/bench ingest answers  # some parts only
    scripts/bench ratio           # our whole ingest vs the model alone on torch (docs/embedder.md)

Corpora are generated here (deterministic pseudo-English with a Zipf vocabulary),
so the benchmark needs nothing from the network. Each measurement that reports
memory runs in its own process (peak RSS of that process). Results go to
``bench/results.json``; the README's "Benchmarks" table is copied from the
Markdown this prints. Nothing here asserts a time: benchmarks measure, tests assert.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
CACHE = Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "doc-assistant" / "bench"))
GENERATOR_VERSION = 2
FILE_WORDS = 500  # about 10 chunks of ~170 tokens per generated file (made-up words cost ~3 tokens)
SIZES = {"small": 100, "large": 1000, "synthetic": 100_000, "startup_small": 1000}  # files, files, chunks, chunks
PARTS = ("ingest", "ratio", "workers", "resync", "retrieval", "answers", "baseline", "bigfile")
RAW_WORDS, RAW_BATCH = 200, 32  # the "raw" side of the ratio: 200-word pieces, batches of 32


# --------------------------------------------------------------------------- corpus
def _vocabulary(rng: random.Random) -> tuple[list[str], list[float]]:
    seed_words = sorted({w.strip(".,;:()\"'“”’").lower()
                         for w in (ROOT / "seeds" / "mss-joins-wechat.txt").read_text().split()} - {""})
    syllables = "ka lo mi ne ru sa te vo di an el or un is ber gan tor mel pri sto".split()
    made = {"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(30000)}
    words = seed_words + sorted(made - set(seed_words))
    rng.shuffle(words)
    cumulative, total = [], 0.0
    for rank in range(1, len(words) + 1):
        total += 1.0 / rank
        cumulative.append(total)
    return words, cumulative


class Writer:
    """Deterministic pseudo-English: sentences of Zipf-distributed words, in paragraphs."""

    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)
        self.words, self.weights = _vocabulary(self.rng)

    def sentence(self) -> str:
        words = self.rng.choices(self.words, cum_weights=self.weights, k=self.rng.randint(6, 24))
        return " ".join(words).capitalize() + "."

    def text(self, words: int) -> str:
        out, count = [], 0
        while count < words:
            para = [self.sentence() for _ in range(self.rng.randint(3, 7))]
            count += sum(len(s.split()) for s in para)
            out.append(" ".join(para))
        return "\n\n".join(out)

    def query(self) -> str:
        return " ".join(self.rng.choices(self.words[:3000], k=self.rng.randint(3, 6))) + "?"


def make_corpus(folder: Path, files: int, seed: int = 0) -> Path:
    """``files`` text files of about 10 chunks each (generated once, then reused)."""
    done = folder.with_name(folder.name + ".complete")
    if done.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    writer = Writer(seed)
    for i in range(files):
        (folder / f"doc-{i:05d}.txt").write_text(f"# Report {i}\n\n{writer.text(FILE_WORDS)}\n")
    done.touch()
    return folder


# --------------------------------------------------------------------------- helpers
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]  # noqa: E731
    return {"p50_ms": round(pick(0.5) * 1000, 1), "p95_ms": round(pick(0.95) * 1000, 1), "n": len(samples)}


def _child(part: str, **kwargs) -> dict:
    """Run one measurement in a fresh process; returns what it printed as JSON."""
    # the code of this checkout, whichever checkout the venv was installed from
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "PYTHONPATH": path}
    limit = kwargs.pop("as_limit", None)
    cmd = [sys.executable, __file__, "--child", part, json.dumps(kwargs, default=str)]
    if limit:
        cmd = ["prlimit", f"--as={limit}", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"error": f"exit {out.returncode}: {out.stderr.strip()[-3000:]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _embed_rate(embedder, texts: list[str]) -> float:
    """Texts per second through the embedder alone (after a warm-up)."""
    embedder.embed(texts[:4])
    started = time.perf_counter()
    embedder.embed(texts)
    return round(len(texts) / (time.perf_counter() - started), 1)


def _index(index_dir: str, workers: int = 1, runtime: str = "onnx", embedder=None):
    from index.embedding.embedder import make_embedder
    from index.index import Index

    return Index(Path(index_dir), embedder or make_embedder(runtime, workers=workers),
                 max_file_bytes=None)


# --------------------------------------------------------------------------- children
def child_ingest(corpus: str, index: str, workers: int = 1, runtime: str = "onnx",
                 raw_sample: int = 0, torch_sample: int = 0) -> dict:
    """Ingest a corpus into a new index; then the embedder alone on the same chunk texts."""
    from index.embedding.embedder import make_embedder
    from index.ingest import ingest

    idx = _index(index, workers, runtime)
    started = time.perf_counter()  # start-up, timed apart: importing Chroma, loading the model
    idx.store.count()
    idx.embedder.embed(["warm up"] * (1 if workers == 1 else 64))
    startup = time.perf_counter() - started
    in_model = [0.0]  # time inside the embedder during the ingest: the rest is the pipeline's
    embed = idx.embedder.embed

    def timed_embed(texts):
        t0 = time.perf_counter()
        try:
            return embed(texts)
        finally:
            in_model[0] += time.perf_counter() - t0

    idx.embedder.embed = timed_embed
    report = ingest(idx, [Path(corpus)])
    peak = _peak_rss_mb()
    out = {"files": len(report.added), "chunks": report.chunks, "seconds": round(report.seconds, 2),
           "chunks_per_s": round(report.chunks / report.seconds, 1), "peak_rss_mb": round(peak),
           "startup_s": round(startup, 2), "outside_model": round(1 - in_model[0] / report.seconds, 3)}
    texts = [c.text for c in idx.catalog.chunks()]
    if raw_sample:
        out["raw_per_s"] = _embed_rate(make_embedder(runtime), texts[:raw_sample])
        out["raw_sample"] = min(raw_sample, len(texts))
        out["overhead"] = round(1 - out["chunks_per_s"] / out["raw_per_s"], 3)
    if torch_sample:
        out["torch_raw_per_s"] = _embed_rate(make_embedder("torch"), texts[:torch_sample])
    from index.text.chunking import count_tokens

    tokens = count_tokens(texts[:500])
    out["mean_chunk_tokens"] = round(sum(tokens) / len(tokens))
    return out


def child_resync(corpus: str, index: str) -> dict:
    """A user re-running ingest: nothing changed, then one file changed, then one removed."""
    from index.ingest import ingest
    from index.removal import remove

    idx = _index(index)
    report = ingest(idx, [Path(corpus)])
    out = {"unchanged_s": round(report.seconds, 3), "unchanged_files": len(report.unchanged),
           "model_loaded": idx.embedder.loaded}
    victim = sorted(Path(corpus).glob("*.txt"))[0]
    original = victim.read_text()
    victim.write_text(original + "\n\nOne more paragraph, written for the benchmark.\n")
    try:
        report = ingest(idx, [Path(corpus)])
        out["one_changed_s"] = round(report.seconds, 3)
        out["one_changed_updated"] = len(report.updated)
    finally:
        victim.write_text(original)
    started = time.perf_counter()
    removed = remove(idx, str(victim))
    out["remove_one_s"] = round(time.perf_counter() - started, 3)
    out["removed"] = len(removed)
    ingest(idx, [Path(corpus)])  # put it back for the next part
    return out


def child_retrieval(index: str, queries: list[str]) -> dict:
    """Hybrid search latency (k=4) end to end, and each part alone (nothing is built first)."""
    from assistant.pipeline.retrieval import Retriever
    from index.embedding.embedder import make_embedder
    from index.text.terms import terms

    embedder = make_embedder()
    started = time.perf_counter()
    idx = _index(index, embedder=embedder)
    catalog = idx.catalog  # opening it fills the keyword index once if the catalog predates it
    opened = time.perf_counter() - started
    retriever = Retriever(idx)
    retriever.search(queries[0], 4)  # loads the embedder
    hybrid, dense, keyword, embed, stats = [], [], [], [], []
    for q in queries:
        t0 = time.perf_counter()
        retriever.search(q, 4)
        t1 = time.perf_counter()
        vector = idx.embedder.embed([q])[0]
        t2 = time.perf_counter()
        idx.store.query(vector, 10)
        t3 = time.perf_counter()
        catalog.keyword_search(q, 10)
        t4 = time.perf_counter()
        catalog.term_stats(terms(q))
        t5 = time.perf_counter()
        hybrid.append(t1 - t0)
        embed.append(t2 - t1)
        dense.append(t3 - t2)
        keyword.append(t4 - t3)
        stats.append(t5 - t4)
    # a worst case: each query led by four of the 40 terms held by the most chunks
    common = catalog.common_terms(40)
    common_share = common[0][1] / catalog.count_chunks() if common else 0
    common = [t for t, _ in common]
    heavy = []
    for i, q in enumerate(queries[:40]):
        led = " ".join(common[(4 * i) % 40 : (4 * i) % 40 + 4]) + " " + q
        t0 = time.perf_counter()
        catalog.keyword_search(led, 10)
        heavy.append(time.perf_counter() - t0)
    size = sum(f.stat().st_size for f in Path(index).glob("catalog.sqlite3*"))
    return {"chunks": catalog.count_chunks(), "open_s": round(opened, 2),
            "hybrid": _percentiles(hybrid), "query_embedding": _percentiles(embed),
            "chroma": _percentiles(dense), "keyword": _percentiles(keyword),
            "keyword_common_terms": _percentiles(heavy), "most_common_share": round(common_share, 2),
            "term_stats": _percentiles(stats), "catalog_mb": round(size / 1e6, 1),
            "peak_rss_mb": round(_peak_rss_mb())}


def child_fill(index: str, work: str) -> dict:
    """A copy of the catalog without its keyword index (as written before it existed), then opened."""
    import sqlite3

    from index.catalog import Catalog

    copy = Path(work) / "catalog.sqlite3"
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(index) / "catalog.sqlite3", copy)
    db = sqlite3.connect(copy)
    db.executescript("DROP TABLE keyword; DROP TABLE keyword_rows; DELETE FROM meta WHERE key='keyword'; "
                     "VACUUM;")
    db.close()
    before = copy.stat().st_size
    started = time.perf_counter()
    catalog = Catalog(copy)
    filled = time.perf_counter() - started
    chunks = catalog.count_chunks()
    catalog.close()
    db = sqlite3.connect(copy)
    db.execute("VACUUM")
    db.close()
    after = copy.stat().st_size
    shutil.rmtree(copy.parent)
    return {"chunks": chunks, "fill_s": round(filled, 2), "catalog_mb_without": round(before / 1e6, 1),
            "catalog_mb_with": round(after / 1e6, 1), "peak_rss_mb": round(_peak_rss_mb())}


def child_startup(index: str, question: str) -> dict:
    """A new process: imports, the assistant over ``index`` (no LLM), then its first answer."""
    started = time.perf_counter()
    from assistant import Assistant, Settings

    imported = time.perf_counter()
    bot = Assistant(Settings.from_env(index_dir=index, backend="none"))
    made = time.perf_counter()
    answer = bot.ask(question)
    done = time.perf_counter()
    return {"chunks": bot.index.catalog.count_chunks(), "first_answer_s": round(done - started, 2),
            "imports_s": round(imported - started, 2), "assistant_s": round(made - imported, 2),
            "first_ask_s": round(done - made, 2), "passages": len(answer.citations),
            "peak_rss_mb": round(_peak_rss_mb())}


def child_synthetic(index: str, chunks: int) -> dict:
    """An index of ``chunks`` generated passages with random unit vectors (no embedding)."""
    import numpy as np

    from index.catalog import Chunk, Document

    idx = _index(index)
    idx.catalog.set_meta("settings", idx.settings())
    writer, rng = Writer(1), np.random.default_rng(1)
    per_doc, started = 100, time.perf_counter()
    for d in range(chunks // per_doc):
        doc_id = f"synthetic{d:06d}"
        texts = [writer.text(50) for _ in range(per_doc)]  # ~170 tokens, like a real chunk
        batch, offset = [], 0
        for n, text in enumerate(texts):
            batch.append(Chunk(f"{doc_id}-0-{n}", doc_id, n, offset, offset + len(text), None, text))
            offset += len(text) + 2
        vectors = rng.standard_normal((per_doc, idx.embedder.dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        idx.store.upsert([c.chunk_id for c in batch], vectors.tolist(), [doc_id] * per_doc)
        idx.catalog.stage_chunks(batch)
        idx.catalog.commit_document(Document(doc_id, f"/synthetic/{doc_id}.txt", f"{doc_id}.txt", None,
                                             doc_id, offset, 0.0, per_doc, time.time()))
    return {"chunks": chunks, "build_s": round(time.perf_counter() - started, 1)}


def child_answers(index: str, threads: int = 0) -> dict:
    """Time to first token and tokens/s with the bundled LLM over seeds/; extractive latency."""
    from assistant import Assistant, Settings
    from assistant.evaluation import load_qa

    bot = Assistant(Settings.from_env(index_dir=index, threads=threads))
    bot.ingest([ROOT / "seeds"])
    questions = [q.q for q in load_qa(ROOT / "eval" / "seeds.jsonl") if not q.unanswerable]
    bot.ask(questions[0], mode="generate")  # loads both models

    def timed(question, history=None, mode="generate", cold=False):
        if cold:
            bot.llm.forget_prompt()  # no prefix of the last prompt is reused
        started, first, pieces, last = time.perf_counter(), None, 0, None
        answer = None
        for item in bot.stream(question, history=history, mode=mode):
            now = time.perf_counter()
            if isinstance(item, str):
                first = first or now
                last, pieces = now, pieces + 1
            else:
                answer = item
        total = time.perf_counter() - started
        return {"ttft": (first - started) if first else None, "total": total, "pieces": pieces,
                "rate": (pieces - 1) / (last - first) if first and last > first else None,
                "abstained": answer.abstained, "quoted": answer.backend == "extractive"}

    single = [timed(q) for q in questions]
    cold = [timed(q, cold=True) for q in questions]
    auto = [timed(q, mode="auto") for q in questions]
    follow = []
    for q in questions[:4]:
        first = bot.ask(q)
        history = [{"role": "user", "content": q}, {"role": "assistant", "content": first.answer}]
        follow.append(timed("And when did that happen?", history))
    extractive = []
    for q in questions:
        started = time.perf_counter()
        bot.ask(q, mode="extractive")
        extractive.append(time.perf_counter() - started)
    # raw generation speed, a fixed long prompt and 128 tokens
    llm = bot.llm
    prompt = [{"role": "user", "content": (ROOT / "seeds" / "mss-joins-wechat.txt").read_text()[:2000]
               + "\n\nSummarise this article."}]
    started, first, n = time.perf_counter(), None, 0
    for _ in llm.stream(prompt, 128):
        first = first or time.perf_counter()
        n += 1
    gen_rate = (n - 1) / (time.perf_counter() - first)

    def summary(rows):
        ttft = [r["ttft"] for r in rows if r["ttft"] is not None]
        rates = [r["rate"] for r in rows if r["rate"]]
        return {"questions": len(rows), "streamed": len(ttft),
                "ttft": _percentiles(ttft) if ttft else None,
                "total": _percentiles([r["total"] for r in rows]),
                "tokens_per_s": round(statistics.median(rates), 1) if rates else None}

    return {"single_turn": summary(single), "single_turn_cold": summary(cold),
            "auto": {**summary(auto), "quoted": sum(r["quoted"] and not r["abstained"] for r in auto)},
            "follow_up": summary(follow),
            "extractive": _percentiles(extractive), "generation_tokens_per_s": round(gen_rate, 1),
            "long_prompt_ttft_ms": round((first - started) * 1000), "backend": bot.backend}


def child_baseline(corpus: str, index: str, queries: list[str]) -> dict:
    """A plain llama-index pipeline on the same corpus with the same embedder (defaults otherwise)."""
    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from assistant.evaluation.baseline import wrap_embedder
    from index.embedding.embedder import make_embedder
    from index.store import chroma_embedding_function, open_client

    embedder = make_embedder()
    embedder.embed(["warm up"])
    started = time.perf_counter()
    # exclude_hidden=False: the corpus lives under ~/.cache, which the default would skip whole
    documents = SimpleDirectoryReader(corpus, recursive=True, exclude_hidden=False).load_data()
    client = open_client(Path(index))
    collection = client.get_or_create_collection("baseline",
                                                 embedding_function=chroma_embedding_function(embedder))
    storage = StorageContext.from_defaults(vector_store=ChromaVectorStore(chroma_collection=collection))
    li = VectorStoreIndex.from_documents(documents, storage_context=storage,
                                         embed_model=wrap_embedder(embedder),
                                         transformations=[SentenceSplitter()])
    seconds = time.perf_counter() - started
    retriever = li.as_retriever(similarity_top_k=4)
    retriever.retrieve(queries[0])
    latencies = []
    for q in queries:
        t0 = time.perf_counter()
        retriever.retrieve(q)
        latencies.append(time.perf_counter() - t0)
    return {"seconds": round(seconds, 2), "nodes": collection.count(),
            "retrieval": _percentiles(latencies), "peak_rss_mb": round(_peak_rss_mb())}


def child_bigfile(path: str, index: str) -> dict:
    """Ingest one large text file (plumbing embedder: this measures memory, not the model)."""
    from index.embedding.embedder import HashEmbedder
    from index.ingest import ingest

    idx = _index(index, embedder=HashEmbedder(dim=16))
    report = ingest(idx, [Path(path)])
    status = Path("/proc/self/status").read_text()
    vm_peak = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmPeak")), 0)
    return {"added": len(report.added), "failed": report.failed, "chunks": report.chunks,
            "seconds": round(report.seconds, 1), "peak_rss_mb": round(_peak_rss_mb()),
            "vm_peak_mb": round(vm_peak / 1024)}


def child_raw(corpus: str) -> dict:
    """The model alone, as a newcomer would run it: sentence-transformers on torch over the
    pages' visible text in 200-word pieces (batches of 32, torch's default threads).

    The parent times this whole process, Python start-up and model load included.
    """
    from html.parser import HTMLParser

    from sentence_transformers import SentenceTransformer

    from index.embedding.embedder import bundled_model_dir

    class Visible(HTMLParser):
        HIDDEN = {"script", "style", "head", "title"}

        def __init__(self):
            super().__init__()
            self.hidden, self.parts = 0, []

        def handle_starttag(self, tag, attrs):
            self.hidden += tag in self.HIDDEN

        def handle_endtag(self, tag):
            self.hidden -= tag in self.HIDDEN and self.hidden > 0

        def handle_data(self, data):
            if not self.hidden:
                self.parts.append(data)

    pieces = []
    for page in sorted(Path(corpus).glob("*.html")):
        parser = Visible()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        words = " ".join(parser.parts).split()
        pieces += [" ".join(words[i:i + RAW_WORDS]) for i in range(0, len(words), RAW_WORDS)]
    model = SentenceTransformer(str(bundled_model_dir()), device="cpu", local_files_only=True)
    vectors = model.encode(pieces, batch_size=RAW_BATCH, show_progress_bar=False)
    return {"pieces": len(pieces), "dim": int(vectors.shape[1])}


CHILDREN = {"raw": child_raw, "ingest": child_ingest, "resync": child_resync, "retrieval": child_retrieval,
            "startup": child_startup, "fill": child_fill, "synthetic": child_synthetic,
            "answers": child_answers, "baseline": child_baseline,
            "bigfile": child_bigfile}


# --------------------------------------------------------------------------- parts
def _corpus(size: str) -> Path:
    files = SIZES[size]
    return make_corpus(CACHE / f"corpus-{files}-files-v{GENERATOR_VERSION}", files)


def part_ingest(work: Path, runs: int) -> dict:
    small = _corpus("small")
    large = _corpus("large")
    out = {"1k": [], "10k": None}
    for i in range(runs):
        shutil.rmtree(work / "idx-1k", ignore_errors=True)
        out["1k"].append(_child("ingest", corpus=small, index=work / "idx-1k", raw_sample=2000,
                                torch_sample=300 if i == 0 else 0))
        print("  1k run", i + 1, out["1k"][-1], file=sys.stderr)
    out["10k"] = _child("ingest", corpus=large, index=work / "idx-10k", raw_sample=2000)
    print("  10k", out["10k"], file=sys.stderr)
    return out


def _timed_process(cmd: list[str]) -> tuple[float, dict | str]:
    """Wall-clock seconds of a whole process, and what it printed last (JSON) or its error."""
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        return seconds, f"exit {out.returncode}: {out.stderr.strip()[-2000:]}"
    for text in (out.stdout, (out.stdout.strip().splitlines() or [""])[-1]):  # indented, or one line last
        try:
            return seconds, json.loads(text)
        except ValueError:
            pass
    return seconds, out.stdout.strip()[-500:]


def python_docs() -> Path:
    """The first 80 pages (sorted by name) of Python's library reference, fetched by scripts/python-docs."""
    folder = subprocess.run([str(ROOT / "scripts" / "python-docs")], capture_output=True, text=True, check=True)
    return Path(folder.stdout.strip()) / "library-80"


def part_ratio(work: Path, runs: int, corpus: Path | None = None) -> dict:
    """Our whole `assistant ingest` process against the model alone on torch (issue #13, part 5).

    raw: one process loading all-MiniLM-L6-v2 with sentence-transformers on torch and
    encoding the pages' visible text in 200-word pieces (batch 32), timed whole.
    ours: the whole `assistant ingest` process on the same files into an empty index.
    Runs alternate (raw, ours, raw, ours, ...) so a busy neighbour slows both alike;
    medians are reported.
    """
    corpus = corpus or python_docs()
    raw, ours, torch_ours = [], [], None
    for i in range(runs):
        seconds, result = _timed_process([sys.executable, __file__, "--child", "raw",
                                          json.dumps({"corpus": str(corpus)})])
        raw.append({"seconds": round(seconds, 2), "result": result})
        shutil.rmtree(work / "idx-ratio", ignore_errors=True)
        seconds, result = _timed_process([sys.executable, "-m", "assistant", "ingest", str(corpus),
                                          "--index", str(work / "idx-ratio"), "--json"])
        ours.append({"seconds": round(seconds, 2), "result": result})
        print(f"  ratio run {i + 1}: raw {raw[-1]['seconds']} s, ours {ours[-1]['seconds']} s", file=sys.stderr)
    shutil.rmtree(work / "idx-ratio-torch", ignore_errors=True)
    seconds, result = _timed_process([sys.executable, "-m", "assistant", "ingest", str(corpus), "--index",
                                      str(work / "idx-ratio-torch"), "--embed-runtime", "torch", "--json"])
    torch_ours = {"seconds": round(seconds, 2), "result": result}
    med = lambda rows: statistics.median(r["seconds"] for r in rows)  # noqa: E731
    pages = len(list(corpus.glob("*.html")))
    out = {"corpus": str(corpus), "pages": pages, "raw": raw, "ours": ours, "ours_torch_runtime": torch_ours,
           "raw_s": round(med(raw), 2), "ours_s": round(med(ours), 2), "ratio": round(med(ours) / med(raw), 2)}
    first = ours[0]["result"]
    if isinstance(first, dict):
        out["chunks"] = first.get("chunks")
    if isinstance(raw[0]["result"], dict):
        out["pieces"] = raw[0]["result"].get("pieces")
    return out


def part_workers(work: Path) -> dict:
    small = _corpus("small")
    out = {}
    for workers in (1, 2):
        shutil.rmtree(work / "idx-w", ignore_errors=True)
        out[str(workers)] = _child("ingest", corpus=small, index=work / "idx-w", workers=workers)
        print("  workers", workers, out[str(workers)], file=sys.stderr)
    return out


def _ensure_10k(work: Path) -> Path:
    large = _corpus("large")
    if not (work / "idx-10k" / "catalog.sqlite3").exists():
        _child("ingest", corpus=large, index=work / "idx-10k")
    return large


def part_resync(work: Path) -> dict:
    large = _ensure_10k(work)
    return _child("resync", corpus=large, index=work / "idx-10k")


def _synthetic(chunks: int) -> tuple[Path, dict | None]:
    """The cached synthetic index of ``chunks`` passages (built once); and its build report."""
    folder = CACHE / f"synthetic-{chunks}-v{GENERATOR_VERSION}"
    if (folder / ".complete").exists():
        return folder, None
    shutil.rmtree(folder, ignore_errors=True)
    built = _child("synthetic", index=folder, chunks=chunks)
    if "error" not in built:
        (folder / ".complete").touch()
    return folder, built


def part_retrieval(work: Path, queries: list[str]) -> dict:
    _ensure_10k(work)
    out = {"10k": _child("retrieval", index=work / "idx-10k", queries=queries)}
    print("  10k", out["10k"], file=sys.stderr)
    synthetic, built = _synthetic(SIZES["synthetic"])
    if built:
        out["100k_build"] = built
    out["100k"] = _child("retrieval", index=synthetic, queries=queries)
    print("  100k", out["100k"], file=sys.stderr)
    out["100k_fill"] = _child("fill", index=synthetic, work=work / "fill")
    print("  100k fill", out["100k_fill"], file=sys.stderr)
    # start-up to the first answer, small vs large synthetic index (fresh processes, 3 runs each)
    out["startup"] = {}
    for label, chunks in (("1k", SIZES["startup_small"]), ("100k", SIZES["synthetic"])):
        folder, _ = _synthetic(chunks)
        runs = [_child("startup", index=folder, question=queries[i]) for i in range(3)]
        out["startup"][label] = runs
        print("  startup", label, runs, file=sys.stderr)
    return out


def part_baseline(work: Path, queries: list[str]) -> dict:
    small = _corpus("small")
    shutil.rmtree(work / "idx-base", ignore_errors=True)
    shutil.rmtree(work / "idx-ours", ignore_errors=True)
    base = _child("baseline", corpus=small, index=work / "idx-base", queries=queries)
    ours = _child("ingest", corpus=small, index=work / "idx-ours")
    ours_retrieval = _child("retrieval", index=work / "idx-ours", queries=queries)
    out = {"baseline": base, "ours_seconds": ours.get("seconds"), "ours_retrieval": ours_retrieval.get("hybrid")}
    if "error" not in base and "error" not in ours:
        out["ingest_time_ratio"] = round(ours["seconds"] / base["seconds"], 2)
    return out


def part_bigfile(work: Path, megabytes: int) -> dict:
    path = work / "big" / "big.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = Writer(2)
    block = writer.text(300_000)  # about 2 MB, repeated with a numbered heading each time
    with path.open("w") as f:
        part = 0
        while f.tell() < megabytes * 1_000_000:
            part += 1
            f.write(f"Part {part}\n\n{block}\n\n")
    small = work / "small" / "small.txt"
    small.parent.mkdir(parents=True, exist_ok=True)
    small.write_text(writer.text(20000))
    # the address space an ingest of a small file needs, then a cap well under the big file's size
    probe = _child("bigfile", path=small, index=work / "idx-probe")
    if "error" in probe:
        return {"probe": probe}
    # Reading the file whole needs at least its bytes and its decoded text at once (2x the file)
    # on top of what ingesting a small file takes; the cap leaves less than that.
    cap_mb = probe["vm_peak_mb"] + max(100, megabytes * 7 // 4)
    result = _child("bigfile", path=path, index=work / "idx-big", as_limit=cap_mb * 1024 * 1024)
    size = path.stat().st_size
    path.unlink()
    return {"file_mb": round(size / 1e6), "cap_mb": cap_mb, "small_file": probe, "big_file": result}


# --------------------------------------------------------------------------- report
def machine() -> dict:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem, 1), "python": platform.python_version()}


def markdown(results: dict) -> str:
    rows = []
    add = lambda what, value: rows.append(f"| {what} | {value} |")  # noqa: E731
    ing = results.get("ingest")
    if ing:
        runs = [r for r in ing["1k"] if "error" not in r]
        if runs:
            med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
            add(f"Ingest ~1k chunks ({runs[0]['chunks']} chunks, {runs[0]['mean_chunk_tokens']} tokens each), "
                f"median of {len(runs)}", f"{med('chunks_per_s'):.1f} chunks/s, {med('outside_model'):.0%} of the "
                f"time outside the model; embedder alone {med('raw_per_s'):.1f}/s; peak {med('peak_rss_mb'):.0f} MB")
            if runs[0].get("torch_raw_per_s"):
                add("Embedder alone, torch (sentence-transformers) vs the default ONNX float32 graph",
                    f"{runs[0]['torch_raw_per_s']:.1f}/s vs {runs[0]['raw_per_s']:.1f}/s")
        big = ing["10k"]
        if big and "error" not in big:
            add(f"Ingest ~10k chunks ({big['chunks']} chunks), 1 run",
                f"{big['chunks_per_s']:.1f} chunks/s, {big['outside_model']:.0%} of the time outside the "
                f"model; embedder alone {big['raw_per_s']:.1f}/s; peak {big['peak_rss_mb']} MB")
    q = results.get("ratio")
    if q and q.get("ratio"):
        add(f"Ingest vs the model alone: first {q['pages']} pages of Python's library reference, whole "
            f"processes, median of {len(q['ours'])}",
            f"ours {q['ours_s']} s ({q.get('chunks')} chunks) / raw sentence-transformers on torch "
            f"{q['raw_s']} s ({q.get('pieces')} pieces of 200 words) = **{q['ratio']}**; our ingest on "
            f"the torch runtime {q['ours_torch_runtime']['seconds']} s")
    w = results.get("workers")
    if w and all("error" not in v for v in w.values()):
        add("Ingest ~1k chunks, 1 vs 2 embedding processes",
            f"{w['1']['chunks_per_s']:.1f} vs {w['2']['chunks_per_s']:.1f} chunks/s")
    r = results.get("resync")
    if r and "error" not in r:
        add(f"Re-sync, 10k corpus unchanged ({r['unchanged_files']} files)",
            f"{r['unchanged_s']:.2f} s (model loaded: {'yes' if r['model_loaded'] else 'no'})")
        add("Re-sync, one file changed", f"{r['one_changed_s']:.2f} s")
        add("Remove one document", f"{r['remove_one_s'] * 1000:.0f} ms")
    ret = results.get("retrieval")
    if ret:
        for size in ("10k", "100k"):
            x = ret.get(size)
            if x and "error" not in x and "keyword" in x:
                add(f"Retrieval at {size} chunks, hybrid k=4 (p50 / p95)",
                    f"{x['hybrid']['p50_ms']} / {x['hybrid']['p95_ms']} ms (query embedding "
                    f"{x['query_embedding']['p50_ms']}, Chroma {x['chroma']['p50_ms']}, keyword (FTS5) "
                    f"{x['keyword']['p50_ms']} / {x['keyword']['p95_ms']} ms; nothing built at start; "
                    f"catalog {x['catalog_mb']} MB; peak {x['peak_rss_mb']} MB)")
        fill = ret.get("100k_fill")
        if fill and "error" not in fill:
            add(f"Keyword index of an older {fill['chunks']}-chunk catalog, filled when first opened",
                f"{fill['fill_s']} s once; catalog {fill['catalog_mb_without']} MB without it, "
                f"{fill['catalog_mb_with']} MB with it")
        start = ret.get("startup") or {}
        runs = {k: [r for r in v if "error" not in r] for k, v in start.items()}
        if runs.get("1k") and runs.get("100k"):
            med = {k: statistics.median(r["first_answer_s"] for r in v) for k, v in runs.items()}
            peak = {k: max(r["peak_rss_mb"] for r in v) for k, v in runs.items()}
            add(f"Start-up to the first answer (new process, no LLM), {runs['1k'][0]['chunks']} vs "
                f"{runs['100k'][0]['chunks']} chunks, median of {len(runs['100k'])}",
                f"{med['1k']:.2f} s vs {med['100k']:.2f} s ({med['100k'] / med['1k']:.2f}x); "
                f"peak {peak['1k']} vs {peak['100k']} MB")
    a = results.get("answers")
    if a and "error" not in a:
        s, f = a["single_turn"], a["follow_up"]
        if s["ttft"]:
            add(f"Time to first token, single-turn seed questions, generate mode ({s['streamed']} of "
                f"{s['questions']} reached the LLM)", f"p50 {s['ttft']['p50_ms']:.0f} ms, p95 {s['ttft']['p95_ms']:.0f} ms")
        c = a.get("single_turn_cold")
        if c and c["ttft"]:
            add("… the same with the model's prompt cache emptied before each question",
                f"p50 {c['ttft']['p50_ms']:.0f} ms, p95 {c['ttft']['p95_ms']:.0f} ms")
        u = a.get("auto")
        if u and u["ttft"]:
            add(f"Time to first text, the same questions in the default auto mode ({u['quoted']} of "
                f"{u['questions']} quoted, no LLM)", f"p50 {u['ttft']['p50_ms']:.0f} ms, p95 {u['ttft']['p95_ms']:.0f} ms")
        if f["ttft"]:
            add("Time to first token, follow-ups (adds the rewrite)",
                f"p50 {f['ttft']['p50_ms']:.0f} ms, p95 {f['ttft']['p95_ms']:.0f} ms")
        add("Generation speed, bundled SmolLM2-135M", f"{a['generation_tokens_per_s']} tokens/s")
        add("Extractive answer (no LLM), p50 / p95",
            f"{a['extractive']['p50_ms']:.0f} / {a['extractive']['p95_ms']:.0f} ms")
    b = results.get("baseline")
    if b and "error" not in b.get("baseline", {"error": 1}) and b.get("ingest_time_ratio"):
        add("Plain llama-index pipeline, same 1k corpus and embedder",
            f"ingest {b['baseline']['seconds']} s vs ours {b['ours_seconds']} s; retrieval p50 "
            f"{b['baseline']['retrieval']['p50_ms']} ms (dense only) vs ours {b['ours_retrieval']['p50_ms']} ms (hybrid)")
    g = results.get("bigfile")
    if g and g.get("big_file") and "error" not in g["big_file"]:
        add(f"{g['file_mb']} MB text file under `prlimit --as={g['cap_mb']}M` (plumbing embedder)",
            f"{g['big_file']['chunks']} chunks in {g['big_file']['seconds']} s; peak RSS "
            f"{g['big_file']['peak_rss_mb']} MB (a {g['small_file']['chunks']}-chunk file: "
            f"{g['small_file']['peak_rss_mb']} MB)")
    m = results["machine"]
    head = (f"Machine: {m['cpus']} cores ({m['cpu']}), {m['memory_gib']} GiB, no GPU, Python {m['python']}.\n\n"
            "| measurement | result |\n| --- | --- |")
    return "\n".join([head, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("parts", nargs="*", help=f"parts to run: {', '.join(PARTS)} (default: all)")
    parser.add_argument("--runs", type=int, default=3, help="runs of the 1k ingest")
    parser.add_argument("--big-mb", type=int, default=200, help="size of the large text file")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON results go")
    parser.add_argument("--small", action="store_true",
                        help="tiny corpora, to check the benchmark runs (numbers meaningless)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child[0]](**json.loads(args.child[1]))))
        return 0
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    if args.small:
        SIZES.update(small=10, large=30, synthetic=5_000, startup_small=500)
        args.big_mb, args.runs = min(args.big_mb, 10), 1
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parts = args.parts or list(PARTS)
    out = args.out if not args.small or args.out != RESULTS else CACHE / "results-small.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    results["machine"] = machine()
    writer = Writer(3)
    queries = [writer.query() for _ in range(60)]
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        for part in parts:
            print(f"bench: {part}", file=sys.stderr)
            started = time.perf_counter()
            if part == "ingest":
                results[part] = part_ingest(work, args.runs)
            elif part == "ratio":
                results[part] = part_ratio(work, args.runs)
            elif part == "workers":
                results[part] = part_workers(work)
            elif part == "resync":
                results[part] = part_resync(work)
            elif part == "retrieval":
                results[part] = part_retrieval(work, queries)
            elif part == "answers":
                results[part] = _child("answers", index=work / "idx-seeds")
            elif part == "baseline":
                results[part] = part_baseline(work, queries)
            elif part == "bigfile":
                results[part] = part_bigfile(work, args.big_mb)
            print(f"bench: {part} took {time.perf_counter() - started:.0f} s", file=sys.stderr)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
