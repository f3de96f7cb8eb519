"""Bad input: each bad file gets a clear, per-file message and the rest of the folder is indexed.

These use the small fake embedder: they are about the pipeline, not about answers.
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.embedding.embedder import HashEmbedder
from index.errors import ReadError
from index.index import Index
from index.ingest import ingest
from index.readers import read
from index.text.chunking import chunk_text
from tests.support import ROOT
from tests.support.corpus import make_pdf

GOOD = {"good.txt": "The heron waits by the pond. It catches a fish at dawn.",
        "also-good.md": "# Notes\n\nBeavers build dams from branches and mud."}


@pytest.fixture
def index(tmp_path, fake_embedder):
    idx = Index(tmp_path / "index", fake_embedder, max_file_bytes=10_000_000)
    yield idx
    idx.close()


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in GOOD.items():
        (folder / name).write_text(text)
    return folder


def _encrypted_pdf(path: pathlib.Path, source: pathlib.Path) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=str(source))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    with open(path, "wb") as f:
        writer.write(f)


def test_a_folder_of_bad_files(index, folder, tmp_path):
    """Every kind of bad file in one folder: each reported by name, the good ones indexed."""
    make_pdf(tmp_path / "ok.pdf", ["Page one text about owls.", "Page two text about larks."])
    data = (tmp_path / "ok.pdf").read_bytes()
    bad = {
        "zero.txt": b"",
        "spaces.md": b"   \n\n\t  \n",
        "binary.txt": bytes(range(256)) * 10,
        "binary.pdf": os.urandom(2048),
        "binary.docx": os.urandom(2048),
        "truncated.pdf": data[: len(data) // 2],
        "corrupt.pdf": data.replace(b"obj", b"jbo"),
        "notes.html": b"<html><body><script>only script</script></body></html>",
    }
    for name, content in bad.items():
        (folder / name).write_bytes(content)
    _encrypted_pdf(folder / "locked.pdf", tmp_path / "ok.pdf")
    make_pdf(folder / "fine.pdf", ["A proper page about swifts."])
    with open(folder / "huge.html", "wb") as f:  # 200 MB (sparse), over the limit for files read whole
        f.truncate(200_000_000)
    with open(folder / "huge.txt", "wb") as f:  # text is streamed, so no size limit: refused as binary
        f.truncate(200_000_000)
    (folder / "latin1.txt").write_bytes("Les gar\xe7ons mangent des cr\xeapes.".encode("latin-1"))
    (folder / "mixed.txt").write_bytes("caf\u00e9 ".encode() + b"and caf\xe9 again.")
    os.symlink("loop-b.txt", folder / "loop-a.txt")
    os.symlink("loop-a.txt", folder / "loop-b.txt")
    os.symlink(folder, folder / "self")  # a folder loop: never followed
    os.symlink(folder / "nowhere.txt", folder / "dangling.txt")

    report = ingest(index, [folder, tmp_path / "does-not-exist"])
    failed = dict(report.failed)
    expected = {
        "zero.txt": "file is empty",
        "spaces.md": "no text found",
        "binary.txt": "looks binary",
        "binary.pdf": "cannot parse .pdf",
        "binary.docx": "cannot parse .docx",
        "truncated.pdf": "cannot parse .pdf",
        "corrupt.pdf": "cannot parse .pdf",
        "notes.html": "no text found",
        "locked.pdf": "encrypted",
        "huge.html": "over the 10.0 MB limit",
        "huge.txt": "looks binary",
        "loop-a.txt": "cannot read file",
        "loop-b.txt": "cannot read file",
        "dangling.txt": "cannot read file",
        str(tmp_path / "does-not-exist"): "no such file or folder",
    }
    for name, reason in expected.items():
        assert name in failed, f"{name} not reported"
        assert reason in failed[name], failed[name]
    indexed = {d.source for d in index.catalog.documents()}
    assert {"good.txt", "also-good.md", "fine.pdf", "latin1.txt", "mixed.txt"} <= indexed
    assert not any(s.startswith("self/") for s in indexed)
    texts = " ".join(c.text for c in index.catalog.chunks())
    assert "garçons mangent des crêpes" in texts


def test_a_long_line_with_no_sentence_breaks(index, folder):
    (folder / "line.txt").write_text("lorem " * 850_000)  # ~5 MB, one line
    report = ingest(index, [folder])
    assert "line.txt" in report.added
    chunks = [c for c in index.catalog.chunks() if c.text.startswith("lorem")]
    assert len(chunks) > 100
    assert all(len(c.text) < 2000 for c in chunks)


def test_file_changing_while_read_is_reported(index, folder, monkeypatch):
    ingest_module = importlib.import_module("index.ingest")  # the fixture "index" hides the package name

    real_open = ingest_module.open_text

    def open_and_change(path, *args):
        stream = real_open(path, *args)  # the first block is read
        if path.name == "good.txt":
            path.write_text("Changed in the middle of indexing.")
        return stream

    monkeypatch.setattr(ingest_module, "open_text", open_and_change)
    report = ingest(index, [folder])
    assert dict(report.failed)["good.txt"] == "file changed while being read; run ingest again"
    assert "good.txt" not in {d.source for d in index.catalog.documents()}
    assert index.catalog.drop_staged() == [] and index.store.ids() == index.catalog.chunk_ids()
    monkeypatch.setattr(ingest_module, "open_text", real_open)
    assert "good.txt" in ingest(index, [folder]).added


def test_file_vanishing_before_it_is_read(index, folder):
    (folder / "zz-last.txt").write_text("This file will vanish before its turn.")

    def progress(done, total, source):
        if source == "also-good.md":
            (folder / "zz-last.txt").unlink(missing_ok=True)

    report = ingest(index, [folder], progress=progress)
    assert "cannot read file" in dict(report.failed)["zz-last.txt"]
    assert {"good.txt", "also-good.md"} <= set(report.added)


UNREADABLE_CHILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from index.embedding.embedder import HashEmbedder
    from index.index import Index
    from index.ingest import ingest
    report = ingest(Index(Path(sys.argv[1]), HashEmbedder()), [Path(sys.argv[2])])
    print(json.dumps(report.to_dict()))
""")


