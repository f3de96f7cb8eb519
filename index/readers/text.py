"""Plain text and Markdown: the decoded file as it is, with its headings, code blocks, title,
byline and date. ``open_text`` streams a file in blocks, so a file of any size is indexed
without being held whole; ``read_text`` joins the same blocks, so both give the same result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from index.errors import ReadError
from index.readers.base import CODE_FENCE, Extracted, Section, detect_encoding
from index.readers.metadata import TOP_LINES, first_line_title_span, line_metadata, trailing_name_span

BLOCK_CHARS = 1 << 16
HEAD_CHARS = 1 << 13  # a streamed file's title is looked for in this much of its start
_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+|$)")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*$")
_NOT_SETEXT_TEXT = re.compile(r"\s*(?:[-*+>]\s|\d+[.)]\s|#|`{3}|~{3}|[-=_*\s]*$)")


@dataclass
class TextStream:
    """A text file opened for streaming: its title, its text in blocks (read once), its structure.

    ``sections`` fills while ``blocks`` is consumed and is complete once it is exhausted;
    ``author`` and ``date`` may be set only at the end (a signature line ends the text).
    """

    title: str | None
    blocks: Iterator[str]
    sections: list[Section] = field(default_factory=list)
    author: str | None = None
    date: str | None = None


class _TextScanner:
    """Finds sections, byline and date line by line in streamed text; offsets into the joined blocks."""

    def __init__(self, stream: TextStream, title_span: tuple[int, int] | None) -> None:
        self.stream = stream
        self.sections = stream.sections
        if title_span:
            self.sections.append(Section(*title_span, "title"))
        self.carry = ""
        self.pos = 0  # offset of the next line to scan
        self.nonblank = 0
        self.fence: str | None = None  # the marker (``` or ~~~) of the open fence
        self.fence_content: tuple[int, int] | None = None
        self.pending: list[Section] = []  # headings seen inside an open fence (kept if it never closes)
        self.prev: tuple[int, str] | None = None  # the previous line if it may be a setext heading's text
        self.prev_blank = True
        self.before_prev_blank = True
        self.last: tuple[int, str, bool] | None = None  # last non-blank plain line, blank before it?
        self.found: dict[str, str] = {}  # "author"/"date" → the text found

    def feed(self, block: str) -> None:
        data = self.carry + block
        lines = data.split("\n")
        self.carry = lines.pop()
        for line in lines:
            self._line(line)
            self.pos += len(line) + 1

    def finish(self) -> None:
        if self.carry:
            self._line(self.carry)
            self.pos += len(self.carry)
            self.carry = ""
        if self.fence is not None:  # an unclosed fence is no code block: keep what it hid
            self.sections.extend(self.pending)
        if "author" not in self.found and self.last and self.last[2] and self.nonblank >= 3:
            start, line, _ = self.last
            span = trailing_name_span(line)
            if span:
                self.found["author"] = line[span[0]:span[1]]
                self.sections.append(Section(start + span[0], start + span[1], "author"))
        self.stream.author = self.found.get("author")
        self.stream.date = self.found.get("date")

    def _line(self, line: str) -> None:
        start = self.pos
        if not line.strip():
            self.before_prev_blank, self.prev_blank = self.prev_blank, True
            self.prev = None
            return
        self.nonblank += 1
        if self.fence is not None:
            self._in_fence(line, start)
            return
        fence = CODE_FENCE.match(line)
        if fence and not (fence.group(1)[0] == "`" and "`" in line[fence.end():]):
            self.fence = fence.group(1)
            self.fence_content = None
            self.pending = []
            self._after(plain=False)
            return
        heading = self._heading(line, start)
        if heading:
            self.sections.append(heading)
            self._after(plain=False)
            return
        if self.nonblank <= TOP_LINES:
            for kind, (s, e) in line_metadata(line):
                if kind not in self.found:
                    self.found[kind] = " ".join(line[s:e].split())
                    self.sections.append(Section(start + s, start + e, kind))
        self.last = (start, line, self.prev_blank)
        plain_start = self.prev_blank and not _NOT_SETEXT_TEXT.match(line)
        self._after(plain=True)
        self.prev = (start, line) if plain_start else None

    def _heading(self, line: str, start: int) -> Section | None:
        atx = _ATX.match(line)
        if atx:
            body = line[atx.end():]
            body = re.sub(r"(?:^|[ \t]+)#+[ \t]*$", "", body).rstrip()
            if not body:
                return None
            at = start + atx.end()
            return Section(at, at + len(body), "heading", len(atx.group(1)))
        setext = _SETEXT.match(line)
        if setext and self.prev is not None and self.before_prev_blank and (
                setext.group(1)[0] == "=" or len(setext.group(1)) >= 2):
            prev_start, prev_line = self.prev
            if len(prev_line.strip()) <= 150:
                while self.sections and self.sections[-1].start >= prev_start \
                        and self.sections[-1].kind in ("author", "date"):
                    self.found.pop(self.sections.pop().kind, None)  # a heading's text is no byline
                lead = len(prev_line) - len(prev_line.lstrip())
                text = prev_line.strip()
                level = 1 if setext.group(1)[0] == "=" else 2
                return Section(prev_start + lead, prev_start + lead + len(text), "heading", level)
        return None

    def _in_fence(self, line: str, start: int) -> None:
        marker = self.fence
        close = CODE_FENCE.match(line)
        if close and close.group(1)[0] == marker[0] and len(close.group(1)) >= len(marker) \
                and not line[close.end():].strip():
            if self.fence_content:
                self.sections.append(Section(*self.fence_content, "code"))
            self.fence = None
            self._after(plain=False)
            return
        if self.fence_content is None:
            self.fence_content = (start, start + len(line.rstrip()))
        else:
            self.fence_content = (self.fence_content[0], start + len(line.rstrip()))
        heading = self._heading(line, start)
        if heading:
            self.pending.append(heading)
        self.prev = None
        self.before_prev_blank, self.prev_blank = self.prev_blank, False

    def _after(self, plain: bool) -> None:
        if not plain:
            self.last = None
        self.prev = None
        self.before_prev_blank, self.prev_blank = self.prev_blank, False


def open_text(path: Path, block_chars: int = BLOCK_CHARS) -> TextStream:
    """Stream a plain text or Markdown file: decoded as ``decode_text`` would, in blocks.

    Raises:
        ReadError: empty, binary, or unreadable.
    """
    try:
        if path.stat().st_size == 0:
            raise ReadError("file is empty")
        encoding = detect_encoding(path)
        f = path.open("r", encoding=encoding, newline="")
    except OSError as exc:
        raise ReadError(f"cannot read file: {exc.strerror or exc}") from exc
    first = f.read(max(block_chars, HEAD_CHARS))
    head = first.replace("\r\n", "\n").replace("\r", "\n")
    title_span = first_line_title_span(head)
    title = " ".join(head[title_span[0]:title_span[1]].split()) if title_span else None
    stream = TextStream(title, iter(()))
    scanner = _TextScanner(stream, title_span)

    def blocks() -> Iterator[str]:
        with f:
            block, carry = first, ""
            while block:
                block, carry = carry + block, ""
                if block.endswith("\r"):  # maybe half of a \r\n: decide with the next block
                    block, carry = block[:-1], "\r"
                block = block.replace("\r\n", "\n").replace("\r", "\n")
                for piece in (block[i:i + block_chars] for i in range(0, len(block), block_chars)):
                    scanner.feed(piece)
                    yield piece
                block = f.read(block_chars)
            if carry:
                scanner.feed("\n")
                yield "\n"
            scanner.finish()

    stream.blocks = blocks()
    return stream


def read_text(path: Path) -> Extracted:
    """Plain text and Markdown: the decoded file (nothing added); title, sections, byline and date."""
    stream = open_text(path)
    text = "".join(stream.blocks)
    return Extracted(text=text, title=stream.title, sections=tuple(stream.sections),
                     author=stream.author, date=stream.date)
