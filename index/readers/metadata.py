"""Where a document's title, author and date are: the rules for date lines, bylines,
signature lines and title lines, and for finding a metadata value in the text.

Each rule returns a span into the line or text it is given (docs/readers.md has the rules).
"""

from __future__ import annotations

import re

from index.readers.base import CODE_FENCE, MetaValue, Section

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


def find_value(text: str, value: str, head: int = _SEEN_HEAD,
               tail: int = _SEEN_TAIL) -> tuple[int, int] | None:
    """Where ``value`` stands as whole words near the start or the end of ``text`` (spacing may differ)."""
    words = value.split()
    if not words:
        return None
    pattern = re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, words)) + r"(?!\w)")
    match = pattern.search(text, 0, head) or pattern.search(text, max(0, len(text) - tail))
    return (match.start(), match.end()) if match else None


def find_line(text: str, value: str, head: int = _SEEN_HEAD) -> tuple[int, int] | None:
    """Where ``value`` makes up whole lines near the start of ``text`` (a title as printed)."""
    words = value.split()
    if not words:
        return None
    pattern = re.compile(r"^[ \t]*(" + r"\s+".join(map(re.escape, words)) + r")[ \t]*$", re.MULTILINE)
    match = pattern.search(text, 0, head)
    return match.span(1) if match else None


def find_date(text: str, iso: str, head: int = _SEEN_HEAD) -> tuple[int, int] | None:
    """Where a date written any way that ``iso_date`` reads as ``iso`` stands near the start of ``text``."""
    for match in _DATE.finditer(text, 0, min(head, len(text))):
        if iso_date(match.group()) == iso:
            return match.start(), match.end()
    return None


def top_metadata(text: str, lines: int) -> dict[str, tuple[int, int]]:
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
        for kind, span in line_metadata(text[pos:end]):
            found.setdefault(kind, (pos + span[0], pos + span[1]))
        pos = end
    return found


def line_metadata(line: str) -> list[tuple[str, tuple[int, int]]]:
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


def plausible_author(value: str) -> bool:
    """A name, not a URL, a handle or a template's placeholder."""
    value = value.strip()
    return (1 < len(value) <= 100 and "://" not in value and not value.startswith("@")
            and value.lower() not in _PLACEHOLDER_AUTHORS)


def clean_property(value: str | None) -> str:
    """A document property's value with NUL characters dropped and whitespace collapsed."""
    return " ".join((value or "").replace("\x00", "").split())


def file_metadata(text: str, headings: list[Section], title: str, author: str,
                  iso: str | None) -> list[MetaValue]:
    """Metadata of a PDF or DOCX: pointed at where the text shows it, else front matter."""
    metas = []
    if title and not re.search(r"\.(?:docx?|pdf|tex|dvi|rtf|odt|indd|qxd)$|^untitled$", title, re.IGNORECASE):
        span = next(((s.start, s.end) for s in headings
                     if " ".join(text[s.start:s.end].split()) == title), None)
        metas.append(MetaValue("title", "Title", title, span or find_line(text, title)))
    if author and plausible_author(author):
        metas.append(MetaValue("author", "Author", author, find_value(text, author)))
    if iso:
        metas.append(MetaValue("date", "Date", iso, find_date(text, iso)))
    return metas


def first_line_title_span(text: str) -> tuple[int, int] | None:
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
            if 0 < len(title) <= 150 and any(c.isalnum() for c in title) and not CODE_FENCE.match(line):
                return pos + lead, pos + lead + len(title)
            return None
        if end >= len(text):
            return None
        pos = end + 1
    return None
