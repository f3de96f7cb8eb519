"""Word .docx: paragraphs and tables in document order, headings from the paragraph styles,
and the core properties' title, author and date as metadata.
"""

from __future__ import annotations

import re
from pathlib import Path

from index.readers.base import Extracted, MetaValue, Section, assemble
from index.readers.metadata import clean_property, file_metadata, first_line_title_span, iso_date

# python-docx's template carries this creation time; a document made from it was not written then.
_PYTHON_DOCX_TEMPLATE_CREATED = "2013-12-23T23:15:00"


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
    title = clean_property(props.title)
    headings = [s for s in sections if s.kind == "heading"]
    metas = file_metadata(text, headings, title, clean_property(props.author), iso)
    if not title:
        span = (titled.start, titled.end) if titled else first_line_title_span(text)
        if span:
            metas.insert(0, MetaValue("title", "Title", text[span[0]:span[1]], span))
    return assemble(text, sections, metas)


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
