"""Folder to index: hashes, add / replace / remove, one writer at a time, crash-safe.

How a crash can never leave duplicates or half-indexed documents:

1. A changed file's new chunks get ids that include its content hash. Batch by
   batch, their vectors are upserted into Chroma and the chunks are staged in the
   catalog, where queries never look (re-running upserts the same ids).
2. When the whole file is in, one SQLite transaction swaps the document's old
   chunks for the staged ones. Queries only return chunks the catalog lists, so
   before this commit they see the old version whole, after it the new version whole.
3. Then the old vectors are deleted. Any vector or staged chunk a killed run left
   behind is an orphan the next ingest deletes before it does anything else.

Files are streamed: chunks are embedded and written in batches of ``EMBED_BATCH``
as they are cut, and plain text is read in blocks, so memory stays flat however
large the file or the folder.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

from filelock import FileLock, Timeout

from index.catalog import Catalog, Chunk, Document
from index.chunking import CHUNKER_VERSION, ENCODING, chunk_stream, chunk_text
from index.readers import STREAMED_SUFFIXES, SUPPORTED_SUFFIXES, ReadError, open_text, read
from index.store import VectorStore, open_client

EMBED_BATCH = 64  # chunks embedded together across small files


class IndexProblem(RuntimeError):
    """A problem with the index as a whole (busy, settings mismatch); the message says what to do."""


class IndexBusy(IndexProblem):
    """Another process holds the write lock."""


class SettingsMismatch(IndexProblem):
    """The index was built with other embedder or chunker settings."""


@dataclass(frozen=True)
class ChunkSettings:
    """How documents are cut; recorded in the index so a change is noticed."""

    max_tokens: int = 200
    overlap_tokens: int = 30


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

    def to_dict(self) -> dict:
        out = asdict(self)
        out["failed"] = [{"source": s, "reason": r} for s, r in self.failed]
        out["skipped"] = [{"source": s, "reason": r} for s, r in self.skipped]
        out["seconds"] = round(self.seconds, 3)
        return out


Progress = Callable[[int, int, str], None]


class Index:
    """An index folder: the catalog (truth) plus the vector store, with our embedder.

    Args:
        index_dir: folder holding the catalog, the lock and (by default) Chroma's files.
        embedder: the embedding model (see ``index.embedder``).
        chroma_url: use a Chroma server at this URL instead of Chroma files on disk.
        chunking: chunk sizes.
        max_file_bytes: files read whole (HTML, PDF, DOCX) larger than this are refused;
            plain text and Markdown are streamed, so any size is indexed.
    """

    def __init__(
        self,
        index_dir: Path,
        embedder,
        chroma_url: str | None = None,
        chunking: ChunkSettings = ChunkSettings(),
        max_file_bytes: int | None = 50_000_000,
    ):
        self.dir = Path(index_dir)
        self.embedder = embedder
        self.chroma_url = chroma_url
        self.chunking = chunking
        self.max_file_bytes = max_file_bytes
        self.catalog = Catalog(self.dir / "catalog.sqlite3")
        self._store: VectorStore | None = None

    @property
    def store(self) -> VectorStore:
        if self._store is None:
            client = open_client(self.dir / "chroma", self.chroma_url)
            self._store = VectorStore(client, self.embedder, name=self._collection_name())
        return self._store

    def _collection_name(self) -> str:
        # One collection per index folder, so several indexes can share a Chroma server.
        digest = hashlib.sha256(str(self.dir.resolve()).encode()).hexdigest()[:12]
        return f"chunks-{digest}" if self.chroma_url else "chunks"

    def settings(self) -> dict:
        return {
            "embedder": self.embedder.name,
            "dim": self.embedder.dim,
            "encoding": ENCODING,
            "chunker_version": CHUNKER_VERSION,
            "max_tokens": self.chunking.max_tokens,
            "overlap_tokens": self.chunking.overlap_tokens,
        }

    def check_settings(self) -> None:
        """Raise SettingsMismatch when the index was built with other settings."""
        recorded = self.catalog.get_meta("settings")
        if recorded is not None and recorded != self.settings() and self.catalog.documents():
            changed = sorted(k for k in self.settings() if recorded.get(k) != self.settings()[k])
            raise SettingsMismatch(
                f"the index at {self.dir} was built with other settings ({', '.join(changed)} "
                f"differ: {', '.join(f'{k}={recorded.get(k)}' for k in changed)}); "
                "re-run ingest with --rebuild to rebuild it"
            )

    def lock(self, timeout: float = 0) -> FileLock:
        """The one-writer lock; raises IndexBusy when not acquired within ``timeout`` seconds."""
        self.dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.dir / "write.lock"))
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise IndexBusy(
                f"another process is writing to the index at {self.dir}; wait for it to finish "
                "(or pass --wait SECONDS to wait for it)"
            ) from None
        return lock

    def close(self) -> None:
        self.catalog.close()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def doc_id_for(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()[:16]


@dataclass
class _Planned:
    path: Path
    source: str


@dataclass
class _Prepared:
    doc: Document  # ``chunks`` is filled in once the file has been read to its end
    chunks: Iterator[Chunk]
    old: Document | None


def _plan(paths: list[Path], report: SyncReport) -> tuple[list[_Planned], list[Path]]:
    """Files to look at, and the folders whose vanished files should be removed."""
    planned: list[_Planned] = []
    folders: list[Path] = []
    seen: set[str] = set()
    for given in paths:
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
    paths: list[Path],
    progress: Progress | None = None,
    rebuild: bool = False,
    wait: float = 0,
) -> SyncReport:
    """Bring the index in line with ``paths`` (files and folders).

    Unchanged files are skipped, changed files have their chunks replaced, files gone
    from a given folder are removed; files under other folders are left alone. One
    broken file is recorded in the report and the rest go on.

    Args:
        index: the index to write.
        paths: files and folders to index.
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
    """
    started = time.perf_counter()
    report = SyncReport()
    lock = index.lock(wait)
    try:
        if rebuild:
            index.store.drop()
            index.catalog.clear()
        index.check_settings()
        index.catalog.set_meta("settings", index.settings())
        _delete_orphans(index)
        planned, folders = _plan(paths, report)
        writer = _Writer(index, report)
        seen_paths: set[str] = set()
        for done, item in enumerate(planned, 1):
            seen_paths.add(str(item.path))
            try:
                prepared = _prepare(index, item, report)
                if prepared is not None:
                    during = functools.partial(_chunks_so_far, progress, done - 1, len(planned),
                                               item.source) if progress else None
                    writer.add(prepared, during)
            except (ReadError, OSError) as exc:
                reason = str(exc) if isinstance(exc, ReadError) else f"cannot read file: {exc}"
                report.failed.append((item.source, reason))
            if progress:
                progress(done, len(planned), item.source)
        writer.flush()
        _remove_vanished(index, folders, seen_paths, report)
    finally:
        lock.release()
    report.seconds = time.perf_counter() - started
    return report


def _prepare(index: Index, item: _Planned, report: SyncReport) -> _Prepared | None:
    """Read and chunk one file, or record it as unchanged (returns None)."""
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
    else:
        extracted = read(path, index.max_file_bytes)
        cut = chunk_text(extracted.text, settings.max_tokens, settings.overlap_tokens,
                         fits=index.embedder.fits, breaks=extracted.page_starts)
        spans = ((s, extracted.text[s.start : s.end], extracted.page_at(s.start)) for s in cut)
        title = extracted.title
    doc = Document(
        doc_id=doc_id, path=str(path), source=item.source, title=title or path.name, hash=digest,
        size=stat.st_size, mtime=stat.st_mtime, chunks=0, indexed_at=time.time(),
    )

    def chunks() -> Iterator[Chunk]:
        for n, (span, text, page) in enumerate(spans):
            yield Chunk(chunk_id=f"{doc.chunk_prefix()}{n}", doc_id=doc_id, n=n,
                        start=span.start, end=span.end, page=page, text=text)
        if _sha256(path) != digest:
            raise ReadError("file changed while being read; run ingest again")

    return _Prepared(doc, chunks(), old)


def _chunks_so_far(progress: Progress, done: int, total: int, source: str, chunks: int) -> None:
    progress(done, total, f"{source} ({chunks} chunks so far)")


class _Writer:
    """Embeds, stores and stages chunks in batches across files; commits each file when whole."""

    def __init__(self, index: Index, report: SyncReport):
        self.index, self.report = index, report
        self.batch: list[Chunk] = []
        self.whole: list[_Prepared] = []  # read to the end; committed at the next flush

    def add(self, prepared: _Prepared, during: Callable[[int], None] | None = None) -> None:
        """Take in one file's chunks; on a read error, nothing of it stays.

        ``during(chunks)`` is called after each batch written while the file is read.
        """
        count = 0
        try:
            for chunk in prepared.chunks:
                self.batch.append(chunk)
                count += 1
                if len(self.batch) >= EMBED_BATCH:
                    self.flush()
                    if during:
                        during(count)
            if count == 0:
                raise ReadError("no text found in file")
        except Exception:
            self._discard(prepared.doc.doc_id)
            raise
        self.whole.append(replace(prepared, doc=replace(prepared.doc, chunks=count)))
        if len(self.batch) >= EMBED_BATCH or not self.batch:
            self.flush()

    def flush(self) -> None:
        index = self.index
        if self.batch:
            chunks, self.batch = self.batch, []
            vectors = index.embedder.embed([c.text for c in chunks])
            index.store.upsert([c.chunk_id for c in chunks], vectors, [c.doc_id for c in chunks])
            index.catalog.stage_chunks(chunks)
        for p in self.whole:
            old_ids = index.catalog.chunk_ids(p.old.doc_id) if p.old else set()
            index.catalog.commit_document(p.doc)
            new_prefix = p.doc.chunk_prefix()
            stale = [i for i in old_ids if not i.startswith(new_prefix)]
            if stale:
                index.store.delete(sorted(stale))
            (self.report.updated if p.old else self.report.added).append(p.doc.source)
            self.report.chunks += p.doc.chunks
        self.whole = []

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
            _remove(index, doc)
            report.removed.append(doc.source)


def _remove(index: Index, doc: Document) -> None:
    ids = index.catalog.chunk_ids(doc.doc_id)
    index.catalog.remove_document(doc.doc_id)
    index.store.delete(sorted(ids))


def _delete_orphans(index: Index) -> None:
    """Delete staged chunks and vectors the catalog does not list (left by an interrupted run)."""
    index.catalog.drop_staged()
    # Every listed chunk's vector is written before it is listed, so equal counts mean no orphans.
    if index.store.count() == index.catalog.count_chunks():
        return
    orphans = index.store.ids() - index.catalog.chunk_ids()
    if orphans:
        index.store.delete(sorted(orphans))


def remove(index: Index, target: str, wait: float = 0) -> list[str]:
    """Take documents out of the index.

    Args:
        index: the index.
        target: a source as listed, a file path, or a folder (everything under it).
        wait: seconds to wait for another writer.

    Returns:
        The sources removed (empty when nothing matched).
    """
    lock = index.lock(wait)
    try:
        absolute = os.path.abspath(target)
        removed = []
        for doc in index.catalog.documents():
            if doc.source == target or Path(doc.path).is_relative_to(absolute):
                _remove(index, doc)
                removed.append(doc.source)
        return removed
    finally:
        lock.release()
