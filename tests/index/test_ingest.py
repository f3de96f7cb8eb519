"""Ingest and sync against a real Chroma (fake embedder: these tests are about plumbing)."""

from __future__ import annotations

import os
import shutil
import threading
from collections import Counter

import pytest

from index.embedding.embedder import HashEmbedder
from index.errors import IndexBusy, RemovalRefused, SettingsMismatch
from index.index import ChunkSettings, Index
from index.ingest import ingest
from index.readers import read
from index.removal import remove
from index.text.terms import terms


@pytest.fixture
def index(tmp_path, fake_embedder, catalog_url):
    """An index on each catalog (SQLite, PostgreSQL): every test of it runs on both."""
    idx = Index(tmp_path / "index", fake_embedder, catalog_url=catalog_url)
    yield idx
    idx.close()


def state(index: Index):
    """Everything that defines the index's content, for comparing two indexes."""
    chunks = index.catalog.chunks()
    ids = [c.chunk_id for c in chunks]
    assert len(ids) == len(set(ids)), "duplicate chunk ids"
    assert set(ids) == index.store.ids(), "Chroma and the catalog disagree"
    held = Counter(t for c in chunks for t in set(terms(c.text)))
    assert index.catalog.term_stats(sorted(held)) == (len(chunks), dict(held)), "keyword index out of step"
    docs = {d.source: (d.hash, d.chunks) for d in index.catalog.documents()}
    return docs, sorted(ids)


def test_ingest_every_format_and_offsets_hold(index, corpus):
    report = ingest(index, [corpus])
    assert not report.failed
    assert sorted(report.added) == sorted(p.name for p in corpus.iterdir())
    docs = {d.source: d for d in index.catalog.documents()}
    for chunk in index.catalog.chunks():
        doc = next(d for d in docs.values() if d.doc_id == chunk.doc_id)
        text = read(corpus / doc.source).text
        assert text[chunk.start:chunk.end] == chunk.text
    pages = {c.page for c in index.catalog.chunks() if c.doc_id == docs["spain.pdf"].doc_id}
    assert pages == {1, 2} or pages == {1}  # small pages may share a chunk
    state(index)


def test_reingest_changes_nothing(index, corpus):
    ingest(index, [corpus])
    before = state(index)
    report = ingest(index, [corpus])
    assert report.added == [] and report.updated == [] and report.removed == []
    assert len(report.unchanged) == len(list(corpus.iterdir()))
    assert state(index) == before


def test_touched_but_identical_file_is_unchanged(index, corpus):
    ingest(index, [corpus])
    before = state(index)
    os.utime(corpus / "belgium.md", (1, 1))
    report = ingest(index, [corpus])
    assert "belgium.md" in report.unchanged
    assert state(index) == before


def test_changed_file_replaces_its_chunks(index, corpus):
    ingest(index, [corpus])
    (corpus / "belgium.md").write_text("# Belgium\n\nBelgium is famous for chocolate.\n")
    report = ingest(index, [corpus])
    assert report.updated == ["belgium.md"]
    docs, ids = state(index)
    texts = [c.text for c in index.catalog.chunks()]
    assert any("chocolate" in t for t in texts)
    assert not any("Atomium" in t for t in texts)


def test_deleted_file_disappears_and_other_roots_stay(index, corpus, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "note.txt").write_text("A note in another folder about lighthouses.")
    ingest(index, [corpus, other])
    (corpus / "lighthouse.txt").unlink()
    report = ingest(index, [corpus])
    assert report.removed == ["lighthouse.txt"]
    sources = {d.source for d in index.catalog.documents()}
    assert "lighthouse.txt" not in sources
    assert "note.txt" in sources, "a file under another root must be untouched"
    state(index)


def test_remove(index, corpus):
    ingest(index, [corpus])
    assert remove(index, "germany.html") == ["germany.html"]
    assert "germany.html" not in {d.source for d in index.catalog.documents()}
    assert remove(index, "germany.html") == []
    state(index)


def test_remove_refuses_the_root_and_unconfirmed_folders(index, corpus, tmp_path):
    ingest(index, [corpus])
    before = state(index)
    for target in ("/", "//", "/.", "", "  "):
        with pytest.raises(RemovalRefused):
            remove(index, target)
    with pytest.raises(RemovalRefused, match="filesystem root"):
        remove(index, "/", folder=True)  # not even when confirmed: that is emptying the index
    with pytest.raises(RemovalRefused, match=r"folder holding 6 indexed documents.*--folder"):
        remove(index, str(corpus))
    with pytest.raises(RemovalRefused, match="--folder"):
        remove(index, str(tmp_path))
    assert state(index) == before, "a refused removal removes nothing"
    assert sorted(remove(index, str(corpus), folder=True)) == sorted(p.name for p in corpus.iterdir())
    assert index.catalog.documents() == []
    state(index)