def test_unreadable_file(tmp_path, folder):
    """A file the user may not read. Root reads anything, so as root the ingest runs in a
    child without the capabilities that let root ignore file permissions."""
    secret = folder / "secret.txt"
    secret.write_text("Nobody may read this.")
    secret.chmod(0)
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.fail("running as root, this test needs setpriv (util-linux) to drop CAP_DAC_OVERRIDE")
        prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    done = subprocess.run([*prefix, sys.executable, "-c", UNREADABLE_CHILD, str(tmp_path / "idx"),
                           str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    failed = {f["source"]: f["reason"] for f in report["failed"]}
    assert set(failed) == {"secret.txt"}
    assert "Permission denied" in failed["secret.txt"]
    assert {"good.txt", "also-good.md"} <= set(report["added"])


def test_a_decode_error_in_a_streamed_file_fails_that_file_only(index, folder, monkeypatch):
    """The encoding is chosen reading the file first; bytes changed after that (another
    program writing it) fail to decode mid-stream."""
    ingest_module = importlib.import_module("index.ingest")  # the fixture "index" hides the package name

    late = folder / "late.txt"
    late.write_text("Plain words about the river and its ferry. " * 3000)  # 132 KB, several blocks
    real_open = ingest_module.open_text

    def open_then_corrupt(path, *args):
        stream = real_open(path, *args)  # encoding chosen (UTF-8), first block read
        if path.name == "late.txt":
            with open(path, "r+b") as f:
                f.seek(100_000)
                f.write(b"\xff\xfe\xfa")  # not UTF-8
        return stream

    monkeypatch.setattr(ingest_module, "open_text", open_then_corrupt)
    report = ingest(index, [folder])
    failed = dict(report.failed)
    assert "cannot decode" in failed["late.txt"] and "late.txt" not in report.added
    assert {"good.txt", "also-good.md"} <= set(report.added)
    assert index.catalog.drop_staged() == [] and index.store.ids() == index.catalog.chunk_ids()


def test_a_chunker_error_fails_that_file_only(index, folder, monkeypatch):
    ingest_module = importlib.import_module("index.ingest")  # the fixture "index" hides the package name

    (folder / "page.html").write_text("<html><body><p>A page the chunker trips over.</p></body></html>")
    real_chunk = ingest_module.chunk_text

    def chunk(text, *args, **kwargs):
        if "trips over" in text:
            raise RecursionError("maximum recursion depth exceeded")
        return real_chunk(text, *args, **kwargs)

    monkeypatch.setattr(ingest_module, "chunk_text", chunk)
    report = ingest(index, [folder])
    assert dict(report.failed) == {"page.html": "RecursionError: maximum recursion depth exceeded"}
    assert sorted(report.added) == ["also-good.md", "good.txt"]


class _Choking(HashEmbedder):
    """Fails on any batch holding the word "poison", as a model can on one odd input."""

    def embed(self, texts):
        if any("poison" in t for t in texts):
            raise ValueError("input ids out of range")
        return super().embed(texts)


def test_an_embedder_error_fails_that_file_only(tmp_path, folder):
    (folder / "poison.txt").write_text("A file with the word poison in it.")
    index = Index(tmp_path / "idx", _Choking())
    try:
        report = ingest(index, [folder])  # the three small files share one embedding batch
        assert dict(report.failed) == {"poison.txt": "cannot embed its text: ValueError: input ids out of range"}
        assert sorted(report.added) == ["also-good.md", "good.txt"]
        assert index.store.ids() == index.catalog.chunk_ids()
        assert "poison.txt" not in {d.source for d in index.catalog.documents()}
    finally:
        index.close()


# ----------------------------------------------------------------------------- properties
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=3000), suffix=st.sampled_from([".txt", ".md", ".html", ".pdf", ".docx"]))
def test_readers_never_raise_anything_but_read_error(tmp_path, content, suffix):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(content)
    try:
        out = read(path)
    except ReadError as exc:
        assert str(exc)
    else:
        assert out.text.strip()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=1500),
       html=st.booleans())
def test_readers_keep_text_for_any_unicode(tmp_path, text, html):
    path = tmp_path / ("doc.html" if html else "doc.txt")
    path.write_text(f"<p>{text}</p>" if html else text, encoding="utf-8")
    try:
        out = read(path)
    except ReadError:
        return
    if not html:
        assert out.text == text.replace("\r\n", "\n").replace("\r", "\n").removeprefix("\ufeff")


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=4000), max_tokens=st.integers(64, 300),
       overlap=st.integers(0, 60), breaks=st.lists(st.integers(0, 4000), max_size=5))
def test_chunker_offsets_always_hold(text, max_tokens, overlap, breaks):
    spans = chunk_text(text, max_tokens, min(overlap, max_tokens // 2), breaks=breaks)
    covered = set()
    for s in spans:
        assert 0 <= s.start < s.end <= len(text)
        piece = text[s.start:s.end]
        assert piece == piece.strip() and piece
        assert s.tokens <= max_tokens
        covered.update(range(s.start, s.end))
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and i not in covered]
    assert not missing, "every non-space character is in some chunk"
