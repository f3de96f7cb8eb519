"""File to text: one reader per format, each returning the whole extracted text.

Plain text and Markdown can also be streamed in blocks (``open_text``), so a file of
any size is indexed without being held whole; ``read_text`` joins the same blocks,
so both give the same text.

Every offset the index stores (chunk start/end, page starts) points into the
``Extracted.text`` a reader returns here, so the same file read twice gives the
same text and the same offsets.
"""

from __future__ import annotations

import bisect
import codecs
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")
STREAMED_SUFFIXES = (".txt", ".md", ".markdown")  # read in blocks: no size limit applies
BLOCK_CHARS = 1 << 16


class ReadError(Exception):
    """A file could not be turned into text; the message says why and what to do."""


@dataclass(frozen=True)
class Extracted:
    """The text of one document and where its pages start.

    Attributes:
        text: the whole extracted text.
        title: a title found in the document, if any.
        page_starts: offset in ``text`` where page 1, 2, ... begins (PDF only).
    """

    text: str
    title: str | None = None
    page_starts: tuple[int, ...] = ()

    def page_at(self, offset: int) -> int | None:
        """Return the 1-based page holding ``offset``, or None for page-less formats."""
        if not self.page_starts:
            return None
        return max(1, bisect.bisect_right(self.page_starts, offset))


def read(path: Path, max_bytes: int | None = None) -> Extracted:
    """Read one file into text.

    Args:
        path: the file.
        max_bytes: refuse files larger than this (None: no limit).

    Returns:
        The extracted text, title and page starts.

    Raises:
        ReadError: unsupported type, too large, unreadable, or no text in it.
    """
    suffix = path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        raise ReadError(
            f"unsupported file type {suffix or '(none)'}; supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ReadError(f"cannot read file: {exc.strerror or exc}") from exc
    if max_bytes is not None and size > max_bytes:
        raise ReadError(
            f"file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB limit; "
            "raise ASSISTANT_MAX_FILE_MB to index it"
        )
    if size == 0:
        raise ReadError("file is empty")
    try:
        extracted = reader(path)
    except ReadError:
        raise
    except OSError as exc:
        raise ReadError(f"cannot read file: {exc.strerror or exc}") from exc
    except Exception as exc:  # a parser failing on a corrupt file
        raise ReadError(f"cannot parse {suffix} file ({type(exc).__name__}: {exc})") from exc
    if not extracted.text.strip():
        raise ReadError("no text found in file")
    return extracted


def decode_text(data: bytes) -> str:
    """Decode bytes of a text file: UTF-8 (with or without BOM), else Windows-1252/Latin-1.

    Raises:
        ReadError: the bytes look binary (NUL bytes).
    """
    if b"\x00" in data[:65536]:
        raise ReadError("file looks binary (NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _encoding_of(path: Path) -> str:
    """What ``decode_text`` would pick for the file, found reading it in blocks."""
    with path.open("rb") as f:
        if b"\x00" in f.read(65536):
            raise ReadError("file looks binary (NUL bytes), not text")
    for encoding in ("utf-8-sig", "cp1252"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    decoder.decode(block)
            decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    return "latin-1"


@dataclass
class TextStream:
    """A text file opened for streaming: its title and its text in blocks (read once)."""

    title: str | None
    blocks: Iterator[str]


def open_text(path: Path, block_chars: int = BLOCK_CHARS) -> TextStream:
    """Stream a plain text or Markdown file: decoded as ``decode_text`` would, in blocks.

    Raises:
        ReadError: empty, binary, or unreadable.
    """
    try:
        if path.stat().st_size == 0:
            raise ReadError("file is empty")
        encoding = _encoding_of(path)
        f = path.open("r", encoding=encoding, newline="")
    except OSError as exc:
        raise ReadError(f"cannot read file: {exc.strerror or exc}") from exc
    first = f.read(block_chars)

    def blocks() -> Iterator[str]:
        with f:
            block, carry = first, ""
            while block:
                block, carry = carry + block, ""
                if block.endswith("\r"):  # maybe half of a \r\n: decide with the next block
                    block, carry = block[:-1], "\r"
                yield block.replace("\r\n", "\n").replace("\r", "\n")
                block = f.read(block_chars)
            if carry:
                yield "\n"

    return TextStream(_first_line_title(first.replace("\r", "\n")), blocks())


def read_text(path: Path) -> Extracted:
    """Plain text and Markdown: the decoded file; title from a first heading or short first line."""
    stream = open_text(path)
    return Extracted(text="".join(stream.blocks), title=stream.title)


def _first_line_title(text: str) -> str | None:
    for line in text.split("\n", 20)[:20]:
        line = line.strip()
        if line:
            line = line.lstrip("#").strip()
            return line if 0 < len(line) <= 150 else None
    return None


class _HTMLText(HTMLParser):
    BLOCK = {
        "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
        "section", "article", "header", "footer", "pre", "blockquote", "dt", "dd", "hr", "title",
    }
    SKIP = {"script", "style", "noscript", "template", "head"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self.skip_depth = 0
        self.in_title = False

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self.in_title = True
        elif tag in self.SKIP:
            self.skip_depth += 1
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        elif tag in self.SKIP and self.skip_depth:
            self.skip_depth -= 1
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if self.in_title:
            self.title_parts.append(data)
        elif not self.skip_depth:
            self.parts.append(re.sub(r"\s+", " ", data))


def read_html(path: Path) -> Extracted:
    """HTML: the visible text (no markup, scripts or styles), blocks on their own lines."""
    parser = _HTMLText()
    parser.feed(decode_text(path.read_bytes()))
    parser.close()
    raw = "".join(parser.parts)
    lines = [line.strip() for line in raw.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    title = " ".join("".join(parser.title_parts).split()) or None
    return Extracted(text=text, title=title)


def read_pdf(path: Path) -> Extracted:
    """PDF: the text layer page by page (PDFium); scanned PDFs (no text layer) are refused, not OCRed."""
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise ReadError(
                "PDF is encrypted with a password; save an unencrypted copy to index it"
            ) from exc
        raise ReadError(f"cannot parse .pdf file ({exc})") from exc
    try:
        parts: list[str] = []
        starts: list[int] = []
        offset = 0
        for i in range(len(document)):
            page = document[i]
            textpage = page.get_textpage()
            raw = textpage.get_text_range()
            textpage.close()
            page.close()
            page_text = raw.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()
            starts.append(offset)
            parts.append(page_text)
            offset += len(page_text) + 2
        title = (document.get_metadata_dict().get("Title") or "").strip() or None
    finally:
        document.close()
    text = "\n\n".join(parts)
    if not text.strip():
        raise ReadError("PDF has no text layer (a scan?); OCR is not supported, so nothing to index")
    return Extracted(text=text, title=title, page_starts=tuple(starts))


def read_docx(path: Path) -> Extracted:
    """Word .docx: paragraphs and table cells, one block each."""
    import docx

    document = docx.Document(str(path))
    blocks = [p.text.strip() for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            blocks.append(" | ".join(cell.text.strip() for cell in row.cells))
    text = "\n\n".join(b for b in blocks if b)
    title = (document.core_properties.title or "").strip() or _first_line_title(text)
    return Extracted(text=text, title=title)


_READERS = {
    ".txt": read_text,
    ".md": read_text,
    ".markdown": read_text,
    ".html": read_html,
    ".htm": read_html,
    ".pdf": read_pdf,
    ".docx": read_docx,
}
