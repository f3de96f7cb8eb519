"""The Chroma collection holding chunk vectors: persistent on disk, or a Chroma server.

Chroma is always handed our embedder (its default one would download a model). An embedded
client never sees vectors another process adds later, and a write from such a stale client
drops them, so ``VectorStore`` opens a client of its own and ``reopen()`` swaps in a fresh
one; ``index.index.Index`` decides when (docs/reliability.md). A Chroma server's transient
failures are retried ``RETRY_ATTEMPTS`` times with doubling pauses, then reported naming it.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence
from urllib.parse import urlparse

from index.errors import StoreUnavailable

COLLECTION = "chunks"
RETRY_ATTEMPTS = 4  # tries of one Chroma server request before giving up
RETRY_BACKOFF = 0.5  # seconds before the 2nd try, doubled before each next


def chroma_embedding_function(embedder):
    """Chroma's embedding-function interface over our embedder."""
    import numpy as np
    from chromadb.api.types import EmbeddingFunction

    class OurEmbeddings(EmbeddingFunction):
        def __init__(self, embedder):
            self.embedder = embedder

        def __call__(self, input):  # noqa: A002 - Chroma's parameter name
            return [np.asarray(v, dtype=np.float32) for v in self.embedder.embed(list(input))]

        @staticmethod
        def name() -> str:
            return "doc-assistant"

        def default_space(self):
            return "cosine"

        def get_config(self) -> dict:
            return {"model": self.embedder.name}

        @staticmethod
        def build_from_config(config):
            # Chroma rebuilds the function from stored config when it lists a collection;
            # we always pass our own, so this stand-in is never called to embed.
            return OurEmbeddings(_NoEmbedder())

        def is_legacy(self) -> bool:
            return False

    return OurEmbeddings(embedder)


class _NoEmbedder:
    name = "unavailable"

    def embed(self, texts):
        raise RuntimeError("this Chroma collection must be opened with the assistant's embedder")


def _settings():
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False, allow_reset=False)


def open_client(persist_dir: Path | None = None, url: str | None = None):
    """A Chroma client: an HTTP client when ``url`` is given, else a persistent one on disk
    (Chroma's shared one for that folder; ``VectorStore`` opens its own instead)."""
    import chromadb

    if url:
        parsed = urlparse(url)
        return chromadb.HttpClient(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or (443 if parsed.scheme == "https" else 8000),
            ssl=parsed.scheme == "https",
            settings=_settings(),
        )
    assert persist_dir is not None
    persist_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(persist_dir), settings=_settings())


_SHARED_CACHE = threading.Lock()


def _private_client(persist_dir: Path):
    """A persistent client with a Chroma instance of its own, and that instance (to stop it).

    Chroma keeps one instance per path for the whole process; this takes the new
    one out of that cache (and puts back any other), so nobody else shares it and
    the next call opens another fresh one.
    """
    import chromadb
    from chromadb.api.shared_system_client import SharedSystemClient as Shared

    persist_dir.mkdir(parents=True, exist_ok=True)
    key = str(persist_dir)
    with _SHARED_CACHE:
        kept = (Shared._identifier_to_system.pop(key, None), Shared._identifier_to_refcount.pop(key, None))
        try:
            client = chromadb.PersistentClient(path=key, settings=_settings())
            system = Shared._identifier_to_system.pop(key)
        finally:
            Shared._identifier_to_refcount.pop(key, None)
            if kept[0] is not None:
                Shared._identifier_to_system[key] = kept[0]
            if kept[1] is not None:
                Shared._identifier_to_refcount[key] = kept[1]
    return client, system


def _transient(exc: BaseException) -> bool:
    """A server failure worth another try: no connection, a dropped one, a proxy's error page."""
    import httpx

    if isinstance(exc, httpx.TransportError):
        return True
    if isinstance(exc, ValueError):  # Chroma's client wraps a failure to connect in a ValueError
        inner = exc.__cause__ or exc.__context__
        return "Could not connect to a Chroma server" in str(exc) or (inner is not None and _transient(inner))
    # Chroma raises a bare Exception for an error response that is not its own JSON (a proxy's 502/503)
    return type(exc) is Exception


