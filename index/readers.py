"""File to text: one reader per format, each returning the text and its structure.

Plain text and Markdown can also be streamed in blocks (``open_text``), so a file of
any size is indexed without being held whole; ``read_text`` joins the same blocks,
so both give the same text and the same sections.

Every offset the index stores (chunk start/end, page starts, sections) points into the
``Extracted.text`` a reader returns here, so the same file read twice gives the same
text and the same offsets. A ``Section`` marks a span with a structural role (a
heading, a ``<dt>`` term, a code block, a table row, the title, author or date):
``text[s.start:s.end]`` is exactly its text. Title, author and date found in metadata
but not in the visible text are written in a short front-matter block at the start of
the text (``Title: …``), so they too have offsets. docs/readers.md has the rules.
"""

from __future__ import annotations

import bisect
import codecs
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")
STREAMED_SUFFIXES = (".txt", ".md", ".markdown")  # read in blocks: no size limit applies
BLOCK_CHARS = 1 << 16
HEAD_CHARS = 1 << 13  # a streamed file's title is looked for in this much of its start


class ReadError(Exception):
    """A file could not be turned into text; the message says why and what to do."""


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


def read(path: Path, max_bytes: int | None = None) -> Extracted:
    """Read one file into text.

    Args:
        path: the file.
        max_bytes: refuse files larger than this (None: no limit).

    Returns:
        The extracted text, title, page starts, sections, author and date.

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


# ----------------------------------------------------------------------------- metadata rules
_MONTH_NUMBERS = {
    name: n for n, names in enumerate(
        [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
         ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
         ("october", "oct"), ("november", "nov"), ("december", "dec")], 1)
    for name in names
}
_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
          r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_WEEKDAY = r"(?:mon|tue(?:s)?|wed(?:nes)?|thu(?:r(?:s)?)?|fri|sat(?:ur)?|sun)(?:day)?\.?,?\s+"
# A calendar date as people write it: 2023-04-28, April 28, 2023, 28 April 2023, Mon, 28 Apr 2023
# (a "T" may follow: an ISO time).
_DATE = re.compile(
    rf"(?<!\w)(?:{_WEEKDAY})?(?:(?P<iy>\d{{4}})[-/.](?P<im>\d{{1,2}})[-/.](?P<id>\d{{1,2}})(?!\d)"
    rf"|(?P<am>{_MONTH})\.?\s+(?P<ad>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<ay>\d{{4}})"
    rf"|(?P<bd>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<bm>{_MONTH})\.?,?\s+(?P<by>\d{{4}}))(?![^\WT])",
    re.IGNORECASE,
)
_TIME_AFTER = re.compile(
    r"(?:,?\s+(?:at\s+)?\d{1,2}[:.]\d{2}(?::\d{2})?(?:\s*[ap]\.?m\.?)?(?:\s*[A-Z]{2,5}|\s*[+-]\d{4})?)?\s*$",
    re.IGNORECASE,
)
# "Published: …", "Date: …", "Posted on …": the date follows.
_DATE_LEAD = re.compile(r"(?:first\s+)?(?:published|posted|dated|date)(?!\w)(?:\s+on)?\s*[:\-–—]?\s*",
                        re.IGNORECASE)
# "By Jane Doe", "Author: Jane Doe", "Written by …": the name follows.
_BYLINE_LEAD = re.compile(
    r"(?P<word>(?:written|posted)\s+by|by|authors?|byline)(?P<sep>\s*[:\-–—]\s*|\s+)", re.IGNORECASE)
_NAME_PARTICLES = {"van", "von", "de", "der", "den", "da", "di", "du", "la", "le", "del", "bin", "al", "y"}
# Capitalised words that end texts or open bylines without being a person's name.
_NOT_NAMES = set("""
the a an end thank thanks you regards best kind warm sincerely yours cheers love chapter part section
appendix table figure contents index references see also notes note copyright all rights reserved next
previous home top back more read share follow us contact about page continue reading related articles
comments advertisement subscribe sign up in log out privacy policy terms of use to be continued good luck
happy new year merry christmas hello world questions answers summary conclusion introduction abstract
acknowledgements acknowledgments glossary bibliography further footnotes source sources credits updated
published posted print email download this that these our your my his her their its for and or with
monday tuesday wednesday thursday friday saturday sunday january february march april may june july
august september october november december today yesterday tomorrow staff reporter editor editorial
team news press release agency office department ministry university company inc ltd
""".split())
# Core-property authors that templates and tools write, not people.
_PLACEHOLDER_AUTHORS = {"python-docx", "administrator", "admin", "user", "windows user", "unknown",
                        "microsoft office user", "author", "owner", "default"}
# python-docx's template carries this creation time; a document made from it was not written then.
_PYTHON_DOCX_TEMPLATE_CREATED = "2013-12-23T23:15:00"
TOP_LINES = 12  # bylines and date lines are looked for in this many first non-blank lines (text)
HTML_TOP_LINES = 40  # ... and in this many of an HTML page's (navigation comes first)
_SEEN_HEAD, _SEEN_TAIL = 3000, 1000  # metadata counts as visible when found in these ends of the text


def iso_date(value: str) -> str | None:
    """The first calendar date in ``value`` as ISO yyyy-mm-dd, or None (also for impossible dates)."""
    match = _DATE.search(value)
    if not match:
        return None
    if match["iy"]:
        y, m, d = match["iy"], match["im"], match["id"]
    elif match["am"]:
        y, m, d = match["ay"], _MONTH_NUMBERS[match["am"].lower()], match["ad"]
    else:
        y, m, d = match["by"], _MONTH_NUMBERS[match["bm"].lower()], match["bd"]
    y, m, d = int(y), int(m), int(d)
    if not (1 <= m <= 12 and 1 <= d <= 31 and 1000 <= y <= 2999):
        return None
    return f"{y:04d}-{m:02d}-{d:02d}"


def _is_name_word(word: str) -> bool:
    """A capitalised word of a name ("Jane", "O'Brien", "Jean-Luc", "McAdams") or an initial ("J.")."""
    if len(word) == 2 and word[0].isupper() and word[1] == ".":
        return True
    if not word[0].isupper() or word.lower() in _NOT_NAMES or len(word) > 30:
        return False
    rest = word[1:]
    return any(c.islower() for c in rest) and all(c.isalpha() or c in "-'’" for c in rest)


def _name_end(line: str, pos: int, min_words: int, max_words: int) -> int:
    """End of a person's name starting at ``line[pos]`` (0 if there is none)."""
    words = 0
    end = 0
    for match in re.finditer(r"\S+", line[pos:]):
        word = match.group().rstrip(",;")
        if words and word.lower() in _NAME_PARTICLES:
            continue
        if not _is_name_word(word):
            break
        words += 1
        end = pos + match.start() + len(word)
        if words == max_words or word != match.group():  # a comma ends the name
            break
    return end if words >= min_words else 0


