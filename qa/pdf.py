"""A PDF's text layer read as its reader sees the page (qa.ingest reads PDFs through this).

PDFium gives a page's text a line at a time and no more: a heading, a caption or a list item runs
into the sentence under it, since no blank line parts them; the site's name and the page number
that a browser prints on every page stand in the story; and a word hyphenated at a line's end
comes as its two halves and a mark, whether the hyphen is the word's ("forty-seven") or only the
line's ("recon-struction"). Three repairs, each from what the page shows:

- `page_text`: a blank line where the page leaves space between two lines, or where a line stops
  short of its column with the next line's first word room to spare (the end of a paragraph, a
  heading, a list item), as a text file has one there;
- `without_running_lines`: the lines that stand at the top or bottom of most pages, figures aside
  ("Page 3 of 7", "12/5/23, 3:14 PM Port news | The Harbour Times"), taken off every page;
- `line_end_hyphens`: each hyphen at a line's end kept or dropped as the word is written
  elsewhere in the document, or else as English writes it (wordfreq).

The PDF objects come from pypdfium2, which qa.ingest imports; this module imports none of it.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

# PDFium's mark for a hyphen that ends a line (the line break goes with it).
LINE_END_HYPHEN = "\x02"
# A line whose baseline is this many times the page's usual line step below the line above it
# starts a new paragraph: 1.0 within a paragraph; a paragraph's spacing, or a heading's, 1.4 to 2
# (Word's 8 points after 11-point text, fpdf2's ln(4) under 6 mm lines: 1.6).
PARAGRAPH_STEP = 1.35
# A line that stops this many of its characters' widths or more short of its column's right edge,
# beyond the width of the next line's first word, ends its paragraph: that word would have fitted.
SHORT_LINE_SLACK_CHARS = 2
# How far apart (points) two lines' left edges may be and still be in one column.
COLUMN_LEFT_TOLERANCE = 20.0
# A running line stands among the first or last RUNNING_EDGE_LINES lines of at least half the
# pages, and of at least two.
RUNNING_EDGE_LINES = 2
# A hyphen at a line's end is the word's own when the word joined is this much rarer (wordfreq's
# Zipf scale, log10) than its two halves as words: "well-known" (1.6 joined, 5.3 apart) keeps it,
# "state-ment" (5.0, 3.1) and "data-base" (4.3, 4.9) do not.
HYPHEN_KEPT_ZIPF_GAP = 1.0

_LINE_BREAK = re.compile(r"\r\n|\n|" + LINE_END_HYPHEN)
_FIGURES = re.compile(r"\d+")
_WORD_BEFORE = re.compile(r"(\w+)$")
_WORD_AFTER = re.compile(r"^(\w+)")
_HYPHEN_BETWEEN_WORDS = re.compile(r"(\w+)" + LINE_END_HYPHEN + r"(\w+)")
_ENDS_CLAUSE = re.compile(r"[,;:\-–—(]$")
_WRITTEN_WORD = re.compile(r"\w+(?:-\w+)*")


def page_text(textpage: Any) -> str:
    """The page's text as PDFium gives it (`get_text_bounded`), with a blank line where a paragraph
    ends by the page's geometry (see the module's text). Where the lines of the text and those of
    the page's text rectangles do not pair off one to one, the text is left as it came."""
    text = textpage.get_text_bounded()
    boxes = _line_boxes(textpage)
    pieces = _LINE_BREAK.split(text)
    if len(pieces) != len(boxes) or len(boxes) < 2:
        return text
    breaks = _LINE_BREAK.findall(text)
    ends = paragraph_ends([piece.strip() for piece in pieces], boxes)
    joined = [pieces[0]]
    for i, (mark, piece) in enumerate(zip(breaks, pieces[1:])):
        joined.append("\n\n" if i in ends and mark != LINE_END_HYPHEN else mark)
        joined.append(piece)
    return "".join(joined)


def paragraph_ends(lines: Sequence[str], boxes: Sequence[tuple[float, float, float, float]]) -> set[int]:
    """The indexes of the `lines` after which a paragraph ends, from their `boxes` (left, bottom,
    right, top in PDF points, y upward), one a line, in reading order."""
    steps = [upper[1] - lower[1] for upper, lower in zip(boxes, boxes[1:]) if upper[1] > lower[1]]
    if not steps:
        return set()
    # The lower quartile, not the median: on a page of headings and short paragraphs (a title
    # page, a table of contents) most steps are a paragraph's.
    usual_step = statistics.quantiles(steps, n=4, method="inclusive")[0] if len(steps) >= 4 else min(steps)
    ends: set[int] = set()
    for i in range(len(lines) - 1):
        step = boxes[i][1] - boxes[i + 1][1]
        if step <= 0:
            continue  # the next line is beside or above: another column, a table's cell
        if step > PARAGRAPH_STEP * usual_step or _stops_short(i, lines, boxes):
            ends.add(i)
    return ends