def _is_stale(exc: BaseException) -> bool:
    return "Error finding id" in str(exc)


class _Handle:
    """One open client and its collection; shut down once retired and no call is using it."""

    def __init__(self, client, system, collection):
        self.client, self.system, self.collection = client, system, collection
        self.users = 0
        self.retired = False

    def close(self) -> None:
        if self.system is not None:
            self.system.stop()
            self.system = None


class VectorStore:
    """Chunk vectors keyed by chunk id, with ``doc_id`` metadata for filtering and deletes.

    Args:
        embedder: our embedder (Chroma never embeds with its own).
        persist_dir: Chroma's folder, for vectors kept on disk.
        url: a Chroma server instead of ``persist_dir``.
        name: the collection.
        attempts: tries of a server request (transient failures only).
        backoff: seconds before the second try, doubled before each next.
        writing: set while this process writes (``Index.writing``): a query that finds the
            store stale then does not reopen it.
    """

    def __init__(self, embedder, persist_dir: Path | None = None, url: str | None = None,
                 name: str = COLLECTION, attempts: int = RETRY_ATTEMPTS, backoff: float = RETRY_BACKOFF,
                 writing: threading.Event | None = None):
        if not url and persist_dir is None:
            raise ValueError("a VectorStore needs a folder or a server URL")
        self.persist_dir = Path(persist_dir) if persist_dir is not None else None
        self.url = url
        self.name = name
        self.attempts = max(1, attempts) if url else 1
        self.backoff = backoff
        self._embedding_function = chroma_embedding_function(embedder)
        self._lock = threading.Lock()
        self._writing = writing
        self._handle = self._open()
        try:
            self.max_batch = int(self._retrying("ask the batch size", self._handle.client.get_max_batch_size))
        except StoreUnavailable:
            raise
        except Exception:
            self.max_batch = 1000

    # opening ---------------------------------------------------------------
    def _open(self) -> _Handle:
        if self.url:
            client = self._retrying("connect", lambda: open_client(url=self.url))
            system = None
        else:
            client, system = _private_client(self.persist_dir)
        collection = self._retrying("open the collection", lambda: self._collection(client))
        return _Handle(client, system, collection)

    def _collection(self, client):
        return client.get_or_create_collection(
            name=self.name,
            embedding_function=self._embedding_function,
            metadata={"hnsw:space": "cosine"},
        )

    def reopen(self) -> None:
        """Swap in a fresh client that sees every vector written so far, by any process.

        The new client loads its vectors before the swap, so no caller waits for
        that; calls already running finish on the old client, which is then shut down.
        """
        if self.url:
            return  # a server is always current
        fresh = self._open()
        _warm(fresh.collection)
        with self._lock:
            old, self._handle = self._handle, fresh
            old.retired = True
            idle = old.users == 0
        if idle:
            old.close()

    def close(self) -> None:
        """Shut the client down (persistent stores); the store is unusable afterwards."""
        with self._lock:
            handle = self._handle
            handle.retired = True
            idle = handle.users == 0
        if idle:
            handle.close()

    @contextmanager
    def _using(self):
        with self._lock:
            handle = self._handle
            handle.users += 1
        try:
            yield handle
        finally:
            with self._lock:
                handle.users -= 1
                idle = handle.retired and handle.users == 0
            if idle:
                handle.close()

    def _retrying(self, what: str, call):
        """``call()``, tried again after a transient server failure, up to ``attempts`` times."""
        for attempt in range(1, self.attempts + 1):
            try:
                return call()
            except Exception as exc:
                if not (self.url and _transient(exc)):
                    raise
                if attempt == self.attempts:
                    raise StoreUnavailable(
                        f"the Chroma server at {self.url} did not answer ({what}) after "
                        f"{self.attempts} attempts: {exc or type(exc).__name__}; check that it is "
                        "running and reachable (chroma run --path DIR --port PORT), or unset "
                        "ASSISTANT_CHROMA_URL / --chroma-url to keep the vectors in the index folder"
                    ) from exc
                time.sleep(self.backoff * 2 ** (attempt - 1))

    def _call(self, what: str, fn):
        """``fn(collection)`` on the current client, retried on a server's transient failure."""
        def once():
            with self._using() as handle:
                return fn(handle.collection)

        return self._retrying(what, once)

    # reading and writing -----------------------------------------------------
    def upsert(self, ids: Sequence[str], vectors, doc_ids: Sequence[str]) -> None:
        """Write vectors in batches the client accepts; re-writing an id replaces it."""
        for i in range(0, len(ids), self.max_batch):
            j = i + self.max_batch
            batch = dict(
                ids=list(ids[i:j]),
                embeddings=[list(map(float, v)) for v in vectors[i:j]],
                metadatas=[{"doc_id": d} for d in doc_ids[i:j]],
            )
            self._call("write vectors", lambda c: c.upsert(**batch))

    def delete(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for i in range(0, len(ids), self.max_batch):
            part = ids[i : i + self.max_batch]
            self._call("delete vectors", lambda c: c.delete(ids=part))

    def ids(self) -> set[str]:
        """Every id in the collection (for finding orphans)."""
        out: set[str] = set()
        offset, page = 0, 5000
        while True:
            got = self._call("list ids", lambda c: c.get(include=[], limit=page, offset=offset))
            out.update(got["ids"])
            if len(got["ids"]) < page:
                return out
            offset += page

    def vectors(self, ids: Sequence[str]) -> dict[str, list[float]]:
        """Stored vectors by id; ids the store cannot give back are left out (callers embed them).

        Between another process's write and the reopen that follows, Chroma can fail
        the whole lookup ("Error finding id"); the caller's fallback gives the same numbers.
        """
        if not ids:
            return {}
        try:
            got = self._call("read vectors", lambda c: c.get(ids=list(ids), include=["embeddings"]))
        except StoreUnavailable:
            raise
        except Exception:  # chromadb.errors.InternalError; see above
            return {}
        return {cid: [float(x) for x in vec] for cid, vec in zip(got["ids"], got["embeddings"])}

    def count(self) -> int:
        return self._call("count vectors", lambda c: c.count())

    def query(self, vector, n: int, doc_ids: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """Nearest chunks as (chunk_id, cosine similarity), best first.

        A query that fails because another process wrote since this client opened
        reopens the client and is tried once more; not while this process writes (its
        client has seen every write, and a second client beside the writer's could drop
        vectors): then ``StoreUnavailable`` says to ask again.
        """
        try:
            return self._query(vector, n, doc_ids)
        except StoreUnavailable:
            raise
        except Exception as exc:
            if self.url or not _is_stale(exc):
                raise
            if self._writing is not None and self._writing.is_set():
                raise StoreUnavailable(f"the vectors in {self.persist_dir} changed while this process is "
                                       "adding documents to them; ask again when that has finished") from exc
            self.reopen()
            return self._query(vector, n, doc_ids)

    def _query(self, vector, n: int, doc_ids: Sequence[str] | None) -> list[tuple[str, float]]:
        where = None
        if doc_ids is not None:
            if not doc_ids:
                return []
            where = {"doc_id": {"$in": list(doc_ids)}}

        def run(collection):
            total = collection.count()
            if total == 0:
                return None
            return collection.query(
                query_embeddings=[list(map(float, vector))],
                n_results=min(n, total),
                where=where,
                include=["distances"],
            )

        got = self._call("search", run)
        if got is None:
            return []
        return [(cid, 1.0 - float(d)) for cid, d in zip(got["ids"][0], got["distances"][0])]

    def drop(self) -> None:
        """Delete the whole collection (used by a rebuild)."""
        def recreate():
            with self._using() as handle:
                handle.client.delete_collection(self.name)
                handle.collection = self._collection(handle.client)

        self._retrying("drop the collection", recreate)


def _warm(collection) -> None:
    """Load the HNSW graph now (Chroma loads it on the first query), not in a caller's query."""
    got = collection.get(limit=1, include=["embeddings"])
    if got["ids"]:
        dim = len(got["embeddings"][0])
        collection.query(query_embeddings=[[1.0] * dim], n_results=1, include=[])