def _names_end(line: str, pos: int) -> int:
    """End of "Jane Doe", "Jane Doe and John Roe" or "Jane Doe, John Roe and Ann Lee" at ``line[pos]``."""
    end = _name_end(line, pos, 2, 4)
    while end:
        more = re.match(r",?\s+(?:and|&)\s+|,\s+", line[end:])
        if not more:
            break
        after = _name_end(line, end + more.end(), 2, 4)
        if not after:
            break
        end = after
    return end


def byline_span(line: str) -> tuple[int, int] | None:
    """Where the author's name is in a byline ("By Jane Doe", "Author: Jane Doe | May 3"), or None.

    "By …" needs a name of 2–4 capitalised words, so "By the way …" and "By Monday …" are not
    bylines; "Author: …" takes any short value up to a separator.
    """
    lead = _BYLINE_LEAD.match(line)
    if not lead:
        return None
    start = lead.end()
    if lead["word"].lower() in ("author", "authors", "byline") and ":" in lead["sep"]:
        value = re.match(r"[^|·•]*", line[start:]).group()
        value = re.split(r"\s+[—–-]\s+", value)[0].rstrip(" .,;")
        if 2 <= len(value) <= 80 and any(c.isalpha() for c in value) and "://" not in value:
            return start, start + len(value)
        return None
    if not line[lead.start()].isupper():  # "by the …" wrapped from the line before
        return None
    end = _names_end(line, start)
    if not end:
        return None
    rest = line[end:]
    if rest.strip() and not re.match(r"\s*(?:[,|·•/(—–-]|\s(?:for|in|on|at|from)\s)", rest):
        return None
    return start, end


