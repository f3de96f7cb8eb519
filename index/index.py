"""An index folder: the catalog (the truth) and the vector store, with the embedder, the
one-writer lock and the settings the index was built with.

Writers go through ``index.ingest`` and ``index.removal``; readers use ``Index.catalog`` and
``Index.store``, which stays current with what other processes write (docs/reliability.md).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from index.catalog import Catalog
from index.errors import SettingsMismatch
from index.store import VectorStore
from index.text.chunking import CHUNKER_VERSION, ENCODING

REOPEN_WAIT = 30  # seconds a search waits for this process's reopen or write before using the open store
WRITER_STAMP = "store.writer"  # a new random stamp per write session (see Index.writing)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkSettings:
    """How documents are cut; recorded in the index so a change is noticed."""

    max_tokens: int = 200
    overlap_tokens: int = 30


class Index:
    """An index folder: the catalog (truth) plus the vector store, with our embedder.

    Args:
        index_dir: folder holding the catalog, the lock and (by default) Chroma's files.
        embedder: the embedding model (see ``index.embedding.embedder``).
        chroma_url: use a Chroma server at this URL instead of Chroma files on disk.
        catalog_url: keep the catalog in this PostgreSQL database (``postgresql://USER@HOST/DB``)
            instead of a SQLite file in the folder (``index.postgres``); with ``chroma_url`` too,
            processes on any machines share the index.
        collection: the collection's name, which finds its catalog in PostgreSQL.
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
        catalog_url: str | None = None,
        collection: str = "default",
    ):
        self.dir = Path(index_dir)
        self.embedder = embedder
        self.chroma_url = chroma_url
        self.catalog_url = catalog_url
        self.chunking = chunking
        self.max_file_bytes = max_file_bytes
        if catalog_url:
            from index.postgres.catalog import PostgresCatalog  # psycopg is an extra

            self.catalog: Catalog = PostgresCatalog(catalog_url, collection)
            self._check_vectors_place()
        else:
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

        When the catalog changed and this process did not change it, a fresh Chroma client
        is opened before the store is handed out, so the question that follows a sync by
        another process already searches its vectors (docs/reliability.md). While this
        process writes, its own client is current and is handed out at once.
        """
        if self._store is None:
            return self._open_store()
        if (not self.chroma_url and not self._writing.is_set()
              and self.catalog.generation() != self._seen_generation
              and time.monotonic() >= self._retry_refresh_at):
            self._refresh()
        return self._store

    def _open_store(self) -> VectorStore:
        """The store, opened on first use (current then: nothing to reopen)."""
        with self._opening:
            if self._store is None:
                generation = self.catalog.generation()
                self._store = VectorStore(self.embedder, persist_dir=self.dir / "chroma",
                                          url=self.chroma_url, name=self._collection_name(),
                                          writing=self._writing)
                self._seen_generation = generation
        return self._store

    def _refresh(self) -> None:
        """Reopen the store unless another thread just did; our writers hold ``_reopening`` too,
        so a reopen waits for a write of this process to end (its client is current then)."""
        deadline = time.monotonic() + REOPEN_WAIT
        while not self._reopening.acquire(timeout=0.05):
            if self._writing.is_set() or time.monotonic() > deadline:
                return  # this process writes (its client is current), or the reopen is stuck
        try:
            generation = self.catalog.generation()
            if generation == self._seen_generation:
                return  # another thread reopened it while this one waited
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
                store = self._open_store()  # not ``store``: its reopen would wait for this very lock
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

    def _vectors_place(self) -> str:
        if self.chroma_url:
            return "a Chroma server"
        return f"Chroma files at {socket.gethostname()}:{(self.dir / 'chroma').resolve()}"

    def _check_vectors_place(self) -> None:
        """A catalog shared through PostgreSQL records where its vectors are; a process that would
        look elsewhere (files of its own instead of the Chroma server, or another machine's
        files) is refused, or it would find listed chunks without vectors and repair them away."""
        mine, recorded = self._vectors_place(), (self.catalog.get_meta("vectors") or {}).get("place")
        if recorded is None:
            self.catalog.set_meta("vectors", {"place": mine})
        elif recorded != mine:
            raise SettingsMismatch(
                f"the vectors of the index ({self.catalog.where}) are kept in {recorded}; this process "
                f"would use {mine}. Pass the same --chroma-url as the other processes (docs/deploy.md)")

    def _collection_name(self) -> str:
        return self.catalog.vector_collection(shared=bool(self.chroma_url))

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
                f"the index at {self.catalog.where} was built with other settings ({', '.join(changed)} "
                f"differ: {', '.join(f'{k}={recorded.get(k)}' for k in changed)}); "
                "re-run ingest with --rebuild to rebuild it"
            )

    def lock(self, timeout: float = 0):
        """The one-writer lock (a file lock in the folder, or an advisory lock in PostgreSQL);
        raises IndexBusy when not acquired within ``timeout`` seconds."""
        self.dir.mkdir(parents=True, exist_ok=True)
        return self.catalog.writer_lock(timeout)

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


def doc_id_for(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()[:16]
