"""index/pages.py: a PDF page rendered for the viewer, with boxes around spans of its text."""

from __future__ import annotations

import io
import struct
import threading

import pytest

from index.errors import ReadError
from index.pages import clean_map, close_all, page_spans, render_page
from index.readers import read_pdf
from tests.support.corpus import make_pdf

PAGES = [
    "The first page is about herons and the ponds where they wait.",
    "Beavers build dams from branches and mud. They work mostly at night, and a family can "
    "fell a tree in one evening. The lodge has an underwater entrance.\n"
    "Their teeth never stop growing, so they must keep gnawing.\n"
    "A beaver can hold its breath for fifteen minutes under the ice.",
    "The third page closes the book.",
]


@pytest.fixture(autouse=True)
def _closed_cache():
    close_all()
    yield
    close_all()


@pytest.fixture
def three_pages(tmp_path):
    path = tmp_path / "animals.pdf"
    make_pdf(path, PAGES)
    return path


def _page_text(path, page):
    """The cleaned text of a page, as the index stores it (from ``Extracted``)."""
    extracted = read_pdf(path)
    starts = extracted.page_starts
    end = starts[page] - 2 if page < len(starts) else len(extracted.text)
    return extracted.text[starts[page - 1]:end]


def _span(text, phrase):
    start = text.index(phrase)
    return start, start + len(phrase)


def _png_size(png):
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def test_boxes_around_phrases_on_page_two(three_pages):
    text = _page_text(three_pages, 2)
    top = _span(text, "Beavers build dams")
    lower = _span(text, "hold its breath")
    image = render_page(three_pages, 2, [top, lower])

    assert (image.page, image.pages, image.scale, image.has_text) == (2, 3, 1.5, True)
    assert _png_size(image.png) == (image.width, image.height)
    assert image.width > 0 and image.height > 0
    assert len(image.boxes) == 2 and all(image.boxes)
    for boxes in image.boxes:
        for left, top_, right, bottom in boxes:
            assert 0 <= left < right <= image.width
            assert 0 <= top_ < bottom <= image.height
    (first,), (last,) = image.boxes  # each phrase sits on one line: one box
    assert first[3] <= last[1]  # the first line's box is wholly above the lower line's
    assert first[1] < image.height / 4  # page 2's first line is near the top of the page
    # a phrase of 18 characters in 12 pt Helvetica is about 100 pt wide: 150 px at scale 1.5
    assert 100 < first[2] - first[0] < 220
    assert 10 < first[3] - first[1] < 30


def test_boxes_frame_the_ink_of_the_phrase(three_pages):
    """The pixels inside the box are dark text; just left of it (the page margin) is white."""
    image_module = pytest.importorskip("PIL.Image")
    text = _page_text(three_pages, 2)
    image = render_page(three_pages, 2, [_span(text, "Beavers")])
    (box,) = image.boxes[0]
    picture = image_module.open(io.BytesIO(image.png)).convert("L")
    inside = picture.crop(tuple(round(v) for v in box))
    assert min(inside.tobytes()) < 100
    margin = picture.crop((0, round(box[1]), max(1, round(box[0]) - 2), round(box[3])))
    assert min(margin.tobytes()) > 240


def test_a_span_over_two_lines_gets_a_box_per_line(three_pages):
    text = _page_text(three_pages, 2)
    start = text.index("gnawing")
    end = text.index("breath") + len("breath")
    (boxes,) = render_page(three_pages, 2, [(start, end)]).boxes
    assert len(boxes) == 2
    assert boxes[0][3] <= boxes[1][1] + 1


def test_spans_are_clipped_and_empty_ones_get_no_boxes(three_pages):
    text = _page_text(three_pages, 2)
    image = render_page(three_pages, 2, [(-10, 7), (5, 5), (9, 3), (len(text) + 5, len(text) + 50),
                                         (len(text) - 6, len(text) + 100)])
    clipped, empty, reversed_, beyond, tail = image.boxes
    assert clipped == render_page(three_pages, 2, [(0, 7)]).boxes[0] and clipped
    assert empty == [] and reversed_ == [] and beyond == []
    assert tail  # "minutes under the ice." ends the page: its last characters are boxed


