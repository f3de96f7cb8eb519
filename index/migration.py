"""Copy an index into another: its documents, chunks, sections and settings into the other's catalog,
its vectors into the other's store, each document whole (``assistant migrate``: a folder index
into a PostgreSQL catalog and a Chroma server, docs/deploy.md).

Each document goes through the target's own staging and swap, so a copy stopped at any point
leaves whole documents only, and running it again copies what is missing (a document already
there with the same content is left as it is). Vectors are copied, not computed again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from index.errors import IndexProblem
from index.index import Index

BATCH = 256  # chunks (and their vectors) read and written at a time


@dataclass
class CopyReport:
    """What a copy did: documents copied and already there, chunks copied, and the check."""

    copied: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    chunks: int = 0


def copy_index(source: Index, target: Index, progress=None, wait: float = 0) -> CopyReport:
    """Copy every document of ``source`` into ``target`` (under the target's writer lock), then check.

    Raises:
        IndexProblem: the target holds documents the source does not, was built with other
            settings, or differs from the source after the copy (the message says which).
    """
    report = CopyReport()
    settings = source.catalog.get_meta("settings")
    recorded = target.catalog.get_meta("settings")
    docs = source.catalog.documents()
    if recorded is not None and settings is not None and recorded != settings and target.catalog.documents():
        raise IndexProblem(f"the index at {target.catalog.where} was built with other settings; "
                           "copy into an empty one")
    with target.writing(wait):
        if settings is not None:
            target.catalog.set_meta("settings", settings)
        there = {d.doc_id: d for d in target.catalog.documents()}
        for done, doc in enumerate(docs, 1):
            if doc.doc_id in there and there[doc.doc_id].hash == doc.hash:
                report.present.append(doc.source)
            else:
                report.chunks += _copy_document(source, target, doc)
                report.copied.append(doc.source)
            if progress:
                progress(done, len(docs), doc.source)
        check_copy(source, target)
    return report


def _copy_document(source: Index, target: Index, doc) -> int:
    ids = sorted(source.catalog.chunk_ids(doc.doc_id), key=lambda i: int(i.rsplit("-", 1)[1]))
    target.catalog.drop_staged(doc.doc_id)
    for i in range(0, len(ids), BATCH):
        chunks = source.catalog.chunks(ids[i : i + BATCH])
        vectors = source.store.vectors([c.chunk_id for c in chunks])
        missing = [c.chunk_id for c in chunks if c.chunk_id not in vectors]
        if missing:
            raise IndexProblem(f"the index at {source.catalog.where} lists chunks without vectors "
                               f"({missing[0]}…); run `assistant ingest` on it first (it repairs that)")
        target.store.upsert([c.chunk_id for c in chunks], [vectors[c.chunk_id] for c in chunks],
                            [c.doc_id for c in chunks])
        target.catalog.stage_chunks(chunks)
    old = target.catalog.chunk_ids(doc.doc_id)
    target.catalog.commit_document(doc, source.catalog.sections(doc.doc_id))
    stale = sorted(old - set(ids))
    if stale:
        target.store.delete(stale)
    return len(ids)


def check_copy(source: Index, target: Index) -> None:
    """Raise IndexProblem unless ``target`` lists the same documents and chunks as ``source``,
    with a vector for every chunk."""
    def listed(index: Index):
        return ({(d.doc_id, d.hash, d.chunks) for d in index.catalog.documents()}, index.catalog.chunk_ids())

    (docs, chunks), (their_docs, their_chunks) = listed(source), listed(target)
    if docs - their_docs:
        raise IndexProblem(f"the copy at {target.catalog.where} lacks {len(docs - their_docs)} document(s); "
                           "run the same command again")
    if their_docs - docs:
        raise IndexProblem(f"the index at {target.catalog.where} holds {len(their_docs - docs)} document(s) "
                           "the source does not; copy into an empty one")
    if chunks != their_chunks or not chunks <= target.store.ids():
        raise IndexProblem(f"the copy at {target.catalog.where} does not hold the same chunks and vectors; "
                           "run the same command again")