def date_span(line: str) -> tuple[int, int] | None:
    """Where the date is in a date line ("Published: 28 April 2023", "Date: …", "April 28, 2023")."""
    lead = _DATE_LEAD.match(line)
    start = lead.end() if lead else 0
    match = _DATE.match(line, start)
    if not match or not iso_date(match.group()):
        return None
    if not lead and not _TIME_AFTER.fullmatch(line, match.end()):
        return None  # a bare date must be the whole line (a time may follow)
    return match.start(), match.end()


def trailing_name_span(line: str) -> tuple[int, int] | None:
    """A signature line that is just a name of 2–3 capitalised words ("David Baker", "— Ann Lee")."""
    stripped = line.strip()
    lead = re.match(r"(?:[—–-]+|--)\s*", stripped)
    pos = lead.end() if lead else 0
    end = _name_end(stripped, pos, 2, 3)
    if not end or end != len(stripped):
        return None
    offset = len(line) - len(line.lstrip())
    return offset + pos, offset + end


def _find_value(text: str, value: str, head: int = _SEEN_HEAD,
                tail: int = _SEEN_TAIL) -> tuple[int, int] | None:
    """Where ``value`` stands as whole words near the start or the end of ``text`` (spacing may differ)."""
    words = value.split()
    if not words:
        return None
    pattern = re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, words)) + r"(?!\w)")
    match = pattern.search(text, 0, head) or pattern.search(text, max(0, len(text) - tail))
    return (match.start(), match.end()) if match else None


def _find_line(text: str, value: str, head: int = _SEEN_HEAD) -> tuple[int, int] | None:
    """Where ``value`` makes up whole lines near the start of ``text`` (a title as printed)."""
    words = value.split()
    if not words:
        return None
    pattern = re.compile(r"^[ \t]*(" + r"\s+".join(map(re.escape, words)) + r")[ \t]*$", re.MULTILINE)
    match = pattern.search(text, 0, head)
    return match.span(1) if match else None


def _find_date(text: str, iso: str, head: int = _SEEN_HEAD) -> tuple[int, int] | None:
    """Where a date written any way that ``iso_date`` reads as ``iso`` stands near the start of ``text``."""
    for match in _DATE.finditer(text, 0, min(head, len(text))):
        if iso_date(match.group()) == iso:
            return match.start(), match.end()
    return None


@dataclass
class _Meta:
    """One metadata value: visible at ``span`` in the body, or written into the front matter."""

    kind: str  # "title" | "author" | "date"
    label: str  # the front-matter label: "Title", "Author", "Published", "Date"
    value: str
    span: tuple[int, int] | None = None


def _assemble(body: str, sections: list[Section], metas: list[_Meta],
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


def _top_meta(text: str, lines: int) -> dict[str, tuple[int, int]]:
    """Byline and date-line spans among the first ``lines`` non-blank lines of ``text``."""
    found: dict[str, tuple[int, int]] = {}
    pos = 0
    for _ in range(lines):
        while pos < len(text) and text[pos] == "\n":
            pos += 1
        if pos >= len(text):
            break
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        for kind, span in _line_meta(text[pos:end]):
            found.setdefault(kind, (pos + span[0], pos + span[1]))
        pos = end
    return found


def _line_meta(line: str) -> list[tuple[str, tuple[int, int]]]:
    """The author and date spans one line near the top holds (a byline may carry a date too)."""
    stripped = line.lstrip()
    indent = len(line) - len(stripped)
    out = []
    name = byline_span(stripped)
    if name:
        out.append(("author", (indent + name[0], indent + name[1])))
        dated = _DATE.search(stripped, name[1])
        if dated and iso_date(dated.group()):
            out.append(("date", (indent + dated.start(), indent + dated.end())))
        return out
    when = date_span(stripped.rstrip())
    if when:
        out.append(("date", (indent + when[0], indent + when[1])))
    return out


# ----------------------------------------------------------------------------- plain text, Markdown
_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+|$)")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
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
        fence = _FENCE.match(line)
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
            for kind, (s, e) in _line_meta(line):
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
        close = _FENCE.match(line)
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
        encoding = _encoding_of(path)
        f = path.open("r", encoding=encoding, newline="")
    except OSError as exc:
        raise ReadError(f"cannot read file: {exc.strerror or exc}") from exc
    first = f.read(max(block_chars, HEAD_CHARS))
    head = first.replace("\r\n", "\n").replace("\r", "\n")
    title_span = _first_line_title_span(head)
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


