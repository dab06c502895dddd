"""A PDF's text layer read as its reader sees the page (qa.ingest reads PDFs through this).

PDFium gives a page's text a line at a time and no more: a heading, a caption or a list item runs
into the sentence under it, since no blank line parts them; the site's name and the page number
that a browser prints on every page stand in the story; and a word hyphenated at a line's end
comes as its two halves and a mark, whether the hyphen is the word's ("forty-seven") or only the
line's ("recon-struction"). Three repairs, each from what the page shows:

- `read_page`: a blank line where the page leaves more space between two lines than its lines of
  that size take within a paragraph, or where a line stops short of its column with room for the
  next line's first word (the end of a paragraph, a heading, a list item), as a text file has one;
- `without_running_lines`: the lines at the very top or bottom of most pages that are the same on
  each, or the same but for a number that counts the pages ("Page 3 of 7", a browser's
  "12/5/23, 3:14 PM Port news | The Harbour Times" and its address line), taken off every page;
- `line_end_hyphens`: each hyphen at a line's end dropped where the word joined is a word, kept
  where the document or English (wordfreq) writes it with one.

The PDF objects come from pypdfium2, which qa.ingest imports; this module reads them, and calls
PDFium itself only for a line's font size (its raw API, imported where used).
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# PDFium's mark for a hyphen that ends a line (the line break goes with it).
LINE_END_HYPHEN = "\x02"
# A line whose baseline is this many times the usual step of lines of its size (paragraph_ends)
# below the line above it starts a new paragraph: 1.0 within a paragraph; a paragraph's spacing, or a heading's, 1.4 to 2
# (Word's 8 points after 11-point text, fpdf2's ln(4) under 6 mm lines: 1.6).
PARAGRAPH_STEP = 1.35
# A line that stops this many of its characters' widths or more short of its column's right edge,
# beyond the width of the next line's first word, ends its paragraph: that word would have fitted.
SHORT_LINE_SLACK_CHARS = 2
# How far apart (points) two lines' left edges may be and still be in one column.
COLUMN_LEFT_TOLERANCE = 20.0
# How many lines a running header or footer may run to, peeled from the page's edge inwards.
RUNNING_EDGE_LINES = 2
# How far apart (points) a running line may stand on two pages.
SAME_HEIGHT_POINTS = 2.0
# The first page's top line is its title, not the running header that repeats it on the other
# pages, when it is set this much larger than the page's text.
TITLE_HEIGHT_RATIO = 1.2
# A hyphen at a line's end goes when the word joined is this common (wordfreq's Zipf scale: about
# once in a million words): "out-break", "can-not", "head-line" are words whole.
JOINED_WORD_ZIPF = 3.0
# Otherwise it stays when the word joined is this much rarer than its two halves as words:
# "well-known" (1.6 joined, 5.3 apart), "self-employed" (1.5, 4.4).
HYPHEN_KEPT_ZIPF_GAP = 1.0

_LINE_BREAK = re.compile(r"\r\n|\n|" + LINE_END_HYPHEN)
_NUMBER = re.compile(r"\d+")
_HYPHEN_BETWEEN_WORDS = re.compile(r"(\w+)" + LINE_END_HYPHEN + r"(\w+)")
_ENDS_CLAUSE = re.compile(r"[,;:\-–—(]$")
_WRITTEN_WORD = re.compile(r"\w+(?:-\w+)*")

Box = tuple[float, float, float, float]  # left, bottom, right, top, in PDF points (y upward)


@dataclass(frozen=True)
class ReadPage:
    """One page's text (its paragraphs parted by blank lines); whether its first line is set
    larger than the rest of its text (a title); and where on the page (the baseline's height, in
    points) each of its lines with words stands, where the page's geometry was read (else empty)."""

    text: str
    opens_large: bool = False
    line_baselines: tuple[float, ...] = ()


def read_page(textpage: Any) -> ReadPage:
    """The page's text as PDFium gives it (`get_text_bounded`), with a blank line where a paragraph
    ends by the page's geometry (see the module's text). Where the lines of the text and those of
    the page's text rectangles do not pair off one to one, the text is left as it came."""
    text = textpage.get_text_bounded()
    boxes = _line_boxes(textpage)
    pieces = _LINE_BREAK.split(text)
    if len(pieces) != len(boxes) or len(boxes) < 2:
        return ReadPage(text)
    heights = [top - bottom for _, bottom, _, top in boxes]
    opens_large = heights[0] > TITLE_HEIGHT_RATIO * statistics.median(heights)
    breaks = _LINE_BREAK.findall(text)
    # Where each line of the text stands (the baseline of its first part: a word hyphenated at a
    # line's end carries a text line onto the next line of the page).
    placed = [boxes[0][1]] + [box[1] for mark, box in zip(breaks, boxes[1:]) if mark != LINE_END_HYPHEN]
    starts = [pieces[0]] + [piece for mark, piece in zip(breaks, pieces[1:]) if mark != LINE_END_HYPHEN]
    line_baselines = tuple(y for y, piece in zip(placed, starts) if piece.strip())
    ends = paragraph_ends([piece.strip() for piece in pieces], boxes, _font_sizes(textpage, boxes))
    joined = [pieces[0]]
    for i, (mark, piece) in enumerate(zip(breaks, pieces[1:])):
        joined.append("\n\n" if i in ends and mark != LINE_END_HYPHEN else mark)
        joined.append(piece)
    return ReadPage("".join(joined), opens_large, line_baselines)


