"""Files on disk -> `Article` records: find the article files, decode them, strip site chrome.

A news page saved as text starts with site furniture before the story::

    Get the latest updates as we post them — right on your browser
    . Last Updated: 07/27/2016
    Ivanov's Offer Links Iraq to Chechnya
    Russia has suggested for the first time ...

which becomes ``title="Ivanov's Offer Links Iraq to Chechnya"``, ``date="2016-07-27"`` and a text
that starts at "Russia has suggested".
"""

from __future__ import annotations

import codecs
import datetime as dt
import errno
import functools
import hashlib
import os
import re
import stat
import unicodedata
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING

from qa.config import ARTICLE_SUFFIXES
from qa.errors import IngestError
from qa.paths import unstorable_name
from qa.pdf import LINE_END_HYPHEN, ReadPage, line_end_hyphens, read_page, without_running_lines
from qa.text import MONTH_NUMBERS, content_words
from qa.types import Article

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

MAX_FILE_BYTES = 50 * 1024 * 1024
# A PDF's bytes are mostly its pictures: a 70 MB annual report may hold 400 KB of text. Its text
# is held to MAX_FILE_BYTES as a text file is.
MAX_PDF_BYTES = 500 * 1024 * 1024
MAX_PDF_TEXT_CHARS = 50_000_000
# What a file that is not text is said to be, with what to do (a UTF-16 file without its byte-order
# mark reads as binary too).
BINARY_FILE = "binary file: not text qa can read; save it as UTF-8 text to index it"

_SNIFF_BYTES = 8 * 1024
_CONTROL_BYTES = frozenset([*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F])
_BINARY_CONTROL_SHARE = 0.3

# Only encodings that real news text is commonly saved in: left to itself charset_normalizer will
# call a short Russian text Shift-JIS, and an article decoded that way is worse than no article.
# The order breaks ties: Western European text reads the same under several code pages, and
# cp1252 is the likeliest of them.
_LEGACY_ENCODINGS = (
    "cp1252", "latin_1", "iso8859_15", "cp1251", "koi8_r", "cp1250", "iso8859_2",
    "shift_jis", "cp932", "euc_jp", "gb18030", "big5", "euc_kr", "cp949",
)  # fmt: skip
_UNDECODABLE = "not valid UTF-8 or a known legacy encoding"

_HTML_SUFFIXES = (".html", ".htm")
_PDF_SUFFIXES = (".pdf",)
# Between two pages of a PDF's clean text, as pdftotext writes it: qa.pages counts these to give a
# citation its page, and the chunker reads the blank lines around it as a paragraph break, so no
# sentence runs across two pages.
_PDF_PAGE_BREAK = "\n\f\n"
_PDF_DATE = re.compile(r"^D:(\d{4})(\d{2})(\d{2})")
# A Title that the program which made the PDF filled in, not its author: Word's "Microsoft Word -
# draft_v3.docx", a file name, "Untitled". Taken as the title it would lead every chunk into the
# model and count twice in article keyword scoring, so the PDF is read as one with no Title.
_PLACEHOLDER_PDF_TITLE = re.compile(
    r"^(?:untitled(?:\s+document)?(?:[\s_-]*\d+)?|microsoft\s+(?:word|excel|powerpoint)\s+-\s.*"
    r"|document\s*\d*|powerpoint\s+presentation|presentation\s*\d*|layout\s*\d+"
    r"|.*\S\.(?:pdf|docx?|odt|rtf|txt|md|html?|tex|pptx?|xlsx?|indd|e?ps|dvi))$",
    re.IGNORECASE,
)
_MARKDOWN_SUFFIXES = (".md", ".markdown")

_TITLE_MAX_CHARS = 200
_HEADER_MAX_LINES = 15  # a header longer than this is not a header: leave the text alone
_BODY_MIN_CHARS = 120
_BODY_MIN_WORDS = 6
_BOILERPLATE_MAX_CHARS = 200  # a long line is prose even if it mentions "subscribe"

# Controls other than tab and newline carry nothing for a reader; form feeds and Unicode line
# separators are line breaks in disguise.
_TEXT_TRANSLATION = {
    **{c: None for c in [*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F]},
    0x0C: "\n",
    0x2028: "\n",
    0x2029: "\n\n",
}

# PDF text keeps PDFium's mark for a hyphen at a line's end until the whole document is read.
_PDF_TEXT_TRANSLATION = {c: t for c, t in _TEXT_TRANSLATION.items() if c != ord(LINE_END_HYPHEN)}

_LEAD_PUNCT = re.compile(r"^[\s.·•|*>#:\-–—]+")
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")
# A headline ends in no stop, but may in an ellipsis: a search result's title cut short ("Cillian
# Murphy to receive Palm Springs International Film Festival ..."); nor in a dash, which ends a
# dateline that leads into the story ("New York CNN Business —", "WASHINGTON (AP) -").
_HEADLINE_BAD_END = re.compile(r"(?:[,;:]|(?<!\.\.)\.|\s[—–-])$")
# "By Jane Doe", "BY JANE DOE" (not a headline that opens on "By the next RSV season, …"),
# "Special to the Detroit Free Press" and "From staff and wire reports".
_BYLINE = re.compile(r"^(?i:by)\s+[A-Z]|^(?i:special (?:to|for)) [Tt]he [A-Z]|^(?i:from\s.*\b(?:wire|staff|news)\s+reports)$")
# An interview's question ("Q: Why did the council vote no?"), which is the text, not its headline.
_INTERVIEW_TURN = re.compile(r"(?:Q|Question)\s*[:.]", re.IGNORECASE)
# How a file's first line may end and still be its headline (_is_title_first).
_TITLE_FIRST_END = re.compile(r"(?:\.\.\.|…|[?!][\"'”’)\]]*)$")
# A headline's line that ends on one of these words may go on in the next (a PDF's wrapped
# headline, _headline_goes_on), if that next line is this short.
_UNFINISHED_HEADLINE = re.compile(r"\s(?:for|of|the|a|an|and|or|to|in|on|at|with|from|by|as|into|over|after|its|their)$",
                                  re.IGNORECASE)
_WRAPPED_HEADLINE_MAX_WORDS = 10
_BYLINE_MAX_WORDS = 10
# How many of a PDF's first lines (its headline taken off) may be its dateline.
_PDF_DATELINE_LINES = 3
_PDF_DATELINE_WORDS = frozenset({"published", "updated", "posted", "modified", "last", "first", "on"})
# A header line this short under a longer headline candidate is a byline or a site's name, as is
# a name and a comma: "Chris Sikich, The Indianapolis Star".
_BYLINE_LIKE_WORDS = 3
# The story's lines read for the words its headline names.
_STORY_LINES_READ = 6
_NAME_THEN_OUTLET = re.compile(r"^[A-Z][\w.'’-]+(?: [A-Z][\w.'’-]+){1,2}, [A-Z]")
# A byline line under a PDF's headline: "By Ana Reis", "BY ANA REIS and TOMAS DUARTE"; not a
# sentence that opens with "By" ("By 2030 the port will…", "by the board's count").
_PDF_BYLINE = re.compile(r"^(?:By|BY)\s+[A-Z][\w.'’-]*(?:\s+(?:[A-Z][\w.'’-]*|and|&|,))*\s*$")
# What comes between a page's headline and the site's name in its Title: "Port news | The Times".
_SITE_AFTER_TITLE = re.compile(r"^\s*[-|–—:·•]\s*\S")