def _first_line_title_span(text: str) -> tuple[int, int] | None:
    """The first non-blank line (a Markdown "#" stripped) if it is short and has a letter or digit.

    A YAML front-matter block (``---`` … ``---``) with a ``title:`` key gives that value instead.
    """
    yaml = re.match(r"---[ \t]*\n((?:.*\n){0,40}?)(?:---|\.\.\.)[ \t]*(?:\n|$)", text)
    if yaml:
        key = re.search(r"^title:[ \t]*(['\"]?)(.+?)\1[ \t]*$", yaml.group(1), re.MULTILINE | re.IGNORECASE)
        if key:
            return yaml.start(1) + key.start(2), yaml.start(1) + key.end(2)
    pos = 0
    for _ in range(20):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        line = text[pos:end]
        if line.strip():
            lead = len(line) - len(line.lstrip().lstrip("#").lstrip())
            title = line.strip().lstrip("#").strip()
            if 0 < len(title) <= 150 and any(c.isalnum() for c in title) and not _FENCE.match(line):
                return pos + lead, pos + lead + len(title)
            return None
        if end >= len(text):
            return None
        pos = end + 1
    return None


# ----------------------------------------------------------------------------- HTML
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "head", "title", "svg", "math",
                        "iframe", "object", "embed", "canvas", "audio", "video", "select", "textarea"})
_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details",
    "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
    "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "legend", "li", "main", "menu",
    "nav", "ol", "option", "p", "pre", "section", "summary", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "ul",
})
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_PERMALINK_TEXT = frozenset({"¶", "§", "#", "🔗", "⚓"})
_LAYOUT_XPATH = ".//table|.//pre|.//h1|.//h2|.//h3|.//h4|.//h5|.//h6"
_MAX_CELL_BLOCKS = 6  # a cell holding more blocks than this is page layout, not a table cell
_META_AUTHOR = ("author", "dc.creator", "dcterms.creator", "citation_author", "article:author", "byl")
_META_DATE = ("article:published_time", "date", "dc.date", "dc.date.issued", "dcterms.date",
              "dcterms.issued", "citation_date", "citation_publication_date", "pubdate",
              "publish-date", "og:published_time", "datepublished")


def _hidden(el) -> bool:
    """Elements a browser does not show: the ``hidden`` attribute or an inline display:none."""
    if el.get("hidden") is not None:
        return True
    style = el.get("style")
    return bool(style) and "display:none" in style.replace(" ", "").lower()


def _permalink(el) -> bool:
    """A heading's permalink anchor ("¶" in Sphinx pages): visible only on hover, not text."""
    return (len(el) == 0 and (el.text or "").strip() in _PERMALINK_TEXT
            and (el.get("href") or "").startswith("#"))