def paragraph_ends(lines: Sequence[str], boxes: Sequence[Box], sizes: Sequence[float] | None = None) -> set[int]:
    """The indexes of the `lines` after which a paragraph ends, from their `boxes` and font `sizes`
    (points; all one size when not given), one a line, in reading order.

    A line's usual step is the least step between two lines of its size on the page: double-spaced
    text over single-spaced notes in a smaller size steps as the text does, and a page of
    one-line paragraphs with one wrapped line among them shows its line step in that line."""
    sizes = sizes or [0.0] * len(boxes)
    least: dict[float, float] = {}
    for upper, lower, size, next_size in zip(boxes, boxes[1:], sizes, sizes[1:]):
        step = upper[1] - lower[1]
        if step > 0 and size == next_size:
            least[size] = min(least.get(size, step), step)
    fallback = min(least.values(), default=math.inf)
    ends: set[int] = set()
    for i in range(len(lines) - 1):
        step = boxes[i][1] - boxes[i + 1][1]
        if step <= 0:
            continue  # the next line is beside or above: another column, a table's cell
        usual = least.get(sizes[i + 1], least.get(sizes[i], fallback))
        if step > PARAGRAPH_STEP * usual or _stops_short(i, lines, boxes):
            ends.add(i)
    return ends


def _font_sizes(textpage: Any, boxes: Sequence[Box]) -> list[float]:
    """The font size of each line (of the character at its start), or 0.0 where PDFium finds none."""
    import pypdfium2.raw as pdfium_c  # the caller has PDFium imported already

    sizes = []
    for left, bottom, _, top in boxes:
        index = textpage.get_index(left + 1, (bottom + top) / 2, 3, 3)
        found = index is not None and index >= 0
        sizes.append(round(pdfium_c.FPDFText_GetFontSize(textpage.raw, index), 1) if found else 0.0)
    return sizes


def _stops_short(i: int, lines: Sequence[str], boxes: Sequence[Box]) -> bool:
    """Whether line `i` ends before its column's right edge with room for the next line's first
    word: a paragraph's last line, a heading, a list item. Not a line that ends on a comma or a
    dash (an address, a clause set out), nor one before a line in lower case (a wrap the writer
    made by hand); one before a capital, a figure or a mark is ("Key facts" over "- Stops: 22",
    "1.1. Version" over "1.2. Scope")."""
    line, following = lines[i], lines[i + 1]
    if not line or not following or _ENDS_CLAUSE.search(line) or following[:1].islower():
        return False
    left, _, right, _ = boxes[i]
    column_right = _column_edge(left, lines, boxes)
    if column_right is None:
        return False
    next_left, _, next_right, _ = boxes[i + 1]
    char_width = (next_right - next_left) / max(len(following), 1)
    first_word = following.split()[0]
    return right + (len(first_word) + 1 + SHORT_LINE_SLACK_CHARS) * char_width < column_right


def _column_edge(left: float, lines: Sequence[str], boxes: Sequence[Box]) -> float | None:
    """The right edge of the column whose lines start at `left`: the median right end of its lines
    that a sentence wraps from (the next line goes on in lower case), or None when none does. Not
    the furthest right of all: a headline across two columns, a URL or a line of code that runs
    past the margin would make every other line look short."""
    wrapped = sorted(
        box[2] for box, following in zip(boxes, lines[1:])
        if abs(box[0] - left) <= COLUMN_LEFT_TOLERANCE and following[:1].islower()
    )
    return statistics.median(wrapped) if wrapped else None


def _line_boxes(textpage: Any) -> list[Box]:
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


