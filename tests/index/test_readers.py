"""Readers: text from every format, page numbers, and clear errors for bad files."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from index.errors import ReadError
from index.readers import read
from tests.support import SEEDS
from tests.support.corpus import LIGHTHOUSE, SPAIN_PAGES, make_pdf


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


# ----------------------------------------------------------------------------- structure and metadata
def _html(tmp_path, body: str, name: str = "page.html"):
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return read(path)


def _sections(extracted, kind: str) -> list[str]:
    return [extracted.text[s.start:s.end] for s in extracted.sections if s.kind == kind]


def _check_invariants(extracted) -> None:
    """Every section's span is its text; title/author/date are what their sections point at."""
    text = extracted.text
    starts = [s.start for s in extracted.sections]
    assert starts == sorted(starts)
    for s in extracted.sections:
        assert 0 <= s.start < s.end <= len(text), s
        piece = text[s.start:s.end]
        assert piece.strip(), s
        if s.kind != "code":
            assert piece == piece.strip(), s
        assert (s.level > 0) == (s.kind == "heading"), s
    for kind in ("title", "author", "date"):
        spans = [s for s in extracted.sections if s.kind == kind]
        value = getattr(extracted, kind)
        assert len(spans) <= 1
        if spans:
            assert value == " ".join(text[spans[0].start:spans[0].end].split())
        elif kind != "title":
            assert value is None


def test_html5_head_without_closing_tag(tmp_path):
    # valid HTML5: </head> and <body> are optional; the old reader found "no text" here
    page = _html(tmp_path, "<!doctype html><html><head><meta charset=utf-8><title>Ferries</title>"
                           "<p>The ferry to Tallinn leaves at nine.")
    assert page.text.endswith("The ferry to Tallinn leaves at nine.")
    assert page.title == "Ferries"


def test_table_cells_do_not_glue_together(tmp_path):
    page = _html(tmp_path, "<table><tr><td>alpha</td><td>beta</td></tr><tr><td>gamma</td><td>delta</td>"
                           "</tr></table>")
    assert page.text.split("\n\n") == ["alpha | beta", "gamma | delta"]
    assert _sections(page, "row") == ["alpha | beta", "gamma | delta"]


def test_pre_keeps_its_line_breaks_and_indentation(tmp_path):
    page = _html(tmp_path, "<p>Run this:</p><pre>\n$ cd /tmp\n    make   all\n\n$ ls</pre><p>Done.</p>")
    code = "$ cd /tmp\n    make   all\n\n$ ls"
    assert code in page.text
    assert _sections(page, "code") == [code]
    assert page.text.endswith("\n\nDone.")


def test_table_rows_carry_their_headers(tmp_path):
    page = _html(tmp_path, """
        <p>Translation table.</p>
        <table><caption>Obsolete commands</caption>
          <thead><tr><th>obsolete net-tools</th><th>new iproute2</th></tr></thead>
          <tbody><tr><td><code>ifconfig</code>(8)</td><td> ip addr </td></tr>
                 <tr><td>route(8)</td><td>ip route</td></tr></tbody>
        </table>
        <table><tr><th>Key</th><th>Action</th></tr><tr><td>q</td><td>quit</td></tr></table>""")
    lines = page.text.split("\n\n")
    assert lines[1] == "Obsolete commands"  # the caption on its own line, before the rows
    rows = _sections(page, "row")
    assert rows == ["obsolete net-tools: ifconfig(8) | new iproute2: ip addr",
                    "obsolete net-tools: route(8) | new iproute2: ip route",
                    "Key: q | Action: quit"]  # a first row of <th> is a header row too
    assert "obsolete net-tools | new iproute2" not in page.text  # the header row is not repeated alone