def test_remove_by_source_prefix_needs_the_folder_flag_too(index, tmp_path):
    docs = tmp_path / "docs"
    (docs / "guide").mkdir(parents=True)
    (docs / "guide" / "intro.md").write_text("# Intro\n\nHow to begin.\n")
    (docs / "guide" / "setup.md").write_text("# Setup\n\nHow to install.\n")
    (docs / "guidebook.md").write_text("# Guidebook\n\nA different file.\n")
    ingest(index, [docs])
    with pytest.raises(RemovalRefused, match="2 indexed documents"):
        remove(index, "guide")
    assert sorted(remove(index, "guide/", folder=True)) == ["guide/intro.md", "guide/setup.md"]
    assert [d.source for d in index.catalog.documents()] == ["guidebook.md"]


def test_remove_a_symlinked_path_removes_what_it_points_at(index, corpus, tmp_path):
    ingest(index, [corpus])
    link = tmp_path / "link-to-belgium.md"
    link.symlink_to(corpus / "belgium.md")
    assert remove(index, str(link)) == ["belgium.md"]
    assert "belgium.md" not in {d.source for d in index.catalog.documents()}
    folder_link = tmp_path / "corpus-link"
    folder_link.symlink_to(corpus, target_is_directory=True)
    with pytest.raises(RemovalRefused, match="--folder"):
        remove(index, str(folder_link))
    assert len(remove(index, str(folder_link), folder=True)) == 5
    state(index)


def test_same_named_sources_are_never_both_removed_by_name(index, tmp_path):
    paths = []
    for team in ("north", "south"):
        folder = tmp_path / team
        folder.mkdir()
        (folder / "notes.txt").write_text(f"Meeting notes of the {team} team about the harbour.")
        paths.append(folder / "notes.txt")
    ingest(index, [tmp_path / "north", tmp_path / "south"])
    assert [d.source for d in index.catalog.documents()] == ["notes.txt", "notes.txt"]
    with pytest.raises(RemovalRefused) as refused:
        remove(index, "notes.txt")
    assert str(paths[0]) in str(refused.value) and str(paths[1]) in str(refused.value)
    assert len(index.catalog.documents()) == 2
    assert remove(index, str(paths[1])) == ["notes.txt"]
    assert [d.path for d in index.catalog.documents()] == [str(paths[0])]
    assert remove(index, "notes.txt") == ["notes.txt"]  # one left: the name is no longer ambiguous
    state(index)


def test_broken_file_is_reported_and_the_rest_index(index, corpus):
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    report = ingest(index, [corpus, corpus / "missing.txt"])
    failed = dict(report.failed)
    assert set(failed) == {"broken.pdf", "empty.txt", str(corpus / "missing.txt")}
    assert "cannot parse" in failed["broken.pdf"]
    assert "empty" in failed["empty.txt"]
    assert dict(report.skipped) == {"photo.jpg": "unsupported type .jpg"}
    assert len(report.added) == 6


def test_crash_between_store_and_catalog_leaves_no_duplicates(index, corpus):
    """Vectors written but never committed are invisible, then cleaned up."""
    ingest(index, [corpus])
    clean = state(index)
    # a run killed after upserting new vectors and before committing the catalog
    index.store.upsert(["deadbeef-000000000000-0"], [[0.1] * index.embedder.dim], ["deadbeef"])
    assert "deadbeef-000000000000-0" not in index.catalog.chunk_ids()
    ingest(index, [corpus])
    assert state(index) == clean


def test_crash_after_commit_leaves_old_vectors_only_as_orphans(index, corpus):
    ingest(index, [corpus])
    old_ids = set(index.store.ids())
    (corpus / "belgium.md").write_text("# Belgium\n\nNew text about Ghent.\n")
    real_delete = index.store.delete
    index.store.delete = lambda ids: None  # killed before the old vectors were deleted
    ingest(index, [corpus])
    index.store.delete = real_delete
    assert index.store.ids() - index.catalog.chunk_ids(), "orphans left by the 'crash'"
    ingest(index, [corpus])
    state(index)
    assert old_ids != index.store.ids()


def test_settings_mismatch_refuses_then_rebuilds(tmp_path, corpus, fake_embedder):
    first = Index(tmp_path / "idx", fake_embedder)
    ingest(first, [corpus])
    first.close()
    other = Index(tmp_path / "idx", fake_embedder, chunking=ChunkSettings(max_tokens=50))
    with pytest.raises(SettingsMismatch, match="--rebuild"):
        ingest(other, [corpus])
    report = ingest(other, [corpus], rebuild=True)
    assert len(report.added) == 6
    state(other)


def test_second_writer_is_refused_clearly(index, corpus):
    lock = index.lock()
    try:
        with pytest.raises(IndexBusy, match="another process is writing"):
            ingest(index, [corpus])
        done = []
        t = threading.Thread(target=lambda: done.append(ingest(index, [corpus], wait=30)))
        t.start()
    finally:
        lock.release()
    t.join(60)
    assert done and len(done[0].added) == 6


def test_folder_given_twice_and_file_given_alone(index, corpus):
    report = ingest(index, [corpus, corpus / "belgium.md"])
    assert len(index.catalog.documents()) == 6
    assert report.added.count("belgium.md") == 1
    single = ingest(index, [corpus / "lighthouse.txt"])
    assert single.unchanged == [str(corpus / "lighthouse.txt")]


