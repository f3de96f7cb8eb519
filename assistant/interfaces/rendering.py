"""How answers look: as terminal text (the CLI), and as the chat's HTML: answers with linked
markers, cited passages, and the document viewer.

Everything that comes from a document or a file name is HTML-escaped before it reaches the page,
so a document holding ``<script>`` or ``<img onerror=...>`` runs nothing (tests/system/test_ui.py).
"""

from __future__ import annotations

import base64
import html
import re
import textwrap
from pathlib import Path

from assistant.types import Answer, Citation

def _marked(text: str, spans: list[list[int]], answers: list[list[int]] = ()) -> str:
    """``text`` escaped, ``spans`` wrapped in <mark>, the ``answers`` inside them in <mark class="answer">."""
    cuts = sorted({0, len(text)} | {max(0, min(len(text), x)) for span in list(spans) + list(answers)
                                     for x in span})
    runs: list[list] = []  # [style, text] with neighbours of one style merged
    for a, b in zip(cuts, cuts[1:]):
        style = ("answer" if any(s <= a and b <= e for s, e in answers)
                 else "mark" if any(s <= a and b <= e for s, e in spans) else "")
        if runs and runs[-1][0] == style:
            runs[-1][1] += text[a:b]
        else:
            runs.append([style, text[a:b]])
    opening = {"answer": '<mark class="answer">', "mark": "<mark>", "": ""}
    return "".join(f"{opening[st]}{html.escape(t)}{'</mark>' if st else ''}" for st, t in runs)


def _linked_markers(answer_text: str) -> str:
    escaped = html.escape(answer_text)
    return re.sub(r"\[(\d+)\]", r'<a class="marker" href="#src-\1">[\1]</a>', escaped)


def render_sources(answer: Answer, notice: str | None = None) -> str:
    """The sources panel: the answer with linked markers, cited passages, then the rest apart."""
    parts = []
    if notice:
        parts.append(f'<p class="notice">{html.escape(notice)}</p>')
    parts.append(f'<div class="answer-text">{_linked_markers(answer.answer)}</div>')
    if answer.rewritten_question:
        parts.append(f"<p><em>Understood as: {html.escape(answer.rewritten_question)}</em></p>")
    cited = [c for c in answer.citations if c.cited]
    others = [c for c in answer.citations if not c.cited]
    if cited:
        parts.append("<h4>Sources</h4>")
        parts += [_passage(c, True) for c in cited]
    if others:
        parts.append('<h4 class="retrieved-title">Also retrieved (not cited)</h4>')
        parts += [_passage(c, False) for c in others]
    return "\n".join(parts)


def _passage(c, cited: bool) -> str:
    where = f"page {c.page}" if c.page else f"characters {c.start}–{c.end}"
    name = html.escape((f"{c.collection}: " if c.collection and c.collection != "default" else "")
                       + Path(c.source).name)
    full = html.escape(c.source)
    return (
        f'<div class="passage{" cited" if cited else ""}" id="src-{c.n}">'
        f'<div class="head" title="{full}">[{c.n}] {name} · {where} · score {c.score:.4f}</div>'
        f'<div class="body">{_marked(c.text, c.highlights if cited else [], c.answer_spans if cited else [])}</div></div>'
    )


def chat_text(answer: Answer, notice: str | None = None) -> str:
    """What the chat bubble keeps: the checked answer, the rewrite, and any notice (plain text)."""
    text = answer.answer
    if answer.rewritten_question:
        text += f"\n\n(understood as: {answer.rewritten_question})"
    if notice:
        text += f"\n\n{notice}"
    return text


def source_label(c: Citation) -> str:
    """A citation as the "open a source" picker lists it."""
    where = f" · page {c.page}" if c.page else ""
    collection = f"{c.collection}: " if c.collection and c.collection != "default" else ""
    return f"[{c.n}] {collection}{Path(c.source).name}{where}"


def citation_target(c: Citation) -> dict:
    """What the viewer needs to open a citation: collection, document, passage and answer offsets."""
    return {"collection": c.collection or "default", "document": c.doc_id, "start": c.start, "end": c.end,
            "answers": [[c.start + s, c.start + e] for s, e in c.answer_spans], "page": c.page}