def test_table_spans_keep_columns_aligned(tmp_path):
    page = _html(tmp_path, """<table>
        <tr><th>Area</th><th>Count</th><th>Rule</th></tr>
        <tr><td rowspan="2">main</td><td>1</td><td>free</td></tr>
        <tr><td>2</td><td>also free</td></tr>
        <tr><td colspan="2">contrib</td><td>depends</td></tr></table>""")
    assert _sections(page, "row") == ["Area: main | Count: 1 | Rule: free",
                                      "Area: main | Count: 2 | Rule: also free",
                                      "Area: contrib | Rule: depends"]


def test_layout_tables_are_read_as_blocks(tmp_path):
    page = _html(tmp_path, "<table><tr><td><h2>Menu</h2><p>Home</p></td><td><h1>Story</h1>"
                           "<p>First paragraph.</p><p>Second paragraph.</p></td></tr></table>")
    assert page.text.split("\n\n") == ["Menu", "Home", "Story", "First paragraph.", "Second paragraph."]
    assert _sections(page, "row") == []


def test_definition_terms_and_heading_levels(tmp_path):
    page = _html(tmp_path, """<h1>os <a class="headerlink" href="#os">¶</a></h1>
        <h3>Process <em>Parameters</em></h3>
        <dl><dt><code>os.</code><code>cpu_count</code>()<a class="headerlink" href="#os.cpu_count">¶</a></dt>
        <dd><p>Return the number of CPUs in the system.</p></dd></dl>""")
    assert [(page.text[s.start:s.end], s.level) for s in page.sections if s.kind == "heading"] == [
        ("os", 1), ("Process Parameters", 3)]
    assert _sections(page, "term") == ["os.cpu_count()"]
    assert "os.cpu_count()\n\nReturn the number of CPUs in the system." in page.text
    assert "¶" not in page.text


def test_html_visible_text_only(tmp_path):
    page = _html(tmp_path, """<html><head><title>T</title><style>.x{}</style></head><body>
        <p>Shown <span hidden>secret one</span>text.</p><div style="display: none">secret two</div>
        <template><p>secret three</p></template><script>var s = "secret four";</script>
        <noscript>secret five</noscript><p>caf&eacute; &amp; cr&egrave;me&nbsp;br&ucirc;l&eacute;e</p>
        <p>line<br>break</p></body></html>""")
    assert "secret" not in page.text
    assert "Shown text." in page.text
    assert "café & crème brûlée" in page.text
    assert "line\nbreak" in page.text


def test_html_metadata_in_front_matter_when_not_visible(tmp_path):
    page = _html(tmp_path, """<html><head><title>Harbour news</title>
        <meta name="author" content="Jane Doe">
        <meta property="article:published_time" content="2023-04-28T09:00:00Z"></head>
        <body><h2>Ships</h2><p>Ships arrived.</p></body></html>""")
    assert page.text.startswith("Title: Harbour news\nAuthor: Jane Doe\nPublished: 2023-04-28\n\nShips\n\n")
    assert (page.title, page.author, page.date) == ("Harbour news", "Jane Doe", "2023-04-28")
    assert _sections(page, "heading") == ["Ships"]  # body offsets shifted past the front matter
    _check_invariants(page)


def test_html_visible_metadata_is_pointed_at_not_duplicated(tmp_path):
    page = _html(tmp_path, """<html><head><title>Harbour news | The Daily Tide</title>
        <meta name="author" content="Jane Doe"></head><body>
        <h1>Harbour news</h1><p class="byline">By Jane Doe, staff writer</p>
        <p><time datetime="2023-04-28">April 28, 2023</time></p><p>Ships arrived.</p></body></html>""")
    assert page.text.startswith("Harbour news\n\nBy Jane Doe")
    assert page.text.count("Jane Doe") == 1 and "Author:" not in page.text
    assert (page.title, page.author, page.date) == ("Harbour news", "Jane Doe", "April 28, 2023")
    _check_invariants(page)


