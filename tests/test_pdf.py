"""PDF articles: PDFs the tests write with fpdf2, read with PDFium; citations say their page."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from rich.console import Console

from qa.cli import main
from qa.errors import IngestError
from qa.ingest import read_article
from qa.pages import page_at
from qa.repl import ChatSession
from qa_processes import qa_server

PAGES = [
    ["The Lantern Valley Railway reopened on Saturday after a restoration that took eleven years and "
     "cost the volunteers' trust about 3.2 million pounds, most of it raised from small donations.",
     "The first train left Ashgrove station at nine in the morning with four hundred passengers aboard."],
    ["The restored viaduct at Millbeck has twenty-two arches and stands forty metres above the river.",
     "Chief engineer Rosalind Achterberg said the hardest work was replacing the ironwork of the sixth arch, "
     "which had rusted through during the decades the line lay closed."],
    ["Timetables for the summer season will be published in May, the trust said, and trains will run "
     "every weekend until the end of October."],
]
QUESTION = "Who was the chief engineer of the Millbeck viaduct restoration?"
# A report whose first line is its headline, as a word processor's PDF has it, with the Title its
# metadata was given by the program that made it.
HARBOUR_HEADLINE = "Harbour Report on Lisbon Shipping"
HARBOUR = [
    [HARBOUR_HEADLINE,
     "The port of Lisbon handled 12 million tonnes of cargo last year, the harbour authority said on "
     "Tuesday, up from ten million tonnes the year before."],
    ["Container traffic grew fastest, and the authority plans a new quay at Alcantara by 2027."],
]


def write_pdf(path: Path, pages: list[list[str]], title: str | None = None) -> Path:
    """A PDF with one page per list of paragraphs, written by fpdf2 (a real PDF writer)."""
    from fpdf import FPDF

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_creation_date(__import__("datetime").datetime(2022, 6, 4, tzinfo=__import__("datetime").timezone.utc))
    for paragraphs in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph)
            pdf.ln(4)
    pdf.output(str(path))
    return path


def write_locked_pdf(path: Path, user_password: str | None) -> Path:
    """A PDF encrypted by fpdf2; with a user password it opens only with that password."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_encryption(owner_password="owner-secret", user_password=user_password)
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, PAGES[0][0])
    pdf.output(str(path))
    return path


def write_scanned_pdf(path: Path, pages: int = 2, stamp: str | None = None) -> Path:
    """A PDF whose pages hold only drawings, as a scan holds only images: no text layer, or only a
    scanner app's `stamp` at the foot of each page."""
    from fpdf import FPDF

    pdf = FPDF()
    for _ in range(pages):
        pdf.add_page()
        pdf.set_fill_color(40, 40, 40)
        pdf.rect(20, 20, 150, 200, style="F")
        if stamp:
            pdf.set_font("Helvetica", size=8)
            pdf.set_y(-12)
            pdf.cell(0, 5, stamp)
    pdf.output(str(path))
    return path


@pytest.fixture(scope="module")
def pdf_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pdfs") / "news"
    folder.mkdir()
    write_pdf(folder / "railway.pdf", PAGES, title="Lantern Valley Railway Reopens")
    write_pdf(folder / "harbour.pdf", HARBOUR, title="Microsoft Word - harbour_v3.docx")
    write_scanned_pdf(folder / "scan.pdf")
    write_locked_pdf(folder / "locked.pdf", user_password="reader-secret")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage")
    return folder