class _HtmlWriter:
    """Builds the visible text: inline whitespace collapsed, blocks apart, sections recorded."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.breaks = 0  # line breaks owed before the next text (2: a blank line)
        self.space = False  # a space owed before the next text
        self.open: list[list] = []  # [kind, level, start] of spans being captured
        self.sections: list[Section] = []
        self.marks: list[tuple[str, int, int, str]] = []  # (kind, start, end, attribute): <time>, bylines

    def _put(self, s: str) -> None:
        if self.length:
            sep = "\n" * self.breaks if self.breaks else (" " if self.space else "")
            if sep:
                self.parts.append(sep)
                self.length += len(sep)
        self.breaks, self.space = 0, False
        for capture in self.open:
            if capture[2] is None:  # a heading's span starts at its first character, not at a <pre>'s indent
                capture[2] = self.length + len(s) - len(s.lstrip())
        self.parts.append(s)
        self.length += len(s)

    def text(self, s: str | None) -> None:
        if not s:
            return
        words = s.split()
        if s[0].isspace():
            self.space = True
        if words:
            self._put(" ".join(words))
            if s[-1].isspace():
                self.space = True

    def block(self) -> None:
        self.breaks = 2

    def line_break(self) -> None:
        self.breaks = 2 if self.breaks else 1

    def unit(self, s: str, kind: str) -> None:
        """A block written as is (a <pre>, a table row) and recorded as a section."""
        if not s:
            return
        self.block()
        self._put(s)
        self.sections.append(Section(self.length - len(s), self.length, kind))
        self.block()

    def begin(self, kind: str, level: int = 0) -> None:
        self.open.append([kind, level, None])

    def end(self, attribute: str = "") -> None:
        kind, level, start = self.open.pop()
        if start is None:
            return
        if kind in ("heading", "term"):
            self.sections.append(Section(start, self.length, kind, level))
        else:
            self.marks.append((kind, start, self.length, attribute))


def _inline_text(el, verbatim: bool = False) -> str:
    """The visible text under ``el``: whitespace collapsed (blocks and <br> become spaces) or verbatim."""
    from lxml import etree

    pieces: list[str] = []
    walker = etree.iterwalk(el, events=("start", "end"))
    skipped = []
    for event, node in walker:
        if event == "start":
            tag = node.tag if isinstance(node.tag, str) else ""
            if node is not el and (tag in _SKIP_TAGS or _hidden(node) or (tag == "a" and _permalink(node))):
                walker.skip_subtree()
                skipped.append(node)
                continue
            if tag == "br" or (not verbatim and tag in _BLOCK_TAGS):
                pieces.append("\n" if verbatim else " ")
            if node.text:
                pieces.append(node.text)
        else:
            if skipped and skipped[-1] is node:
                skipped.pop()
            elif not verbatim and node.tag in _BLOCK_TAGS:
                pieces.append(" ")
            if node is not el and node.tail:
                pieces.append(node.tail)
    text = "".join(pieces)
    return text if verbatim else " ".join(text.split())


def _is_data_table(table) -> bool:
    """A table of rows and cells, not page layout: no nested table, <pre> or heading, small cells."""
    if table.xpath(_LAYOUT_XPATH):
        return False
    for cell in table.iter("td", "th"):
        if sum(1 for _ in cell.iter("p", "div", "li", "ul", "ol", "dl", "blockquote")) > _MAX_CELL_BLOCKS:
            return False
    return True


def _grid(rows) -> list[list[tuple[object, str, bool]]]:
    """Each row as (cell, text, is_th) per column, spans expanded (a rowspan repeats its cell below)."""
    grid = []
    carried: dict[int, tuple[int, tuple[object, str, bool]]] = {}
    for tr in rows:
        cells = [c for c in tr if isinstance(c.tag, str) and c.tag in ("td", "th") and not _hidden(c)]
        row: list[tuple[object, str, bool]] = []
        col = 0
        queue = list(cells)
        while queue or any(k >= col for k in carried):
            if col in carried:
                left, entry = carried[col]
                row.append(entry)
                if left > 1:
                    carried[col] = (left - 1, entry)
                else:
                    del carried[col]
                col += 1
                continue
            if not queue:
                col += 1
                row.append((None, "", False))
                continue
            cell = queue.pop(0)
            entry = (cell, _inline_text(cell), cell.tag == "th")
            span = _int_attr(cell, "colspan", 1, 100)
            down = _int_attr(cell, "rowspan", 1, 100)
            for _ in range(span):
                row.append(entry)
                if down > 1:
                    carried[col] = (down - 1, entry)
                col += 1
        while row and row[-1][0] is None:
            row.pop()
        grid.append(row)
    return grid


def _int_attr(el, name: str, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(el.get(name) or low)))
    except ValueError:
        return low


def _table_lines(table) -> tuple[str, list[str]]:
    """A data table's caption and one line per row; rows carry their column headers.

    With header cells (rows in <thead>, or a first row of only <th>) each row reads
    ``Header 1: cell 1 | Header 2: cell 2``; without, cells are joined by `` | ``.
    """
    caption_el = table.find("caption")
    caption = _inline_text(caption_el) if caption_el is not None and not _hidden(caption_el) else ""
    rows = [tr for tr in table.iter("tr") if not _hidden(tr)]
    head_rows = [tr for tr in rows if tr.getparent() is not None and tr.getparent().tag == "thead"]
    grid = _grid(rows)
    if head_rows:
        n_head = len(head_rows)
        head_grid = [row for tr, row in zip(rows, grid) if tr in head_rows]
        body = [row for tr, row in zip(rows, grid) if tr not in head_rows]
    elif len(grid) > 1 and _all_th(grid[0]):
        n_head, head_grid, body = 1, grid[:1], grid[1:]
    else:
        n_head, head_grid, body = 0, [], grid
    headers: list[str] = []
    if n_head:
        width = max(len(r) for r in head_grid)
        for col in range(width):
            labels: list[str] = []
            for row in head_grid:
                label = row[col][1] if col < len(row) else ""
                if label and label not in labels:
                    labels.append(label)
            headers.append(" ".join(labels))
    lines = [line for line in (_row_line(row, [] if _all_th(row) else headers) for row in body) if line]
    if not lines:  # only a header row: keep its text
        lines = [line for line in (_row_line(row, []) for row in head_grid) if line]
    return caption, lines


def _all_th(row: list[tuple[object, str, bool]]) -> bool:
    cells = [is_th for cell, _, is_th in row if cell is not None]
    return bool(cells) and all(cells)


def _row_line(row: list[tuple[object, str, bool]], headers: list[str]) -> str:
    parts: list[str] = []
    previous = None
    for col, (cell, text, _) in enumerate(row):
        if cell is None or cell is previous or not text:
            previous = cell
            continue
        previous = cell
        label = headers[col] if col < len(headers) else ""
        parts.append(f"{label}: {text}" if label and label != text else text)
    return " | ".join(parts)


def _parse_html(html: str):
    """The parsed document (lxml's libxml2 HTML parser, which also repairs tag soup), or None if empty."""
    from lxml import etree

    parser = etree.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True, huge_tree=True)
    return etree.fromstring(html.encode("utf-8"), parser)


