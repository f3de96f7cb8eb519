"""HTML: the visible text (blocks apart, <pre> verbatim, table rows with their headers), its
headings, terms, code and rows, and the title, author and date from <title>, <meta>, <time> or
a byline. Parsed with lxml (libxml2), which also repairs tag soup.
"""

from __future__ import annotations

import re
from pathlib import Path

from index.readers.base import Extracted, MetaValue, Section, assemble, decode_text
from index.readers.metadata import (HTML_TOP_LINES, byline_span, find_date, find_value, iso_date,
                                    plausible_author, top_metadata)

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
    root = _parse_html(decode_text(path.read_bytes()))
    if root is None:
        return Extracted(text="")
    writer = _HtmlWriter()
    _write_page(root, writer)
    body = "".join(writer.parts)
    return assemble(body, writer.sections, _html_meta(root, body, writer))


def _write_page(root, writer: _HtmlWriter) -> None:
    """Walk the page in document order, writing its visible text and sections into ``writer``."""
    from lxml import etree

    walker = etree.iterwalk(root, events=("start", "end"))
    ends: list[str | None] = []  # for each open element, what its end does (see ``_end``)
    for event, el in walker:
        tag = el.tag if isinstance(el.tag, str) else ""
        if event == "end":
            _end(writer, ends.pop(), el, tag)
            writer.text(el.tail)
            continue
        whole = _write_whole(writer, el, tag)
        if whole:
            walker.skip_subtree()
            ends.append(whole)
            continue
        ends.append(_start(writer, el, tag))
        writer.text(el.text)


def _write_whole(writer: _HtmlWriter, el, tag: str) -> str | None:
    """Handle an element whose children are not walked: one not shown ("skip"), or a <pre> or
    a data table, written whole ("block"). Returns what its end does; None for any other element."""
    if tag in _SKIP_TAGS or _hidden(el) or (tag == "a" and _permalink(el)) or not tag:
        return "skip"
    if tag == "pre":
        writer.unit(_inline_text(el, verbatim=True).strip("\n").rstrip(), "code")
        return "block"
    if tag == "table" and _is_data_table(el):
        caption, lines = _table_lines(el)
        writer.block()
        writer.text(caption)
        for line in lines:
            writer.unit(line, "row")
        return "block"
    return None


def _start(writer: _HtmlWriter, el, tag: str) -> str | None:
    """Start an element whose children are walked; returns what its end does."""
    if tag == "br":
        writer.line_break()
        return None
    if tag in _HEADINGS or tag == "dt":
        writer.block()
        writer.begin("heading" if tag != "dt" else "term", _HEADINGS.get(tag, 0))
        return "capture"
    if tag in _BLOCK_TAGS:
        writer.block()
        return "block"
    if tag == "time" and el.get("datetime"):
        writer.begin("time")
        return "time"
    if el.get("rel") == "author" or el.get("itemprop") == "author":
        writer.begin("byline")
        return "capture"
    return None


def _end(writer: _HtmlWriter, action: str | None, el, tag: str) -> None:
    """End an element: "block" ends a block, "capture" a heading, term or byline, "time" a <time>."""
    if action == "block":
        writer.block()
    elif action == "capture":
        writer.end()
        if tag in _HEADINGS or tag == "dt":
            writer.block()
    elif action == "time":
        writer.end(el.get("datetime") or "")


def _html_meta(root, body: str, writer: _HtmlWriter) -> list[MetaValue]:
    """Title, author and date of a page: from <title>/<meta>/<time>, else a visible byline."""
    metas: list[MetaValue] = []
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
            metas.append(MetaValue("title", "Title", body[span[0]:span[1]], span))
        else:
            metas.append(MetaValue("title", "Title", title))
    else:
        first_h1 = next((s for s in headings if s.level == 1), None)
        if first_h1:
            span = (first_h1.start, first_h1.end)
            metas.append(MetaValue("title", "Title", body[span[0]:span[1]], span))
    top = top_metadata(body, HTML_TOP_LINES)
    author = next((re.sub(r"^by\s+", "", named[k], flags=re.IGNORECASE) for k in _META_AUTHOR
                   if k in named and plausible_author(named[k])), None)
    if author:
        metas.append(MetaValue("author", "Author", author, find_value(body, author)))
    else:
        marked = next(((s, e) for kind, s, e, _ in writer.marks if kind == "byline"), None)
        if marked:
            lead = byline_span(body[marked[0]:marked[1]])
            if lead:
                marked = (marked[0] + lead[0], marked[0] + lead[1])
            if not plausible_author(body[marked[0]:marked[1]]):
                marked = None
        span = marked or top.get("author")
        if span:
            metas.append(MetaValue("author", "Author", body[span[0]:span[1]], span))
    metas.extend(_html_date(named, body, writer, top))
    return metas


def _html_date(named: dict[str, str], body: str, writer: _HtmlWriter,
               top: dict[str, tuple[int, int]]) -> list[MetaValue]:
    raw = next((named[k] for k in _META_DATE if k in named), None)
    times = [(s, e, iso_date(attr)) for kind, s, e, attr in writer.marks if kind == "time"]
    if raw:
        iso = iso_date(raw)
        if not iso:
            return [MetaValue("date", "Published", raw, find_value(body, raw))]
        span = next(((s, e) for s, e, t in times if t == iso), None) or find_date(body, iso)
        return [MetaValue("date", "Published", iso, span)]
    if times and times[0][2]:
        s, e, _ = times[0]
        return [MetaValue("date", "Published", body[s:e], (s, e))]
    if "date" in top:
        s, e = top["date"]
        return [MetaValue("date", "Published", body[s:e], (s, e))]
    return []


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
