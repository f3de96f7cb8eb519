"""The Chroma collection holding chunk vectors: persistent on disk, or a Chroma server.

Chroma is always handed our embedder: its default embedding function would
download a model on first use, which breaks offline use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence
from urllib.parse import urlparse

COLLECTION = "chunks"


def _our_embeddings(embedder):
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
    """A Chroma client: an HTTP client when ``url`` is given, else a persistent one on disk."""
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


class VectorStore:
    """Chunk vectors keyed by chunk id, with ``doc_id`` metadata for filtering and deletes."""

    def __init__(self, client, embedder, name: str = COLLECTION):
        self.client = client
        self._embedding_function = _our_embeddings(embedder)
        self.collection = client.get_or_create_collection(
            name=name,
            embedding_function=self._embedding_function,
            metadata={"hnsw:space": "cosine"},
        )
        try:
            self.max_batch = int(client.get_max_batch_size())
        except Exception:
            self.max_batch = 1000

    def upsert(self, ids: Sequence[str], vectors, doc_ids: Sequence[str]) -> None:
        """Write vectors in batches the client accepts; re-writing an id replaces it."""
        for i in range(0, len(ids), self.max_batch):
            j = i + self.max_batch
            self.collection.upsert(
                ids=list(ids[i:j]),
                embeddings=[list(map(float, v)) for v in vectors[i:j]],
                metadatas=[{"doc_id": d} for d in doc_ids[i:j]],
            )

    def delete(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for i in range(0, len(ids), self.max_batch):
            self.collection.delete(ids=ids[i : i + self.max_batch])

    def ids(self) -> set[str]:
        """Every id in the collection (for finding orphans)."""
        out: set[str] = set()
        offset, page = 0, 5000
        while True:
            got = self.collection.get(include=[], limit=page, offset=offset)
            out.update(got["ids"])
            if len(got["ids"]) < page:
                return out
            offset += page

    def vectors(self, ids: Sequence[str]) -> dict[str, list[float]]:
        """Stored vectors by id; ids the store cannot give back are left out (callers embed them).

        A persistent client does not see what another process (a CLI ingest beside
        the server) wrote after it opened the files, and Chroma then fails the whole
        lookup ("Error finding id"); the caller's fallback gives the same numbers.
        """
        if not ids:
            return {}
        try:
            got = self.collection.get(ids=list(ids), include=["embeddings"])
        except Exception:  # chromadb.errors.InternalError; see above
            return {}
        return {cid: [float(x) for x in vec] for cid, vec in zip(got["ids"], got["embeddings"])}

    def count(self) -> int:
        return self.collection.count()

    def query(self, vector, n: int, doc_ids: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """Nearest chunks as (chunk_id, cosine similarity), best first."""
        total = self.count()
        if total == 0:
            return []
        where = None
        if doc_ids is not None:
            if not doc_ids:
                return []
            where = {"doc_id": {"$in": list(doc_ids)}}
        got = self.collection.query(
            query_embeddings=[list(map(float, vector))],
            n_results=min(n, total),
            where=where,
            include=["distances"],
        )
        return [(cid, 1.0 - float(d)) for cid, d in zip(got["ids"][0], got["distances"][0])]

    def drop(self) -> None:
        """Delete the whole collection (used by a rebuild)."""
        name = self.collection.name
        self.client.delete_collection(name)
        self.collection = self.client.get_or_create_collection(
            name=name,
            embedding_function=self._embedding_function,
            metadata={"hnsw:space": "cosine"},
        )