def test_html_visible_byline_without_metadata(tmp_path):
    page = _html(tmp_path, "<h1>Harbour news</h1><p>By Jane Doe and John Roe | 3 May 2024</p><p>Ships.</p>")
    assert (page.author, page.date) == ("Jane Doe and John Roe", "3 May 2024")
    _check_invariants(page)


def test_markdown_structure(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text("Install guide\n=============\n\nBy Ann Lee\n\n## Steps ##\n\nRun it:\n\n"
                    "```bash\n# not a heading\n  make install\n```\n\nUsage\n-----\n\nSee #tags and\nmore.\n"
                    "---\n\n###### Six\n", encoding="utf-8")
    doc = read(path)
    assert doc.text == path.read_text(encoding="utf-8")  # nothing is added to a text file
    assert [(doc.text[s.start:s.end], s.level) for s in doc.sections if s.kind == "heading"] == [
        ("Install guide", 1), ("Steps", 2), ("Usage", 2), ("Six", 6)]
    assert _sections(doc, "code") == ["# not a heading\n  make install"]
    assert doc.title == "Install guide" and doc.author == "Ann Lee"
    _check_invariants(doc)


def test_unclosed_fence_is_no_code_block(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("# Notes\n\n```\nstray fence\n\n## Later heading\n", encoding="utf-8")
    doc = read(path)
    assert _sections(doc, "code") == []
    assert _sections(doc, "heading") == ["Notes", "Later heading"]


def test_seed_article_byline_is_its_last_line():
    doc = read(SEEDS / "mss-joins-wechat.txt")
    assert doc.author == "David Baker"
    (author,) = [s for s in doc.sections if s.kind == "author"]
    assert author.end == len(doc.text.rstrip())  # the signature that ends the article
    assert doc.title.startswith("China’s MI5 Urges")
    _check_invariants(doc)


@pytest.mark.parametrize("head, author, date", [
    ("Title\n\nBy Jane Doe\nPublished: 28 April 2023\n\n", "Jane Doe", "28 April 2023"),
    ("Title\nAuthor: jdoe\nDate: Mon, 28 Apr 2023 10:02:00 +0000\n\n", "jdoe", "Mon, 28 Apr 2023"),
    ("Title\n\nMarch 3, 2021\n\nBY Ann O'Brien-Smith for The Times\n\n", "Ann O'Brien-Smith",
     "March 3, 2021"),
    ("---\ntitle: Title\nauthor: Jane Doe\ndate: 2023-04-28\n---\n\n", "Jane Doe", "2023-04-28"),
])
def test_text_bylines_and_dates_near_the_top(tmp_path, head, author, date):
    path = tmp_path / "article.txt"
    path.write_text(head + "The harbour opened in spring. Ships came from far away.\n", encoding="utf-8")
    doc = read(path)
    assert (doc.title, doc.author, doc.date) == ("Title", author, date)
    _check_invariants(doc)


@pytest.mark.parametrize("text", [
    LIGHTHOUSE,
    "# Belgium\n\nBy the way, Brussels is the capital.\n\nBy Monday, the votes were counted.\n",
    "Minutes\n\nThe meeting ended early.\n\nThe End\n",
    "A letter\n\nWe met in the harbour.\n\nThank You\n",
    "Report\n\nSales grew.\n\nSee Also\n",
    "Report\n\nSales grew in spring. Costs fell in the summer months.\n",
    "Notes\n\nIt rained.\n\n## Further Reading\n",
    "Jane Doe\n",  # a one-line file is a title, not a signature
])
def test_no_false_author_on_ordinary_text(tmp_path, text):
    path = tmp_path / "plain.txt"
    path.write_text(text, encoding="utf-8")
    assert read(path).author is None


def test_no_false_metadata_in_fixture_corpus(corpus):
    for name in ("belgium.md", "lighthouse.txt", "germany.html"):
        doc = read(corpus / name)
        assert doc.author is None and doc.date is None, name


_STREAMED = (
    "Harbour report\r\n==============\r\n\r\nBy Jane Doe | 3 May 2024\r\n\r\n# One\r\ntext\r\n\r\n"
    "~~~\r\ncode line\r\n  indented\r\n~~~\r\n\r\nTwo\r\n---\r\n\r\nMore text here.\r\n\r\nJane Doe\r\n"
)


@pytest.mark.parametrize("data", [_STREAMED, _STREAMED.replace("\r\n", "\n"),
                                  (SEEDS / "mss-joins-wechat.txt").read_text("utf-8")])
def test_streamed_sections_equal_the_whole_read(tmp_path, data):
    from index.readers import open_text

    path = tmp_path / "report.md"
    path.write_bytes(data.encode("utf-8"))
    whole = read(path)
    assert whole.sections
    for block in (1, 2, 7, 1 << 18):
        stream = open_text(path, block_chars=block)
        assert "".join(stream.blocks) == whole.text
        assert tuple(stream.sections) == whole.sections
        assert (stream.title, stream.author, stream.date) == (whole.title, whole.author, whole.date)
    _check_invariants(whole)


def test_streamed_structure_of_crlf_file(tmp_path):
    path = tmp_path / "report.md"
    path.write_bytes(_STREAMED.encode())
    doc = read(path)
    assert _sections(doc, "heading") == ["Harbour report", "One", "Two"]
    assert _sections(doc, "code") == ["code line\n  indented"]
    assert (doc.author, doc.date) == ("Jane Doe", "3 May 2024")  # the byline wins over the signature


def test_pdf_metadata_front_matter_and_pages(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title("Tide tables")
    pdf.set_author("Jane Doe")
    pdf.set_creation_date(__import__("datetime").datetime(2021, 5, 4, 12, 0))
    pdf.set_font("helvetica", size=12)
    for text in ("High tide at noon.", "Low tide at six."):
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(tmp_path / "tides.pdf"))
    doc = read(tmp_path / "tides.pdf")
    assert doc.text.startswith("Title: Tide tables\nAuthor: Jane Doe\nDate: 2021-05-04\n\nHigh tide")
    assert (doc.title, doc.author, doc.date) == ("Tide tables", "Jane Doe", "2021-05-04")
    assert doc.text[doc.page_starts[0]:].startswith("High tide")
    assert doc.text[doc.page_starts[1]:].startswith("Low tide")
    assert doc.page_at(0) == 1 and doc.page_at(doc.text.index("Low")) == 2
    _check_invariants(doc)


def test_pdf_title_in_the_text_layer_is_not_repeated(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title("Tide tables")
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Tide tables\n\nHigh tide at noon.")
    pdf.output(str(tmp_path / "tides.pdf"))
    doc = read(tmp_path / "tides.pdf")
    assert doc.title == "Tide tables" and doc.text.count("Tide tables") == 1
    _check_invariants(doc)


def _docx_with_structure(path, header_bold: bool = True, core: bool = True):
    import docx

    document = docx.Document()
    if core:
        document.core_properties.title = "Harbour manual"
        document.core_properties.author = "Jane Doe"
    document.add_paragraph("Harbour manual", style="Title")
    document.add_heading("Mooring", level=2)
    document.add_paragraph("Tie up at the north pier.")
    table = document.add_table(rows=3, cols=2)
    for r, (a, b) in enumerate([("Old rule", "New rule"), ("Pier 1", "Pier 4"), ("", "Pier 5")]):
        for c, value in enumerate((a, b)):
            run = table.rows[r].cells[c].paragraphs[0].add_run(value)
            run.bold = header_bold and r == 0
    document.add_paragraph("After the table.")
    document.save(str(path))


def test_docx_headings_tables_in_order_and_core_properties(tmp_path):
    _docx_with_structure(tmp_path / "manual.docx")
    doc = read(tmp_path / "manual.docx")
    assert doc.text.startswith("Author: Jane Doe\n\nHarbour manual\n\nMooring")  # the title is visible
    assert [(doc.text[s.start:s.end], s.level) for s in doc.sections if s.kind == "heading"] == [
        ("Harbour manual", 1), ("Mooring", 2)]
    assert _sections(doc, "row") == ["Old rule: Pier 1 | New rule: Pier 4", "New rule: Pier 5"]
    assert doc.text.index("Pier 4") < doc.text.index("After the table.")  # document order kept
    assert (doc.title, doc.author, doc.date) == ("Harbour manual", "Jane Doe", None)  # template date ignored
    _check_invariants(doc)


def test_docx_table_without_header_row(tmp_path):
    _docx_with_structure(tmp_path / "manual.docx", header_bold=False, core=False)
    doc = read(tmp_path / "manual.docx")
    assert _sections(doc, "row") == ["Old rule | New rule", "Pier 1 | Pier 4", "Pier 5"]
    assert doc.title == "Harbour manual" and doc.author is None  # python-docx's "python-docx" author dropped
    _check_invariants(doc)


def test_every_format_keeps_its_invariants_and_reads_the_same_twice(corpus, tmp_path):
    _docx_with_structure(tmp_path / "manual.docx")
    paths = sorted(corpus.iterdir()) + [tmp_path / "manual.docx"]
    for path in paths:
        first, second = read(path), read(path)
        assert first == second, path.name
        _check_invariants(first)


_LINES = st.sampled_from([
    "", "", "# Head", "## Two ##", "Setext", "======", "-----", "```", "~~~~", "```py", "  code",
    "By Jane Doe", "Author: Ann Lee", "Published: 3 May 2024", "April 28, 2023", "Plain words here.",
    "David Baker", "- item", "#hashtag", "\r", "text\r", "    # indented",
])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_LINES | st.text(max_size=20), max_size=30), block=st.integers(1, 40), newline=st.sampled_from(["\n", "\r\n"]))
def test_streamed_sections_hold_for_any_markdown(tmp_path, lines, block, newline):
    from index.readers import open_text

    path = tmp_path / "any.md"
    path.write_bytes(newline.join(lines).encode())
    try:
        whole = read(path)
    except ReadError:
        return
    stream = open_text(path, block_chars=block)
    assert "".join(stream.blocks) == whole.text
    assert tuple(stream.sections) == whole.sections
    assert (stream.title, stream.author, stream.date) == (whole.title, whole.author, whole.date)
    _check_invariants(whole)


_HTML_PIECES = st.sampled_from([
    "<h1>", "</h1>", "<h3>", "</h3>", "<p>", "</p>", "<pre>", "</pre>", "<table>", "</table>", "<tr>",
    "</tr>", "<td>", "</td>", "<th>", "</th>", "<thead>", "</thead>", "<caption>", "<dl><dt>", "</dt><dd>",
    "</dd></dl>", "<br>", "<div hidden>", "</div>", "<span>", "</span>", "<script>x=1</script>",
    "<title>Tide</title>", '<meta name="author" content="Jane Doe">', '<time datetime="2023-04-28">',
    "</time>", "<td colspan=2>", "<td rowspan=3>", "Tide", "Jane Doe", "By Jane Doe", "  spaced  words ",
    "\n  indented\n", "&amp;", "April 28, 2023", "<head>", "<body>", '<a href="#x">¶</a>',
])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(_HTML_PIECES | st.text(max_size=10), max_size=40))
@example(pieces=["<h1>", "<pre>", "  spaced  words "])  # a heading whose text is an indented <pre>
def test_html_sections_hold_for_any_markup(tmp_path, pieces):
    path = tmp_path / "any.html"
    path.write_text("".join(pieces), encoding="utf-8")
    try:
        first = read(path)
    except ReadError as exc:
        assert any(why in str(exc) for why in ("no text", "binary", "empty"))
        return
    assert read(path) == first
    _check_invariants(first)
