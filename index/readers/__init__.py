"""File to text: one reader per format, each returning the text and its structure.

``read`` picks the reader by the file's suffix. Plain text and Markdown can also be streamed
in blocks (``open_text``). The rules: docs/readers.md.
"""

from __future__ import annotations

from pathlib import Path

from index.errors import ReadError
from index.readers.base import Extracted, Section, decode_text
from index.readers.docx import read_docx
from index.readers.html import read_html
from index.readers.pdf import read_pdf
from index.readers.text import TextStream, open_text, read_text

__all__ = ["SUPPORTED_SUFFIXES", "STREAMED_SUFFIXES", "Extracted", "Section", "TextStream", "decode_text",
           "open_text", "read", "read_docx", "read_html", "read_pdf", "read_text"]

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")
STREAMED_SUFFIXES = (".txt", ".md", ".markdown")  # read in blocks: no size limit applies

_READERS = {
    ".txt": read_text,
    ".md": read_text,
    ".markdown": read_text,
    ".html": read_html,
    ".htm": read_html,
    ".pdf": read_pdf,
    ".docx": read_docx,
}


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