def test_no_spans_renders_the_page_only(three_pages):
    image = render_page(three_pages, 3, scale=1.0)
    assert image.boxes == [] and image.has_text
    assert _png_size(image.png) == (image.width, image.height)
    assert abs(image.width - 595.28) <= 1 and abs(image.height - 841.89) <= 1  # A4 in points


def test_boxes_follow_rotation_and_crop_box(three_pages, tmp_path):
    """A rotated, cropped page: the box still frames the phrase (checked against PDFium)."""
    import ctypes

    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    for rotation in (90, 180, 270):
        document = pdfium.PdfDocument(str(three_pages))
        page = document[1]
        page.set_cropbox(20, 300, 520, 830)  # the text starts at x = 28
        page.set_rotation(rotation)
        path = tmp_path / f"rotated-{rotation}.pdf"
        document.save(str(path))
        document.close()

        # PDFium orders the text of a rotated page by how it is shown: take the span anew
        image = render_page(path, 2, [_span(_page_text(path, 2), "Beavers build dams")])
        ((left, top, right, bottom),) = image.boxes[0]
        document = pdfium.PdfDocument(str(path))
        page = document[1]
        textpage = page.get_textpage()
        l, b, r, t = textpage.get_charbox(textpage.get_text_range().index("Beavers b"))
        x, y = ctypes.c_int(), ctypes.c_int()
        pdfium_c.FPDF_PageToDevice(page, 0, 0, image.width, image.height, 0, (l + r) / 2,
                                   (b + t) / 2, x, y)
        textpage.close()
        page.close()
        document.close()
        assert left - 1 <= x.value <= right + 1 and top - 1 <= y.value <= bottom + 1, rotation
        long_side, short_side = max(right - left, bottom - top), min(right - left, bottom - top)
        assert long_side > 3 * short_side  # a line of text, along the rotated page
        assert (right - left > bottom - top) == (rotation == 180)


def test_page_spans_within_a_page_and_across_a_break():
    # page 1 is text[0:10], page 2 text[12:30], page 3 text[32:40]
    starts, length = (0, 12, 32), 40
    assert page_spans(starts, length, 2, 8) == {1: (2, 8)}
    assert page_spans(starts, length, 14, 20) == {2: (2, 8)}
    assert page_spans(starts, length, 5, 20) == {1: (5, 10), 2: (0, 8)}
    assert page_spans(starts, length, 5, 35) == {1: (5, 10), 2: (0, 18), 3: (0, 3)}
    assert page_spans(starts, length, 10, 12) == {}  # only the "\n\n" between pages
    assert page_spans(starts, length, 9, 13) == {1: (9, 10), 2: (0, 1)}
    assert page_spans(starts, length, 38, 99) == {3: (6, 8)}
    assert page_spans(starts, length, 7, 7) == {}
    assert page_spans((), 40, 0, 10) == {}


def test_page_spans_skip_front_matter_and_match_the_text(tmp_path):
    path = tmp_path / "with-info.pdf"
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title("A Book of Beavers")  # not on the page: front matter comes first
    pdf.set_font("helvetica", size=12)
    for text in PAGES:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    extracted = read_pdf(path)
    assert extracted.page_starts[0] > 0
    start = extracted.text.index("herons")
    end = extracted.text.index("Beavers build") + len("Beavers build")
    spans = page_spans(extracted.page_starts, len(extracted.text), 0, end)
    assert list(spans) == [1, 2]
    assert _page_text(path, 1)[slice(*spans[1])] == PAGES[0]
    assert _page_text(path, 2)[slice(*spans[2])] == "Beavers build"
    spans = page_spans(extracted.page_starts, len(extracted.text), start, start + 6)
    assert spans == {1: (_span(PAGES[0], "herons"))}
    image = render_page(path, 1, [spans[1]])
    assert len(image.boxes[0]) == 1