_BOILERPLATE = re.compile(
    r"""^(?:
        advertisement | advert | ad | sponsored(?:\s+content)? | paid\s+content
      | share(?:\s+(?:this|the)(?:\s+(?:article|story|page|post))?)?(?:\s+on\s+\w+)?
      | (?:print|email|tweet|facebook|twitter|whatsapp|linkedin|reddit|comments?)
      | \d+\s+comments? | leave\s+a\s+comment | show\s+comments
      | (?:read|see|view)\s+(?:more|also|full\s+(?:article|story))\b.*
      | continue\s+reading\b.*
      | related(?:\s+(?:articles?|stories|content|topics|coverage|links))?(?:\s*:.*)?
      | more\s+(?:on|from)\s+this\b.* | recommended(?:\s+for\s+you)?
      | (?:tags?|topics?|filed\s+under)\s*:.*
      | subscribe\b.* | sign\s+up\b.* | newsletter\b.* | follow\s+us\b.* | (?:click|tap)\s+here\b.*
      | get\s+(?:the|our)\s+(?:latest|newsletter|app|breaking)\b.*
      | skip\s+to\s+(?:main\s+)?content | menu | home | search | log\s*in | sign\s+in | register
      | (?:©|\(c\)|copyright\s*(?:©|\(c\)|\d)).* | .*\ball\s+rights\s+reserved\b.*
      | (?:last\s+)?(?:updated|published|posted|modified)\s*(?::|on\b|at\b|by\b|\d).*
      | .*\bright\s+on\s+your\s+(?:browser|phone|screen)\b.*
      | .*\b(?:we|this\s+site)\s+uses?\s+cookies\b.* | accept(?:\s+all)?\s+cookies
      | (?:photo|image|picture|video)s?(?:\s+credits?)?\s*:.*
      | this\s+(?:article|story)\s+(?:was|has\s+been)\s+(?:originally\s+)?(?:published|updated)\b.*
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
# A footer starts with one of these; what follows it is a list of links, not prose.
_FOOTER_START = re.compile(
    r"^(?:related\b|more\s+(?:on|from)\b|read\s+more\b|see\s+also\b|recommended\b|tags?\s*:|"
    r"topics?\s*:|comments?\b|\d+\s+comments?|share\b|advertisement$|©|copyright\b)",
    re.IGNORECASE,
)
_DATELINE_WORDS = re.compile(
    r"\b(?:updated|published|posted|modified|dated?|by)\b", re.IGNORECASE
)
_WEEKDAY_OR_TIME = re.compile(
    r"\b(?:mon|tues?|wed(?:nes)?|thu(?:rs)?|fri|sat(?:ur)?|sun)(?:day)?\b\.?|"
    r"\b\d{1,2}:\d{2}(?::\d{2})?\s*(?:[ap]\.?m\.?)?|\b(?:[ap]\.?m\.?|gmt|utc|[ecmp][sd]t)\b|\bat\b",
    re.IGNORECASE,
)

# A month's name, its three letters or "sept" (qa.text.MONTH_NUMBERS), and a stop: "Sept. 3",
# "3 January". Matched case-insensitively.
_MONTH_NAME = r"\b(" + "|".join(sorted(MONTH_NUMBERS, key=len, reverse=True)) + r")\.?"
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})(?![\d])")
_SLASH_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
_MONTH_DAY_YEAR = re.compile(
    _MONTH_NAME + r"\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b", re.IGNORECASE
)
_DAY_MONTH_YEAR = re.compile(
    r"\b(\d{1,2})(?:st|nd|rd|th)?\s+" + _MONTH_NAME + r",?\s+(\d{4})\b", re.IGNORECASE
)

# A line of a front matter block: a `key:` (a word or two), a list item, a continuation or a comment.
_YAML_LINE = re.compile(r"^(?:[A-Za-z_][\w.-]*(?: [\w.-]+)?\s*:(?:\s|$)|\s*- |\s+\S|#)")
# A title or date on a line of its own, read as written where the block is not valid YAML.
_FRONT_MATTER_FIELD = re.compile(r"^(title|date)\s*:\s*(.*?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class SkippedFile:
    """A path that was not ingested, and why in one short line."""

    path: str
    reason: str


def discover_files(
    paths: Iterable[str | os.PathLike[str]],
) -> tuple[list[Path], list[SkippedFile]]:
    """The article files under `paths` (folders walked in sorted order) and the paths skipped."""
    walk = _Walk()
    walk.run(paths)
    return [Path(p) for p in walk.found], walk.skipped


def discover_paths(
    paths: Iterable[str | os.PathLike[str]], with_real_names: bool = False,
) -> tuple[list[str], list[SkippedFile], dict[str, os.stat_result], dict[str, str]]:
    """`discover_files` as absolute path strings, with the stat of each plain file met in a folder
    (taken relative to the open folder, the cheapest stat there is), and, `with_real_names`, the
    real path of each file found under another name (through a link). A Path per file cost 9 µs,
    a third of a scan of an unchanged corpus."""
    walk = _Walk(with_stats=True, with_real_names=with_real_names)
    walk.run(paths)
    return walk.found, walk.skipped, walk.stats, walk.real_names or {}


def document_id(path: str | os.PathLike[str]) -> str:
    """A stable id for the file at `path`: 16 hex digits of the SHA-1 of its absolute path."""
    absolute = str(Path(path).absolute()).encode("utf-8", "surrogateescape")
    return hashlib.sha1(absolute).hexdigest()[:16]


def content_hash(data: bytes) -> str:
    """The SHA-256 of a file's raw bytes, which decides whether it must be indexed again."""
    return hashlib.sha256(data).hexdigest()


def read_article(path: str | os.PathLike[str], data: bytes | None = None) -> Article:
    """Read one file (or the `data` already read from it) as an article, or raise `IngestError`."""
    path = Path(path).absolute()
    unstorable = unstorable_name(str(path))
    if unstorable:
        raise IngestError(unstorable)
    if data is None:
        data = _read_bytes(path)
    elif len(data) > max_file_bytes(path):
        raise IngestError(_too_large(path))
    if not data.strip():
        raise IngestError("empty file")
    if path.suffix.lower() in _PDF_SUFFIXES:
        text, title, date = _read_pdf(data, path)
        return Article(doc_id=document_id(path), path=str(path), title=_composed(title or title_from_name(path)),
                       text=_composed(text), content_hash=content_hash(data), date=date)
    text = _decode(data)
    if not text.strip():
        raise IngestError("empty file")

    suffix = path.suffix.lower()
    if suffix in _HTML_SUFFIXES:
        text, title, date = _read_html(text)
    elif suffix in _MARKDOWN_SUFFIXES:
        text, title, date = _read_markdown(text)
    else:
        text, title, date = clean_news_text(text)
    if not re.search(r"[^\W_]", text):
        # Only marks left ("#", "* * *"): nothing a passage could quote.
        raise IngestError("no text left after cleaning")
    return Article(
        doc_id=document_id(path),
        path=str(path),
        title=_composed(title or title_from_name(path)),
        text=_composed(text),
        content_hash=content_hash(data),
        date=date,
    )


def clean_news_text(raw_text: str) -> tuple[str, str | None, str | None]:
    """A news page saved as text -> (clean body, headline or None, ISO date or None)."""
    lines = _unwrap(_normalize(raw_text)).split("\n")
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    # A file's first line that trails off ("…Film Festival ...") is a title cut short, as a search
    # result gives it, not the story's first sentence; further down, a teaser that does is story.
    # So is a short first line that asks or exclaims ("Will Beyonce and Jay-Z make history at the
    # 2023 Grammy Awards?"): a story opens on a statement far more often than a headline does.
    first_is_title = bool(nonblank) and _is_title_first(lines[nonblank[0]])
    body_start = next(
        (i for i in nonblank[first_is_title:_HEADER_MAX_LINES] if _is_body_paragraph(lines[i])), None
    )

    title: str | None = None
    date: str | None = None
    kept_header: list[str] = []
    if body_start is not None:
        header = [lines[i].strip() for i in nonblank if i < body_start]
        title, date, kept_header = _split_header(header, " ".join(lines[body_start:body_start + _STORY_LINES_READ]))
        lines = lines[body_start:]

    body = [line for line in _cut_footer(lines) if not _is_boilerplate(line)]
    text = _normalize("\n\n".join([*kept_header, "\n".join(body)]))
    return text, title, date or lead_dateline_day(text)


# -- discovery ------------------------------------------------------------------------------------


class _Walk:
    """What a discovery run has found so far; real paths remembered so links cannot loop or repeat."""

    def __init__(self, with_stats: bool = False, with_real_names: bool = False) -> None:
        self.found: list[str] = []
        self.skipped: list[SkippedFile] = []
        self.stats: dict[str, os.stat_result] = {}
        self._with_stats = with_stats and os.scandir in os.supports_fd
        self._seen_files: set[str] = set()
        self._seen_dirs: set[str] = set()
        # Links met in folders, walked after every real entry of every path given: a file or a
        # folder reachable both ways keeps its real name, wherever the link sorts ("a_links/" before
        # "archive/"), and its citation and its updates follow the real file.
        self._links: deque[tuple[str, frozenset[str]]] = deque()
        # The real path of each file found under another name, when asked for: reached through a
        # link to it or to a folder above it (qa.indexer names such a file as a remembered
        # folder's scan does). A scan of the remembered folders alone has no use for it.
        self.real_names: dict[str, str] | None = {} if with_real_names else None

    def run(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        """Walk each path given by the user, then the links met on the way (and theirs)."""
        for raw in paths:
            self.start(raw)
        while self._links:
            self._link(*self._links.popleft())

    def start(self, raw: str | os.PathLike[str]) -> None:
        """Walk one path given by the user: a folder, or a file named directly."""
        path = str(Path(os.path.expanduser(os.fspath(raw))).absolute())  # not abspath: ".." past a link is not folded
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            self.skip(path, _stat_failure(Path(path), exc))
            return
        if stat.S_ISDIR(mode):
            self.folder(path)
        elif not stat.S_ISREG(mode):
            self.skip(path, "not a regular file")
        elif is_article_name(os.path.basename(path)):
            self.keep(path)
        else:
            self.skip(path, f"not an article file ({Path(path).suffix or 'no suffix'})")

    def keep(self, path: str, real: str | None = None) -> bool:
        """Add a file to those found; False when it was found already."""
        # The same file reached twice (named twice, or through a link) is indexed once.
        real = real or os.path.realpath(path)
        if real in self._seen_files:
            return False
        self._seen_files.add(real)
        self.found.append(path)
        if real != path and self.real_names is not None:
            self.real_names[path] = real
        return True

    def skip(self, path: str, reason: str) -> None:
        skipped = SkippedFile(path, reason)
        if skipped not in self.skipped:
            self.skipped.append(skipped)

    def folder(self, path: str, ancestors: frozenset[str] = frozenset()) -> None:
        real = os.path.realpath(path)
        if real in ancestors:
            self.skip(path, "symlink loop")
            return
        if real in self._seen_dirs:
            return  # another link to a folder already walked: its files are already found
        self._seen_dirs.add(real)
        handle = None
        try:
            # Listed through an open handle, a file's stat looks up its name alone, not every
            # folder of its path again.
            handle = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)) if self._with_stats else None
            with os.scandir(path if handle is None else handle) as scan:
                by_name = sorted(scan, key=_ENTRY_NAME)
            inside = ancestors | {real}
            self._links.extend((link, inside) for link in self._plain_entries(path, real, by_name, inside))
        except OSError as exc:
            self.skip(path, _stat_failure(Path(path), exc))
        finally:
            if handle is not None:
                os.close(handle)

    def _plain_entries(self, path: str, real: str, entries: list[os.DirEntry], inside: frozenset[str]) -> list[str]:
        """Walks the entries that are not links, and returns the links' paths, for `_link`. A
        folder of plain files is the common case, and every step of this loop counts in a scan
        that finds nothing new (100,000 files). An entry whose type cannot be read is skipped on
        its own; the folder's others are still found."""
        prefix = path.rstrip(os.sep) + os.sep
        real_prefix = real.rstrip(os.sep) + os.sep
        seen, found, links = self._seen_files, self.found, []
        stats = self.stats if self._with_stats else None
        # A folder reached through a link: each file's real path differs from its name.
        real_names = self.real_names if real_prefix != prefix else None  # None when not asked for
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            try:
                if entry.is_symlink():
                    links.append(prefix + name)
                    continue
                if entry.is_dir():
                    self.folder(prefix + name, inside)
                    continue
                if not is_article_name(name):
                    continue  # images, spreadsheets and the like sit beside articles; they are not news
                if not entry.is_file():
                    self.skip(prefix + name, "not a regular file")
                    continue
            except OSError as exc:
                self.skip(prefix + name, _stat_failure(Path(prefix + name), exc))
                continue
            # A plain file's real path is its real folder's plus its name: resolving it again (a
            # stat per path part) was most of the time of an update that found nothing new.
            real_path = real_prefix + name
            if real_path in seen:
                continue
            seen.add(real_path)
            child = prefix + name
            found.append(child)
            if real_names is not None:
                real_names[child] = real_path
            if stats is not None:
                try:
                    stats[child] = entry.stat()
                except OSError:
                    pass  # stat again later, where the error is reported
        return links

    def _link(self, path: str, inside: frozenset[str]) -> None:
        """A link met in a folder (`run` follows each after every plain entry): a folder is walked,
        an article file kept unless its real file was found already."""
        try:
            found = os.stat(path)
        except OSError as exc:
            # A broken link to what is not an article (an image gone) is left alone, as such
            # files are; a loop, a refusal or a broken article link is reported.
            if exc.errno != errno.ENOENT or is_article_name(os.path.basename(path)):
                self.skip(path, _stat_failure(Path(path), exc))
            return
        if stat.S_ISDIR(found.st_mode):
            self.folder(path, inside)
        elif not is_article_name(os.path.basename(path)):
            return  # images, spreadsheets and the like sit beside articles; they are not news
        elif not stat.S_ISREG(found.st_mode):
            self.skip(path, "not a regular file")  # leads to a device, a socket, a FIFO
        elif self.keep(path) and self._with_stats:
            self.stats[path] = found


