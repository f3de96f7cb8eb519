"""An indexed document as a viewer shows it: a PDF's page as an image with the passage boxed, any
other format as its extracted text with its headings, the passage and the answer marked.

Offsets are those of the document's extracted text (``Citation.start/end``). The file is read
again from where it was indexed (kept in a small cache per path, mtime and size, so paging through
a long PDF reads it once); when it changed since, the view says so, since the offsets may have
moved. Only documents the catalog lists can be viewed (docs/ui.md).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from index.catalog import Document
from index.errors import ReadError
from index.ingest import DOCUMENT_PREFIX
from index.pages import PageImage, page_spans, render_page
from index.readers import Extracted, read

_CACHE_SIZE = 4
_CACHE: OrderedDict[tuple[str, int, int], Extracted] = OrderedDict()
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class PageView:
    """A PDF page: the image, the passage's boxes and the answer's, and what to say about it."""

    source: str
    title: str | None
    image: PageImage
    passage_boxes: list = field(default_factory=list)
    answer_boxes: list = field(default_factory=list)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TextView:
    """A document's extracted text with its headings (start, end, level), passage and answer spans."""

    source: str
    title: str | None
    text: str
    headings: list[tuple[int, int, int]]
    passage: tuple[int, int] | None = None
    answers: list[tuple[int, int]] = field(default_factory=list)
    notes: tuple[str, ...] = ()


def view_document(doc: Document, start: int | None = None, end: int | None = None,
                  answers: list[tuple[int, int]] = (), page: int | None = None, scale: float = 1.5,
                  max_bytes: int | None = None) -> PageView | TextView:
    """The view of ``doc`` with the passage ``[start, end)`` and the ``answers`` spans (all offsets
    of the extracted text); for a PDF, ``page`` (default: the passage's first page, else 1).

    Raises:
        ReadError: the file is gone or unreadable, encrypted, or ``page`` is out of range.
    """
    if doc.path.startswith(DOCUMENT_PREFIX):
        raise ReadError(f"{doc.source} was given as text, not a file: there is no file to show")
    path = Path(doc.path)
    extracted, notes = _extracted(doc, path, max_bytes)
    passage = (start, end) if start is not None and end is not None and start < end else None
    if path.suffix.lower() == ".pdf":
        return _page_view(doc, path, extracted, passage, list(answers), page, scale, notes)
    levels: dict[tuple[int, int], int] = {}  # a title is often its first heading too: shown once
    for s in extracted.sections:
        if s.kind in ("heading", "title"):
            levels[(s.start, s.end)] = max(levels.get((s.start, s.end), 0), s.level)
    headings = [(start, end, level) for (start, end), level in sorted(levels.items())]
    return TextView(doc.source, doc.title, extracted.text, headings, passage,
                    [tuple(a) for a in answers], notes)


def _page_view(doc, path, extracted, passage, answers, page, scale, notes) -> PageView:
    starts, size = extracted.page_starts, len(extracted.text)
    if page is None:
        first = page_spans(starts, size, *passage) if passage else {}
        page = min(first) if first else 1
    passage_spans = [page_spans(starts, size, *passage).get(page)] if passage else []
    answer_spans = [page_spans(starts, size, *a).get(page) for a in answers]
    wanted = [s for s in passage_spans + answer_spans if s is not None]
    image = render_page(path, page, wanted, scale)
    boxes = iter(image.boxes)
    passage_boxes = [b for s in passage_spans if s is not None for b in next(boxes)]
    answer_boxes = [b for s in answer_spans if s is not None for b in next(boxes)]
    if not image.has_text:
        notes += ("This page has no text layer (a scan?), so nothing on it can be highlighted.",)
    return PageView(doc.source, doc.title, image, passage_boxes, answer_boxes, notes)


def _extracted(doc: Document, path: Path, max_bytes: int | None) -> tuple[Extracted, tuple[str, ...]]:
    """The file's extracted text (cached), and a note when it changed since it was indexed."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise ReadError(f"{doc.source}: the file is no longer at {path} ({exc.strerror or exc}); "
                        "ingest its folder again") from None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    with _CACHE_LOCK:
        extracted = _CACHE.get(key)
        if extracted is not None:
            _CACHE.move_to_end(key)
    if extracted is None:
        extracted = read(path, max_bytes)
        with _CACHE_LOCK:
            _CACHE[key] = extracted
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    changed = stat.st_size != doc.size or abs(stat.st_mtime - doc.mtime) > 1e-3
    notes = ("The file changed since it was indexed: the marks may be off until it is indexed again.",) \
        if changed else ()
    return extracted, notes
