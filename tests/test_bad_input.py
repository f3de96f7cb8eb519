"""Bad input: each bad file gets a clear, per-file message and the rest of the folder is indexed.

These use the small fake embedder: they are about the pipeline, not about answers.
"""

from __future__ import annotations

import os
import pathlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.chunking import chunk_text
from index.readers import ReadError, read
from index.sync import Index, ingest
from tests.conftest import make_pdf

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
        "truncated.pdf": "",
        "corrupt.pdf": "",
        "notes.html": "no text found",
        "locked.pdf": "encrypted",
        "huge.html": "over the 10.0 MB limit",
        "huge.txt": "looks binary",
        "loop-a.txt": "cannot read file",
        "loop-b.txt": "cannot read file",
        "dangling.txt": "cannot read file",
        str(tmp_path / "does-not-exist"): "no such file or folder",
    }
    # A truncated or corrupt PDF may still yield a page of text; if not, it must be reported.
    for name in ("truncated.pdf", "corrupt.pdf"):
        if name not in failed:
            expected.pop(name)
            assert name in report.added
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
    import index.sync as sync

    real_open = sync.open_text

    def open_and_change(path, *args):
        stream = real_open(path, *args)  # the first block is read
        if path.name == "good.txt":
            path.write_text("Changed in the middle of indexing.")
        return stream

    monkeypatch.setattr(sync, "open_text", open_and_change)
    report = ingest(index, [folder])
    assert dict(report.failed)["good.txt"] == "file changed while being read; run ingest again"
    assert "good.txt" not in {d.source for d in index.catalog.documents()}
    assert index.catalog.drop_staged() == [] and index.store.ids() == index.catalog.chunk_ids()
    monkeypatch.setattr(sync, "open_text", real_open)
    assert "good.txt" in ingest(index, [folder]).added


def test_file_vanishing_before_it_is_read(index, folder):
    (folder / "zz-last.txt").write_text("This file will vanish before its turn.")

    def progress(done, total, source):
        if source == "also-good.md":
            (folder / "zz-last.txt").unlink(missing_ok=True)

    report = ingest(index, [folder], progress=progress)
    assert "cannot read file" in dict(report.failed)["zz-last.txt"]
    assert {"good.txt", "also-good.md"} <= set(report.added)


def test_unreadable_file(index, folder, monkeypatch):
    secret = folder / "secret.txt"
    secret.write_text("Nobody may read this.")
    secret.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make the read fail as it would for a user
        real = pathlib.Path.read_bytes

        def denied(self):
            if self.name == "secret.txt":
                raise PermissionError(13, "Permission denied", str(self))
            return real(self)

        monkeypatch.setattr(pathlib.Path, "read_bytes", denied)
        monkeypatch.setattr("index.sync._sha256", lambda p: denied(p) and "x")
    report = ingest(index, [folder])
    assert "Permission denied" in dict(report.failed)["secret.txt"]
    assert {"good.txt", "also-good.md"} <= set(report.added)


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