def _stops_short(i: int, lines: Sequence[str], boxes: Sequence[tuple[float, float, float, float]]) -> bool:
    """Whether line `i` ends before its column's right edge with room for the next line's first
    word: a paragraph's last line, a heading, a list item. Not a line that ends on a comma or a
    dash (an address, a clause set out), nor one before a line in lower case (a wrap the writer
    made by hand); one before a capital, a figure or a mark is ("Key facts" over "- Stops: 22",
    "1.1. Version" over "1.2. Scope")."""
    line, following = lines[i], lines[i + 1]
    if not line or not following or _ENDS_CLAUSE.search(line) or following[:1].islower():
        return False
    left, _, right, _ = boxes[i]
    column_right = max(box[2] for box in boxes if abs(box[0] - left) <= COLUMN_LEFT_TOLERANCE)
    next_left, _, next_right, _ = boxes[i + 1]
    char_width = (next_right - next_left) / max(len(following), 1)
    first_word = following.split()[0]
    return right + (len(first_word) + 1 + SHORT_LINE_SLACK_CHARS) * char_width < column_right


def _line_boxes(textpage: Any) -> list[tuple[float, float, float, float]]:
    """The page's text lines as boxes: PDFium's text rectangles, those side by side on one line
    merged."""
    lines: list[list[float]] = []
    for index in range(textpage.count_rects()):
        left, bottom, right, top = textpage.get_rect(index)
        if lines:
            last = lines[-1]
            overlap = min(top, last[3]) - max(bottom, last[1])
            if overlap > 0.5 * min(top - bottom, last[3] - last[1]) and left >= last[0] - 1:
                last[:] = [min(last[0], left), min(last[1], bottom), max(last[2], right), max(last[3], top)]
                continue
        lines.append([left, bottom, right, top])
    return [(box[0], box[1], box[2], box[3]) for box in lines]


def without_running_lines(pages: list[str]) -> list[str]:
    """`pages` without their running headers and footers: a line among a page's first or last
    RUNNING_EDGE_LINES that stands there, its figures aside, on at least half the pages with text
    (and two at least). ``["Times\\nA.\\nPage 1", "Times\\nB.\\nPage 2"] -> ["A.", "B."]``.
    A one-page PDF keeps its lines: nothing shows which of them are the site's."""
    with_text = [page for page in pages if page.strip()]
    if len(with_text) < 2:
        return pages
    seen: Counter[str] = Counter()
    for page in with_text:
        lines = [line for line in page.split("\n") if line.strip()]
        seen.update({_running_key(line) for line in lines[:RUNNING_EDGE_LINES] + lines[-RUNNING_EDGE_LINES:]})
    needed = max(2, math.ceil(len(with_text) / 2))
    running = {key for key, count in seen.items() if count >= needed}
    return [_strip_running(page, running) for page in pages] if running else pages


def _running_key(line: str) -> str:
    return _FIGURES.sub("#", " ".join(line.split())).casefold()


def _strip_running(page: str, running: set[str]) -> str:
    lines = page.split("\n")
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    dropped = {i for i in nonblank[:RUNNING_EDGE_LINES] if _running_key(lines[i]) in running}
    dropped |= {i for i in nonblank[-RUNNING_EDGE_LINES:] if _running_key(lines[i]) in running}
    return "\n".join(line for i, line in enumerate(lines) if i not in dropped).strip("\n")


def line_end_hyphens(pages: list[str]) -> list[str]:
    """`pages` with each hyphen PDFium marked at a line's end (LINE_END_HYPHEN) made a hyphen or
    dropped, the halves joined: "recon\\x02struction" -> "reconstruction", "forty\\x02seven" ->
    "forty-seven", "anti\\x02American" -> "anti-American"."""
    if not any(LINE_END_HYPHEN in page for page in pages):
        return pages
    # The words as the document writes them where no line's end cuts them, hyphened ones whole.
    written = set(_WRITTEN_WORD.findall(_HYPHEN_BETWEEN_WORDS.sub(" ", "\n".join(pages)).casefold()))

    def mended(match: re.Match[str]) -> str:
        first, second = match.groups()
        return first + _hyphen_kept(first, second, written) + second

    # A mark left (one before a page's end, or beside a figure's mark) is shown as the hyphen it is.
    return [_HYPHEN_BETWEEN_WORDS.sub(mended, page).replace(LINE_END_HYPHEN, "-") for page in pages]


def _hyphen_kept(first: str, second: str, written: set[str]) -> str:
    """"-" when the hyphen between `first` and `second` is the word's own, "" when it only broke
    the word at the line's end; `written`, the document's words (casefolded) elsewhere."""
    if second[:1].isdigit() or first[-1:].isdigit() or (second[:1].isupper() and not second.isupper()):
        return "-"  # "COVID-19", "2023-24", "anti-American": no word is broken so
    whole, hyphened = (first + second).casefold(), f"{first}-{second}".casefold()
    if whole in written:
        return ""
    if hyphened in written:
        return "-"
    from wordfreq import zipf_frequency  # lazy: only PDFs with hyphens at line ends need it

    apart = zipf_frequency(f"{first} {second}".casefold(), "en")
    return "-" if zipf_frequency(whole, "en") < apart - HYPHEN_KEPT_ZIPF_GAP else ""
