"""Crashes and concurrent writers: SIGKILL an ingest at random points, then converge."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from index.embedding.embedder import HashEmbedder
from index.errors import StoreUnavailable
from index.index import Index
from index.ingest import ingest
from tests.support import ROOT

pytestmark = pytest.mark.slow

CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from index.embedding.embedder import HashEmbedder
    from index.index import Index
    from index.ingest import ingest
    index = Index(Path(sys.argv[1]), HashEmbedder())
    def progress(done, total, source):
        print(done, flush=True)
    report = ingest(index, [Path(sys.argv[2])], progress=progress, wait=60)
    print("DONE", len(report.added), len(report.updated), len(report.removed), flush=True)
""")


def _write_corpus(folder: Path, rng: random.Random, generation: int) -> None:
    folder.mkdir(exist_ok=True)
    for i in range(120):
        n = rng.randint(2, 40)
        text = " ".join(f"File {i} gen {generation if i % 3 == 0 else 0} sentence {j} about "
                        f"topic {rng.randint(0, 50)}." for j in range(n))
        (folder / f"doc{i:03d}.txt").write_text(text)


def _state(index_dir: Path):
    index = Index(index_dir, HashEmbedder())
    try:
        chunks = index.catalog.chunks()
        ids = [c.chunk_id for c in chunks]
        assert len(ids) == len(set(ids)), "duplicate chunks in the catalog"
        store_ids = index.store.ids()
        assert store_ids == set(ids), f"{len(store_ids ^ set(ids))} orphans or missing vectors"
        docs = sorted((d.source, d.hash, d.chunks) for d in index.catalog.documents())
        return docs, sorted(ids)
    finally:
        index.close()


def _run(index_dir: Path, corpus: Path, kill_after: int | None):
    """Run an ingest in a child; SIGKILL it after ``kill_after`` files. True if it was killed."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(index_dir), str(corpus)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = False
    for line in proc.stdout:
        if kill_after is not None and line.strip().isdigit() and int(line) >= kill_after:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
    proc.wait(120)
    if not killed:
        assert proc.returncode == 0, proc.stderr.read()[-2000:]
    return killed


def test_sigkill_at_random_points_converges_to_a_clean_run(tmp_path):
    rng = random.Random(20261130)
    corpus = tmp_path / "corpus"
    index_dir = tmp_path / "killed"
    kills = 0
    for generation in range(1, 13):
        _write_corpus(corpus, rng, generation)
        if generation % 4 == 0:  # some files vanish too
            for path in rng.sample(sorted(corpus.iterdir()), 5):
                path.unlink()
        if _run(index_dir, corpus, kill_after=rng.randint(1, 60)):
            kills += 1
    assert kills >= 10
    assert not _run(index_dir, corpus, kill_after=None)
    assert not _run(tmp_path / "clean", corpus, kill_after=None)
    assert _state(index_dir) == _state(tmp_path / "clean")
    # and a second run over the converged index changes nothing
    before = _state(index_dir)
    assert not _run(index_dir, corpus, kill_after=None)
    assert _state(index_dir) == before
    (tmp_path / "kills.txt").write_text(str(kills))


def test_two_ingests_at_once_one_refuses_clearly(tmp_path, corpus):
    env = {**os.environ, "ASSISTANT_INDEX": str(tmp_path / "index")}
    args = [sys.executable, "-m", "assistant", "ingest", str(corpus)]
    index = Index(tmp_path / "index", HashEmbedder())
    lock = index.lock()  # hold the writer lock as a running ingest would
    try:
        refused = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
        waiting = subprocess.Popen(args + ["--wait", "120"], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        time.sleep(8)
        assert waiting.poll() is None, "the waiting writer must wait for the lock"
    finally:
        lock.release()
        index.close()
    assert refused.returncode == 1
    assert "another process is writing to the index" in refused.stderr
    out, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err
    assert "added 6" in out


REBUILD_KILLED_HALFWAY = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from index.catalog import Catalog
    from index.embedding.embedder import HashEmbedder
    from index.index import Index
    from index.ingest import ingest
    from index.store import VectorStore

    def then_killed(step):
        def run(*args, **kwargs):
            step(*args, **kwargs)
            print("KILLED AFTER", step.__qualname__, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return run

    # a rebuild empties the catalog and drops the vectors: killed after whichever comes first
    Catalog.clear = then_killed(Catalog.clear)
    VectorStore.drop = then_killed(VectorStore.drop)
    ingest(Index(Path(sys.argv[1]), HashEmbedder()), [Path(sys.argv[2])], rebuild=True)
""")


