"""Documents in: reading, chunking, embedding, storing and syncing a folder into the index.

The names below are imported on first use, so importing one submodule (``index.text.terms``)
loads nothing else. Syncing is ``index.ingest.ingest`` and ``index.removal.remove`` (modules of
those names, so not re-exported here). Where each module sits: docs/design.md.
"""

from __future__ import annotations

import importlib

_ERRORS = ("IndexingError", "ReadError", "EmbedderError", "ModelBuildError", "StoreUnavailable",
           "IndexProblem", "IndexBusy", "SettingsMismatch", "IndexWriteFailed", "RemovalRefused")
_EXPORTS = {
    "Index": "index.index",
    "ChunkSettings": "index.index",
    "SyncReport": "index.ingest",
    "VectorStore": "index.store",
    "read": "index.readers",
    "Extracted": "index.readers",
    "make_embedder": "index.embedding.embedder",
    "OnnxEmbedder": "index.embedding.embedder",
    "Embedder": "index.embedding.embedder",
    "HashEmbedder": "index.embedding.embedder",
    "EmbeddingAdapter": "index.llamaindex",
    "AssistantEmbedding": "index.llamaindex",
    "ChunkParser": "index.llamaindex",
    "as_embedder": "index.llamaindex",
    "as_embed_model": "index.llamaindex",
    "chunk_text": "index.text.chunking",
    **{name: "index.errors" for name in _ERRORS},
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
