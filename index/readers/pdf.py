"""PDF: the text layer page by page (PDFium), with where each page starts; the document
information's title, author and date as metadata. Scanned PDFs (no text layer) are refused.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from index.errors import ReadError
from index.readers.base import Extracted, assemble
from index.readers.metadata import clean_property, file_metadata, iso_date

PDFIUM = threading.RLock()  # PDFium is not thread-safe: every call into it, here and in index.pages, holds this


def read_pdf(path: Path) -> Extracted:
    """PDF: the text layer page by page (PDFium); scanned PDFs (no text layer) are refused, not OCRed.

    Title, Author and CreationDate from the document information go in front matter when
    the text layer does not show them.
    """
    with PDFIUM:
        return _read_pdf(path)


def _read_pdf(path: Path) -> Extracted:
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
    metas = file_metadata(text, [], clean_property(info.get("Title")), clean_property(info.get("Author")),
                          _pdf_date(info.get("CreationDate") or ""))
    return assemble(text, [], metas, tuple(starts))


def _pdf_date(value: str) -> str | None:
    """A PDF date ("D:20230428093000+01'00'") as ISO yyyy-mm-dd."""
    match = re.match(r"\s*(?:D:)?(\d{4})(\d{2})(\d{2})", value)
    return iso_date("-".join(match.groups())) if match else None