def read_html(path: Path) -> Extracted:
    """HTML: the visible text, blocks apart, <pre> verbatim, table rows with their headers.

    Sections: headings (h1–h6), <dt> terms, <pre> code, table rows, and the title, author
    and date (from <title>/<meta>/<time>/a byline) pointing into the text.
    """
    from lxml import etree

    root = _parse_html(decode_text(path.read_bytes()))
    if root is None:
        return Extracted(text="")
    writer = _HtmlWriter()
    walker = etree.iterwalk(root, events=("start", "end"))
    ends: list[str | None] = []
    for event, el in walker:
        tag = el.tag if isinstance(el.tag, str) else ""
        if event == "end":
            action = ends.pop()
            if action == "block":
                writer.block()
            elif action == "capture":
                writer.end()
                if tag in _HEADINGS or tag == "dt":
                    writer.block()
            elif action == "time":
                writer.end(el.get("datetime") or "")
            writer.text(el.tail)
            continue
        if tag in _SKIP_TAGS or _hidden(el) or (tag == "a" and _permalink(el)) or not tag:
            walker.skip_subtree()
            ends.append("skip")
            continue
        if tag == "pre":
            writer.unit(_inline_text(el, verbatim=True).strip("\n").rstrip(), "code")
            walker.skip_subtree()
            ends.append("block")
            continue
        if tag == "table" and _is_data_table(el):
            caption, lines = _table_lines(el)
            writer.block()
            writer.text(caption)
            for line in lines:
                writer.unit(line, "row")
            walker.skip_subtree()
            ends.append("block")
            continue
        if tag == "br":
            writer.line_break()
            ends.append(None)
        elif tag in _HEADINGS or tag == "dt":
            writer.block()
            writer.begin("heading" if tag != "dt" else "term", _HEADINGS.get(tag, 0))
            ends.append("capture")
        elif tag in _BLOCK_TAGS:
            writer.block()
            ends.append("block")
        elif tag == "time" and el.get("datetime"):
            writer.begin("time")
            ends.append("time")
        elif el.get("rel") == "author" or el.get("itemprop") == "author":
            writer.begin("byline")
            ends.append("capture")
        else:
            ends.append(None)
        writer.text(el.text)
    body = "".join(writer.parts)
    return _assemble(body, writer.sections, _html_meta(root, body, writer))