def _stat_failure(path: Path, exc: OSError) -> str:
    """A short reason for a path that could not be looked at."""
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if isinstance(exc, FileNotFoundError):
        return "broken symlink" if path.is_symlink() else "no such file or folder"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"could not be read: {exc.strerror or exc}"


_ENTRY_NAME = attrgetter("name")


def is_article_name(name: str) -> bool:
    """Whether a file of this name is read as an article (qa.config.ARTICLE_SUFFIXES)."""
    return name.lower().endswith(ARTICLE_SUFFIXES)


# -- bytes to text --------------------------------------------------------------------------------


def max_file_bytes(path: str | os.PathLike[str]) -> int:
    """The largest file at `path` that is read as an article: MAX_PDF_BYTES for a PDF."""
    return MAX_PDF_BYTES if os.fspath(path).lower().endswith(_PDF_SUFFIXES) else MAX_FILE_BYTES


def _too_large(path: str | os.PathLike[str]) -> str:
    return f"larger than {max_file_bytes(path) // (1024 * 1024)} MB: split it into articles to index it"


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, refusing before reading anything that is huge or not a plain file."""
    try:
        # Non-blocking so that a FIFO named like an article cannot hang the run at open().
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise IngestError(f"could not be read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise IngestError("not a regular file")
        if info.st_size > max_file_bytes(path):
            raise IngestError(_too_large(path))
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(max_file_bytes(path) + 1)  # the file may have grown since fstat
    except OSError as exc:
        raise IngestError(f"could not be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > max_file_bytes(path):
        raise IngestError(_too_large(path))
    return data


def _composed(text: str) -> str:
    """`text` with each accent composed with its letter (Unicode NFC), as questions are read
    (qa.retrieve.clean_query): text from a PDF or a Mac often stores "é" as "e" and a combining
    mark, where a word ends for the keyword index, so "Nuñez" typed was never found. (The model
    reads both forms alike; about one news page in eleven of RealTimeQA's holds such text.)"""
    return unicodedata.normalize("NFC", text)


def _decode(data: bytes) -> str:
    """Bytes -> text: UTF-8 first, then UTF-16 with a BOM, then a common legacy encoding."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Checked before the binary test because UTF-16 text is full of NUL bytes.
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise IngestError(_UNDECODABLE) from None
        if _has_control_chars(text):
            raise IngestError(_UNDECODABLE)
        return text.translate(_TEXT_TRANSLATION)
    if _looks_binary(data[:_SNIFF_BYTES]):
        raise IngestError(BINARY_FILE)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = _mostly_utf8(data) or _decode_legacy(data)
    return text.translate(_TEXT_TRANSLATION)


def _mostly_utf8(data: bytes) -> str | None:
    """UTF-8 text with a few bad bytes (a file cut or joined mid-character, one stray byte), each
    read as U+FFFD; None when the bad bytes are not a few among well-formed characters. A legacy
    encoding's letters ("café" as b"caf\xe9") are almost never well-formed UTF-8, so a file that
    holds some well-formed multi-byte characters and at most half as many bad bytes is UTF-8:
    read as a legacy encoding, every one of its accented letters would be garbled ("cafĂŠ")."""
    text = data.decode("utf-8-sig", errors="replace")
    bad = text.count("\ufffd") - data.count("\ufffd".encode())
    well_formed = sum(1 for ch in text if ch > "\x7f") - text.count("\ufffd")
    return text if well_formed and bad * 2 <= well_formed else None


def _looks_binary(sample: bytes) -> bool:
    if b"\x00" in sample:
        return True
    controls = sum(1 for byte in sample if byte in _CONTROL_BYTES)
    return controls > _BINARY_CONTROL_SHARE * len(sample)


def _decode_legacy(data: bytes) -> str:
    """Text in the common legacy encoding charset_normalizer finds likeliest that decodes cleanly."""
    import charset_normalizer  # lazy: only files that are not UTF-8 need it

    matches = list(charset_normalizer.from_bytes(data, cp_isolation=list(_LEGACY_ENCODINGS)))
    if matches:
        best = (matches[0].chaos, matches[0].coherence)
        # Stable sort: matches that tie with the best come first, in our order; the rest keep theirs.
        matches.sort(
            key=lambda match: (
                (match.chaos, match.coherence) != best,
                min(map(_encoding_rank, match.could_be_from_charset))
                if (match.chaos, match.coherence) == best
                else 0,
            )
        )
    for match in matches:
        try:
            text = data.decode(match.encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        if not _has_control_chars(text):
            return text
    raise IngestError(_UNDECODABLE)


def _encoding_rank(name: str) -> int:
    return _LEGACY_ENCODINGS.index(name) if name in _LEGACY_ENCODINGS else len(_LEGACY_ENCODINGS)


def _has_control_chars(text: str) -> bool:
    return any((ch < " " and ch not in "\t\n\r") or "\x7f" <= ch <= "\x9f" for ch in text)


def _normalize(text: str) -> str:
    """Unix newlines, no trailing spaces, paragraphs separated by exactly one blank line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _unwrap(text: str) -> str:
    """Paragraphs hard-wrapped at a fixed width (an email, a text editor's wrap) joined into one line
    each, as the story's paragraphs are in a page saved as text; other line breaks are kept.

    A block counts as wrapped when each of its lines but the last is 40 to 130 characters long and
    some of them do not end a sentence: a wrap cuts sentences, a list or a header does not.
    """
    blocks = text.split("\n\n")
    for i, block in enumerate(blocks):
        lines = block.split("\n")
        body = lines[:-1]
        if (body and all(40 <= len(line) <= 130 and not line.lstrip().startswith(("-", "*", "•")) for line in body)
                and any(not _SENTENCE_END.search(line) for line in body)):
            blocks[i] = " ".join(line.strip() for line in lines)
    return "\n\n".join(blocks)


def article_heading(title: str, path: str | os.PathLike[str]) -> str | None:
    """The article's own headline, to lead its texts into the model; None when its title is only
    its file name, which says nothing about the text: ``("Ivanov's Offer", "a.txt") -> "Ivanov's Offer"``."""
    return None if title == title_from_name(path) else title


def title_from_name(path: str | os.PathLike[str]) -> str:
    """The title an article gets when it has none of its own: its file name, words spaced."""
    path = Path(path)
    return re.sub(r"[\s_-]+", " ", path.stem).strip() or path.name


def _tidy_title(title: str) -> str:
    return re.sub(r"\s+", " ", title).strip()


# -- PDF ------------------------------------------------------------------------------------------


def _read_pdf(data: bytes, path: Path) -> tuple[str, str | None, str | None]:
    """The text layer of a PDF, its pages joined by a form feed and its headline taken off; its
    title and date from its metadata, or the headline for a title.

    A PDF with no text on any page (a scan) is refused: it needs OCR, which qa does not do.
    """
    import pypdfium2 as pdfium  # lazy: only PDF files need PDFium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if exc.err_code == pdfium.raw.FPDF_ERR_PASSWORD:
            raise IngestError("encrypted: it needs a password to open; save a copy without one to index it") from None
        raise IngestError(_unreadable_pdf(data, exc)) from None
    try:
        read = [_pdf_page_text(page) for page in pdf]
        metadata = pdf.get_metadata_dict(skip_empty=True)
    except pdfium.PdfiumError as exc:
        raise IngestError(f"not a readable PDF ({_pdfium_reason(exc)}): a download cut short? fetch it again") from None
    finally:
        pdf.close()
    # Running headers and footers off first: a scan whose every page says only "Scanned with
    # CamScanner" has no text, and a headline under a site's name is the page's first line then.
    pages = line_end_hyphens(without_running_lines(read))
    if sum(map(len, pages)) > MAX_PDF_TEXT_CHARS:
        raise IngestError(f"its text runs past {MAX_PDF_TEXT_CHARS:,} characters: split it into articles to index it")
    if not any(pages):
        raise IngestError("no text layer (a scanned PDF?): run OCR on it first")
    title = _tidy_title(metadata.get("Title", "").translate(_TEXT_TRANSLATION)) or None
    if title is not None and _is_placeholder_title(title, path):
        title = None
    title, pages = _take_pdf_headline(title, pages)
    if title is None:
        # A report whose name heads every page, the first too, and no other headline: its name.
        header = _running_header(read, pages)
        if header is not None and _is_headline(header) and not re.search(r"\d", header):
            title = _tidy_title(header)
    # The day the story states under its headline, over the day the file was made: a page saved
    # from a browser was made when it was printed, years after the story perhaps.
    date = _pdf_dateline(pages) or lead_dateline_day(next((page for page in pages if page.strip()), ""))
    if date is None:
        found = _PDF_DATE.match(metadata.get("CreationDate", ""))
        date = _make_date(*found.groups()) if found else None
    return _PDF_PAGE_BREAK.join(pages), title, date


def _running_header(read: list[ReadPage], pages: list[str]) -> str | None:
    """The first line of the first page with text, where it was taken off as a running header."""
    first = next((n for n, page in enumerate(read) if page.text.strip()), None)
    if first is None:
        return None
    line = next(line for line in read[first].text.split("\n") if line.strip())
    return None if pages[first].lstrip().startswith(line.strip()) else line.strip()


def _is_placeholder_title(title: str, path: Path) -> bool:
    """Whether a PDF's Title is filler (see _PLACEHOLDER_PDF_TITLE) or the file's own name:
    ``("Microsoft Word - draft_v3.docx", Path("a.pdf")) -> True``."""
    names = {path.name.casefold(), path.stem.casefold(), title_from_name(path).casefold()}
    return bool(_PLACEHOLDER_PDF_TITLE.match(title)) or title.casefold() in names


def _take_pdf_headline(title: str | None, pages: list[str]) -> tuple[str | None, list[str]]:
    """The PDF's title and its pages, the headline taken off them, as a text file's headline is
    kept out of its text: ``(None, ["Port news\\nThe port grew."]) -> ("Port news", ["The port grew."])``.

    PDFium ends each line with one newline, so a headline left in the text reads as the start of
    the first sentence ("Port news The port grew."), in answers too. The headline is the first
    line, or the first two or three (a headline wrapped at the page's edge), when they are the
    Title or the Title's start before a site's name ("Port news | The Harbour Times"); with no
    Title, the first line (or the first two, when a title-case headline wraps: _headline_goes_on)
    when it reads as a headline and the next line starts with a capital: a first line that the
    next goes on in lower case (or with a figure), or that ends on a small word in lower case
    ("voted to"), may be a sentence wrapped at the page's edge, its words the article's. A byline
    ("By Ana Reis") right under a headline goes with it. Citations keep their pages: qa.pages counts the form feeds before an offset, and
    the headline comes before all of them.
    """
    first_page = next(i for i, page in enumerate(pages) if page)
    all_lines = pages[first_page].split("\n")
    # Read without the blank lines that part a headline from its byline and story (qa.pdf.page_text).
    nonblank = [i for i, line in enumerate(all_lines) if line.strip()]
    lines = [all_lines[i] for i in nonblank]
    taken = _title_lines(title, lines)
    if taken == 0 and title is None:
        for count in (2, 1) if _headline_goes_on(lines) else (1,):
            headline = " ".join(lines[:count])
            after = next((page for page in ["\n".join(lines[count:]).lstrip("\n"), *pages[first_page + 1 :]] if page), "")
            if _is_headline(headline) and (not after or _starts_anew(after)) and not _ends_mid_sentence(headline):
                title, taken = _tidy_title(headline), count
                break
    if taken and taken < len(lines) and _PDF_BYLINE.match(lines[taken]) and len(lines[taken].split()) <= _BYLINE_MAX_WORDS:
        taken += 1
    rest = "\n".join(all_lines[nonblank[taken]:]) if taken < len(lines) else ""
    if not taken or not (rest or any(pages[first_page + 1 :])):
        return title, pages  # no headline, or one that is the whole text (a one-line PDF)
    return title, [*pages[:first_page], rest, *pages[first_page + 1 :]]


def _pdf_dateline(pages: list[str]) -> str | None:
    """The day a dateline among the first page's first _PDF_DATELINE_LINES lines states ("March 3,
    2021", "Published: 12 March 2024"), or None. A dateline is a paragraph of its own (qa.pdf parts
    them: "March 3, 2021." may be where a sentence wraps) holding a day and no words but a weekday,
    a time and _PDF_DATELINE_WORDS: "Due date: 1 March 2024", "Date of birth: …" or a table's
    "June 5, 2021 Opening concert" are not. It stays in the text: a flyer's date is its news."""
    first_page = next(i for i, page in enumerate(pages) if page)
    lines = pages[first_page].split("\n")
    for i in [n for n, line in enumerate(lines) if line.strip()][:_PDF_DATELINE_LINES]:
        plain = lines[i].strip()
        if _is_body_paragraph(plain):
            break
        if (i > 0 and lines[i - 1].strip()) or (i + 1 < len(lines) and lines[i + 1].strip()):
            continue
        found = _find_date(plain)
        if found is not None and {word.casefold() for word in _words_beside_dates(plain)} <= _PDF_DATELINE_WORDS:
            return found
    return None


def _headline_goes_on(lines: list[str]) -> bool:
    """Whether a PDF's first line is a title-case headline that wraps onto its second: the first
    ends on a small word ("City Council Approves Budget For") and the second is a short title-case
    line ("New Library Wing"), no byline, dateline or sentence. Some headlines end on such a word
    ("Talks Drag On"): then the second line is the text's, and reads otherwise."""
    if len(lines) < 3 or not _UNFINISHED_HEADLINE.search(lines[0]) or not lines[0].split()[-1][0].isupper():
        return False
    second = lines[1].strip()
    words = second.split()
    return (0 < len(words) <= _WRAPPED_HEADLINE_MAX_WORDS and not _PDF_BYLINE.match(second)
            and not re.search(r"[,.;:!?()\-–—]", second)
            and all(word[0].isupper() for word in words if len(word) > 3))


def _ends_mid_sentence(line: str) -> bool:
    """A line that ends on a small word in lower case ("The council voted to") is a sentence
    wrapped at the page's edge, not a headline."""
    return bool(_UNFINISHED_HEADLINE.search(line)) and line.split()[-1].islower()


def _title_lines(title: str | None, lines: list[str]) -> int:
    """How many of a PDF's first `lines` (up to 3) are its `title`, or the title's start before a
    site's name ("Port news - The Harbour Times"); 0 when they are not."""
    if not title:
        return 0
    wanted = title.casefold()
    for count in range(1, min(3, len(lines)) + 1):
        said = _tidy_title(" ".join(lines[:count])).casefold()
        if not said:
            return 0
        if said == wanted:
            return count
        if _is_headline(said) and wanted.startswith(said) and _SITE_AFTER_TITLE.match(wanted[len(said):]):
            # The Title's start, the site after it: the headline, unless the text goes on from it
            # in lower case ("The port" / "is growing fast…" under "The port - annual report").
            after = lines[count] if count < len(lines) else ""
            return count if not after.strip() or _starts_anew(after) else 0
    return 0


def _starts_anew(text: str) -> bool:
    """Whether `text` opens with a capital (past quotes and brackets): a line that does may start a
    sentence of its own; one in lower case, or with a figure, goes on from the line above."""
    return text.lstrip("\"'“‘(")[:1].isupper()


def _unreadable_pdf(data: bytes, exc: Exception) -> str:
    """Why PDFium could not open `data`, with what to do: a web page or text saved under a .pdf name
    is said to be one (PDFium looks for its "%PDF-" mark in the first kilobyte too)."""
    if b"%PDF-" not in data[:1024]:
        head = data[:_SNIFF_BYTES].lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:512]:
            return "not a PDF but a web page saved under a .pdf name: rename it .html to index it"
        if not _looks_binary(data[:_SNIFF_BYTES]):
            return "not a PDF but text saved under a .pdf name: rename it .txt to index it"
    return f"not a readable PDF ({_pdfium_reason(exc)}): a download cut short? fetch it again"