def test_a_rebuild_killed_between_its_steps_leaves_no_chunk_without_vector(tmp_path):
    corpus = tmp_path / "corpus"
    _write_corpus(corpus, random.Random(3), 1)
    index_dir = tmp_path / "index"
    assert not _run(index_dir, corpus, kill_after=None)
    killed = subprocess.run([sys.executable, "-c", REBUILD_KILLED_HALFWAY, str(index_dir), str(corpus)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL and "KILLED AFTER" in killed.stdout, killed.stderr[-2000:]
    index = Index(index_dir, HashEmbedder())
    try:
        without = index.catalog.chunk_ids() - index.store.ids()
        assert not without, f"the catalog lists {len(without)} chunks whose vectors are gone"
    finally:
        index.close()
    assert not _run(index_dir, corpus, kill_after=None)  # a plain ingest, no --rebuild
    assert not _run(tmp_path / "clean", corpus, kill_after=None)
    assert _state(index_dir) == _state(tmp_path / "clean")


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from index.embedding.embedder import HashEmbedder
    from index.index import ChunkSettings, Index
    from index.ingest import ingest
    index = Index(Path(sys.argv[1]), HashEmbedder(), chunking=ChunkSettings(32, 0))
    report = ingest(index, [Path(p) for p in sys.argv[2:]], wait=120)
    assert not report.failed, report.failed
    print("ADDED", len(report.added), report.chunks, flush=True)
""")
GRAPH_CHECK = textwrap.dedent("""
    import sys
    from pathlib import Path
    from index.embedding.embedder import HashEmbedder
    from index.index import ChunkSettings, Index
    index = Index(Path(sys.argv[1]), HashEmbedder(), chunking=ChunkSettings(32, 0))
    listed = index.catalog.chunk_ids()
    found = {cid for cid, _ in index.store.query([1.0] * 64, len(listed) + 10)}
    print("LISTED", len(listed), "COUNT", index.store.count(), "MISSING", len(listed - found), flush=True)
""")


def _words_corpus(folder: Path, tag: str, files: int, sentences: int) -> Path:
    """Files of short distinct sentences: many small chunks (at 32 tokens a chunk)."""
    folder.mkdir(parents=True)
    for i in range(files):
        text = " ".join(f"{tag} file {i} line {j} tells of {tag}{j % 97} and {tag}{(i * j) % 89}."
                        for j in range(sentences))
        (folder / f"{tag}{i:03d}.txt").write_text(text)
    return folder


def _child(script: str, *args: Path) -> str:
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_writing_after_another_process_wrote_loses_none_of_its_vectors(tmp_path):
    """A chat that has searched the index, then indexes an upload after a CLI ingest in
    another process: an embedded Chroma client opened before that ingest would drop
    the CLI's vectors from its search graph for good (Chroma's count still has them)."""
    from index.index import ChunkSettings

    index_dir = tmp_path / "index"
    serving = Index(index_dir, HashEmbedder(), chunking=ChunkSettings(32, 0))
    ingest(serving, [_words_corpus(tmp_path / "first", "alpha", 30, 120)])
    assert serving.store.query([1.0] * 64, 3)  # its search graph is loaded, as in a chat
    out = _child(WRITER, index_dir, _words_corpus(tmp_path / "second", "beta", 40, 160))
    assert out.startswith("ADDED 40")
    report = ingest(serving, [_words_corpus(tmp_path / "third", "gamma", 30, 120)])
    assert len(report.added) == 30 and not report.failed
    serving.close()
    listed, count, missing = (int(x) for x in _child(GRAPH_CHECK, index_dir).split()[1::2])
    assert listed > 3000 and count == listed
    assert missing == 0, f"{missing} of {listed} listed chunks cannot be found by the dense side"


def test_a_stale_search_never_reopens_the_store_while_this_process_writes(tmp_path, monkeypatch):
    """A question searching during an upload's ingest must not swap the writer's client for a
    second one (which could drop vectors); outside a write, a stale search reopens and answers."""
    from index.index import ChunkSettings

    index = Index(tmp_path / "index", HashEmbedder(), chunking=ChunkSettings(32, 0))
    ingest(index, [_words_corpus(tmp_path / "first", "alpha", 3, 20)])
    store = index.store
    real, failures = store._query, []

    def stale_once(*args):
        if not failures:
            failures.append(1)
            raise RuntimeError("Error finding id 7")  # what Chroma raises after another process wrote
        return real(*args)

    monkeypatch.setattr(store, "_query", stale_once)
    with index.writing():
        handle = store._handle
        with pytest.raises(StoreUnavailable, match="ask again when that has finished"):
            store.query([1.0] * 64, 3)
        assert store._handle is handle
    failures.clear()
    with index._reopening:  # as while a background reopen runs: the search still reopens and answers
        assert store.query([1.0] * 64, 3) and store._handle is not handle
    index.close()


def test_a_plain_reingest_after_kill_never_duplicates(tmp_path):
    """Between a kill and the next run, reads see whole documents only, never duplicates."""
    rng = random.Random(7)
    corpus = tmp_path / "corpus"
    _write_corpus(corpus, rng, 1)
    index_dir = tmp_path / "index"
    assert _run(index_dir, corpus, kill_after=30)
    index = Index(index_dir, HashEmbedder())
    chunks = index.catalog.chunks()
    ids = [c.chunk_id for c in chunks]
    assert len(ids) == len(set(ids))
    for doc in index.catalog.documents():
        mine = [c for c in chunks if c.doc_id == doc.doc_id]
        assert len(mine) == doc.chunks, "a document is visible whole or not at all"
    ingest(index, [corpus])
    index.close()
    _state(index_dir)