def _html_meta(root, body: str, writer: _HtmlWriter) -> list[_Meta]:
    """Title, author and date of a page: from <title>/<meta>/<time>, else a visible byline."""
    metas: list[_Meta] = []
    named: dict[str, str] = {}
    for meta in root.iter("meta"):
        key = (meta.get("name") or meta.get("property") or meta.get("itemprop") or "").strip().lower()
        content = " ".join((meta.get("content") or "").split())
        if key and content and key not in named:
            named[key] = content
    title_el = root.find("head/title")
    title = " ".join("".join(title_el.itertext() if title_el is not None else ()).split())
    headings = [s for s in writer.sections if s.kind == "heading"]
    if title:
        span = _title_in_headings(body, title, headings)
        if span:
            metas.append(_Meta("title", "Title", body[span[0]:span[1]], span))
        else:
            metas.append(_Meta("title", "Title", title))
    else:
        first_h1 = next((s for s in headings if s.level == 1), None)
        if first_h1:
            span = (first_h1.start, first_h1.end)
            metas.append(_Meta("title", "Title", body[span[0]:span[1]], span))
    top = _top_meta(body, HTML_TOP_LINES)
    author = next((re.sub(r"^by\s+", "", named[k], flags=re.IGNORECASE) for k in _META_AUTHOR
                   if k in named and _plausible_author(named[k])), None)
    if author:
        metas.append(_Meta("author", "Author", author, _find_value(body, author)))
    else:
        marked = next(((s, e) for kind, s, e, _ in writer.marks if kind == "byline"), None)
        if marked:
            lead = byline_span(body[marked[0]:marked[1]])
            if lead:
                marked = (marked[0] + lead[0], marked[0] + lead[1])
            if not _plausible_author(body[marked[0]:marked[1]]):
                marked = None
        span = marked or top.get("author")
        if span:
            metas.append(_Meta("author", "Author", body[span[0]:span[1]], span))
    metas.extend(_html_date(named, body, writer, top))
    return metas


def _html_date(named: dict[str, str], body: str, writer: _HtmlWriter,
               top: dict[str, tuple[int, int]]) -> list[_Meta]:
    raw = next((named[k] for k in _META_DATE if k in named), None)
    times = [(s, e, iso_date(attr)) for kind, s, e, attr in writer.marks if kind == "time"]
    if raw:
        iso = iso_date(raw)
        if not iso:
            return [_Meta("date", "Published", raw, _find_value(body, raw))]
        span = next(((s, e) for s, e, t in times if t == iso), None) or _find_date(body, iso)
        return [_Meta("date", "Published", iso, span)]
    if times and times[0][2]:
        s, e, _ = times[0]
        return [_Meta("date", "Published", body[s:e], (s, e))]
    if "date" in top:
        s, e = top["date"]
        return [_Meta("date", "Published", body[s:e], (s, e))]
    return []


def _plausible_author(value: str) -> bool:
    """A name, not a URL, a handle or a template's placeholder."""
    value = value.strip()
    return (1 < len(value) <= 100 and "://" not in value and not value.startswith("@")
            and value.lower() not in _PLACEHOLDER_AUTHORS)


_TITLE_SEPARATORS = (" — ", " – ", " - ", " | ", " · ", " :: ", ": ", " » ", " « ")


def _title_in_headings(body: str, title: str, headings: list[Section]) -> tuple[int, int] | None:
    """The heading a <title> names: equal to it, or "Heading — Site" / "Site | Heading"."""
    ranked = sorted(headings, key=lambda s: s.level)
    texts = [(s, " ".join(body[s.start:s.end].split())) for s in ranked]
    for s, text in texts:
        if text == title:
            return s.start, s.end
    for s, text in texts:
        if text and any(title.startswith(text + sep) or title.endswith(sep + text)
                        for sep in _TITLE_SEPARATORS):
            return s.start, s.end
    return None


# ----------------------------------------------------------------------------- PDF
def read_pdf(path: Path) -> Extracted:
    """PDF: the text layer page by page (PDFium); scanned PDFs (no text layer) are refused, not OCRed.

    Title, Author and CreationDate from the document information go in front matter when
    the text layer does not show them.
    """
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
        info = document.get_metadata_dict()
    finally:
        document.close()
    text = "\n\n".join(parts)
    if not text.strip():
        raise ReadError("PDF has no text layer (a scan?); OCR is not supported, so nothing to index")
    metas = _file_meta(text, [], _clean(info.get("Title")), _clean(info.get("Author")),
                       _pdf_date(info.get("CreationDate") or ""))
    return _assemble(text, [], metas, tuple(starts))


def _pdf_date(value: str) -> str | None:
    """A PDF date ("D:20230428093000+01'00'") as ISO yyyy-mm-dd."""
    match = re.match(r"\s*(?:D:)?(\d{4})(\d{2})(\d{2})", value)
    return iso_date("-".join(match.groups())) if match else None


def _clean(value: str | None) -> str:
    return " ".join((value or "").replace("\x00", "").split())


