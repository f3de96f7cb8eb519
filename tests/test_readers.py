"""Readers: text from every format, page numbers, and clear errors for bad files."""

from __future__ import annotations

import pytest

from index.readers import ReadError, read
from tests.conftest import SPAIN_PAGES, make_pdf


def test_markdown_and_text(corpus):
    md = read(corpus / "belgium.md")
    assert md.title == "Belgium"
    assert "Its capital is Brussels" in md.text
    assert md.page_at(0) is None


def test_html_gives_text_not_markup(corpus):
    html = read(corpus / "germany.html")
    assert html.title == "Germany"
    assert "Berlin has been the German capital" in html.text
    assert "France & Switzerland" in html.text  # entities decoded
    for markup in ("<p>", "color: red", "not text", "<script"):
        assert markup not in html.text
    lines = html.text.split("\n")
    assert "Population: about 84 million" in lines and "Currency: the euro" in lines


def test_pdf_pages(corpus):
    pdf = read(corpus / "spain.pdf")
    first = pdf.text.index("Pyrenees")
    second = pdf.text.index("Tomatina")
    assert pdf.page_at(first) == 1
    assert pdf.page_at(second) == 2
    assert len(pdf.page_starts) == len(SPAIN_PAGES)


def test_docx(corpus):
    doc = read(corpus / "switzerland.docx")
    assert doc.title == "Switzerland"
    assert "Bern is the Swiss federal city." in doc.text


def test_non_utf8_text_is_decoded(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("Caf\xe9 cr\xe8me in Z\xfcrich.".encode("cp1252"))
    assert read(path).text == "Café crème in Zürich."


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.txt", b"", "empty"),
        ("binary.txt", b"\x00\x01\x02\x00garbage", "binary"),
        ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf", "cannot parse"),
        ("broken.docx", b"PK\x03\x04 not a zip", "cannot parse"),
        ("image.png", b"\x89PNG....", "unsupported file type"),
        ("blank.html", b"<html><body>   </body></html>", "no text"),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ReadError, match=reason):
        read(path)


def test_size_limit(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("word " * 1000)
    with pytest.raises(ReadError, match="over the .* limit"):
        read(path, max_bytes=1000)


def test_scanned_pdf_is_reported(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(10, 10, 50, 50)  # a page with a drawing and no text layer
    pdf.output(str(tmp_path / "scan.pdf"))
    with pytest.raises(ReadError, match="no text layer"):
        read(tmp_path / "scan.pdf")


def test_pdf_page_offsets_point_into_text(tmp_path):
    make_pdf(tmp_path / "three.pdf", ["Alpha page.", "Beta page.", "Gamma page."])
    pdf = read(tmp_path / "three.pdf")
    for page, word in enumerate(["Alpha", "Beta", "Gamma"], 1):
        assert pdf.text[pdf.page_starts[page - 1]:].startswith(word)


@pytest.mark.parametrize("data", [
    "line one\r\nline two\r\n\r\nthird paragraph\rold mac line\r\n".encode() * 5,
    "\ufeffcafé with a BOM, then naïve text\r\n".encode() * 9,
    "Les garçons — “quotes” in Windows-1252\r\n".encode("cp1252") * 7,
    b"latin-1 only: \x81\x8d\xe9\xe8\r\n" * 6,
])
def test_streamed_text_equals_the_whole_read(tmp_path, data):
    from index.readers import decode_text, open_text

    path = tmp_path / "t.txt"
    path.write_bytes(data)
    for block in (1, 2, 7, 1 << 18):  # \r\n split across blocks, multi-byte characters split
        stream = open_text(path, block_chars=block)
        assert "".join(stream.blocks) == decode_text(data)
    assert read(path).text == decode_text(data)
