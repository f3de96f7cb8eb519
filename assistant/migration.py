"""``assistant migrate``: a data folder's collections and conversations copied into a PostgreSQL
catalog (and, with a Chroma server, their vectors there), checked (docs/deploy.md).

Each collection is copied by ``index.migration.copy_index`` (whole documents, re-runnable, checked:
same documents and chunks); the conversations and ratings row by row, those already there kept.
The folder's documents and catalogs are not changed (the target's writer stamp, and its Chroma
files when no Chroma server is given, are written beside them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.config import Settings
from assistant.conversations import ConversationStore
from index.collections import Collections
from index.index import ChunkSettings, Index
from index.migration import CopyReport, copy_index
from index.postgres.collections import open_collections


@dataclass
class MigrationReport:
    """Per collection, what was copied; and how many conversations and ratings."""

    collections: dict[str, CopyReport] = field(default_factory=dict)
    conversations: int = 0
    ratings: int = 0


def migrate(settings: Settings, embedder, catalog_url: str, chroma_url: str | None = None,
            progress=None, wait: float = 0) -> MigrationReport:
    """Copy the data folder of ``settings`` (its SQLite catalogs and Chroma files) into the
    PostgreSQL database at ``catalog_url``, vectors into ``chroma_url`` when given.

    Args:
        progress: called with (collection, done, total, source) after each document.
    """
    report = MigrationReport()
    chunking = ChunkSettings(settings.chunk_tokens, settings.overlap_tokens)
    source_names = Collections(settings.data, settings.default_dir).names()
    targets = open_collections(settings.data, settings.default_dir, catalog_url)
    for name in source_names:
        if not targets.exists(name):
            targets.create(name)
        folder = settings.for_collection(name).index_dir
        source = Index(folder, embedder, chunking=chunking)
        target = Index(folder, embedder, chroma_url=chroma_url, chunking=chunking, catalog_url=catalog_url,
                       collection=name)
        try:
            step = (lambda done, total, src, _n=name: progress(_n, done, total, src)) if progress else None
            report.collections[name] = copy_index(source, target, step, wait)
        finally:
            source.close()
            target.close()
    if (settings.data / "conversations.sqlite3").exists():
        report.conversations, report.ratings = ConversationStore(settings.data).copy_to(
            ConversationStore(settings.data, catalog_url))
    return report