def _file_meta(text: str, headings: list[Section], title: str, author: str, iso: str | None) -> list[_Meta]:
    """Metadata of a PDF or DOCX: pointed at where the text shows it, else front matter."""
    metas = []
    if title and not re.search(r"\.(?:docx?|pdf|tex|dvi|rtf|odt|indd|qxd)$|^untitled$", title, re.IGNORECASE):
        span = next(((s.start, s.end) for s in headings
                     if " ".join(text[s.start:s.end].split()) == title), None)
        metas.append(_Meta("title", "Title", title, span or _find_line(text, title)))
    if author and _plausible_author(author):
        metas.append(_Meta("author", "Author", author, _find_value(text, author)))
    if iso:
        metas.append(_Meta("date", "Date", iso, _find_date(text, iso)))
    return metas


# ----------------------------------------------------------------------------- DOCX
def read_docx(path: Path) -> Extracted:
    """Word .docx: paragraphs and tables in document order, one block each.

    Paragraphs styled "Title" are level-1 headings, "Heading N" level N. Each table row
    is one line and a "row" section; it carries the header row's labels when the first
    row is a header (marked "repeat as header row", or every cell in it bold).
    Core properties title/author/created are metadata (front matter when not in the text).
    """
    import docx
    from docx.table import Table

    document = docx.Document(str(path))
    blocks: list[str] = []
    offset = 0
    sections: list[Section] = []
    titled: Section | None = None

    def add(text: str, kind: str | None = None, level: int = 0, style: str = "") -> None:
        nonlocal offset, titled
        if not text:
            return
        if blocks:
            offset += 2
        blocks.append(text)
        if kind:
            sections.append(Section(offset, offset + len(text), kind, level))
            if kind == "heading" and titled is None and style == "Title":
                titled = sections[-1]
        offset += len(text)

    for item in document.iter_inner_content():
        if isinstance(item, Table):
            for line in _docx_table_lines(item):
                add(line, "row")
            continue
        text = item.text.strip()
        style = (item.style.name if item.style is not None else "") or ""
        level = _docx_heading_level(style)
        add(text, "heading" if level else None, level, style)
    text = "\n\n".join(blocks)
    props = document.core_properties
    created = props.created.isoformat()[:19] if props.created else ""
    iso = iso_date(created) if created and created != _PYTHON_DOCX_TEMPLATE_CREATED else None
    title = _clean(props.title)
    headings = [s for s in sections if s.kind == "heading"]
    metas = _file_meta(text, headings, title, _clean(props.author), iso)
    if not title:
        span = (titled.start, titled.end) if titled else _first_line_title_span(text)
        if span:
            metas.insert(0, _Meta("title", "Title", text[span[0]:span[1]], span))
    return _assemble(text, sections, metas)


def _docx_heading_level(style: str) -> int:
    if style == "Title":
        return 1
    match = re.fullmatch(r"Heading ([1-6])", style)
    return int(match.group(1)) if match else 0


def _docx_table_lines(table) -> list[str]:
    """One line per row of a Word table; the header row's labels on each row when it has one."""
    from docx.oxml.ns import qn

    rows = []
    for row in table.rows:
        cells, previous = [], None
        for cell in row.cells:  # merged cells repeat: keep each once
            if previous is not None and cell._tc is previous:
                cells.append(None)
                continue
            previous = cell._tc
            cells.append(" ".join(cell.text.split()))
        rows.append((row, cells))
    if not rows:
        return []
    first_row, first = rows[0]
    tr_pr = first_row._tr.trPr
    marked = tr_pr is not None and tr_pr.find(qn("w:tblHeader")) is not None
    bold = all(
        all(run.bold or (run.style is not None and run.style.font.bold) for p in cell.paragraphs
            for run in p.runs if run.text.strip())
        for cell in first_row.cells if cell.text.strip()
    ) and any(cell.text.strip() for cell in first_row.cells)
    has_header = len(rows) > 1 and (marked or bold)
    headers = [c or "" for c in first] if has_header else []
    lines = []
    for _, cells in rows[1:] if has_header else rows:
        parts = []
        for col, value in enumerate(cells):
            if not value:
                continue
            label = headers[col] if col < len(headers) else ""
            parts.append(f"{label}: {value}" if label and label != value else value)
        if parts:
            lines.append(" | ".join(parts))
    return lines


_READERS = {
    ".txt": read_text,
    ".md": read_text,
    ".markdown": read_text,
    ".html": read_html,
    ".htm": read_html,
    ".pdf": read_pdf,
    ".docx": read_docx,
}