def _pdfium_reason(exc: Exception) -> str:
    """PDFium's reason in one line, without its full stop: "Failed to load document (PDFium: Data
    format error)" (it was put in brackets after ours, brackets in brackets and a stray stop)."""
    return _one_line(str(exc)).rstrip(".") or type(exc).__name__


def _pdf_page_text(page) -> ReadPage:
    textpage = page.get_textpage()
    try:
        read = read_page(textpage)
    finally:
        textpage.close()
        page.close()
    # PDFium ends lines with CRLF and may leave form feeds and NULs of its own; its mark for a
    # hyphen at a line's end stays for line_end_hyphens.
    return replace(read, text=_normalize(read.text.replace("\f", "\n").translate(_PDF_TEXT_TRANSLATION)))


def _one_line(text: str) -> str:
    return " ".join(text.split())


# -- HTML and Markdown ----------------------------------------------------------------------------


def _read_html(html: str) -> tuple[str, str | None, str | None]:
    """The main text, title and date of a web page, as trafilatura finds them."""
    import trafilatura  # lazy: it pulls in lxml and friends, which `qa --help` does not need

    # The date is htmldate's extensive search, which also reads dates in the page's text and can
    # guess wrong ("will return in 2025"). Metadata alone was worse: on htmldate's 799 evaluation
    # pages with a gold date, read without their URL as here, 620 right and 118 wrong against
    # 710 right and 70 wrong (2026-12-05).
    document = trafilatura.bare_extraction(
        html,
        favor_precision=True,  # a missed paragraph costs less than a menu answering a question
        with_metadata=True,
        include_comments=False,
        include_images=False,
        include_links=False,
    )
    body = _normalize(getattr(document, "text", None) or "")
    if not body:
        raise IngestError("no article text found in HTML")
    title = _tidy_title(getattr(document, "title", None) or "") or None
    lines = [line.strip() for line in body.split("\n") if line.strip()]
    if title and lines and _tidy_title(lines[0]) == title:
        lines = lines[1:]  # trafilatura keeps the <h1>; it is the title, not the text
    # On a page with no article trafilatura falls back to whatever text there is, menus included.
    lines = [line for line in lines if not _is_boilerplate(line)]
    # trafilatura puts one element per line; a blank line between them marks the paragraphs.
    text = _normalize("\n\n".join(lines))
    if not text or not _has_prose(text):
        raise IngestError("no article text found in HTML")
    return text, title, _day_the_page_states(_parse_date(getattr(document, "date", None) or ""), html)


