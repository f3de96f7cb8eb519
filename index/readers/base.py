"""What every reader shares: the ``Extracted`` result and its ``Section``s, decoding, and
``assemble``, which puts metadata the body does not show into a front-matter block.

Every offset the index stores points into ``Extracted.text``, so the same file read twice
gives the same text and offsets (docs/readers.md has the rules).
"""

from __future__ import annotations

import bisect
import codecs
import re
from dataclasses import dataclass
from pathlib import Path

from index.errors import ReadError

CODE_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")  # a line opening or closing a Markdown code block


@dataclass(frozen=True)
class Section:
    """A span of the extracted text with a structural role; text[start:end] is its own text."""

    start: int
    end: int
    kind: str  # "heading" | "term" | "code" | "row" | "title" | "author" | "date"
    level: int = 0  # heading level 1..6 (DOCX "Heading N", markdown #-count, HTML hN); 0 otherwise


@dataclass(frozen=True)
class Extracted:
    """The text of one document, where its pages start, its structure and its metadata.

    Attributes:
        text: the whole extracted text.
        title: the document's title, if any (equals its "title" section's text).
        page_starts: offset in ``text`` where page 1, 2, ... begins (PDF only).
        sections: headings, terms, code blocks, table rows, title/author/date; sorted by start.
        author: the author, if found (equals its "author" section's text).
        date: the date as found in the text, or ISO yyyy-mm-dd when parsed from metadata.
    """

    text: str
    title: str | None = None
    page_starts: tuple[int, ...] = ()
    sections: tuple[Section, ...] = ()
    author: str | None = None
    date: str | None = None

    def page_at(self, offset: int) -> int | None:
        """Return the 1-based page holding ``offset``, or None for page-less formats."""
        if not self.page_starts:
            return None
        return max(1, bisect.bisect_right(self.page_starts, offset))


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


def detect_encoding(path: Path) -> str:
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
class MetaValue:
    """One metadata value: visible at ``span`` in the body, or written into the front matter."""

    kind: str  # "title" | "author" | "date"
    label: str  # the front-matter label: "Title", "Author", "Published", "Date"
    value: str
    span: tuple[int, int] | None = None


def assemble(body: str, sections: list[Section], metas: list[MetaValue],
             page_starts: tuple[int, ...] = ()) -> Extracted:
    """Join front matter (metadata not in the body) and body; shift every offset to match.

    The title/author/date fields are the text their section points at (spacing collapsed).
    """
    if not body.strip():
        return Extracted(text="")
    front: list[str] = []
    offset = 0
    spans: dict[str, tuple[int, int]] = {}
    for meta in metas:
        value = " ".join(meta.value.split())
        if meta.span is None and value:
            line = f"{meta.label}: {value}"
            spans[meta.kind] = (offset + len(meta.label) + 2, offset + len(line))
            front.append(line)
            offset += len(line) + 1
    shift = offset + 1 if front else 0
    text = "\n".join(front) + "\n\n" + body if front else body
    for meta in metas:
        if meta.span is not None:
            spans[meta.kind] = (meta.span[0] + shift, meta.span[1] + shift)
    out = [Section(s.start + shift, s.end + shift, s.kind, s.level) for s in sections]
    out += [Section(start, end, kind) for kind, (start, end) in spans.items()]
    out.sort(key=lambda s: (s.start, s.end, _KIND_ORDER.get(s.kind, 9)))
    found = {kind: " ".join(text[start:end].split()) for kind, (start, end) in spans.items()}
    return Extracted(
        text=text, title=found.get("title"), sections=tuple(out), author=found.get("author"),
        date=found.get("date"), page_starts=tuple(p + shift for p in page_starts),
    )


_KIND_ORDER = {"title": 0, "author": 1, "date": 2, "heading": 3, "term": 4, "row": 5, "code": 6}
