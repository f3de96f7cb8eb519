"""A document as the viewer shows it: the passage's page of a PDF, boxed; other formats as text."""

from __future__ import annotations

import pytest

from index.errors import ReadError
from index.embedding.embedder import HashEmbedder
from index.index import Index
from index.ingest import ingest
from index.readers import read
from index.viewing import PageView, TextView, view_document


def _indexed(tmp_path, name: str, write):
    folder = tmp_path / "docs"
    folder.mkdir(exist_ok=True)
    write(folder / name)
    index = Index(tmp_path / "idx", HashEmbedder())
    ingest(index, [folder])
    return next(d for d in index.catalog.documents() if d.source == name), folder / name


def _pdf_with_a_scanned_page(path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "The Zanzibar beacon shines every single night over the harbour.")
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")  # a picture, no text: as a scanned page
    pdf.output(str(path))


def test_a_pdf_passage_is_boxed_on_its_page_and_a_page_without_text_says_so(tmp_path):
    doc, path = _indexed(tmp_path, "beacon.pdf", _pdf_with_a_scanned_page)
    text = read(path).text
    start = text.index("Zanzibar beacon")
    view = view_document(doc, start, start + len("Zanzibar beacon shines"), [(start, start + 15)])
    assert isinstance(view, PageView) and view.image.page == 1 and view.image.pages == 2
    assert view.passage_boxes and view.answer_boxes and not view.notes
    (left, top, right, bottom), = view.answer_boxes
    assert 0 <= left < right <= view.image.width and 0 <= top < bottom <= view.image.height
    scan = view_document(doc, page=2)
    assert not scan.passage_boxes and any("no text layer" in n for n in scan.notes)
    with pytest.raises(ReadError, match="page 3 is out of range: the document has 2 pages"):
        view_document(doc, page=3)


def test_a_text_document_is_its_text_with_headings_and_marks(tmp_path):
    doc, path = _indexed(tmp_path, "notes.md", lambda p: p.write_text(
        "# Herons\n\nGrey herons nest in colonies.\n\n## Food\n\nThey eat <b>fish</b> and frogs.\n"))
    text = read(path).text
    start = text.index("They eat")
    view = view_document(doc, start, start + 20)
    assert isinstance(view, TextView) and view.text == text and view.passage == (start, start + 20)
    assert [text[s:e] for s, e, _ in view.headings if text[s:e] in ("Herons", "Food")] == ["Herons", "Food"]
    path.write_text("# Herons\n\nChanged since.\n")
    assert any("changed since it was indexed" in n for n in view_document(doc).notes)
    path.unlink()
    with pytest.raises(ReadError, match="no longer at"):
        view_document(doc)