@pytest.mark.parametrize("page", [0, 4, -1])
def test_a_page_out_of_range(three_pages, page):
    with pytest.raises(ReadError, match=rf"page {page} is out of range: the document has 3 pages"):
        render_page(three_pages, page)


def test_a_page_without_text(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")
    pdf.output(str(tmp_path / "drawing.pdf"))
    image = render_page(tmp_path / "drawing.pdf", 1, [(0, 10), (3, 4)])
    assert image.has_text is False
    assert image.boxes == [[], []]
    assert image.pages == 1 and _png_size(image.png) == (image.width, image.height)


def test_an_encrypted_pdf(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "A secret about beavers.")
    try:
        pdf.set_encryption(owner_password="owner", user_password="secret")
        pdf.output(str(tmp_path / "locked.pdf"))
    except ImportError as exc:  # some encryption methods need the cryptography package
        pytest.skip(f"fpdf2 cannot encrypt here: {exc}")
    with pytest.raises(ReadError, match="encrypted with a password"):
        render_page(tmp_path / "locked.pdf", 1)


def test_not_a_pdf_and_a_missing_file(tmp_path):
    (tmp_path / "notes.pdf").write_text("just some text, not a PDF", encoding="utf-8")
    with pytest.raises(ReadError, match="cannot parse notes.pdf as a PDF"):
        render_page(tmp_path / "notes.pdf", 1)
    (tmp_path / "empty.pdf").write_bytes(b"")
    with pytest.raises(ReadError, match="cannot parse"):
        render_page(tmp_path / "empty.pdf", 1)
    with pytest.raises(ReadError, match="no such file"):
        render_page(tmp_path / "gone.pdf", 1)
    with pytest.raises(ReadError, match="not a file"):
        render_page(tmp_path, 1)


def test_a_bad_scale(three_pages):
    for scale in (0, -1, 100):
        with pytest.raises(ValueError, match="scale"):
            render_page(three_pages, 1, scale=scale)


def test_documents_are_cached_and_a_changed_file_is_reopened(tmp_path, monkeypatch):
    import pypdfium2 as pdfium

    opened = []
    real = pdfium.PdfDocument

    def counting(*args, **kwargs):
        opened.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(pdfium, "PdfDocument", counting)
    path = tmp_path / "a.pdf"
    make_pdf(path, ["one", "two"])
    render_page(path, 1)
    render_page(path, 2)
    assert len(opened) == 1
    make_pdf(path, ["one", "two", "and a third page"])  # another size: a new key
    assert render_page(path, 3).pages == 3
    assert len(opened) == 2
    others = []
    for i in range(5):  # more documents than the cache holds: the oldest is closed
        other = tmp_path / f"other-{i}.pdf"
        make_pdf(other, [f"document {i}"])
        others.append(other)
        render_page(other, 1)
    assert len(opened) == 7
    render_page(path, 1)
    assert len(opened) == 8  # evicted, so opened again
    render_page(others[-1], 1)
    assert len(opened) == 8


def test_pages_render_from_several_threads(three_pages):
    text = _page_text(three_pages, 2)
    span = _span(text, "underwater entrance")
    expected = render_page(three_pages, 2, [span])
    results, errors = [], []

    def work():
        try:
            for _ in range(3):
                results.append(render_page(three_pages, 2, [span]))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 12 and all(r == expected for r in results)


@pytest.mark.parametrize("raw", [
    "", "  \r\n ", "abc", "  lead\r\nline\rnext\x00 nul\r\n\r\ntrail \r\n",
    "\x00\x00 x\r\x00\ny", "\r\r\n\n\x00\r", "tab\tand\u00a0nbsp \u2003", "\U0001F600 face\r\n",
])
def test_clean_map_replays_the_reader(raw):
    cleaned, source = clean_map(raw)
    assert cleaned == raw.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()
    assert len(source) == len(cleaned)
    assert source == sorted(set(source))
    for char, index in zip(cleaned, source):
        assert raw[index] == char or (char == "\n" and raw[index] == "\r")
