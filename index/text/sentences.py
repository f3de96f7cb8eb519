"""Sentence boundaries with character offsets: the unit of chunking, evidence, quotes and highlights.

A line break ends a sentence (a heading, a list item, a table row, a line of code) unless it
only wraps a paragraph. Inside a line, sentences are cut by sentencex (Wikimedia's compiled,
multilingual segmenter); after a short capitalised abbreviation ("Ms.", "Dr.") pysbd's English
rules decide whether the next words belong to the same sentence, so names are never cut.
"""

from __future__ import annotations

import re
import threading

# A line this long that does not end a sentence is taken as wrapped (PDF text layers, plain text).
WRAPPED_LINE_CHARS = 50
_BULLETS = "-*•·●▪◦–—>|#$"
_NUMBERED = re.compile(r"\d+(\.\d+)*[.)]\s")
# A sentence may end here: terminal punctuation (and closing quotes/brackets) then a space.
_MAY_END = re.compile(r"""[.!?…。！？]+["'”’)\]]*\s""")
# The last word of a sentence looks like a title or abbreviation that precedes a name.
_ABBREVIATION_END = re.compile(r"(?:^|[\s(])[A-Z][a-z]{0,3}\.$")


_LOCAL = threading.local()


def _pysbd():
    """This thread's pysbd segmenter: it keeps the text it works on in itself, so two threads
    sharing one would get each other's sentences."""
    segmenter = getattr(_LOCAL, "pysbd", None)
    if segmenter is None:
        import pysbd

        segmenter = _LOCAL.pysbd = pysbd.Segmenter(language="en", clean=False)
    return segmenter


def _segment(text: str) -> list[str]:
    from sentencex import segment

    return list(segment("en", text))


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans of ``text[start:end]``, offsets into ``text``, trimmed of whitespace.

    Args:
        text: the text.
        start: where to begin.
        end: where to stop (default: the end of ``text``).

    Returns:
        (start, end) pairs in order; every character that is not whitespace lies in one.
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    for a, b in _lines(text, start, end):
        spans.extend(_line_sentences(text, a, b))
    return spans


def _lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Hard lines of ``text[start:end]``: soft wraps (next line starts in lower case) are joined."""
    out: list[tuple[int, int]] = []
    line_start = start
    pos = start
    while True:
        nl = text.find("\n", pos, end)
        if nl < 0:
            out.append((line_start, end))
            return out
        if not _soft_wrap(text, line_start, nl, end):
            out.append((line_start, nl))
            line_start = nl + 1
        pos = nl + 1


def _soft_wrap(text: str, line_start: int, nl: int, end: int) -> bool:
    """True when the line break at ``nl`` only wraps a sentence onto the next line.

    The line before must not end a sentence (. ! ? : ;), and either the next line goes on
    in lower case, or the line before is long (a page's text layer wraps every line,
    HTML headings and list items are short) and the next line is not a list item.
    """
    before = text[line_start:nl].rstrip()
    after = nl + 1
    if not before or after >= end or before[-1] in ".!?:;" or text[after].isspace():
        return False
    nxt = text[after]
    if nxt.islower():
        return True
    return len(before) >= WRAPPED_LINE_CHARS and nxt not in _BULLETS and not _NUMBERED.match(text, after)


def _line_sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentences of one line (a soft-wrapped paragraph counts as one line)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start >= end:
        return []
    line = text[start:end]
    if not _MAY_END.search(line):
        return [(start, end)]
    # sentencex treats a newline as a boundary; joined soft wraps must read as spaces
    flat = line.replace("\n", " ")
    pieces = _segment(flat)
    spans: list[tuple[int, int]] = []
    pos = 0
    for piece in pieces:
        stripped = piece.strip()
        if not stripped:
            continue
        found = flat.find(stripped, pos)
        if found < 0:  # the segmenter changed the text: keep the rest whole
            break
        spans.append((found, found + len(stripped)))
        pos = found + len(stripped)
    if not spans:
        return [(start, end)]
    spans[-1] = (spans[-1][0], len(line))  # whatever the segmenter dropped stays in the last one
    spans[0] = (0, spans[0][1])
    spans = _join_after_abbreviations(line, spans)
    return [(start + a, start + b) for a, b in spans]


def _join_after_abbreviations(line: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Rejoin sentences cut right after a title or abbreviation when pysbd reads them as one."""
    out = [spans[0]]
    for a, b in spans[1:]:
        prev_a, prev_b = out[-1]
        if _ABBREVIATION_END.search(line[prev_a:prev_b]):
            joined = line[prev_a:b].replace("\n", " ")
            if len([p for p in _pysbd().segment(joined) if p.strip()]) == 1:
                out[-1] = (prev_a, b)
                continue
        out.append((a, b))
    return out