def _day_the_page_states(date: str | None, html: str) -> str | None:
    """`date`, unless it is January 1st of a year the page gives alone: htmldate makes a year it
    finds with no day ("Copyright 2024", in a footer dropped from the text) January 1st, and an
    article dated so would be left out of `--since 2024-06-01`. The page must write that day of
    that year: "January 1, 2024", "01/01/2024", "2024-01-01T08:30:00Z" in its metadata (not an
    epoch's "1970-01-01T00:00:00Z" in a script)."""
    if date is None or not date.endswith("-01-01"):
        return date
    year = re.escape(date[:4])
    new_years_day = re.compile(
        rf"\bjan(?:uary|\.)?\s+(?:1st|1|01),?\s+{year}\b|\b(?:1st|1|01)\s+jan(?:uary)?\.?,?\s+{year}\b"
        rf"|\b0?1[/.-]0?1[/.-]{year}\b|\b{year}[/.-]0?1[/.-]0?1(?:T|\b)", re.IGNORECASE)
    return date if new_years_day.search(html) else None


def _has_prose(text: str) -> bool:
    """Whether text holds at least one sentence-like line: a menu ("Home | About") does not."""
    return any(len(line.split()) >= 6 for line in text.split("\n"))


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _read_markdown(markdown: str) -> tuple[str, str | None, str | None]:
    """Text, title and date of a Markdown file: front matter first (YAML between `---` lines, or
    Hugo's TOML between `+++` lines), then the first level-one heading."""
    lines = _normalize(markdown).split("\n")
    fields: dict[str, str] = {}
    fence = lines[0].strip() if lines else ""
    if fence in ("---", "+++"):
        closing = ("---", "...") if fence == "---" else ("+++",)
        end = next((i for i in range(1, len(lines)) if lines[i].strip() in closing), None)
        if end is not None:
            block = "\n".join(lines[1:end])
            found = _front_matter(block) if fence == "---" else _toml_front_matter(block)
            if found is not None:
                fields = found
                lines = lines[end + 1 :]

    title = _tidy_title(fields.get("title", "")) or None
    # Jekyll and Hugo write `date:`; web clippers (Obsidian's), Hugo and Astro `published:`,
    # `publishdate:`, `pubdate:`. Not `created:`, the day it was clipped.
    date = next((day for key in _FRONT_MATTER_DATES if (day := _parse_date(fields.get(key, "")))), None)
    if date is None:
        date, lines = _take_dateline(lines)
    text, heading = _markdown_text("\n".join(lines), title)
    title = heading or title
    if title is None and text:
        first = _LEAD_PUNCT.sub("", text.split("\n", 1)[0]).strip()
        title = _cut_at_word(first, 120) or None
    return text, title, date


