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

Documents given as text (a llama-index ``Document`` from any reader, or any object with
``id_``, ``text`` and ``metadata``) go through the same steps. Each is known by its ``id_``
(listed as its source; its catalog path is ``document:`` and the id) and a hash of its text
and title: an unchanged one is skipped, a changed one replaced.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from filelock import FileLock, Timeout

from index.catalog import Catalog, Chunk, Document
from index.catalog import Section as CatalogSection
from index.chunking import CHUNKER_VERSION, ENCODING, chunk_stream, chunk_text
from index.embedder import EmbedderError
from index.readers import STREAMED_SUFFIXES, SUPPORTED_SUFFIXES, ReadError, open_text, read
from index.store import StoreUnavailable, VectorStore

EMBED_BATCH = 64  # chunks embedded together across small files
DOCUMENT_PREFIX = "document:"  # catalog path of a document given as text: this, then its id_
TITLE_KEYS = ("title", "file_name")  # where a document given as text names its title, in order
WRITER_STAMP = "store.writer"  # a new random stamp per write session (see Index.writing)

log = logging.getLogger(__name__)


class IndexProblem(RuntimeError):
    """A problem with the index as a whole (busy, settings mismatch); the message says what to do."""


class IndexBusy(IndexProblem):
    """Another process holds the write lock."""


class SettingsMismatch(IndexProblem):
    """The index was built with other embedder or chunker settings."""


class IndexWriteFailed(IndexProblem):
    """Writing to the vector store or the catalog failed: a problem of the index, not of a file."""


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
        self._opening = threading.Lock()  # the first open of the store
        self._reopening = threading.Lock()  # held by a reopen in the background, and by our writers
        self._writing = threading.Event()  # set while this process writes
        self._seen_generation: int | None = None  # catalog generation the store is known to show
        self._seen_writer: str | None = None  # stamp of our last write session (see ``writing``)
        self._retry_refresh_at = 0.0

    @property
    def store(self) -> VectorStore:
        """The vector store, kept current with what other processes write.

        When the catalog changed and this process did not change it, a fresh Chroma
        client is opened in the background and swapped in when ready; until then
        queries use the current one (the new documents are already found by keyword).
        """
        if self._store is None:
            with self._opening:
                if self._store is None:
                    generation = self.catalog.generation()
                    self._store = VectorStore(self.embedder, persist_dir=self.dir / "chroma",
                                              url=self.chroma_url, name=self._collection_name(),
                                              writing=self._writing)
                    self._seen_generation = generation
        elif (not self.chroma_url and self.catalog.generation() != self._seen_generation
              and time.monotonic() >= self._retry_refresh_at):
            self._refresh_in_background()
        return self._store

    def _refresh_in_background(self) -> None:
        if not self._reopening.acquire(blocking=False):
            return  # a reopen is under way, or this process is writing (its client is current)
        threading.Thread(target=self._refresh, daemon=True, name="index-store-reopen").start()

    def _refresh(self) -> None:
        """Reopen the store (``_reopening`` is held by the caller; released here)."""
        try:
            generation = self.catalog.generation()
            self._store.reopen()
            self._seen_generation = generation
        except Exception as exc:  # the old client keeps serving; tried again in a while
            self._retry_refresh_at = time.monotonic() + 5
            log.warning("could not reopen the vector store at %s (%s: %s); using the open one",
                        self.dir, type(exc).__name__, exc)
        finally:
            self._reopening.release()

    def _writer_stamp(self) -> str:
        try:
            return (self.dir / WRITER_STAMP).read_text()
        except FileNotFoundError:
            return ""

    @contextmanager
    def writing(self, wait: float = 0) -> Iterator[None]:
        """Hold the one-writer lock, with a store that has seen every earlier write.

        A Chroma client that missed another process's writes would drop that
        process's vectors from the search graph if it wrote. Every write session
        first leaves a new random stamp in the index folder; when the stamp found is
        not the one of this process's last session, another process wrote (or is
        killed while writing) since, and the store is reopened before anything is
        written. A store first opened here, under the lock, is current already.
        """
        lock = self.lock(wait)
        try:
            with self._reopening:  # no background reopen while this process writes
                stamp = self._writer_stamp()
                if self._store is None:
                    self._seen_writer = stamp
                store = self.store
                if not self.chroma_url and stamp != self._seen_writer:
                    store.reopen()
                self._seen_writer = _write_stamp(self.dir / WRITER_STAMP)
                self._writing.set()  # and no reopen by a search that finds the store stale
                try:
                    yield
                finally:
                    self._writing.clear()
                    self._seen_generation = self.catalog.generation()
        finally:
            lock.release()

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
        if self._store is not None:
            self._store.close()
        self.catalog.close()


