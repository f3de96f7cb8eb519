"""Folder to index: unchanged files skipped, changed ones replaced, vanished ones removed.

A file's new chunks are embedded and staged batch by batch (``EMBED_BATCH`` chunks, across small
files) and swapped in by one catalog transaction when the file is whole, so a crash never leaves
duplicates or half-indexed documents, and memory stays flat however large the file or folder
(docs/design.md). Documents given as text (a llama-index ``Document``) take the same steps.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from index.catalog import Chunk, Document, SectionRow
from index.errors import EmbedderError, IndexProblem, IndexWriteFailed, ReadError, StoreUnavailable
from index.index import Index, doc_id_for
from index.readers import STREAMED_SUFFIXES, SUPPORTED_SUFFIXES, open_text, read
from index.removal import delete_document, delete_orphans
from index.text.chunking import chunk_stream, chunk_text

EMBED_BATCH = 64  # chunks embedded together across small files
DOCUMENT_PREFIX = "document:"  # catalog path of a document given as text: this, then its id_
TITLE_KEYS = ("title", "file_name")  # where a document given as text names its title, in order


@dataclass
class SyncReport:
    """What one ingest did. ``failed`` holds (source, reason) pairs."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        """One line: what was added, updated, removed and failed (with why), and how long it took."""
        failed = "; ".join(f"{s}: {r}" for s, r in self.failed)
        return (f"{len(self.added)} added, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
                f"{len(self.removed)} removed, {len(self.failed)} failed{' (' + failed + ')' if failed else ''}; "
                f"{self.chunks} chunks in {self.seconds:.1f} s")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["failed"] = [{"source": s, "reason": r} for s, r in self.failed]
        out["skipped"] = [{"source": s, "reason": r} for s, r in self.skipped]
        out["seconds"] = round(self.seconds, 3)
        return out


Progress = Callable[[int, int, str], None]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_document_object(item) -> bool:
    """Whether ``item`` is shaped like a llama-index ``Document`` (it has ``id_`` and ``text``):
    a document given as text, not a path."""
    return hasattr(item, "id_") and hasattr(item, "text") and not isinstance(item, (str, os.PathLike))


@dataclass
class _Planned:
    path: Path | None  # None for a document given as text
    source: str
    document: Any = None  # the document given as text


@dataclass
class _Prepared:
    doc: Document  # ``chunks`` is filled in once the file has been read to its end
    chunks: Iterator[Chunk]
    old: Document | None
    # (title, author, date, [(section, its text)]) as the reader found them, once chunks are read
    details: Callable[[], tuple] = lambda: (None, None, None, [])
    sections: list[SectionRow] = field(default_factory=list)


def _plan(paths: list[Path], report: SyncReport) -> tuple[list[_Planned], list[Path]]:
    """Files to look at, and the folders whose vanished files should be removed."""
    planned: list[_Planned] = []
    folders: list[Path] = []
    seen: set[str] = set()
    for given in paths:
        if is_document_object(given):
            key = DOCUMENT_PREFIX + str(given.id_)
            if not str(given.id_):
                report.failed.append(("(a document without an id)", "give it an id_ to index it"))
            elif key not in seen:
                seen.add(key)
                planned.append(_Planned(None, str(given.id_), given))
            continue
        if given.is_dir():
            root = given.resolve()
            folders.append(root)
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if name.startswith("."):
                        continue
                    path = Path(dirpath) / name
                    source = path.relative_to(root).as_posix()
                    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                        report.skipped.append((source, f"unsupported type {path.suffix or '(none)'}"))
                        continue
                    if str(path) not in seen:
                        seen.add(str(path))
                        planned.append(_Planned(path, source))
        elif given.exists() or given.is_symlink():
            path = given.resolve() if given.exists() else given.absolute()
            if str(path) not in seen:
                seen.add(str(path))
                planned.append(_Planned(path, str(path)))
        else:
            report.failed.append((str(given), "no such file or folder"))
    return planned, folders


def ingest(
    index: Index,
    paths: list,
    progress: Progress | None = None,
    rebuild: bool = False,
    wait: float = 0,
) -> SyncReport:
    """Bring the index in line with ``paths`` (files and folders, and documents given as text).

    Unchanged files are skipped, changed files have their chunks replaced, files gone
    from a given folder are removed; files under other folders are left alone. Whatever
    goes wrong with one file (reading, decoding, cutting, embedding it) is recorded in
    the report with the file and the reason, and the rest go on; only a failure of the
    index itself (the lock, the settings, writing to the store or catalog) or of the
    embedder as a whole stops the run.

    Args:
        index: the index to write.
        paths: files and folders (``Path``) to index, and documents given as text (objects with
            ``id_``, ``text`` and optionally ``metadata``, e.g. llama-index ``Document``s).
        progress: called as ``progress(done, total, source)`` after each file, and while a
            long file is embedded, every 64 chunks as ``progress(done, total, "SOURCE
            (N chunks so far)")`` with ``done`` not yet counting it.
        rebuild: drop everything and rebuild (needed after a settings change).
        wait: seconds to wait for another writer before giving up.

    Returns:
        What was added, updated, unchanged, removed, skipped and failed.

    Raises:
        IndexBusy: another writer holds the lock.
        SettingsMismatch: the index has other settings and ``rebuild`` is False.
        IndexWriteFailed: the vector store or the catalog refused a write.
        StoreUnavailable: the Chroma server did not answer.
    """
    started = time.perf_counter()
    report = SyncReport()
    with index.writing(wait):
        _begin(index, rebuild)
        planned, folders = _plan(paths, report)
        seen_paths = _write_all(index, planned, report, progress)
        _remove_vanished(index, folders, seen_paths, report)
    report.seconds = time.perf_counter() - started
    return report


def _begin(index: Index, rebuild: bool) -> None:
    """Ready the index for a run: emptied for a rebuild, its settings checked and recorded,
    and what an interrupted run left behind deleted."""
    if rebuild:
        _clear(index)
    index.check_settings()
    index.catalog.set_meta("settings", index.settings())
    delete_orphans(index)


def _write_all(index: Index, planned: list[_Planned], report: SyncReport,
               progress: Progress | None) -> set[str]:
    """Read, chunk, embed and write each planned file in turn; returns the paths looked at.

    A failure of one file is recorded in the report; one of the index or of the embedder
    as a whole is raised."""
    writer = _Writer(index, report)
    seen_paths: set[str] = set()
    for done, item in enumerate(planned, 1):
        if item.path is not None:
            seen_paths.add(str(item.path))
        try:
            prepared = _prepare(index, item, report)
            if prepared is not None:
                during = functools.partial(_chunks_so_far, progress, done - 1, len(planned),
                                           item.source) if progress else None
                writer.add(prepared, during)
        except (IndexProblem, StoreUnavailable, EmbedderError):
            raise  # the index or the embedder as a whole: no later file would fare better
        except Exception as exc:  # anything else going wrong with one file is that file's failure
            report.failed.append((item.source, _reason(exc)))
        if progress:
            progress(done, len(planned), item.source)
    writer.flush()
    return seen_paths


def _reason(exc: BaseException) -> str:
    """What went wrong with one file, for the report."""
    if isinstance(exc, ReadError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"cannot read file: {exc}"
    if isinstance(exc, UnicodeDecodeError):
        return f"cannot decode the text ({exc}); was the file changed while it was read? run ingest again"
    return f"{type(exc).__name__}: {exc}"


def _clear(index: Index) -> None:
    """Empty the index for a rebuild: the catalog first, then the vectors.

    A kill between the two leaves vectors the catalog does not list: orphans the
    next ingest deletes. The other order would leave listed chunks without vectors.
    """
    index.catalog.clear()
    index.store.drop()


def _prepare(index: Index, item: _Planned, report: SyncReport) -> _Prepared | None:
    """Read and chunk one file, or record it as unchanged (returns None)."""
    if item.document is not None:
        return _prepare_document(index, item, report)
    path = item.path
    stat = path.stat()
    old = index.catalog.document_by_path(str(path))
    if old and old.size == stat.st_size and old.mtime == stat.st_mtime:
        report.unchanged.append(item.source)
        return None
    digest = _sha256(path)
    if old and old.hash == digest:
        index.catalog.touch_document(old.doc_id, stat.st_mtime)
        report.unchanged.append(item.source)
        return None
    doc_id = doc_id_for(str(path))
    settings = index.chunking
    if path.suffix.lower() in STREAMED_SUFFIXES:
        stream = open_text(path)
        pieces = chunk_stream(stream.blocks, settings.max_tokens, settings.overlap_tokens,
                              fits=index.embedder.fits)
        spans = ((span, text, None) for span, text in pieces)
        title = stream.title
        named: dict[int, str] = {}  # section start -> its text, taken from the chunk that holds it

        def details():  # known once the stream is read to its end
            return (stream.title, stream.author, stream.date,
                    [(x, named.get(x.start, "")) for x in stream.sections])
    else:
        extracted = read(path, index.max_file_bytes)
        cut = chunk_text(extracted.text, settings.max_tokens, settings.overlap_tokens,
                         fits=index.embedder.fits, breaks=extracted.page_starts)
        spans = ((s, extracted.text[s.start : s.end], extracted.page_at(s.start)) for s in cut)
        title = extracted.title
        named = None

        def details():
            return (extracted.title, extracted.author, extracted.date,
                    [(x, extracted.text[x.start:x.end]) for x in extracted.sections])
    doc = Document(
        doc_id=doc_id, path=str(path), source=item.source, title=title or path.name, hash=digest,
        size=stat.st_size, mtime=stat.st_mtime, chunks=0, indexed_at=time.time(),
    )

    def chunks() -> Iterator[Chunk]:
        pending = 0  # streamed sections whose text is not taken yet
        for n, (span, text, page) in enumerate(spans):
            if named is not None:
                while pending < len(stream.sections) and stream.sections[pending].start < span.end:
                    x = stream.sections[pending]
                    named[x.start] = text[max(0, x.start - span.start):x.end - span.start]
                    pending += 1
            yield Chunk(chunk_id=f"{doc.chunk_prefix()}{n}", doc_id=doc_id, n=n,
                        start=span.start, end=span.end, page=page, text=text)
        if _sha256(path) != digest:
            raise ReadError("file changed while being read; run ingest again")

    return _Prepared(doc, chunks(), old, details)


def _prepare_document(index: Index, item: _Planned, report: SyncReport) -> _Prepared | None:
    """Chunk one document given as text, or record it as unchanged (returns None).

    Its title is the first of its metadata's ``TITLE_KEYS``, else its id; its passages' page is
    its metadata's ``page_label`` when that is a number (a PDF reader's page documents)."""
    given = item.document
    text = given.text
    if not isinstance(text, str):
        raise ReadError(f"its text is {type(text).__name__}, not a string")
    if not text.strip():
        raise ReadError("the document has no text")
    metadata = dict(getattr(given, "metadata", None) or {})
    title = next((str(metadata[k]) for k in TITLE_KEYS if metadata.get(k)), None)
    label = str(metadata.get("page_label", ""))
    page = int(label) if label.isdigit() else None
    key = DOCUMENT_PREFIX + item.source
    digest = hashlib.sha256(f"{title or ''}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()
    old = index.catalog.document_by_path(key)
    if old and old.hash == digest:
        report.unchanged.append(item.source)
        return None
    settings = index.chunking
    cut = chunk_text(text, settings.max_tokens, settings.overlap_tokens, fits=index.embedder.fits)
    doc = Document(
        doc_id=doc_id_for(key), path=key, source=item.source, title=title or item.source, hash=digest,
        size=len(text.encode("utf-8", "surrogatepass")), mtime=0.0, chunks=0, indexed_at=time.time(),
    )
    chunks = (Chunk(chunk_id=f"{doc.chunk_prefix()}{n}", doc_id=doc.doc_id, n=n, start=s.start,
                    end=s.end, page=page, text=text[s.start:s.end]) for n, s in enumerate(cut))
    return _Prepared(doc, chunks, old, lambda: (doc.title, None, None, []))


def _chunks_so_far(progress: Progress, done: int, total: int, source: str, chunks: int) -> None:
    progress(done, total, f"{source} ({chunks} chunks so far)")


class _Writer:
    """Embeds, stores and stages chunks in batches across files; commits each file when whole.

    A file whose chunks cannot be embedded is recorded in the report as failed and
    nothing of it stays; the other files of the same batch go on.
    """

    def __init__(self, index: Index, report: SyncReport):
        self.index, self.report = index, report
        self.batch: list[Chunk] = []
        self.whole: list[_Prepared] = []  # read to the end; committed at the next flush
        self.sources: dict[str, str] = {}  # doc_id -> source, to report a failure found later
        self.failed: set[str] = set()

    def add(self, prepared: _Prepared, during: Callable[[int], None] | None = None) -> None:
        """Take in one file's chunks; when reading or cutting it fails, nothing of it stays
        and the exception is raised (an embedding failure is recorded in the report).

        ``during(chunks)`` is called after each batch written while the file is read.
        """
        doc_id = prepared.doc.doc_id
        self.sources[doc_id] = prepared.doc.source
        count = 0
        try:
            for chunk in prepared.chunks:
                self.batch.append(chunk)
                count += 1
                if len(self.batch) >= EMBED_BATCH:
                    self.flush()
                    if doc_id in self.failed:
                        prepared.chunks.close()
                        return
                    if during:
                        during(count)
            if count == 0:
                raise ReadError("no text found in file")
        except Exception:
            self._discard(doc_id)
            raise
        title, author, date, sections = prepared.details()
        doc = replace(prepared.doc, chunks=count, title=title or prepared.doc.title, author=author, date=date)
        self.whole.append(replace(prepared, doc=doc, sections=[
            SectionRow(doc_id, x.start, x.end, x.kind, x.level, text[:300]) for x, text in sections]))
        if len(self.batch) >= EMBED_BATCH or not self.batch:
            self.flush()

    def flush(self) -> None:
        index = self.index
        if self.batch:
            chunks, self.batch = self.batch, []
            chunks, vectors = self._embed(chunks)
            if chunks:
                try:
                    index.store.upsert([c.chunk_id for c in chunks], vectors, [c.doc_id for c in chunks])
                    index.catalog.stage_chunks(chunks)
                except StoreUnavailable:
                    raise
                except Exception as exc:
                    raise IndexWriteFailed(f"cannot write to the index at {index.dir}: "
                                           f"{type(exc).__name__}: {exc}") from exc
        for p in self.whole:
            old_ids = index.catalog.chunk_ids(p.old.doc_id) if p.old else set()
            index.catalog.commit_document(p.doc, p.sections)
            new_prefix = p.doc.chunk_prefix()
            stale = [i for i in old_ids if not i.startswith(new_prefix)]
            if stale:
                index.store.delete(sorted(stale))
            (self.report.updated if p.old else self.report.added).append(p.doc.source)
            self.report.chunks += p.doc.chunks
        self.whole = []

    def _embed(self, chunks: list[Chunk]) -> tuple[list[Chunk], list]:
        """Vectors for ``chunks``. When the embedder fails on the batch, each file's chunks
        are tried on their own; a file that still fails is recorded as failed and left out."""
        try:
            return chunks, self.index.embedder.embed([c.text for c in chunks])
        except EmbedderError:
            raise  # the embedder as a whole is missing or broken: no file can be indexed
        except Exception as exc:
            first = exc
        doc_ids = list(dict.fromkeys(c.doc_id for c in chunks))
        kept: list[Chunk] = []
        vectors: list = []
        for doc_id in doc_ids:
            mine = [c for c in chunks if c.doc_id == doc_id]
            try:
                if len(doc_ids) == 1:
                    raise first
                got = self.index.embedder.embed([c.text for c in mine])
            except EmbedderError:
                raise
            except Exception as exc:
                self._fail(doc_id, f"cannot embed its text: {type(exc).__name__}: {exc}")
                continue
            kept += mine
            vectors += list(got)
        return kept, vectors

    def _fail(self, doc_id: str, reason: str) -> None:
        self.failed.add(doc_id)
        self.report.failed.append((self.sources.get(doc_id, doc_id), reason))
        self.whole = [p for p in self.whole if p.doc.doc_id != doc_id]
        self._discard(doc_id)

    def _discard(self, doc_id: str) -> None:
        self.batch = [c for c in self.batch if c.doc_id != doc_id]
        staged = self.index.catalog.drop_staged(doc_id)
        if staged:
            self.index.store.delete(staged)


def _remove_vanished(index: Index, folders: list[Path], seen: set[str], report: SyncReport) -> None:
    for doc in index.catalog.documents():
        if doc.path in seen:
            continue
        if any(Path(doc.path).is_relative_to(folder) for folder in folders):
            delete_document(index, doc)
            report.removed.append(doc.source)