def test_renamed_folder_reindexes_cleanly(index, corpus, tmp_path):
    ingest(index, [corpus])
    moved = tmp_path / "moved"
    shutil.move(str(corpus), str(moved))
    ingest(index, [corpus.parent / "corpus"]) if corpus.exists() else None
    ingest(index, [moved])
    assert len(index.catalog.documents()) == 12  # the old root was not re-ingested: kept
    remove(index, str(corpus), folder=True)
    assert len(index.catalog.documents()) == 6
    state(index)


def test_a_large_text_file_is_streamed_not_held_whole(index, tmp_path):
    import random
    import tracemalloc

    rng = random.Random(7)
    words = "river archive ledger signal harbour winter copper lantern orchard meadow".split()
    big = tmp_path / "big" / "log.txt"
    big.parent.mkdir()
    with big.open("w") as f:
        while f.tell() < 8_000_000:
            f.write(" ".join(rng.choice(words) for _ in range(12)) + ".\n")
    warm = tmp_path / "warm.txt"  # loads the tokenizer and Chroma before measuring
    warm.write_text("A small file to warm up. " * 50)
    ingest(index, [warm])
    calls = []
    tracemalloc.start()
    try:
        report = ingest(index, [big.parent], progress=lambda *call: calls.append(call))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.added == ["log.txt"] and report.chunks > 5000, report
    # progress while the one file is embedded, every 64 chunks, then once for the file
    assert calls[-1] == (1, 1, "log.txt")
    assert calls[:-1] == [(0, 1, f"log.txt ({64 * n} chunks so far)") for n in range(1, report.chunks // 64 + 1)]
    # held whole, its text alone would be 8 MB of Python allocations
    assert peak < 0.75 * big.stat().st_size, f"peak Python allocations {peak / 1e6:.1f} MB for an 8 MB file"
    text = read(big).text
    chunks = sorted((c for c in index.catalog.chunks() if c.text in text), key=lambda c: c.n)
    assert len(chunks) == report.chunks
    assert all(text[c.start:c.end] == c.text for c in chunks[:: len(chunks) // 50])
    assert chunks[-1].end == len(text.rstrip())
    state(index)


def test_asking_an_index_built_by_another_embedder_is_refused(tmp_path, corpus):
    from assistant import Assistant, Settings
    from index.embedding.embedder import HashEmbedder

    settings = Settings.from_env(index_dir=tmp_path / "idx", backend="none")
    Assistant(settings, embedder=HashEmbedder(dim=64)).ingest([corpus])
    assert Assistant(settings, embedder=HashEmbedder(dim=64)).ask("What is Ghent?").citations
    other = Assistant(settings, embedder=HashEmbedder(dim=32))
    with pytest.raises(SettingsMismatch, match="--rebuild"):
        other.ask("What is Ghent?")
    other.ingest([corpus], rebuild=True)
    assert other.ask("What is Ghent?").citations


KILLED_CHILD = """
import sys
from pathlib import Path
from index.embedding.embedder import HashEmbedder
from index.index import Index
from index.ingest import ingest
index = Index(Path(sys.argv[1]), HashEmbedder(), catalog_url=sys.argv[3] or None)
ingest(index, [Path(sys.argv[2])], progress=lambda done, total, source: print(source, flush=True))
"""


@pytest.mark.slow
def test_a_killed_ingest_leaves_nothing_of_its_file_searchable(tmp_path, corpus, catalog_url):
    """SIGKILL while a long file's chunks are staged: no keyword search finds them, then re-run."""
    import signal
    import subprocess
    import sys

    from tests.support import ROOT

    index_dir = tmp_path / "index"
    first = Index(index_dir, HashEmbedder(), catalog_url=catalog_url)
    ingest(first, [corpus])
    first.close()
    long = corpus / "zz-long.txt"  # indexed last; ~10 batches of 64 chunks
    long.write_text("".join(f"Line {i}: the quillfeather ledger of harbour {i % 97}.\n" for i in range(12000)))
    proc = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, str(index_dir), str(corpus), catalog_url or ""],
                            cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if "chunks so far" in line:  # a batch of the long file is staged, the file not committed
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()[-2000:]
    index = Index(index_dir, HashEmbedder(), catalog_url=catalog_url)
    assert index.catalog._db.execute("SELECT COUNT(*) FROM staged_chunks").fetchone()[0] >= 64

    assert index.catalog.keyword_search("quillfeather ledger", 5) == []
    assert index.catalog.term_stats(["quillfeath"])[1] == {"quillfeath": 0}
    assert index.catalog.keyword_search("Atomium", 5), "what was committed before stays searchable"
    report = ingest(index, [corpus])
    assert report.added == ["zz-long.txt"]
    count, frequency = index.catalog.term_stats(["quillfeath"])
    assert frequency["quillfeath"] == report.chunks and count == len(index.catalog.chunks())
    index.close()
