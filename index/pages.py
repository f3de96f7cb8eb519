"""One page of an indexed PDF as a PNG for a viewer, with boxes around given spans of its text.

Spans are offsets in a page's *cleaned* text, the text ``index.readers.pdf.read_pdf`` keeps for
that page (``\\r\\n`` and ``\\r`` made ``\\n``, NUL removed, stripped); ``page_spans`` turns a span
of the extracted text into such page-relative spans. Boxes come from the PDF text layer (PDFium's
text rectangles, one per run of a line), in pixels of the rendered image, origin top-left.

Open documents are kept in a small LRU cache keyed by (path, mtime, size), so showing another
page of the same document does not reopen it; ``close_all`` empties it. PDFium is not
thread-safe, so every call into it here holds the lock the PDF reader holds (``PDFIUM``).
"""

from __future__ import annotations

import struct
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from index.errors import ReadError
from index.readers.pdf import PDFIUM

Box = tuple[float, float, float, float]  # (left, top, right, bottom) in pixels

MAX_SCALE = 8.0  # a larger bitmap than 8x points is not a viewer's page
_CACHE_SIZE = 4
_LOCK = PDFIUM  # guards the cache and every PDFium call made here (shared with the PDF reader)
_DOCUMENTS: OrderedDict[tuple[str, int, int], object] = OrderedDict()


@dataclass(frozen=True)
class PageImage:
    """One rendered page and the boxes of the requested spans on it.

    Attributes:
        page: the 1-based page number.
        pages: how many pages the document has.
        png: the page as PNG bytes.
        width, height: the image's size in pixels.
        scale: pixels per PDF point used to render it.
        boxes: one list of (left, top, right, bottom) pixel boxes per requested span, in the
            order given (empty for an empty or out-of-range span).
        has_text: False when the page has no text layer (a scan); then every box list is empty.
    """

    page: int
    pages: int
    png: bytes
    width: int
    height: int
    scale: float
    boxes: list[list[Box]]
    has_text: bool


def page_spans(page_starts: tuple[int, ...], text_len: int, start: int,
               end: int) -> dict[int, tuple[int, int]]:
    """Split the extracted-text span [start, end) into page-relative spans, by 1-based page.

    Page i runs from ``page_starts[i-1]`` to two characters before the next page's start (the
    "\\n\\n" between pages belongs to no page), the last page to ``text_len``; front matter
    before page 1 belongs to no page either. Pages the span does not touch are left out.
    """
    out: dict[int, tuple[int, int]] = {}
    for i, page_start in enumerate(page_starts):
        page_end = page_starts[i + 1] - 2 if i + 1 < len(page_starts) else text_len
        lo, hi = max(start, page_start), min(end, page_end)
        if lo < hi:
            out[i + 1] = (lo - page_start, hi - page_start)
    return out


def render_page(path: Path, page: int, spans: list[tuple[int, int]] = (),
                scale: float = 1.5) -> PageImage:
    """Render 1-based ``page`` of the PDF at ``path`` and box each span of its cleaned text.

    Spans are clipped to the page's text; an empty span gets no boxes.

    Raises:
        ReadError: the file is missing, not a PDF (or cannot be parsed), encrypted with a
            password, or has no page ``page``.
        ValueError: ``scale`` is not in (0, MAX_SCALE].
    """
    if not 0 < scale <= MAX_SCALE:
        raise ValueError(f"scale must be above 0 and at most {MAX_SCALE}, not {scale}")
    path = Path(path)
    with _LOCK:
        document = _open(path)
        count = len(document)
        if not 1 <= page <= count:
            noun = "page" if count == 1 else "pages"
            raise ReadError(f"page {page} is out of range: the document has {count} {noun}")
        pdf_page = document[page - 1]
        try:
            bitmap = pdf_page.render(scale=scale, rev_byteorder=True)  # RGB
            width, height = bitmap.width, bitmap.height
            png = _png(bitmap)
            textpage = pdf_page.get_textpage()
            try:
                boxes, has_text = _span_boxes(pdf_page, textpage, spans, width, height)
            finally:
                textpage.close()
        finally:
            pdf_page.close()
    return PageImage(page=page, pages=count, png=png, width=width, height=height, scale=scale,
                     boxes=boxes, has_text=has_text)


def close_all() -> None:
    """Close every cached document (tests; or before the files are changed or removed)."""
    with _LOCK:
        while _DOCUMENTS:
            _, document = _DOCUMENTS.popitem(last=False)
            document.close()


# --- opening, with the cache ---------------------------------------------------------------


def _open(path: Path):
    """The open ``PdfDocument`` for ``path``, from the cache when the file has not changed.

    The caller holds ``_LOCK``.
    """
    try:
        stat = path.stat()
    except OSError as exc:
        raise ReadError(f"cannot open {path}: no such file") from exc
    if not path.is_file():
        raise ReadError(f"cannot open {path}: not a file")
    name = str(path.resolve())
    key = (name, stat.st_mtime_ns, stat.st_size)
    document = _DOCUMENTS.get(key)
    if document is not None:
        _DOCUMENTS.move_to_end(key)
        return document
    for old in [k for k in _DOCUMENTS if k[0] == name]:  # the file changed: drop the old copy
        _DOCUMENTS.pop(old).close()
    document = _load(path)
    _DOCUMENTS[key] = document
    while len(_DOCUMENTS) > _CACHE_SIZE:
        _, evicted = _DOCUMENTS.popitem(last=False)
        evicted.close()
    return document


