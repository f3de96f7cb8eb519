"""A shared index on servers against the embedded one: the PostgreSQL catalog next to SQLite.

    python bench/shared_index.py quality QA.jsonl DOCS [--split dev]  # passage hit@k, keyword side and hybrid
    python bench/shared_index.py latency [--chunks 100000]            # retrieval p50/p95, same corpus on both
    python bench/shared_index.py keywords [--chunks 1000000] [--only postgresql]  # the keyword side alone (catalogs only)
    python bench/shared_index.py load [--files 1000 --sessions 20]    # two chat servers + an ingest, one index
    python bench/shared_index.py faults                               # Chroma restarted, two ingests at once

Each part starts a throwaway PostgreSQL cluster (Debian's binaries, ``tests/support/postgres.py``); ``load``
and ``faults`` start ``chroma run`` and ``assistant serve`` processes too. Synthetic corpora come from
``bench/run.py``'s generator with random unit vectors (no embedding): say so when quoting them. Results
are printed as JSON lines; docs/benchmarks.md holds the figures. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _cluster():
    from tests.support.postgres import Cluster

    return Cluster()


def _percentiles(seconds: list[float]) -> dict:
    ms = sorted(s * 1000 for s in seconds)
    return {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1), "n": len(ms)}


# --------------------------------------------------------------------------- quality
def quality(qa_file: Path, docs: Path, split: str) -> None:
    """hit@1/4/10 of the keyword side alone and of hybrid retrieval, on each catalog (one ingest,
    copied: the same chunks and vectors on both)."""
    from assistant.evaluation import holds, load_qa
    from assistant.pipeline.retrieval import Retriever
    from index.embedding.embedder import make_embedder
    from index.index import Index
    from index.ingest import ingest
    from index.migration import copy_index

    embedder = make_embedder()
    qas = [q for q in load_qa(qa_file) if not q.unanswerable and split in ("all", q.split)]
    cluster = _cluster()
    try:
        with tempfile.TemporaryDirectory(prefix="shared-quality-") as tmp:
            lite = Index(Path(tmp) / "sqlite", embedder)
            ingest(lite, [docs])
            server = Index(Path(tmp) / "pg", embedder, catalog_url=cluster.create_database("quality"))
            copy_index(lite, server)
            for name, idx in (("sqlite", lite), ("postgresql", server)):
                retriever = Retriever(idx)
                sides = {"keyword": lambda q: [c.chunk_id for c, _ in idx.catalog.keyword_search(q, 10)],
                         "hybrid": lambda q: [h.chunk.chunk_id for h in retriever.search(q, 10)]}
                for side, search in sides.items():
                    ranks = []
                    for qa in qas:
                        ids = search(qa.q)
                        texts = {c.chunk_id: c.text for c in idx.catalog.chunks(ids)}
                        ranks.append(next((i + 1 for i, cid in enumerate(ids) if holds(texts.get(cid, ""), qa)), None))
                    n = len(ranks)
                    print(json.dumps({"part": "quality", "qa": qa_file.name, "split": split, "catalog": name,
                                      "side": side, "questions": n,
                                      **{f"hit@{k}": round(sum(bool(r and r <= k) for r in ranks) / n, 3)
                                         for k in (1, 4, 10)}}), flush=True)
            lite.close(), server.close()
    finally:
        cluster.close()


# --------------------------------------------------------------------------- synthetic corpora
def _fill(catalog, chunks: int, store=None, dim: int = 384, seed: int = 1) -> float:
    """Write ``chunks`` generated passages (documents of 100) into ``catalog`` (and random unit
    vectors into ``store``); returns the seconds it took."""
    import numpy as np

    from index.catalog import Chunk, Document
    from run import Writer  # bench/run.py's pseudo-English generator

    writer, rng, started = Writer(seed), np.random.default_rng(seed), time.perf_counter()
    for d in range(chunks // 100):
        doc_id = f"synthetic{d:07d}"
        batch, offset = [], 0
        for n in range(100):
            text = writer.text(50)  # ~170 tokens, like a real chunk
            batch.append(Chunk(f"{doc_id}-0-{n}", doc_id, n, offset, offset + len(text), None, text))
            offset += len(text) + 2
        if store is not None:
            vectors = rng.standard_normal((100, dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            store.upsert([c.chunk_id for c in batch], vectors.tolist(), [doc_id] * 100)
        catalog.stage_chunks(batch)
        catalog.commit_document(Document(doc_id, f"/synthetic/{doc_id}.txt", f"{doc_id}.txt", None, doc_id,
                                         offset, 0.0, 100, time.time()))
        if (d + 1) % 1000 == 0:
            print(f"{(d + 1) * 100} chunks in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return time.perf_counter() - started


def _queries(n: int = 200, seed: int = 7) -> list[str]:
    from run import Writer

    writer = Writer(seed)
    return [writer.query() for _ in range(n)]


def latency(chunks: int) -> None:
    """Hybrid and keyword retrieval p50/p95 over the same synthetic corpus on each catalog."""
    from assistant.pipeline.retrieval import Retriever
    from index.embedding.embedder import make_embedder
    from index.index import Index

    embedder = make_embedder()
    queries = _queries()
    cluster = _cluster()
    try:
        with tempfile.TemporaryDirectory(prefix="shared-latency-") as tmp:
            url = cluster.create_database("latency")
            for name, catalog_url in (("sqlite", None), ("postgresql", url)):
                idx = Index(Path(tmp) / name, embedder, catalog_url=catalog_url)
                built = _fill(idx.catalog, chunks, idx.store)
                retriever = Retriever(idx)
                retriever.search(queries[0], 4)  # loads the embedder
                hybrid, keyword = [], []
                for q in queries:
                    t0 = time.perf_counter()
                    retriever.search(q, 4)
                    t1 = time.perf_counter()
                    idx.catalog.keyword_search(q, 10)
                    keyword.append(time.perf_counter() - t1)
                    hybrid.append(t1 - t0)
                print(json.dumps({"part": "latency", "catalog": name, "chunks": idx.catalog.count_chunks(),
                                  "build_s": round(built), "hybrid": _percentiles(hybrid),
                                  "keyword": _percentiles(keyword)}), flush=True)
                idx.close()
    finally:
        cluster.close()


def keywords(chunks: int, only: str | None = None) -> None:
    """The keyword side alone at ``chunks`` passages: catalogs without vectors (``only`` one of them)."""
    from index.catalog import Catalog
    from index.postgres.catalog import PostgresCatalog

    queries = _queries()
    cluster = _cluster()
    try:
        with tempfile.TemporaryDirectory(prefix="shared-keywords-") as tmp:
            url = cluster.create_database("keywords")
            for name, make in (("sqlite", lambda: Catalog(Path(tmp) / "catalog.sqlite3")),
                               ("postgresql", lambda: PostgresCatalog(url))):
                if only not in (None, name):
                    continue
                catalog = make()
                built = _fill(catalog, chunks)
                if name == "postgresql":
                    catalog.analyze()
                catalog.keyword_search(queries[0], 10)
                times = []
                for q in queries:
                    t0 = time.perf_counter()
                    catalog.keyword_search(q, 10)
                    times.append(time.perf_counter() - t0)
                print(json.dumps({"part": "keywords", "catalog": name, "chunks": catalog.count_chunks(),
                                  "build_s": round(built), "keyword": _percentiles(times)}), flush=True)
                catalog.close()
    finally:
        cluster.close()


# --------------------------------------------------------------------------- servers
class Servers:
    """PostgreSQL + ``chroma run`` + chat servers, each process with a local folder of its own."""

    def __init__(self, tmp: Path):
        from tests.support.servers import free_port

        self.tmp = tmp
        self.cluster = _cluster()
        self.catalog_url = self.cluster.create_database("shared")
        self.chroma_port = free_port()
        self.chroma_url = f"http://127.0.0.1:{self.chroma_port}"
        self.procs: list = []
        self.chroma = self.start_chroma()

    def start_chroma(self):
        from tests.support.servers import start_process

        chroma = str(Path(sys.executable).with_name("chroma"))
        return start_process([chroma, "run", "--path", str(self.tmp / "chroma"), "--host", "127.0.0.1",
                              "--port", str(self.chroma_port)], f"{self.chroma_url}/api/v2/heartbeat",
                             self.tmp / "chroma.log")

    def env(self, machine: str) -> dict:
        return {**os.environ, "ASSISTANT_INDEX": str(self.tmp / machine), "ASSISTANT_CATALOG_URL": self.catalog_url,
                "ASSISTANT_CHROMA_URL": self.chroma_url, "ASSISTANT_BACKEND": "none"}

    def cli(self, machine: str, *args: str, wait: bool = True):
        cmd = [sys.executable, "-m", "assistant", *args]
        if wait:
            return subprocess.run(cmd, env=self.env(machine), cwd=ROOT, capture_output=True, text=True)
        return subprocess.Popen(cmd, env=self.env(machine), cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def serve(self, machine: str) -> str:
        from tests.support.servers import serve_index

        env = {k: v for k, v in self.env(machine).items() if k.startswith("ASSISTANT_")}
        url, proc = serve_index(self.tmp / machine, self.tmp / f"{machine}.log", "--no-seeds", env=env)
        self.procs.append(proc)
        return url

    def close(self) -> None:
        from tests.support.servers import stop_process

        for proc in [*self.procs, self.chroma]:
            stop_process(proc)
        self.cluster.close()


def _seed_questions() -> list[str]:
    from assistant.evaluation import load_qa

    return [q.q for q in load_qa(ROOT / "eval" / "seeds.jsonl") if not q.unanswerable]


def _corpus(folder: Path, files: int) -> Path:
    from run import Writer

    folder.mkdir(parents=True, exist_ok=True)
    writer = Writer(3)
    for i in range(files):
        (folder / f"gen-{i:04d}.txt").write_text(writer.text(500))
    return folder


def load(files: int, sessions: int) -> None:
    """Questions from ``sessions`` concurrent clients over two chat servers while another process
    ingests ``files`` files into the same index; every cited passage must be listed when the
    answer arrives (never a chunk whose document was still being written)."""
    from gradio_client import Client

    from index.embedding.embedder import make_embedder
    from index.index import Index
    from run import Writer

    with tempfile.TemporaryDirectory(prefix="shared-load-") as tmp:
        servers = Servers(Path(tmp))
        try:
            assert servers.cli("seeds", "ingest", str(ROOT / "seeds")).returncode == 0
            urls = [servers.serve("server-a"), servers.serve("server-b")]
            corpus = _corpus(Path(tmp) / "corpus", files)
            watcher = Index(Path(tmp) / "watcher", make_embedder(), chroma_url=servers.chroma_url,
                            catalog_url=servers.catalog_url)
            questions = _seed_questions() + [Writer(11).query() for _ in range(40)]
            ingest = servers.cli("ingest", "ingest", str(corpus), wait=False)
            started, latencies, errors, violations, lock = time.perf_counter(), [], [], [], threading.Lock()

            def session(i: int) -> None:
                client = Client(urls[i % 2], verbose=False)
                n = i
                while ingest.poll() is None:
                    q = questions[n % len(questions)]
                    n += sessions
                    t0 = time.perf_counter()
                    try:
                        answer = client.predict(q, 4, "auto", None, None, api_name="/ask")
                    except Exception as exc:  # recorded, not raised: the figure says how many
                        with lock:
                            errors.append(f"{type(exc).__name__}: {exc}"[:200])
                        continue
                    took = time.perf_counter() - t0
                    listed = watcher.catalog.chunk_ids()
                    cited = {c["chunk_id"] for c in answer["citations"]}
                    with lock:
                        latencies.append(took)
                        violations.extend(sorted(cited - listed))

            threads = [threading.Thread(target=session, args=(i,)) for i in range(sessions)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - started
            out, err = ingest.communicate()
            print(json.dumps({"part": "load", "files": files, "sessions": sessions, "servers": 2,
                              "ingest_rc": ingest.returncode, "ingest_s": round(wall),
                              "answers": len(latencies), "answers_per_s": round(len(latencies) / wall, 2),
                              **_percentiles(latencies), "errors": len(errors), "error_sample": errors[:3],
                              "uncommitted_citations": len(violations),
                              "documents": len(watcher.catalog.documents())}), flush=True)
            watcher.close()
        finally:
            servers.close()


def _asking(url: str, seconds: float, during) -> dict:
    """Ask every 0.3 s for ``seconds`` while ``during()`` runs in another thread (it starts after
    2 s); what failed, with which message, and when answers came back."""
    from gradio_client import Client

    client, outcomes, question = Client(url, verbose=False), [], _seed_questions()[0]
    fault = threading.Thread(target=lambda: (time.sleep(2), during(), outcomes.append(("back", time.perf_counter()))))
    started = time.perf_counter()
    fault.start()
    while time.perf_counter() - started < seconds:
        t0 = time.perf_counter()
        try:
            client.predict(question, 4, "auto", None, None, api_name="/ask")
            outcomes.append(("ok", t0))
        except Exception as exc:
            outcomes.append((f"{type(exc).__name__}: {exc}"[:300], t0))
        time.sleep(0.3)
    fault.join()
    back = next(t for what, t in outcomes if what == "back")
    failed = [what for what, _ in outcomes if what not in ("ok", "back")]
    after = [t for what, t in outcomes if what == "ok" and t > back]
    return {"asked": len(outcomes) - 1, "failed": len(failed), "message": failed[0] if failed else None,
            "first_answer_after_back_s": round(after[0] - back, 1) if after else None}


def faults() -> None:
    """Chroma restarted, PostgreSQL restarted, a chat server killed, two ingests at once."""
    from index.embedding.embedder import make_embedder
    from index.index import Index
    from tests.support.servers import stop_process

    with tempfile.TemporaryDirectory(prefix="shared-faults-") as tmp:
        servers = Servers(Path(tmp))
        try:
            assert servers.cli("seeds", "ingest", str(ROOT / "seeds")).returncode == 0
            a, b = servers.serve("server-a"), servers.serve("server-b")

            def restart_chroma():
                stop_process(servers.chroma)
                time.sleep(5)
                servers.chroma = servers.start_chroma()

            print(json.dumps({"part": "faults", "fault": "chroma restarted (down 5 s)",
                              **_asking(a, 30, restart_chroma)}), flush=True)
            print(json.dumps({"part": "faults", "fault": "postgresql restarted",
                              **_asking(a, 20, servers.cluster.restart)}), flush=True)
            killed = servers.procs[0]
            print(json.dumps({"part": "faults", "fault": "server a killed (SIGKILL); asking server b",
                              **_asking(b, 15, lambda: (killed.kill(), killed.wait()))}), flush=True)
            one, two = _corpus(Path(tmp) / "one", 100), _corpus(Path(tmp) / "two", 0)
            for i in range(20):
                (two / f"other-{i}.txt").write_text(f"Other note {i}: the lighthouse keeper's log. " * 40)
            first = servers.cli("machine-1", "ingest", str(one), wait=False)
            time.sleep(8)
            refused = servers.cli("machine-2", "ingest", str(two))
            waited = servers.cli("machine-2", "ingest", str(two), "--wait", "900")
            first.communicate()
            index = Index(Path(tmp) / "check", make_embedder(), chroma_url=servers.chroma_url,
                          catalog_url=servers.catalog_url)
            print(json.dumps({"part": "faults", "fault": "two ingests at once on two machines",
                              "first_rc": first.returncode, "second_rc": refused.returncode,
                              "second_message": refused.stderr.strip()[-300:], "second_with_wait_rc": waited.returncode,
                              "documents": len(index.catalog.documents()),
                              "catalog_and_vectors_agree": index.catalog.chunk_ids() == index.store.ids()}), flush=True)
            index.close()
        finally:
            servers.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    q = sub.add_parser("quality")
    q.add_argument("qa", type=Path)
    q.add_argument("docs", type=Path)
    q.add_argument("--split", default="dev", choices=["dev", "test", "all"])
    sub.add_parser("latency").add_argument("--chunks", type=int, default=100_000)
    k = sub.add_parser("keywords")
    k.add_argument("--chunks", type=int, default=1_000_000)
    k.add_argument("--only", choices=["sqlite", "postgresql"], help="one catalog only")
    p = sub.add_parser("load")
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--sessions", type=int, default=20)
    sub.add_parser("faults")
    args = parser.parse_args()
    if args.part == "quality":
        quality(args.qa, args.docs, args.split)
    elif args.part == "latency":
        latency(args.chunks)
    elif args.part == "keywords":
        keywords(args.chunks, args.only)
    elif args.part == "load":
        load(args.files, args.sessions)
    else:
        faults()


if __name__ == "__main__":
    main()
