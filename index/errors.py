"""Every exception ``index`` raises, under one base class: catch ``IndexingError`` for them all.

Each message names the file or the index, the cause and what to do.
"""

from __future__ import annotations


class IndexingError(Exception):
    """Anything getting documents in raised: reading, embedding, storing or syncing them."""


class ReadError(IndexingError):
    """A file could not be turned into text; the message says why and what to do."""


class EmbedderError(IndexingError, RuntimeError):
    """The embedding model cannot be loaded; the message says how to fix it."""


class ModelBuildError(IndexingError, RuntimeError):
    """The packaged weights are not laid out as expected; the message names the file."""


class StoreUnavailable(IndexingError, RuntimeError):
    """The vector store cannot be used now (its server did not answer, or it changed while this
    process writes to it); the message names it and says what to do."""


class IndexProblem(IndexingError, RuntimeError):
    """A problem with the index as a whole (busy, settings mismatch); the message says what to do."""


class IndexBusy(IndexProblem):
    """Another process holds the write lock."""


class SettingsMismatch(IndexProblem):
    """The index was built with other embedder or chunker settings."""


class IndexWriteFailed(IndexProblem):
    """Writing to the vector store or the catalog failed: a problem of the index, not of a file."""


class RemovalRefused(IndexingError, ValueError):
    """A removal that would take out more, or other, documents than the one named."""


class CollectionError(IndexingError, ValueError):
    """A collection name that cannot be used, or a collection operation refused."""


class CatalogUnavailable(IndexProblem):
    """The catalog's database cannot be used: its server does not answer, refuses the login, or
    the PostgreSQL driver is not installed. The message names the server (never a password)."""


class CatalogVersionMismatch(IndexProblem):
    """The catalog's database was made by another version of its schema (another version of the
    assistant); the message says which and what to do."""