def render_view(view, zoom: int = 100) -> str:
    """A document view (``Assistant.view``) as HTML: a page image with boxes, or the marked text.
    At ``zoom`` 100 a page is as wide as the viewer; more scrolls."""
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in view.notes)
    if hasattr(view, "image"):
        image = view.image
        head = (f"{html.escape(view.source)} · page {image.page} of {image.pages}")
        boxes = "".join(_box(b, image, "hl-passage") for b in view.passage_boxes)
        boxes += "".join(_box(b, image, "hl-answer") for b in view.answer_boxes)
        data = base64.b64encode(image.png).decode()
        return (f'<div class="viewer"><div class="head"><b>{head}</b></div>{notes}<div class="scroll">'
                f'<div class="page" style="width:{zoom}%"><img alt="page {image.page}" '
                f'style="width:100%" src="data:image/png;base64,{data}">{boxes}</div></div></div>')
    layers = [("heading", [(s, e) for s, e, _ in view.headings])]
    layers.append(("passage", [view.passage] if view.passage else []))
    layers.append(("answer", list(view.answers)))
    return (f'<div class="viewer"><div class="head"><b>{html.escape(view.source)}</b></div>{notes}'
            f'<div class="scroll"><div class="doc-text">{_layered(view.text, layers)}</div></div></div>')


def _box(box, image, kind: str) -> str:
    left, top, right, bottom = (100 * v / d for v, d in zip(box, (image.width, image.height) * 2))
    return (f'<div class="box {kind}" style="left:{left:.3f}%;top:{top:.3f}%;'
            f'width:{right - left:.3f}%;height:{bottom - top:.3f}%"></div>')


def _layered(text: str, layers: list[tuple[str, list]]) -> str:
    """``text`` escaped, each run inside the spans of a layer wrapped (headings in a bold span,
    the passage and the answer in marks); the answer's mark wins over the passage's."""
    cuts = sorted({0, len(text)} | {max(0, min(len(text), x)) for _, spans in layers for sp in spans for x in sp})
    out = []
    for a, b in zip(cuts, cuts[1:]):
        inside = [name for name, spans in layers if any(s <= a and b <= e for s, e in spans)]
        piece = html.escape(text[a:b])
        if "heading" in inside:
            piece = f'<span class="heading">{piece}</span>'
        mark = "hl-answer" if "answer" in inside else "hl-passage" if "passage" in inside else None
        out.append(f'<mark class="{mark}">{piece}</mark>' if mark else piece)
    return "".join(out)


def view_json(view) -> dict:
    """A document view as JSON (the ``/document`` route)."""
    if hasattr(view, "image"):
        image = view.image
        return {"kind": "page", "source": view.source, "title": view.title, "page": image.page,
                "pages": image.pages, "width": image.width, "height": image.height,
                "png": base64.b64encode(image.png).decode(), "has_text": image.has_text,
                "passage_boxes": [list(b) for b in view.passage_boxes],
                "answer_boxes": [list(b) for b in view.answer_boxes], "notes": list(view.notes)}
    return {"kind": "text", "source": view.source, "title": view.title, "text": view.text,
            "headings": [list(h) for h in view.headings], "passage": list(view.passage) if view.passage else None,
            "answers": [list(a) for a in view.answers], "notes": list(view.notes)}


def format_answer(answer: Answer) -> str:
    """The answer, then the numbered passages (cited first marked with *)."""
    lines = [answer.answer, ""]
    if answer.rewritten_question:
        lines[1:1] = [f"(understood as: {answer.rewritten_question})", ""]
    for c in answer.citations:
        where = f"p. {c.page}" if c.page else f"chars {c.start}-{c.end}"
        mark = "*" if c.cited else " "
        lines.append(f"{mark}[{c.n}] {c.source} ({where}, score {c.score:.4f})")
        body = " ".join(c.text.split())
        lines.extend(textwrap.wrap(body, 96, initial_indent="     ", subsequent_indent="     "))
    if answer.citations:
        lines.append("")
        lines.append("* cited by the answer")
    return "\n".join(lines)