def without_running_lines(pages: Sequence[ReadPage]) -> list[str]:
    """The pages' texts without their running headers and footers.

    A running line is peeled off a page's top or bottom (RUNNING_EDGE_LINES at most, from the edge
    inwards) where, on at least half the pages with text and two at least, the line at that place
    stands at the same height on the page and reads the same, or the same but for a number that
    goes up with the page ("Page 3 of 7"). Not a line that reads so elsewhere on a page too (a
    table's rows, a form's fields), nor a letter's closing (it stands where each letter ends),
    nor the first page's title set large over a header that repeats it small, nor the lines of a
    page that would be left empty with more than one line on it (a notice printed twice): a page
    of one line that every page repeats is a scanner's stamp, and goes.
    ``["Times\\nA.\\nPage 1", "Times\\nB.\\nPage 2"] -> ["A.", "B."]``; a one-page PDF keeps
    every line: nothing shows which of them are the site's.
    """
    texts = [page.text for page in pages]
    numbered = [n for n, text in enumerate(texts) if text.strip()]
    if len(numbered) < 2:
        return texts
    needed = max(2, math.ceil(len(numbered) / 2))
    lines_of = {n: [line for line in texts[n].split("\n") if line.strip()] for n in numbered}
    # Where each line's shape (its numbers masked) stands: (page, line, height on the page) by
    # (shape, place from the top or the bottom); and the shapes that stand away from the edges.
    inner: set[str] = set()
    at_edge: dict[tuple[str, int], list[tuple[int, str, float | None]]] = {}
    for n, lines in lines_of.items():
        baselines = pages[n].line_baselines if len(pages[n].line_baselines) == len(lines) else [None] * len(lines)
        edge = min(RUNNING_EDGE_LINES, len(lines))
        # A line of a short page may be both among the first and among the last.
        places: dict[int, list[int]] = {}
        for i in range(edge):
            places.setdefault(i, []).append(i)
            places.setdefault(len(lines) - 1 - i, []).append(-1 - i)
        for i, line in enumerate(lines):
            for place in places.get(i, []):
                at_edge.setdefault((_shape(line), place), []).append((n, line, baselines[i]))
            if i not in places:
                inner.add(_shape(line))
    running = {
        key for key, seen in at_edge.items()
        if key[0] not in inner and len({n for n, _, _ in seen}) >= needed and _runs(seen, needed)
    }
    if not running:
        return texts
    kept = list(texts)
    for n, lines in lines_of.items():
        top = _peeled(lines, running, 0, +1, 0 if n == numbered[0] and pages[n].opens_large else RUNNING_EDGE_LINES)
        bottom = _peeled(lines[top:], running, -1, -1, RUNNING_EDGE_LINES)
        if top + bottom < len(lines) or len(lines) == 1:
            kept[n] = _without_lines(texts[n], top, bottom)
    return kept


def _shape(line: str) -> str:
    return _NUMBER.sub("#", " ".join(line.split())).casefold()


def _runs(seen: list[tuple[int, str, float | None]], needed: int) -> bool:
    """Whether the lines `seen` at one place of the pages ((page, line, height on the page)) run
    on `needed` pages: at one height (where it is known), reading the same or differing only in a
    number that goes up with the page (a page number, not a table's figures or a chapter's year)."""
    baselines = [y for _, _, y in seen if y is not None]
    if len(baselines) == len(seen):
        at_one_height = max(sum(abs(y - k) <= SAME_HEIGHT_POINTS for y in baselines) for k in baselines)
        if at_one_height < needed:
            return False
    if Counter(" ".join(line.split()) for _, line, _ in seen).most_common(1)[0][1] >= needed:
        return True
    # One number that goes up with the page, the others the same on every page ("Page 3 of 7").
    numbers = [[int(x) for x in _NUMBER.findall(line)] for _, line, _ in seen]
    varying = [place for place in range(len(numbers[0])) if len({found[place] for found in numbers}) > 1]
    if len(varying) != 1:
        return False
    offsets = Counter(found[varying[0]] - n for (n, _, _), found in zip(seen, numbers))
    return offsets.most_common(1)[0][1] >= needed


def _peeled(lines: list[str], running: set[tuple[str, int]], start: int, direction: int, most: int) -> int:
    """How many of `lines`, from `start` (0, the top; -1, the bottom) inwards, are running lines."""
    count = 0
    while count < min(most, len(lines)):
        place = count if direction > 0 else -1 - count
        if (_shape(lines[start + direction * count]), place) not in running:
            break
        count += 1
    return count


def _without_lines(text: str, top: int, bottom: int) -> str:
    """`text` without its first `top` and last `bottom` lines with words (blank ones between go too)."""
    lines = text.split("\n")
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    first = nonblank[top] if top < len(nonblank) else len(lines)
    last = nonblank[len(nonblank) - 1 - bottom] if bottom < len(nonblank) else -1
    return "\n".join(lines[first:last + 1]).strip("\n")


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
    if second[:1].isdigit() or first[-1:].isdigit():
        return "-"  # "COVID-19", "2023-24"
    if second[:1].isupper() and not second.isupper() and not first.isupper():
        return "-"  # "anti-American", "Jean-Pierre"; not "YYM-MDDhhmmss", a code cut anywhere
    whole, hyphened = (first + second).casefold(), f"{first}-{second}".casefold()
    if whole in written:
        return ""
    if hyphened in written:
        return "-"
    from wordfreq import zipf_frequency  # lazy: only PDFs with hyphens at line ends need it

    whole_zipf = zipf_frequency(whole, "en")
    if whole_zipf >= JOINED_WORD_ZIPF:
        return ""
    return "-" if whole_zipf < zipf_frequency(f"{first} {second}".casefold(), "en") - HYPHEN_KEPT_ZIPF_GAP else ""
