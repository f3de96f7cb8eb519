"""A small multi-format corpus built in a test's folder: text, Markdown, HTML, PDF and DOCX files
with facts the tests ask about, and near neighbours that must not be cited instead."""

from __future__ import annotations

from pathlib import Path

from tests.support import SEEDS


NEIGHBOURS = {
    "belgium.md": (
        "# Belgium\n\n"
        "Belgium lies to the north of France. Its capital is Brussels, home to the European "
        "Commission. The country has three official languages: Dutch, French and German.\n\n"
        "Belgian waffles and fries are famous. The Atomium in Brussels was built for the 1958 "
        "World's Fair.\n"
    ),
    "germany.html": (
        "<html><head><title>Germany</title><style>p {color: red}</style>"
        "<script>var x = 'not text';</script></head><body>"
        "<h1>Germany</h1><p>Germany borders France to the east. Berlin has been the German "
        "capital since reunification in 1990.</p><p>The Rhine river forms part of the "
        "border between Germany and France &amp; Switzerland.</p>"
        "<ul><li>Population: about 84 million</li><li>Currency: the euro</li></ul></body></html>"
    ),
}


SPAIN_PAGES = [
    "Spain shares the Pyrenees mountains with France. Madrid is the Spanish capital.",
    "The Spanish tomato festival, La Tomatina, takes place every August in the town of Bunol.",
]


SWISS_PARAGRAPHS = [
    "Switzerland is a neighbour of France in the Alps.",
    "Swiss watchmaking is centred in the Jura mountains. The Swiss franc is the currency.",
    "Bern is the Swiss federal city.",
]


LIGHTHOUSE = (
    "The Keeper's Log of Hollowmere Lighthouse\n\n"
    "The lighthouse at Hollowmere was first lit on 3 March 1871. Its lamp burned whale oil "
    "until 1904, when keeper Agnes Thorsby installed a paraffin burner. The tower is 41 metres "
    "tall and painted in red and white bands.\n\n"
    "In the great storm of 1923 the keeper rowed out to rescue eleven fishermen from the "
    "trawler Marigold. The lighthouse was automated in 1987 and now runs on solar power.\n"
)


def make_pdf(path: Path, pages: list[str]) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))


def make_docx(path: Path, paragraphs: list[str], title: str | None = None) -> None:
    import docx

    document = docx.Document()
    if title:
        document.core_properties.title = title
    for p in paragraphs:
        document.add_paragraph(p)
    document.save(str(path))


def build_corpus(folder: Path) -> Path:
    """A multi-document, multi-format corpus: txt, md, html, pdf (2 pages), docx, and the seed."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in NEIGHBOURS.items():
        (folder / name).write_text(text, encoding="utf-8")
    make_pdf(folder / "spain.pdf", SPAIN_PAGES)
    make_docx(folder / "switzerland.docx", SWISS_PARAGRAPHS, title="Switzerland")
    (folder / "lighthouse.txt").write_text(LIGHTHOUSE, encoding="utf-8")
    (folder / "seed.txt").write_text((SEEDS / "mss-joins-wechat.txt").read_text("utf-8"), "utf-8")
    return folder