def _write_stamp(path: Path) -> str:
    """Write a new random writer stamp (whole or not at all); returns it."""
    stamp = uuid.uuid4().hex
    part = path.with_name(f"{path.name}.{os.getpid()}.part")
    part.write_text(stamp)
    os.replace(part, path)
    return stamp


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def doc_id_for(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()[:16]


def is_text_document(item) -> bool:
    """A document given as text (e.g. a llama-index ``Document``): it has ``id_`` and ``text``."""
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
    sections: list[CatalogSection] = field(default_factory=list)


def _plan(paths: list[Path], report: SyncReport) -> tuple[list[_Planned], list[Path]]:
    """Files to look at, and the folders whose vanished files should be removed."""
    planned: list[_Planned] = []
    folders: list[Path] = []
    seen: set[str] = set()
    for given in paths:
        if is_text_document(given):
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
        if rebuild:
            _clear(index)
        index.check_settings()
        index.catalog.set_meta("settings", index.settings())
        _delete_orphans(index)
        planned, folders = _plan(paths, report)
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
        _remove_vanished(index, folders, seen_paths, report)
    report.seconds = time.perf_counter() - started
    return report


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
            CatalogSection(doc_id, x.start, x.end, x.kind, x.level, text[:300]) for x, text in sections]))
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
            _remove(index, doc)
            report.removed.append(doc.source)


def _remove(index: Index, doc: Document) -> None:
    ids = index.catalog.chunk_ids(doc.doc_id)
    index.catalog.remove_document(doc.doc_id)
    index.store.delete(sorted(ids))


def _delete_orphans(index: Index) -> None:
    """Make the vectors agree with the catalog again after an interrupted run.

    Staged chunks, and vectors the catalog does not list, are deleted. A document
    the catalog lists with chunks that have no vector (no order of writes here
    leaves one, but a Chroma folder lost or restored from an older copy does) is
    taken out of the catalog, so this run indexes its file again.
    """
    index.catalog.drop_staged()
    listed, stored = index.catalog.count_chunks(), index.store.count()
    if listed == 0:
        if stored:  # e.g. a rebuild killed after clearing the catalog; also forgets the old dimension
            index.store.drop()
        return
    # Every listed chunk's vector is written before it is listed, so equal counts mean all is well.
    if stored == listed:
        return
    store_ids, catalog_ids = index.store.ids(), index.catalog.chunk_ids()
    orphans = store_ids - catalog_ids
    if orphans:
        index.store.delete(sorted(orphans))
    broken = {cid.rsplit("-", 2)[0] for cid in catalog_ids - store_ids}
    for doc in index.catalog.documents():
        if doc.doc_id in broken:
            log.warning("%s had chunks without vectors in %s; indexing it again", doc.source, index.dir)
            _remove(index, doc)


class RemovalRefused(ValueError):
    """A removal that would take out more, or other, documents than the one named."""


def match_removal(index: Index, target: str, folder: bool = False) -> list[Document]:
    """The documents ``remove(index, target, folder=folder)`` takes out.

    Matched in this order: a source exactly as ``assistant list`` shows it (a document
    given as text: its id), or a catalog path (``document:`` and the id); a file
    path (a symlink counts as the file it points at); with ``folder`` only, a folder
    (every document whose file is under it, or whose source starts with it).

    Raises:
        RemovalRefused: the name is empty, is shared by documents from different
            folders (the message names the paths to use), is a folder and ``folder``
            is False, or is the filesystem root.
    """
    if not target or not target.strip():
        raise RemovalRefused("say which document to remove: a source as `assistant list` shows it")
    docs = index.catalog.documents()
    named = [d for d in docs if d.source == target] or [d for d in docs if d.path == target]
    if len(named) > 1:
        raise RemovalRefused(
            f"{len(named)} indexed documents are called {target!r}; name the one to remove by its "
            f"path: {', '.join(sorted(d.path for d in named))}"
        )
    if named:
        return named
    given, real = os.path.abspath(target), os.path.realpath(target)
    for path in (given, real):
        exact = [d for d in docs if d.path == path]
        if exact:
            return exact
    prefix = target.rstrip("/") + "/"
    under = [d for d in docs if Path(d.path).is_relative_to(given) or Path(d.path).is_relative_to(real)
             or d.source.startswith(prefix)]
    if not under:
        return []
    if Path(real) == Path(real).parent or not target.rstrip("/"):
        raise RemovalRefused(
            f"{target!r} is the filesystem root: removing everything under it would empty the index; "
            f"to start over, delete the index folder {index.dir} (or run ingest --rebuild)"
        )
    if not folder:
        raise RemovalRefused(
            f"{target!r} is not a document but a folder holding {len(under)} indexed document"
            f"{'s' if len(under) != 1 else ''}; to remove them all, confirm it: "
            f"`assistant remove --folder {target}` (Python: remove(..., folder=True); browser: "
            "tick \"everything under this folder\")"
        )
    return under


def remove_documents(index: Index, target: str, wait: float = 0, folder: bool = False) -> list[Document]:
    """Take documents out of the index (see ``match_removal`` for what ``target`` matches).

    Returns:
        The documents removed (empty when nothing matched).
    """
    with index.writing(wait):
        docs = match_removal(index, target, folder)
        for doc in docs:
            _remove(index, doc)
        return docs


def remove(index: Index, target: str, wait: float = 0, folder: bool = False) -> list[str]:
    """Take documents out of the index.

    Args:
        index: the index.
        target: a source as listed, or a file path (a symlink counts as its target);
            with ``folder``, a folder (everything under it).
        wait: seconds to wait for another writer.
        folder: confirm that every document under a folder is to go.

    Returns:
        The sources removed (empty when nothing matched).

    Raises:
        RemovalRefused: see ``match_removal``.
    """
    return [d.source for d in remove_documents(index, target, wait, folder)]