def _cut_at_word(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, at a space when there is one."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    return (head.rsplit(" ", 1)[0] if " " in head else text[:limit]).rstrip()


# Footnotes as people write them ("…the bridge,[^1]" and "[^1]: The city's figures."), which
# CommonMark has no rule for: a reference is a mark, not a word; a note's text is the article's.
_FOOTNOTE_REFERENCE = re.compile(r"\[\^[^\]\s]+\](?!:)")
_FOOTNOTE_NOTE = re.compile(r"^\[\^[^\]\s]+\]:[ \t]*", re.MULTILINE)
# HTML tags that end a line where a Markdown paragraph holds them ("unemployment<br>fell").
_LINE_TAGS = re.compile(r"<\s*/?\s*(?:br|p|div|li|tr|h[1-6])\b[^>]*>", re.IGNORECASE)
_HTML_BLOCKS = frozenset("address article aside blockquote br dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6 "
                         "header hr li main nav ol p pre section table tr ul".split())


def _markdown_text(markdown: str, title: str | None = None) -> tuple[str, str | None]:
    """The words of a Markdown text as a reader sees them, and its first level-one heading when
    that is the title (`title`, that title and the site's name, or the only one known): the
    heading is then left out of the text.

    No emphasis marks, link targets, images, struck-out words, or heading, list, quote and
    footnote marks: an answer quotes the article's words, and a page clipped to Markdown
    ("[Reuters](https://…) reported **on Monday**") would otherwise be quoted with its markup and
    its addresses indexed as words, as an HTML page's are not. Each paragraph, heading, list item,
    table row (its cells joined by " | ", empty ones kept in their place) and code block is a
    paragraph of the text, so that a quote never runs from one item into the next; an ordered
    item keeps its number. A line break stays one, and a paragraph's wrapped lines are joined as a
    text file's are (_unwrap). An HTML block's text is kept, its scripts and styles are not.
    """
    markdown = _FOOTNOTE_NOTE.sub("", _FOOTNOTE_REFERENCE.sub("", markdown))
    parts: list[str] = []
    cells: list[str] | None = None
    number = ""  # an ordered list item's number, which says its place ("Which came third?")
    heading: str | None = None
    heading_open = looked_for_heading = False
    for token in _markdown_parser().parse(markdown):
        if token.type == "list_item_open" and token.info:
            number = f"{token.info}{token.markup} "
        elif token.type == "heading_open" and token.tag == "h1" and not looked_for_heading:
            heading_open = looked_for_heading = True  # the first level-one heading, `#` or underlined
        elif token.type == "tr_open":
            cells = []
        elif token.type == "tr_close" and cells is not None:
            parts.append(" | ".join(cells) + "\n\n")
            cells = None
        elif token.type == "inline":
            words = _unwrap(_markdown_inline(token.children or []))
            if heading_open:
                heading_open = False
                said = _tidy_title(words)
                # The front matter's title may carry the site's name after the headline ("Ferry
                # service suspended - The Coastal Gazette"), as a page's <title> does.
                if title is None or said in (title, _markdown_title(title)) or (
                        said and title.startswith(said) and _SITE_AFTER_TITLE.match(title[len(said):])):
                    heading = said or None
                    continue
            if cells is not None:
                cells.append(" ".join(words.split()))
            else:
                parts.append(number + words + "\n\n")
            number = ""
        elif token.type in ("fence", "code_block"):
            parts.append(token.content.rstrip("\n") + "\n\n")
        elif token.type == "html_block":
            parts.append(_html_block_text(token.content) + "\n\n")
    return _normalize("".join(parts)), heading


@functools.cache
def _markdown_parser() -> MarkdownIt:
    from markdown_it import MarkdownIt  # lazy: it comes with rich; only Markdown files need it

    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _markdown_inline(children: Sequence[Token]) -> str:
    """A paragraph's, heading's or cell's words. An image's alt text (kept in the image token's own
    children) describes a picture and is left out, as an HTML page's images are; struck-out words
    are what the writer took back ("~~1 May~~ 15 May"); a `<br>` ends a line."""
    words: list[str] = []
    struck = 0
    for child in children:
        if child.type in ("s_open", "s_close"):
            struck += 1 if child.type == "s_open" else -1
        elif struck:
            continue
        elif child.type in ("text", "code_inline"):
            words.append(child.content)
        elif child.type in ("softbreak", "hardbreak") or (child.type == "html_inline" and _LINE_TAGS.match(child.content)):
            words.append("\n")
    return re.sub(r"[ \t]{2,}", " ", "".join(words)).strip()  # no gap where a mark or struck words were


def _markdown_title(line: str) -> str:
    """A heading's words without their emphasis marks or link targets."""
    return _tidy_title(_markdown_inline(_markdown_parser().parseInline(line)[0].children or []))


def _html_block_text(html: str) -> str:
    """The text of an HTML block in a Markdown file (`<p>…</p>`, a `<figure>`'s caption), each of
    its block elements on a line of its own; scripts and styles are no text."""
    import lxml.html  # lazy: installed with trafilatura, which reads HTML articles

    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except Exception:  # lxml's ParserError for a block of comments or nothing: no words to keep
        return ""
    for element in list(root.iter("script", "style", "template")):
        element.drop_tree()
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.lower() in _HTML_BLOCKS:
            element.tail = "\n" + (element.tail or "")
            element.text = "\n" + (element.text or "")
        elif isinstance(element.tag, str) and element.tag.lower() in ("td", "th"):
            element.tail = " " + (element.tail or "")
    return _normalize("\n".join(" ".join(line.split()) for line in root.text_content().split("\n")))


def _toml_front_matter(block: str) -> dict[str, str] | None:
    """The text fields of Hugo's TOML front matter (between `+++` lines), keys lower-cased; a
    date as TOML reads it (a datetime) is written back as ISO text. None when it is not TOML."""
    try:
        import tomllib  # Python 3.11 on
    except ModuleNotFoundError:  # 3.10: tomli, the same parser, which pyproject.toml names for it
        import tomli as tomllib

    try:
        mapping = tomllib.loads(block)
    except tomllib.TOMLDecodeError:
        return None
    fields: dict[str, str] = {}
    for key, value in mapping.items():
        if isinstance(value, str):
            fields[key.lower()] = value
        elif isinstance(value, (dt.date, dt.datetime)):
            fields[key.lower()] = value.isoformat()
    return fields


_MARKDOWN_BLOCK_MARK = re.compile(r"\s*(?:#{1,6}(?:\s|$)|[-+*]\s|\d{1,9}[.)]\s|>|\|)")


def _take_dateline(lines: list[str]) -> tuple[str | None, list[str]]:
    """A dateline among a Markdown story's lines before its first paragraph ("Published: 12 March
    2024", "*By Ana Smith | March 12, 2024*"), as a text file's header has it: its day, and the
    lines without it; (None, lines) when there is none."""
    for i, line in enumerate(lines[:_HEADER_MAX_LINES]):
        plain = line.strip().strip("*_").strip()
        if not plain or _MARKDOWN_BLOCK_MARK.match(line):
            continue  # a heading, list item, quote or table row is the story's ("## 2.0.0 (2024-03-12)")
        if _is_body_paragraph(plain):
            break  # the story has begun: a date in it is the story's ("on February 7, 2016")
        found = _find_date(plain)
        if found is not None and _is_dateline(plain):
            return found, lines[:i] + lines[i + 1:]
    return None, lines


_FRONT_MATTER_DATES = ("date", "published", "publishdate", "pubdate", "date_published")


def _front_matter(block: str) -> dict[str, str] | None:
    """The text fields of a front matter block, keys lower-cased; None when the block is not
    front matter: a story may open with a `---` rule and have another further down, and the
    paragraphs between them ("Editor's note: …") are the article.

    A block whose every line reads as YAML (`key:`, a list item, a continuation, a comment) is
    front matter. PyYAML reads it, so quotes, escapes and folded or literal values (`title: >`)
    come out as YAML means them, every value as text (BaseLoader), a date as it was written. What
    PyYAML refuses but people write ("title: Breaking: Ferry sinks") is read line by line.
    """
    import yaml  # lazy: only Markdown files with front matter need it

    lines = block.split("\n")
    if not all(_YAML_LINE.match(line) for line in lines if line.strip()):
        return None
    try:
        mapping = yaml.load(block, Loader=getattr(yaml, "CBaseLoader", yaml.BaseLoader))
    except yaml.YAMLError:
        found = (_FRONT_MATTER_FIELD.match(line) for line in lines)
        return {m.group(1).lower(): _unquote(m.group(2)) for m in reversed([m for m in found if m])}
    if mapping is None:  # nothing but comments, or nothing at all
        return {}
    if not isinstance(mapping, dict):
        return None
    fields: dict[str, str] = {}
    for key, value in mapping.items():
        if isinstance(key, str) and isinstance(value, str):
            fields.setdefault(key.lower(), value.strip())
    return fields


# -- news text ------------------------------------------------------------------------------------


def _split_header(header: list[str], story: str = "") -> tuple[str | None, str | None, list[str]]:
    """Header lines -> (headline, date, lines worth keeping such as a standfirst); `story`, the
    story's opening lines, tells a headline (the story names what it names) from a byline."""
    date: str | None = None
    candidates: list[int] = []
    content: list[str] = []
    for line in header:
        found = _find_date(line)
        if found is not None and _is_dateline(line):
            date = date or found
            continue
        if _is_boilerplate(line):
            continue
        if _is_headline(line):
            candidates.append(len(content))
        content.append(line)
    if not candidates:
        return None, date, content
    # The headline sits right above the story; what comes before it is the site's name and sections,
    # what comes between it and the story (a standfirst, a byline) belongs to the story.
    headline = candidates[-1]
    told = set(content_words(story))
    # A short line right under a longer candidate may be the byline or the site's ("David
    # Shepardson", "Reuters Staff", "Chris Sikich, The Indianapolis Star"), which pages without a
    # "By" put there: the longer line is the headline then, and the short one stays with the
    # story. The short one is the headline only where the story names what it names and nothing
    # the longer line names ("Floods hit Spain" under "World news from the Guardian"); a story
    # names its outlet or reporter now and then ("(Reuters) -"), but its headline's words always.
    if len(candidates) > 1 and candidates[-2] == headline - 1 and told:
        last, above = content[headline], content[headline - 1]
        outlet_after = _NAME_THEN_OUTLET.match(last)
        credited = last.split(",")[0] if outlet_after else last
        if (len(last.split()) <= _BYLINE_LIKE_WORDS or outlet_after) and len(above.split()) > len(credited.split()):
            if not (told & set(content_words(last)) and not told & set(content_words(above))):
                headline -= 1
    if candidates[0] == 0 < headline and told:
        # Unless the header opens with a line that names more of what the story names: the
        # headline of a file saved as "headline, then the page", over a credit ("Special to the
        # Detroit Free Press", "Guest columnist") that the rules above took. Only the first line
        # (past a dated or boilerplate one): a banner or a "Live updates" line between a site's
        # name and the headline would win as often as it lost.
        if len(told & set(content_words(content[0]))) > len(told & set(content_words(content[headline]))):
            headline = 0
    return _tidy_title(content[headline]), date, content[headline + 1 :]


def _is_title_first(line: str) -> bool:
    """Whether a file's first line is a headline though it ends as a sentence may: cut short, or
    a question or an exclamation, and shorter than a paragraph of a story."""
    line = line.strip()
    return (bool(_TITLE_FIRST_END.search(line)) and len(line) < _BODY_MIN_CHARS and _is_headline(line)
            and not _INTERVIEW_TURN.match(line))


def _is_body_paragraph(line: str) -> bool:
    line = line.strip()
    if _is_boilerplate(line):
        return False
    if len(line) >= _BODY_MIN_CHARS:
        return True
    return bool(_SENTENCE_END.search(line)) and len(line.split()) >= _BODY_MIN_WORDS


def _is_headline(line: str) -> bool:
    return (
        len(line) <= _TITLE_MAX_CHARS
        and len(line.split()) >= 2
        and not _HEADLINE_BAD_END.search(line)
        and not _BYLINE.match(line)
    )


def _is_boilerplate(line: str) -> bool:
    core = _LEAD_PUNCT.sub("", line.strip())
    return bool(core) and len(core) <= _BOILERPLATE_MAX_CHARS and bool(_BOILERPLATE.match(core))


def _cut_footer(lines: list[str]) -> list[str]:
    """Drop a trailing run of links ("Related", "More from ...") that follows the story."""
    for i, line in enumerate(lines):
        core = _LEAD_PUNCT.sub("", line.strip())
        # A footer's first line is a label ("Related stories", "Tags: Iraq"), never a sentence.
        if core and _FOOTER_START.match(core) and not _SENTENCE_END.search(core):
            rest = lines[i + 1 :]
            if not any(_is_body_paragraph(later) for later in rest):
                return lines[:i]
    return lines


def _is_dateline(line: str) -> bool:
    """Whether a line holding a date is there to state it, not a headline that mentions one."""
    if _DATELINE_WORDS.search(line):
        return True
    return len(_words_beside_dates(line)) <= 2


def _words_beside_dates(line: str) -> list[str]:
    """The words of `line` (two letters or more) other than its dates, weekdays and times."""
    rest = line
    for pattern in (_ISO_DATE, _SLASH_DATE, _MONTH_DAY_YEAR, _DAY_MONTH_YEAR, _WEEKDAY_OR_TIME):
        rest = pattern.sub(" ", rest)
    return re.findall(r"[^\W\d_]{2,}", rest)


# A wire story's dateline, where its first paragraph begins: "REYKJAVIK, 18 December 2023 - A
# volcano erupted", "NEW YORK, May 12, 2023 — The bank", "LONDON (Reuters), March 3, 2021 –",
# "PARIS, Dec 18, 2023 (AFP) -", "KYIV, Ukraine, Monday 18 December 2023 -". The place in capitals
# (a country or state after it), then the day, then a dash: a sentence that begins with a place
# and a day reads otherwise ("Paris, 3 March 2021, was cold" has no dash after the day).
_LEAD_DATELINE = re.compile(
    r"^[^\W\d_a-z](?:[^\W\d_a-z]|[ .'’-]){1,40}"  # the place: NEW YORK, ST. LOUIS, WINSTON-SALEM
    r"(?:\s*\([^)]{1,40}\))?"  # an agency: (Reuters)
    r"(?:,\s+[^\W\d_a-z][\w.'’-]*(?:\s[^\W\d_a-z][\w.'’-]*){0,3})?"  # a country or state: Ukraine, Costa Rica
    r",\s+(?P<day>[^\n]{6,40}?)(?:\s*\([^)]{1,40}\))?\s*[-–—]\s"
)


def lead_dateline_day(text: str) -> str | None:
    """The day a wire dateline at the start of `text` states (_LEAD_DATELINE), as an ISO day."""
    found = _LEAD_DATELINE.match(text.lstrip())
    if found is None:
        return None
    day = _WEEKDAY_OR_TIME.sub(" ", found.group("day")).strip(" ,")  # "Monday 18 December 2023"
    for pattern in (_MONTH_DAY_YEAR, _DAY_MONTH_YEAR, _ISO_DATE):
        if pattern.fullmatch(day):
            return _find_date(day)
    return None


def _find_date(text: str) -> str | None:
    """The first date written in `text` as an ISO day: "Updated: 07/27/2016" -> "2016-07-27"."""
    candidates: list[tuple[int, str]] = []
    for found in _ISO_DATE.finditer(text):
        day = _make_date(found.group(1), found.group(2), found.group(3))
        if day:
            candidates.append((found.start(), day))
    for found in _SLASH_DATE.finditer(text):
        first, second, year = (int(part) for part in found.groups())
        # US order unless the first number cannot be a month.
        day = _make_date(year, first, second) or _make_date(year, second, first)
        if day:
            candidates.append((found.start(), day))
    for found in _MONTH_DAY_YEAR.finditer(text):
        day = _make_date(found.group(3), MONTH_NUMBERS[found.group(1)[:3].lower()], found.group(2))
        if day:
            candidates.append((found.start(), day))
    for found in _DAY_MONTH_YEAR.finditer(text):
        day = _make_date(found.group(3), MONTH_NUMBERS[found.group(2)[:3].lower()], found.group(1))
        if day:
            candidates.append((found.start(), day))
    return min(candidates)[1] if candidates else None


def _parse_date(value: str) -> str | None:
    return _find_date(value) if value else None


def _make_date(year: int | str, month: int | str, day: int | str) -> str | None:
    try:
        found = dt.date(int(year), int(month), int(day))
    except ValueError:
        return None
    return found.isoformat() if 1800 <= found.year <= 2200 else None
