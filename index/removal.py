"""Taking documents out of the index: by name, path or folder (``remove``), and the deletions
an ingest makes (a document whose file is gone, vectors an interrupted run left behind).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from index.catalog import Document
from index.errors import RemovalRefused
from index.index import Index

log = logging.getLogger(__name__)


def delete_document(index: Index, doc: Document) -> None:
    """Take one document out: the catalog first, then its vectors (orphans if killed between)."""
    ids = index.catalog.chunk_ids(doc.doc_id)
    index.catalog.remove_document(doc.doc_id)
    index.store.delete(sorted(ids))


def delete_orphans(index: Index) -> None:
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
            delete_document(index, doc)


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
            delete_document(index, doc)
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