@pytest.fixture(scope="module")
def pdf_index(pdf_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    index_dir = tmp_path_factory.mktemp("pdf-index") / "index"
    result = CliRunner().invoke(main, ["index", str(pdf_corpus), "--index", str(index_dir), "--json"])
    assert result.exit_code == 0, result.output
    return index_dir, json.loads(result.stdout)


def test_a_pdf_is_one_article_with_its_pages_kept(tmp_path: Path) -> None:
    article = read_article(write_pdf(tmp_path / "railway.pdf", PAGES, title="Lantern Valley Railway Reopens"))
    assert article.title == "Lantern Valley Railway Reopens"
    assert article.date == "2022-06-04"
    assert article.text.count("\f") == 2
    for number, paragraphs in enumerate(PAGES, start=1):
        first_words = paragraphs[0][:30]
        assert page_at(article.text, article.text.index(first_words)) == number


def test_an_empty_page_is_a_page_not_a_scan(tmp_path: Path) -> None:
    article = read_article(write_pdf(tmp_path / "gap.pdf", [PAGES[0], [], PAGES[2]], title="Railway News"))
    assert article.text.count("\f") == 2
    assert page_at(article.text, article.text.index("Timetables")) == 3


@pytest.mark.parametrize(
    "placeholder",
    ["Untitled", "untitled document", "Microsoft Word - draft_v3.docx", "report.pdf", "draft_v3.docx",
     "harbour", None],
)
def test_a_placeholder_title_gives_way_to_the_headline_which_leaves_the_text(
    tmp_path: Path, placeholder: str | None
) -> None:
    from qa.chunk import split_sentences

    article = read_article(write_pdf(tmp_path / "harbour.pdf", HARBOUR, title=placeholder))
    assert article.title == HARBOUR_HEADLINE
    # The headline is the title, as a text file's is: out of the text, so no sentence starts with it.
    start, end = split_sentences(article.text)[0]
    assert article.text[start:end].startswith("The port of Lisbon handled 12 million tonnes")
    assert HARBOUR_HEADLINE not in article.text
    assert page_at(article.text, article.text.index("Container traffic")) == 2


def test_a_real_title_is_kept_and_a_first_line_that_runs_on_stays_text(tmp_path: Path) -> None:
    titled = read_article(write_pdf(tmp_path / "harbour.pdf", HARBOUR, title="Lisbon Port Figures"))
    assert titled.title == "Lisbon Port Figures"
    assert titled.text.startswith(HARBOUR_HEADLINE)  # not the Title: maybe a kicker, so it stays
    # PAGES's first line is a sentence wrapped at the page's edge ("...eleven years and" / "cost the
    # ..."): no headline, so the title is the file's name and the sentence is whole.
    untitled = read_article(write_pdf(tmp_path / "railway.pdf", PAGES))
    assert untitled.title == "railway"
    assert untitled.text.startswith(PAGES[0][0][:60])


def test_a_headline_under_a_title_with_the_sites_name_or_wrapped_leaves_the_text_with_its_byline(tmp_path: Path) -> None:
    # The Title a newspaper's PDF export gives: the headline and the site's name after it.
    sited = read_article(write_pdf(tmp_path / "sited.pdf", HARBOUR, title=f"{HARBOUR_HEADLINE} | Port Weekly"))
    assert sited.title == f"{HARBOUR_HEADLINE} | Port Weekly"
    assert sited.text.startswith("The port of Lisbon handled")
    # A headline too long for one line of the page, the Title its whole; a byline under it.
    long_headline = ("Harbour Report on Lisbon Shipping: Container Traffic Grows Fastest as the Authority "
                     "Plans a New Quay at Alcantara for the Coming Decade")
    pages = [[long_headline, "By Ana Reis and Tomas Duarte", *HARBOUR[0][1:]], HARBOUR[1]]
    wrapped = read_article(write_pdf(tmp_path / "wrapped.pdf", pages, title=long_headline))
    assert wrapped.title == long_headline
    assert wrapped.text.startswith("The port of Lisbon handled"), wrapped.text[:200]
    assert page_at(wrapped.text, wrapped.text.index("Container traffic")) == 2


def test_a_line_that_opens_with_by_is_a_byline_only_when_it_names_someone() -> None:
    from qa.ingest import _take_pdf_headline

    # Read as pages from PDFium: a line a sentence wraps onto is text, whatever its first word.
    title, pages = _take_pdf_headline(None, ["Port traffic doubles\nBy 2030 the port will handle twice the\ncargo."])
    assert title == "Port traffic doubles" and pages[0].startswith("By 2030 the port")
    assert _take_pdf_headline(None, ["Port traffic doubles\nBy Ana Reis\nThe port grew."])[1] == ["The port grew."]
    # With no Title, a headline line that ends on "For" goes on in the next: both are the headline.
    title, pages = _take_pdf_headline(None, ["City Council Approves Budget For\nNew Library Wing\n"
                                             "The city council approved the budget on Monday."])
    assert title == "City Council Approves Budget For New Library Wing"
    assert pages == ["The city council approved the budget on Monday."]
    # A sentence wrapped at the page's edge is no headline, on one line or two.
    wrapped = ["The council voted to\nApprove the budget on Monday, officials said.\nMore followed."]
    assert _take_pdf_headline(None, wrapped) == (None, wrapped)
    # Some headlines end on such a word: the line under one is the text's (or a byline) all the same.
    lead = "Negotiators failed again on Monday to reach a deal, and\nCongress left without a vote."
    assert _take_pdf_headline(None, [f"Shutdown Looms as Talks Drag On\n{lead}"]) == ("Shutdown Looms as Talks Drag On", [lead])
    assert _take_pdf_headline(None, ["Talks Drag On\nBy Ana Reis\nThe talks failed."]) == ("Talks Drag On", ["The talks failed."])
    # The Title's start before a site's name is no headline when the text goes on from it.
    assert _take_pdf_headline("The port - annual report", ["The port\nis growing fast."])[1] == ["The port\nis growing fast."]


def write_laid_out_pdf(path: Path, pages: list[list[tuple[str, str]]], title: str | None = None,
                       header: str | None = None, footer: str | None = None) -> Path:
    """A PDF laid out as a news site's or a report's: each page a list of (kind, text), kind
    "heading" (bold, space under it), "line" (a line of its own, no space under it) or "paragraph"
    (wrapped, space under it); `header` and `footer` on every page, "{page}" in them its number."""
    from fpdf import FPDF

    class Laid(FPDF):
        def header(self) -> None:
            if header:
                self.set_font("Helvetica", size=9)
                self.cell(0, 5, header.format(page=self.page_no()), new_x="LMARGIN", new_y="NEXT")
                self.ln(4)

        def footer(self) -> None:
            if footer:
                self.set_y(-15)
                self.set_font("Helvetica", size=9)
                self.cell(0, 5, footer.format(page=self.page_no()))

    pdf = Laid()
    if title:
        pdf.set_title(title)
    pdf.set_creation_date(__import__("datetime").datetime(2025, 11, 20, tzinfo=__import__("datetime").timezone.utc))
    for blocks in pages:
        pdf.add_page()
        for kind, text in blocks:
            pdf.set_font("Helvetica", "B" if kind == "heading" else "", 14 if kind == "heading" else 11)
            pdf.multi_cell(0, 8 if kind == "heading" else 6, text, new_x="LMARGIN", new_y="NEXT")
            if kind != "line":
                pdf.ln(3)
    pdf.output(str(path))
    return path


def sentences_of(text: str) -> list[str]:
    from qa.chunk import split_sentences

    return [" ".join(text[start:end].split()) for start, end in split_sentences(text)]


def test_running_headers_and_footers_leave_the_text_and_a_sentence_runs_on_over_them(tmp_path: Path) -> None:
    # A page printed from a browser: the time, the headline and the site's name over every page,
    # the address and "1/2" under it. They were quoted in answers, glued to the story's sentences,
    # and a sentence running over the page break was cut at "Page 1".
    pages = [
        [("line", "Breakwater Completed"),
         ("paragraph", "The harbour master Bartholomew Quince confirmed on Friday that the new breakwater, which "
                       "took four years to build and cost 88 million pounds, will protect the marina")],
        [("paragraph", "from winter storms. The marina holds four hundred berths.")],
    ]
    for header, footer in [("The Harbour Times", "Page {page}"),
                           ("12/5/23, 3:14 PM Breakwater Completed | The Harbour Times",
                            "https://www.harbourtimes.com/news/2023/12/breakwater {page}/2")]:
        article = read_article(write_laid_out_pdf(tmp_path / "breakwater.pdf", pages, header=header, footer=footer))
        assert article.title == "Breakwater Completed"
        assert "Harbour Times" not in article.text and "Page" not in article.text and "https" not in article.text
        assert ("The harbour master Bartholomew Quince confirmed on Friday that the new breakwater, which took four "
                "years to build and cost 88 million pounds, will protect the marina from winter storms.") in sentences_of(article.text)
        assert page_at(article.text, article.text.index("The marina holds")) == 2
    # Nothing shows which lines of a one-page PDF are the site's: each stays (the first, the title).
    one_page = read_article(write_laid_out_pdf(tmp_path / "one.pdf", pages[:1], header="The Harbour Times"))
    assert one_page.title == "The Harbour Times" and one_page.text.startswith("Breakwater Completed\n")


def test_running_lines_are_those_at_the_top_or_bottom_of_most_pages() -> None:
    from qa.pdf import ReadPage, without_running_lines

    def read(*texts: str) -> list[str]:
        return without_running_lines([ReadPage(text) for text in texts])

    # "Three." recurs, but in the page's middle; "Times" heads two pages of three, "Page N" ends all.
    assert read("Times\nOne.\nTwo.\nThree.\nPage 1", "Times\nFour.\nThree.\nFive.\nPage 2", "Six.\nPage 3", "") == [
        "One.\nTwo.\nThree.", "Four.\nThree.\nFive.", "Six.", ""]
    kept = ["Times\nOne.", "Two.\nThree.", "Four.\nFive."]  # one page of three: the story's
    assert read(*kept) == kept
    # Figures that do not count the pages are a table's or a story's: rows, years, chapters' dates.
    rows = ["1 Item 7 cost 1.50\n2 Item 3 cost 2.00\n3 Item 9 cost 0.50\n4 Item 2 cost 0.75",
            "5 Item 1 cost 1.00\n6 Item 2 cost 3.00\n7 Item 5 cost 2.50\n8 Item 4 cost 1.25"]
    years = ["1998\nThe house was built.", "2004\nIt was sold.", "2015\nIt burned down."]
    # A notice printed twice keeps its lines, though all stand at the pages' edges; a scanner's
    # stamp, the only line of every page, goes.
    notice = ["Notice to residents\nThe water is off on Tuesday.\nAshgrove Water Company"] * 2
    for texts in (rows, years, notice):
        assert read(*texts) == texts
    assert read("Scanned with CamScanner", "Scanned with CamScanner") == ["", ""]
    # A letter's closing stands where each letter ends; a footer, at one height on every page.
    letters = [ReadPage("Dear Ann,\nThe roof is fixed.\nYours,\nJane Hill\nPage 1", line_baselines=(700, 680, 600, 590, 40)),
               ReadPage("Dear Bob,\nThe gate is fixed.\nIt was hard.\nYours,\nJane Hill\nPage 2",
                        line_baselines=(700, 680, 660, 500, 490, 40))]
    assert without_running_lines(letters) == [page.text.rsplit("\n", 1)[0] for page in letters]
    # The first page's title, set large, over a header that repeats it small on the others.
    titled = [ReadPage("Annual Report\nThe trust grew.", opens_large=True), ReadPage("Annual Report\nIt spent less.")]
    assert without_running_lines(titled) == ["Annual Report\nThe trust grew.", "It spent less."]


def test_a_scan_whose_pages_say_only_the_scanners_name_has_no_text_layer(tmp_path: Path) -> None:
    write_scanned_pdf(tmp_path / "scan.pdf", pages=3, stamp="Scanned with CamScanner")
    with pytest.raises(IngestError, match="no text layer"):
        read_article(tmp_path / "scan.pdf")


def test_headings_captions_and_list_items_are_not_glued_to_the_sentence_under_them(tmp_path: Path) -> None:
    # PDFium ends every line alike, so a heading read as the start of the sentence under it:
    # "Background The tram was first proposed…" was quoted as the answer.
    article = read_article(write_laid_out_pdf(tmp_path / "tram.pdf", [[
        ("line", "Council Approves Tram Line"),
        ("paragraph", "The city council of Leeds approved a new tram line on Tuesday, ending a decade of debate."),
        ("heading", "Background"),
        ("paragraph", "The tram was first proposed in 2012 by councillor Hyacinth Ramsbottom, who campaigned for "
                      "cleaner transport."),
        ("line", "Key facts"),
        ("line", "- Length: 14 kilometres"),
        ("line", "- Stops: 22"),
        ("line", "Figure 1: The planned route through the city centre"),
        ("paragraph", "Construction will start next spring and the first trams will run in 2027."),
    ]]))
    sentences = sentences_of(article.text)
    assert article.title == "Council Approves Tram Line"
    for sentence in ("The tram was first proposed in 2012 by councillor Hyacinth Ramsbottom, who campaigned for "
                     "cleaner transport.", "Construction will start next spring and the first trams will run in 2027.",
                     "Background", "- Stops: 22"):
        assert sentence in sentences, sentences
    # Lines of one paragraph stay one: a sentence wrapped at the page's edge is whole.
    assert "The city council of Leeds approved a new tram line on Tuesday, ending a decade of debate." in sentences


def test_double_spacing_small_notes_and_a_line_past_the_margin_cut_no_sentence(tmp_path: Path) -> None:
    # A review found every line of double-spaced text read as a paragraph of its own under
    # single-spaced notes (the page's usual step was the notes'), and a URL that ran past the
    # margin made every full line of the page look short.
    from fpdf import FPDF

    body = ("The harbour trust was founded in 1893 by the fishermen of the town, who paid for the first "
            "breakwater out of their own catch. Its records were kept in the old customs house until the "
            "fire of 1947, when most of them were lost.")
    note = ("1 The customs house was rebuilt in 1951 to the old plans, and the records that were saved "
            "are now kept in the county archive.")
    pdf = FPDF()
    pdf.add_page()  # double-spaced text over single-spaced notes in a smaller size
    pdf.set_font("Times", size=12)
    pdf.multi_cell(0, 9, body, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Times", size=9)
    pdf.multi_cell(0, 4, note, new_x="LMARGIN", new_y="NEXT")
    pdf.add_page()  # a source's address that runs past the margin between two paragraphs
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, body, new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, "Source: https://www.example.org/archives/harbour-trust/records/the-full-report-with-"
                   "appendices-maps-and-tables.html", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(0, 6, body, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(tmp_path / "trust.pdf"))
    sentences = sentences_of(read_article(tmp_path / "trust.pdf").text)
    for sentence in ("The harbour trust was founded in 1893 by the fishermen of the town, who paid for the first "
                     "breakwater out of their own catch.",
                     "Its records were kept in the old customs house until the fire of 1947, when most of them were lost.",
                     "The customs house was rebuilt in 1951 to the old plans, and the records that were saved are now "
                     "kept in the county archive."):
        assert any(found.endswith(sentence) for found in sentences), sentences
    # Three times whole: the first page's, and the second's before and after the address.
    assert sum(found.endswith("who paid for the first breakwater out of their own catch.") for found in sentences) == 3


def test_a_report_named_on_every_page_and_no_other_headline_is_titled_by_that_name(tmp_path: Path) -> None:
    story = ("The committee met on Monday and agreed the plan for the new bridge over the river, which will cost "
             "two million pounds. Work starts in spring.")
    pages = [[("paragraph", story)], [("paragraph", "The bridge should open to walkers and cyclists next year.")]]
    article = read_article(write_laid_out_pdf(tmp_path / "crossings.pdf", pages,
                                              header="River Crossings in Northern England", footer="Page {page}"))
    assert article.title == "River Crossings in Northern England"
    assert article.text.startswith("The committee met on Monday") and "Northern England" not in article.text


def test_a_hyphen_at_a_lines_end_is_kept_in_a_compound_and_dropped_in_a_broken_word(tmp_path: Path) -> None:
    # PDFium marks every hyphen at a line's end alike; all were dropped, so "anti-American" read
    # "antiAmerican" and a search for it found nothing.
    text = ("The forty-\nseven passengers of the well-\nknown ferry joined the anti-\nAmerican protest, and the "
            "recon-\nstruction of the break-\nwater began. The breakwater shelters the COVID-\n19 clinic. The out-\n"
            "break was over-\nall milder; they can-\nnot say why. Stamp YYM-\nMDDhhmmss.")
    article = read_article(write_laid_out_pdf(tmp_path / "ferry.pdf", [[("paragraph", text)]], title="Ferry"))
    flat = " ".join(article.text.split())
    assert flat == ("The forty-seven passengers of the well-known ferry joined the anti-American protest, and the "
                    "reconstruction of the breakwater began. The breakwater shelters the COVID-19 clinic. The outbreak "
                    "was overall milder; they cannot say why. Stamp YYMMDDhhmmss."), flat


def test_a_pdfs_dateline_is_its_day_over_the_day_it_was_printed(tmp_path: Path) -> None:
    # A story saved from a browser in 2025 (its CreationDate) tells of 2021: filtered by --until
    # 2021-12-31 it was not found, and its dateline led its first sentence.
    story = [[("line", "Mayor Resigns"), ("line", "March 3, 2021"),
              ("paragraph", "The mayor of Coimbra resigned on Wednesday after a row over the budget for the new "
                            "stadium, which had doubled in cost.")]]
    article = read_article(write_laid_out_pdf(tmp_path / "mayor.pdf", story, title="Mayor Resigns"))
    assert article.date == "2021-03-03"
    # Its own paragraph, not the first sentence's start; kept, as a flyer's date is its news.
    assert article.text.startswith("March 3, 2021\n\nThe mayor of Coimbra resigned")
    # A line of the story that names a day is the story's, as is one that names another day than
    # the story's: the day the file was made stands.
    for line in ("The mayor of Coimbra resigned on Wednesday, March 3, 2021, after a row over the budget.",
                 "Due date: 1 March 2024", "Date of birth: 3 March 1990", "June 5, 2021 Opening concert"):
        page = [[("line", "Mayor Resigns"), ("line", line),
                 ("paragraph", "The mayor of Coimbra resigned after a row over the budget for the new stadium.")]]
        article = read_article(write_laid_out_pdf(tmp_path / "plain.pdf", page, title="Mayor Resigns"))
        assert article.date == "2025-11-20", line


def test_a_wire_dateline_opening_the_story_is_its_day(tmp_path: Path) -> None:
    # "REYKJAVIK, 18 December 2023 - A volcano erupted…" gave the day the file was made.
    story = [[("line", "Volcano Erupts"),
              ("paragraph", "REYKJAVIK, 18 December 2023 - A volcano erupted late on Monday on the Reykjanes "
                            "peninsula, forcing the evacuation of Grindavik.")]]
    article = read_article(write_laid_out_pdf(tmp_path / "volcano.pdf", story, title="Volcano Erupts"))
    assert article.date == "2023-12-18" and article.text.startswith("REYKJAVIK, 18 December 2023 - A volcano")
    (tmp_path / "volcano.txt").write_text("Volcano Erupts\n\nZÜRICH, May 12, 2023 — The bank said on Friday that its "
                                          "profit had doubled, helped by higher interest rates.\n", encoding="utf-8")
    assert read_article(tmp_path / "volcano.txt").date == "2023-05-12"
    from qa.ingest import lead_dateline_day

    for opening in ("NEW YORK, March 3, 2021 - Stocks fell", "ST. LOUIS, March 3, 2021 - The", "WINSTON-SALEM, "
                    "March 3, 2021 - The", "LONDON, March 3, 2021 (Reuters) - The", "KYIV, Ukraine, Wednesday "
                    "3 March 2021 - The", "LONDON (Reuters), Mar 3, 2021 – The"):
        assert lead_dateline_day(opening) == "2021-03-03", opening
    for opening in ("WASHINGTON — The Senate voted", "The mayor, March 3, 2021 — said", "U.S. officials said Monday, "
                    "March 3 - the"):
        assert lead_dateline_day(opening) is None, opening
    # A sentence that opens on a place and a day is no dateline: no dash after the day.
    (tmp_path / "paris.txt").write_text("Paris in spring\n\nParis, 3 March 2021, was colder than any March day "
                                        "on record - the weather service said.\n", encoding="utf-8")
    assert read_article(tmp_path / "paris.txt").date is None


def test_a_web_page_or_text_under_a_pdf_name_is_said_to_be_one(tmp_path: Path) -> None:
    (tmp_path / "page.pdf").write_bytes(b"<!DOCTYPE html>\n<html><body><p>The port grew.</p></body></html>")
    (tmp_path / "note.pdf").write_bytes(b"The port grew by a tenth last year.\n")
    with pytest.raises(IngestError, match="^not a PDF but a web page saved under a .pdf name: rename it .html"):
        read_article(tmp_path / "page.pdf")
    with pytest.raises(IngestError, match="^not a PDF but text saved under a .pdf name: rename it .txt"):
        read_article(tmp_path / "note.pdf")


def test_a_pdf_may_be_larger_than_a_text_file_and_its_title_is_clean(tmp_path: Path) -> None:
    from qa.ingest import MAX_FILE_BYTES, MAX_PDF_BYTES

    # Mostly pictures: past the 50 MB a text file may have, a PDF is read (these bytes are no PDF).
    for name, size, message in [("report.pdf", MAX_FILE_BYTES + 1, "not a readable PDF"),
                                ("huge.pdf", MAX_PDF_BYTES + 1, "larger than 500 MB")]:
        with open(tmp_path / name, "wb") as handle:
            handle.truncate(size)  # sparse: takes no space
        with pytest.raises(IngestError, match=message):
            read_article(tmp_path / name)
    # A NUL in the Title, as some writers leave, is not kept; Word's "Document1" is no title.
    assert read_article(write_pdf(tmp_path / "nul.pdf", HARBOUR, title="Lisbon\x00 Port Figures")).title == "Lisbon Port Figures"
    assert read_article(write_pdf(tmp_path / "doc.pdf", HARBOUR, title="Document1")).title == HARBOUR_HEADLINE


def test_an_encrypted_pdf_is_said_to_need_a_password(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="^encrypted: it needs a password to open; save a copy without one to index it$"):
        read_article(write_locked_pdf(tmp_path / "locked.pdf", user_password="reader-secret"))
    # Encrypted with an owner password alone (printing or copying restricted), anyone may open it.
    opened = read_article(write_locked_pdf(tmp_path / "restricted.pdf", user_password=None))
    assert opened.text.startswith("The Lantern Valley Railway")


def test_scanned_and_broken_pdfs_are_refused_with_one_line(tmp_path: Path, pdf_corpus: Path) -> None:
    with pytest.raises(IngestError, match="no text layer"):
        read_article(pdf_corpus / "scan.pdf")
    with pytest.raises(IngestError, match="not a readable PDF") as broken:
        read_article(pdf_corpus / "broken.pdf")
    assert "\n" not in str(broken.value)
    assert str(broken.value).startswith("not a readable PDF (") and str(broken.value).endswith("fetch it again")


def test_index_skips_the_scan_naming_it_and_citations_say_their_page(pdf_index: tuple[Path, dict]) -> None:
    index_dir, report = pdf_index
    assert report["added"] == 2
    reasons = {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {"scan.pdf", "broken.pdf", "locked.pdf"}
    assert reasons["scan.pdf"].startswith("no text layer")
    assert reasons["locked.pdf"] == "encrypted: it needs a password to open; save a copy without one to index it"

    result = CliRunner().invoke(main, ["ask", QUESTION, "--index", str(index_dir), "--json"])
    answer = json.loads(result.stdout)
    assert "Rosalind Achterberg" in answer["answer"]
    citation = answer["citations"][0]
    assert citation["page"] == 2
    assert all(p["page"] in (1, 2, 3) for p in answer["passages"])
    hits = json.loads(CliRunner().invoke(main, ["search", "summer timetables", "-k", "5", "--mode", "keyword",
                                                "--index", str(index_dir), "--json"]).stdout)["hits"]
    text = read_article(Path(hits[0]["path"])).text
    assert hits[0]["page"] == page_at(text, hits[0]["start"])  # a passage gives the page it starts on


def test_the_answer_from_a_pdf_does_not_start_with_its_headline(pdf_index: tuple[Path, dict]) -> None:
    index_dir = pdf_index[0]
    result = CliRunner().invoke(main, ["ask", "How much cargo did Lisbon handle?", "--index", str(index_dir), "--json"])
    answer = json.loads(result.stdout)
    assert answer["answer"].startswith("The port of Lisbon handled 12 million tonnes"), answer["answer"]
    citation = answer["citations"][0]
    assert citation["title"] == HARBOUR_HEADLINE  # not "Microsoft Word - harbour_v3.docx"
    assert citation["page"] == 1
    text = read_article(Path(citation["path"])).text
    assert text[citation["start"]:citation["end"]] == citation["quote"]


def test_the_chat_source_line_says_the_page(pdf_index: tuple[Path, dict], embedder) -> None:
    console = Console(file=io.StringIO(), width=120)
    ChatSession(pdf_index[0], console=console, embedder=embedder).run(lines=[QUESTION], update=False)
    source_line = next(line for line in console.file.getvalue().splitlines() if line.startswith("[1]"))
    assert "railway.pdf" in source_line and "page 2" in source_line


def test_http_citations_say_their_page_and_quote_the_served_text(pdf_index: tuple[Path, dict], tmp_path: Path) -> None:
    with qa_server(["--index", str(pdf_index[0])], tmp_path / "serve.log") as (url, _server):
        answer = httpx.post(f"{url}/ask", json={"question": QUESTION}, timeout=60).json()
        citation = answer["citations"][0]
        document = httpx.get(f"{url}/documents/{citation['doc_id']}", timeout=60).json()
    assert citation["page"] == 2
    assert document["text"][citation["start"]:citation["end"]] == citation["quote"]
    assert page_at(document["text"], citation["start"]) == 2


def test_a_sentence_broken_over_the_pdfs_lines_reads_as_one_line(tmp_path: Path, embedder) -> None:
    # PDF text keeps the page's line breaks: the answer reads as prose, the quote stays the text.
    from qa.answer import answer_question
    from qa.indexer import update_index
    from qa.retrieve import Retriever
    from qa.stores import open_store

    folder = tmp_path / "articles"
    folder.mkdir()
    write_pdf(folder / "bridge.pdf", [[
        "Harbor Bridge repairs",
        "The city council approved the repair of the Harbor Bridge on Monday after a long debate about "
        "its cost. Work on the bridge will begin in March and last eleven months, the chief engineer of "
        "the city, Priya Nair, told reporters at the town hall. Ferries will run every twenty minutes "
        "while the bridge is closed to traffic.",
    ]], title="Harbor Bridge repairs")
    update_index(tmp_path / "index", [folder], embedder=embedder)
    index = open_store(tmp_path / "index")
    try:
        answer = answer_question(Retriever(index, embedder), "When will the Harbor Bridge work begin?")
        assert answer.answerable and "March" in answer.answer
        assert any("\n" in citation.quote for citation in answer.citations)
        assert "\n" not in answer.answer
        from io import StringIO

        from rich.console import Console

        from qa.render import render_answer

        shown = StringIO()
        Console(file=shown, width=400).print(render_answer(answer))
        assert "Work on the bridge will begin in March and last eleven months" in shown.getvalue()
        for citation in answer.citations:
            assert index.document(citation.doc_id).text[citation.start:citation.end] == citation.quote
            assert " ".join(citation.quote.split()) in answer.answer
    finally:
        index.close()


def test_a_sentence_that_runs_over_a_page_break_is_quoted_whole(tmp_path: Path, embedder) -> None:
    from qa.answer import answer_question
    from qa.chunk import split_sentences
    from qa.indexer import update_index
    from qa.retrieve import Retriever
    from qa.stores import open_store

    folder = tmp_path / "articles"
    folder.mkdir()
    write_pdf(folder / "harbour.pdf", [
        ["Harbour Authority Annual Review",
         "The harbour master Bartholomew Quince confirmed on Friday that the new breakwater, which took four "
         "years to build and cost 88 million pounds, will protect the marina"],
        ["from winter storms. The marina holds four hundred berths.", "Page 2"],
    ], title="Harbour Authority Annual Review")
    text = read_article(folder / "harbour.pdf").text
    sentences = [text[a:b] for a, b in split_sentences(text)]
    assert any(s.startswith("The harbour master") and s.endswith("from winter storms.") for s in sentences), sentences
    assert "Page 2" in sentences
    # Only a sentence running on joins pages: not a page number, a header, a heading or an address.
    for page_one, page_two, joined in [
        ("will protect the marina", "from winter storms.", True),
        ("will protect the marina,", "from winter storms.", True),
        ("the marina. Page 3", "Storms ahead.", False),
        ("will protect the marina", "The Harbour Times", False),
        ("will protect the marina", "www.harbourtimes.com\nfrom winter storms.", False),
        ("Photo: harbour authority", "iPhone sales fall", False),
        ("a well-", "known harbour.", False),
    ]:
        broken = f"{page_one}\n\f\n{page_two}"
        assert (len(split_sentences(broken)) == 1) == joined, (broken, split_sentences(broken))

    update_index(tmp_path / "index", [folder], embedder=embedder)
    index = open_store(tmp_path / "index")
    try:
        answer = answer_question(Retriever(index, embedder), "What will the new breakwater protect the marina from?")
        assert answer.answerable and "will protect the marina from winter storms" in answer.answer, answer.answer
        (citation,) = [c for c in answer.citations if "breakwater" in c.quote]
        assert index.document(citation.doc_id).text[citation.start:citation.end] == citation.quote
        assert page_at(text, citation.start) == 1
    finally:
        index.close()