def _load(path: Path):
    """Open the PDF with PDFium; its failures as ``ReadError`` (the same words as the reader)."""
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(str(path))
    except FileNotFoundError as exc:
        raise ReadError(f"cannot open {path}: no such file") from exc
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise ReadError(f"cannot open {path.name}: the PDF is encrypted with a password; "
                            "save an unencrypted copy to view it") from exc
        raise ReadError(f"cannot parse {path.name} as a PDF ({exc})") from exc


# --- boxes from the text layer --------------------------------------------------------------


def clean_map(raw: str) -> tuple[str, list[int]]:
    """The reader's cleaning of a page's raw text, and for each cleaned char its raw index.

    Replays ``raw.replace("\\r\\n", "\\n").replace("\\r", "\\n").replace("\\x00", "").strip()``
    step by step ("\\r\\n" maps to its "\\r").
    """
    chars: list[str] = []
    source: list[int] = []
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        chars.append("\n" if c == "\r" else c)
        source.append(i)
        i += 2 if raw.startswith("\r\n", i) else 1
    kept = [(c, s) for c, s in zip(chars, source) if c != "\x00"]
    text = "".join(c for c, _ in kept)
    lead = len(text) - len(text.lstrip())
    cleaned = text.strip()
    return cleaned, [s for _, s in kept[lead:lead + len(cleaned)]]


def _utf16_offsets(raw: str) -> list[int]:
    """For each char of ``raw``, its offset in UTF-16 units (PDFium's text indices count those)."""
    offsets, unit = [], 0
    for c in raw:
        offsets.append(unit)
        unit += 2 if ord(c) > 0xFFFF else 1
    return offsets


def _first_text_index(textpage) -> int:
    """The text index where ``get_text_range()``'s result starts (past leading excluded chars)."""
    import pypdfium2.raw as pdfium_c

    for char_index in range(textpage.count_chars()):
        text_index = pdfium_c.FPDFText_GetTextIndexFromCharIndex(textpage, char_index)
        if text_index != -1:
            return text_index
    return 0


def _span_boxes(pdf_page, textpage, spans, width: int, height: int) -> tuple[list[list[Box]], bool]:
    """Pixel boxes per span, and whether the page has text at all."""
    import pypdfium2.raw as pdfium_c

    raw = textpage.get_text_range()
    cleaned, source = clean_map(raw)
    if not cleaned:
        return [[] for _ in spans], False
    units = _utf16_offsets(raw)
    first = _first_text_index(textpage)
    to_pixels = _pixel_transform(pdf_page, width, height)

    def char_index(k: int) -> int:
        return pdfium_c.FPDFText_GetCharIndexFromTextIndex(textpage, first + units[source[k]])

    out: list[list[Box]] = []
    for start, end in spans:
        start, end = max(0, start), min(len(cleaned), end)
        if start >= end:
            out.append([])
            continue
        lo, hi = char_index(start), char_index(end - 1)
        if lo < 0 or hi < lo:
            out.append([])
            continue
        rects = [textpage.get_rect(i) for i in range(textpage.count_rects(lo, hi - lo + 1))]
        out.append([box for box in (to_pixels(r) for r in rects) if box[2] > box[0] and box[3] > box[1]])
    return out, True


def _pixel_transform(pdf_page, width: int, height: int):
    """A function from a PDF (left, bottom, right, top) rect to a clipped pixel box.

    Follows PDFium's display: the page's visible box (crop box within media box), its /Rotate
    (clockwise), stretched to the bitmap's ``width`` x ``height``.
    """
    left, bottom, right, top = pdf_page.get_bbox()
    rotation = pdf_page.get_rotation() % 360
    across, down = (right - left, top - bottom) if rotation in (0, 180) else (top - bottom, right - left)
    sx, sy = width / across, height / down

    def point(x: float, y: float) -> tuple[float, float]:
        if rotation == 90:
            return (y - bottom) * sx, (x - left) * sy
        if rotation == 180:
            return (right - x) * sx, (y - bottom) * sy
        if rotation == 270:
            return (top - y) * sx, (right - x) * sy
        return (x - left) * sx, (top - y) * sy

    def transform(rect: tuple[float, float, float, float]) -> Box:
        x0, y0, x1, y1 = rect
        (ax, ay), (bx, by) = point(x0, y0), point(x1, y1)
        return (min(max(min(ax, bx), 0.0), width), min(max(min(ay, by), 0.0), height),
                min(max(max(ax, bx), 0.0), width), min(max(max(ay, by), 0.0), height))

    return transform


# --- PNG ------------------------------------------------------------------------------------


def _png(bitmap) -> bytes:
    """An 8-bit RGB PNG of an RGB ``PdfBitmap`` (as ``render_page`` makes), written with zlib.

    No Pillow (not a dependency of this project, and slower here: about 30 ms against 17 ms
    for an A4 page at scale 1.5).
    """
    if bitmap.mode != "RGB":
        raise ValueError(f"expected an RGB bitmap, not {bitmap.mode}")
    width, height, stride = bitmap.width, bitmap.height, bitmap.stride
    data = memoryview(bitmap.buffer).cast("B")
    rows = b"".join(b"\x00" + bytes(data[y * stride:y * stride + width * 3]) for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit truecolour
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, 3)) + chunk(b"IEND", b""))
