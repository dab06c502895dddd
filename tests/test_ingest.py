"""Tests for qa.ingest: real files on disk in, Article records (or a clear IngestError) out."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.errors import IngestError
from qa.ingest import (
    BINARY_FILE,
    MAX_FILE_BYTES,
    SkippedFile,
    clean_news_text,
    content_hash,
    discover_files,
    document_id,
    read_article,
)

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
_UNDECODABLE = "not valid UTF-8 or a known legacy encoding"
IVANOV = SEEDS / "000_22cb3c343393cc32.txt"
PEACEKEEPERS = SEEDS / "004_a741ca070081d2ab.txt"

NEWS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Moscow Weighs Iraq Peacekeeping Role | The Daily Courier</title>
<meta property="og:title" content="Moscow Weighs Iraq Peacekeeping Role">
<meta property="article:published_time" content="2003-09-05T08:30:00Z">
</head>
<body>
<div id="cookie-banner" class="cookie-consent">We use cookies to improve your experience.
By continuing you accept our cookie policy. <button>Accept all cookies</button></div>
<header class="site-header">
  <a href="/" class="logo">The Daily Courier</a>
  <nav class="main-nav"><ul>
    <li><a href="/world">World news desk</a></li><li><a href="/business">Business and markets</a></li>
    <li><a href="/subscribe">Subscribe today for unlimited access</a></li>
  </ul></nav>
</header>
<main>
<article>
  <h1>Moscow Weighs Iraq Peacekeeping Role</h1>
  <p class="byline">By Anna Petrova, <time datetime="2003-09-05">September 5, 2003</time></p>
  <p>Defense Minister Sergei Ivanov said on Thursday that Russia may send peacekeepers to Iraq as part
  of an international force, a strong signal that Moscow is edging closer to Washington.</p>
  <p>"It all depends on a specific resolution. I would not exclude it outright," Ivanov said during
  military maneuvers in the southern Astrakhan region, according to the Interfax news agency.</p>
  <p>The statement precedes a visit by President Vladimir Putin to the United States later this month
  and appears to be an attempt to mend ties badly hurt by a rift over the war.</p>
  <p>Russian officials have avoided direct comment on the draft resolution circulated on Wednesday, but
  the Foreign Ministry reaffirmed its call for a quick transfer of power to a sovereign government.</p>
</article>
<aside class="related"><h2>Related stories</h2><ul>
  <li><a href="/a">Oil prices climb as talks stall in Vienna</a></li>
  <li><a href="/b">Markets rally on upbeat jobs figures</a></li></ul></aside>
</main>
<footer class="site-footer"><p>Contact us | Privacy policy | Terms of use</p>
<p>&copy; 2003 The Daily Courier. All rights reserved.</p></footer>
</body></html>
"""


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


# -- the seed articles ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "title", "first_words"),
    [
        (IVANOV, "Ivanov's Offer Links Iraq to Chechnya", "Russia has suggested for the first time"),
        (PEACEKEEPERS, "Russia May Send Peacekeepers to Iraq", "Defense Minister Sergei Ivanov said"),
    ],
)
def test_seed_article_loses_its_site_chrome(path: Path, title: str, first_words: str) -> None:
    article = read_article(path)
    assert article.title == title
    assert article.date == "2016-07-27"
    assert article.text.startswith(first_words)
    for chrome in ("Get the latest updates", "Last Updated", "right on your browser", title):
        assert chrome not in article.text
    assert article.path == str(path.absolute())
    assert article.doc_id == document_id(path)
    assert article.content_hash == content_hash(path.read_bytes())


def test_seed_text_keeps_paragraphs_apart() -> None:
    text = read_article(IVANOV).text
    assert "\r" not in text and "\n\n\n" not in text
    assert text == text.strip()
    paragraphs = text.split("\n\n")
    assert len(paragraphs) == 10
    assert paragraphs[-1].endswith("barred them from returning.")


# -- news text cleaning ---------------------------------------------------------------------------


def test_clean_news_text_finds_headline_date_and_drops_chrome_anywhere() -> None:
    raw = (
        "The Daily Courier\r\nWorld\r\n\r\nPublished: July 27, 2016\r\n\r\n"
        "Moscow Weighs Iraq Role   \r\n\r\n"
        "Defense Minister Sergei Ivanov said on Thursday that Russia may send peacekeepers.\r\n\r\n"
        "Advertisement\r\n\r\n\r\n\r\n"
        "It all depends, he said, on a specific resolution of the council.\r\n\r\n"
        "Share this article\r\n\r\n"
        "Related stories\r\nOil prices climb\r\nMarkets rally\r\n\r\n"
        "© 2016 The Daily Courier. All rights reserved.\r\n"
    )
    text, title, date = clean_news_text(raw)
    assert title == "Moscow Weighs Iraq Role"
    assert date == "2016-07-27"
    assert text == (
        "Defense Minister Sergei Ivanov said on Thursday that Russia may send peacekeepers.\n\n"
        "It all depends, he said, on a specific resolution of the council."
    )


@pytest.mark.parametrize(
    ("dateline", "iso"),
    [
        (". Last Updated: 07/27/2016", "2016-07-27"),
        ("Published: July 27, 2016", "2016-07-27"),
        ("Updated 2016-07-27", "2016-07-27"),
        ("July 27, 2016", "2016-07-27"),
        ("Wednesday, 27 July 2016 10:32 AM", "2016-07-27"),
        ("Posted on Sept. 3, 2015 at 9:15 pm", "2015-09-03"),
    ],
)
def test_clean_news_text_reads_common_datelines(dateline: str, iso: str) -> None:
    body = "The first sentence of the story is long enough to be prose."
    raw = f"{dateline}\n\nA Headline Here\n\n{body}"
    text, title, date = clean_news_text(raw)
    assert (title, date) == ("A Headline Here", iso)
    assert text == body


@pytest.mark.parametrize("byline", ["David Shepardson", "Associated Press", "USA TODAY Staff", "CNN —",
                                    "Chris Sikich, The Indianapolis Star", "Reuters Staff", "The Guardian"])
def test_a_byline_without_by_under_the_headline_is_no_headline(byline: str) -> None:
    # It used to be the title: the last short line above the story won. A story may name its
    # outlet ("(Reuters) -", "told The Associated Press"); it names its headline's words too.
    body = ("(Reuters) - Boeing workers ended their strike on Monday after a union vote approved the new contract, "
            "a union official told The Associated Press.")
    text, title, _ = clean_news_text(f"Boeing strike ends after union vote\n\n{byline}\n\n{body}")
    assert title == "Boeing strike ends after union vote"
    assert text == f"{byline}\n\n{body}"  # it stays with the story


@pytest.mark.parametrize("above", ["The Riverton Gazette Online Edition", "World news from the Guardian",
                                   "Politics | Elections 2024 | Live"])
@pytest.mark.parametrize("headline", ["Floods hit Spain", "Floods Hit Spain"])
def test_a_short_headline_under_a_sites_name_is_the_headline(above: str, headline: str) -> None:
    # The story names what its headline names, and not what a site's name or a section does.
    body = "Heavy rain flooded towns across Spain on Monday, and officials said the floods were the worst in years."
    assert clean_news_text(f"{above}\n\n{headline}\n\n{body}")[1] == headline


def test_a_headline_cut_short_with_an_ellipsis_is_still_the_headline() -> None:
    raw = ("Cillian Murphy to receive Palm Springs International Film Festival ...\n\n"
           "The actor will receive the Desert Palm Achievement Award at the gala in January.")
    assert clean_news_text(raw)[1] == "Cillian Murphy to receive Palm Springs International Film Festival ..."
    # Under a headline, a teaser that trails off is the story's, as it was.
    teaser = "Markets slide on rate fears\n\nStocks fell sharply again on Wednesday and then...\n\nTraders sold."
    assert clean_news_text(teaser)[:2] == ("Stocks fell sharply again on Wednesday and then...\n\nTraders sold.",
                                           "Markets slide on rate fears")


STORY = ("Tens of thousands of people flooded into Itaewon, the nightlife district of Seoul, for Halloween, and "
         "the crowd crush in its narrow alleys killed 154 people, officials said on Sunday.")


@pytest.mark.parametrize("under", [
    "Seoul, South Korea CNN —",  # a dateline that leads into the story
    "WASHINGTON (AP) -",
    "By Jane Doe\n\nSpecial to the Seoul Herald",  # a credit, not right under the headline
    "Guest columnist\n\nBy JANE DOE",
    "From staff and wire reports",
])
def test_a_file_that_opens_with_its_headline_keeps_it_over_a_dateline_or_credit(under: str) -> None:
    # Saved as "headline, a blank line, the page": the last headline-like line above the story
    # used to win, so the dateline or the credit was the title (a fifth of 2023's news pages so
    # written; bench/titles.py counts them).
    text, title, _ = clean_news_text(f"Itaewon: What we know about the deadly Halloween crowd crush\n\n{under}\n\n{STORY}")
    assert title == "Itaewon: What we know about the deadly Halloween crowd crush"
    assert text.endswith(STORY)


@pytest.mark.parametrize("headline", [
    "Will Itaewon's Halloween crush change how Seoul polices crowds?",
    "Crowd crush in Seoul: 154 dead after Halloween night in Itaewon!",
    "By the next Halloween, Seoul may have new rules for Itaewon crowds",
])
def test_a_first_line_that_asks_or_opens_on_by_can_be_the_headline(headline: str) -> None:
    assert clean_news_text(f"{headline}\n\n{STORY}")[:2] == (STORY, headline)


def test_a_site_name_or_banner_the_story_names_does_not_take_the_headline() -> None:
    # Only the file's first line may win over the last headline-like line, and only by naming
    # more of the story than it: a banner between a site's name and the headline never does.
    story = "Zelensky visited the Bakhmut front line on Tuesday, as Russia's war in Ukraine went on."
    assert clean_news_text(f"World\n\nLive updates: Russia's war in Ukraine\n\nZelensky visits Bakhmut front line\n\n{story}")[1] \
        == "Zelensky visits Bakhmut front line"
    told = "Lawmakers passed the voucher plan on Monday, a spokesman told The Texas Tribune."
    assert clean_news_text(f"The Texas Tribune\n\nGov OKs voucher plan\n\n{told}")[1] == "Gov OKs voucher plan"
    # Nor does it take the headline that stands between it and a credit (a review found both).
    library = ("The Detroit city council voted on Monday to close the Elm Street library branch, which has "
               "served the neighbourhood since 1921, to save money.")
    headline = "Council votes to close Elm Street library branch"
    for credit in ("Guest columnist", "Special to the Detroit Free Press"):
        assert clean_news_text(f"Detroit Free Press\n\n{headline}\n\n{credit}\n\n{library}")[1] == headline, credit


def test_an_interview_question_or_a_report_from_somewhere_is_no_headline() -> None:
    interview = "Q: Why did the council vote against the new stadium?\n\nA: Members said the cost was too high for the town."
    assert clean_news_text(interview)[:2] == (interview, None)
    assert clean_news_text(f"From Gaza, grim reports\n\n{STORY}")[1] == "From Gaza, grim reports"


def test_a_short_credit_line_above_the_headline_is_still_not_the_title() -> None:
    # The line that names what the story names wins; on a tie, the last above the story, as before.
    assert clean_news_text(f"The Seoul Herald\n\nHalloween crowd crush in Itaewon\n\n{STORY}")[1] == (
        "Halloween crowd crush in Itaewon")
    assert clean_news_text(f"World news\n\nAsia Pacific\n\n{STORY}")[1] == "Asia Pacific"


def test_clean_news_text_keeps_a_headline_that_mentions_a_date() -> None:
    raw = "Talks Set for March 3, 2024 in Vienna\n\nNegotiators will meet again in Vienna next week."
    assert clean_news_text(raw)[1:] == ("Talks Set for March 3, 2024 in Vienna", None)


def test_clean_news_text_without_header_keeps_everything() -> None:
    raw = "Russia has suggested that it might support inspections.\n\nComments were not available."
    assert clean_news_text(raw) == (raw, None, None)


def test_clean_news_text_joins_hard_wrapped_paragraphs_but_not_headers_or_lists() -> None:
    raw = (
        "Earthquake shakes Portugal's Alentejo coast\n\n"
        "A magnitude 5.3 earthquake struck off the coast of Portugal early on Tuesday, with\n"
        "its epicentre about 30 kilometres west of the port town of Sines. The quake\n"
        "occurred at a depth of 17 kilometres.\n\n"
        "- first point of a list that is long enough to look like a wrapped line\n"
        "- second point of a list that is long enough to look like a wrapped line\n"
    )
    text, title, _ = clean_news_text(raw)
    assert title == "Earthquake shakes Portugal's Alentejo coast"
    assert "with its epicentre about 30 kilometres west of the port town of Sines. The quake occurred" in text
    assert "wrapped line\n- second point" in text


def test_txt_without_headline_is_titled_by_file_name(tmp_path: Path) -> None:
    path = _write(tmp_path / "oil_prices-rise.txt", "Oil prices rose for a third day, traders said.")
    assert read_article(path).title == "oil prices rise"


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .:©\r\n\t—")), max_size=200))
def test_clean_news_text_output_is_always_tidy(raw: str) -> None:
    text, _, _ = clean_news_text(raw)
    assert text == text.strip()
    assert "\r" not in text and "\n\n\n" not in text
    assert all(line == line.rstrip() for line in text.split("\n"))


# -- HTML and Markdown ----------------------------------------------------------------------------


def test_html_page_gives_article_without_nav_or_footer(tmp_path: Path) -> None:
    article = read_article(_write(tmp_path / "page.html", NEWS_PAGE))
    assert article.title == "Moscow Weighs Iraq Peacekeeping Role"
    assert article.date == "2003-09-05"
    assert article.text.startswith("Defense Minister Sergei Ivanov said on Thursday")
    assert "sovereign government." in article.text
    assert article.text.count("\n\n") == 3  # four paragraphs, a blank line between each
    chrome_words = ("cookies", "Subscribe", "World news", "Oil prices", "Privacy", "rights reserved")
    for chrome in chrome_words:
        assert chrome not in article.text


def test_a_year_in_a_pages_footer_is_no_date(tmp_path: Path) -> None:
    # It used to be January 1st of that year (htmldate's guess from "© 2003"), and `--since
    # 2003-06-01` left the article out.
    undated = NEWS_PAGE.replace('<meta property="article:published_time" content="2003-09-05T08:30:00Z">\n', "")
    undated = undated.replace(', <time datetime="2003-09-05">September 5, 2003</time>', "")
    assert "September" not in undated and "&copy; 2003" in undated
    assert read_article(_write(tmp_path / "undated.html", undated)).date is None
    epoch = undated.replace("</head>", '<script>var start = "1970-01-01T00:00:00Z";</script></head>')
    assert read_article(_write(tmp_path / "epoch.html", epoch)).date is None  # another year's New Year
    new_year = undated.replace("By Anna Petrova", 'By Anna Petrova, <time datetime="2003-01-01">January 1, 2003</time>')
    assert read_article(_write(tmp_path / "new-year.html", new_year)).date == "2003-01-01"
    # Stated in the page's metadata alone, as a timestamp, it is a day too.
    stamped = NEWS_PAGE.replace("2003-09-05T08:30:00Z", "2003-01-01T08:30:00Z").replace(
        ', <time datetime="2003-09-05">September 5, 2003</time>', "")
    assert read_article(_write(tmp_path / "stamped.html", stamped)).date == "2003-01-01"


def test_html_without_article_text_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "empty.htm", "<html><body><nav><a href='/'>Home</a></nav></body></html>")
    with pytest.raises(IngestError, match="no article text found in HTML"):
        read_article(path)


def test_markdown_front_matter_and_heading(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "note.md",
        '---\ntitle: "Front Matter Title"\ndate: 2016-07-27T10:00:00Z\ntags: [a, b]\n---\n\n'
        "# Front Matter Title\n\nFirst paragraph.\n\n\n\nSecond paragraph.\n",
    )
    article = read_article(path)
    assert (article.title, article.date) == ("Front Matter Title", "2016-07-27")
    assert article.text == "First paragraph.\n\nSecond paragraph."
    # A web clipper's front matter: the day it was published, not the day it was clipped.
    clipped = _write(tmp_path / "clipped.md", "---\ntitle: Ferry strike ends\ncreated: 2025-12-05\n"
                                              "published: 2025-07-14\n---\n\nThe ferry strike ended.\n")
    assert read_article(clipped).date == "2025-07-14"
    # The first key that holds a day: not a template left unfilled, nor Jekyll's `published: true`.
    template = _write(tmp_path / "template.md", '---\ndate: "{{date}}"\npublished: true\npubdate: 2025-07-15\n---\n\nText.\n')
    assert read_article(template).date == "2025-07-15"


def test_markdown_rules_around_paragraphs_are_not_front_matter(tmp_path: Path) -> None:
    story = ("The harbor authority said ferry number 700 will resume service on Monday.\n\n"
             "Officials expect: crowds at the pier.")
    article = read_article(_write(tmp_path / "rule.md", f"---\n\n{story}\n\n---\n\nIn other news, the library opens late."))
    assert "ferry number 700 will resume service" in article.text
    assert "Officials expect: crowds at the pier." in article.text
    assert "In other news, the library opens late." in article.text
    # A real block, with keys the reader does not use and a list, is still front matter.
    block = "---\ntitle: Ferries\nauthor: Desk\ntags:\n  - ports\n# draft\n---\n\nBody text here."
    assert (read_article(_write(tmp_path / "fm.md", block)).text, read_article(tmp_path / "fm.md").title) == (
        "Body text here.", "Ferries")


def test_markdown_front_matter_is_read_as_yaml(tmp_path: Path) -> None:
    folded = "---\ntitle: >\n  Ferries Return\n  to the Harbor\ndate: '2024-03-01'\n---\n\nBody text here."
    article = read_article(_write(tmp_path / "folded.md", folded))
    assert (article.title, article.date, article.text) == ("Ferries Return to the Harbor", "2024-03-01", "Body text here.")
    escaped = '---\ntitle: "The \\"Quiet\\" Pier"  # a comment\n---\n\nBody.'
    assert read_article(_write(tmp_path / "escaped.md", escaped)).title == 'The "Quiet" Pier'
    # A list or a mapping where a title would be is not a title; the heading is used instead.
    listed = "---\ntitle:\n  - one\n  - two\n---\n\n# Heading Title\n\nBody."
    assert read_article(_write(tmp_path / "listed.md", listed)).title == "Heading Title"
    # What YAML refuses but people write is read line by line, as before.
    colon = read_article(_write(tmp_path / "colon.md", "---\ntitle: Breaking: Ferry sinks\ndate: 2024-03-01\n---\n\nBody."))
    assert (colon.title, colon.date, colon.text) == ("Breaking: Ferry sinks", "2024-03-01", "Body.")
    # A note between rules is the story's, not front matter.
    note = read_article(_write(tmp_path / "note.md", "---\nEditor's note: this story was updated\n---\n\nBody."))
    assert "Editor's note: this story was updated" in note.text
    # An empty block is front matter with nothing in it.
    empty = read_article(_write(tmp_path / "empty.md", "---\n---\n\nOnly the body."))
    assert (empty.title, empty.text) == ("Only the body.", "Only the body.")


def test_markdown_title_from_heading_else_first_line(tmp_path: Path) -> None:
    headed = read_article(_write(tmp_path / "a.markdown", "Intro line.\n\n# The Heading\n\nBody."))
    assert (headed.title, headed.text) == ("The Heading", "Intro line.\n\nBody.")
    plain = read_article(_write(tmp_path / "b.md", "Just body text.\n\nMore."))
    assert (plain.title, plain.text, plain.date) == ("Just body text.", "Just body text.\n\nMore.", None)


def test_markdown_is_read_as_its_words_without_markup(tmp_path: Path) -> None:
    # A page clipped to Markdown: an answer quotes the article's words, not its links and marks.
    clipped = (
        "---\ntitle: Ferry strike ends\n---\n\n# Ferry **strike** ends\n\n"
        "![Crowds at the pier](https://img.example.com/a.jpg)\n\n"
        "[Reuters](https://reuters.com/x) reported **on Monday** that the _harbor_ strike, which began in\n"
        "June and halted every crossing between the islands, has ended after talks.\n\n"
        "## What changed\n\n- Wages rise by 4%\n- Night crossings return\n\n"
        "| Route | Crossings |\n| --- | --- |\n| North | 12 |\n\n"
        "> \"We are glad,\" said `Ana Smith`.\n\n"
        "<figure><img src=\"x.jpg\"><figcaption>Ana Smith at the pier.</figcaption></figure>\n\n"
        "3. snake_case names and 5 * 3 = 15 stay \\*as written\\*\n"
    )
    article = read_article(_write(tmp_path / "clipped.md", clipped))
    assert article.title == "Ferry strike ends"
    assert article.text.split("\n\n") == [
        "Reuters reported on Monday that the harbor strike, which began in June and halted every crossing "
        "between the islands, has ended after talks.", "What changed", "Wages rise by 4%", "Night crossings return",
        "Route | Crossings", "North | 12", '"We are glad," said Ana Smith.', "Ana Smith at the pier.",
        "3. snake_case names and 5 * 3 = 15 stay *as written*",
    ]
    # A heading's own marks go too, when the heading is the title; a closing `#` needs a space.
    assert read_article(_write(tmp_path / "h.md", "# The [Pier](https://x.example) *reopens*\n\nBody.")).title == (
        "The Pier reopens")
    assert read_article(_write(tmp_path / "c.md", "# Moving from Java to C#\n\nBody.")).title == "Moving from Java to C#"


def test_markdown_items_rows_and_steps_are_quoted_one_at_a_time(tmp_path: Path) -> None:
    from qa.chunk import split_sentences

    steps = "1. Fill bathtubs before Tuesday\n2. Boil all tap water for three minutes once supply returns\n3. Report leaks\n"
    text = read_article(_write(tmp_path / "steps.md", f"Advice for residents:\n\n{steps}")).text
    assert [text[a:b] for a, b in split_sentences(text)] == [
        "Advice for residents:", "1. Fill bathtubs before Tuesday",
        "2. Boil all tap water for three minutes once supply returns", "3. Report leaks"]
    nested = read_article(_write(tmp_path / "n.md", "Notes:\n\n- Prints matches in color\n  - colors can be changed\n")).text
    assert nested == "Notes:\n\nPrints matches in color\n\ncolors can be changed"
    # An empty cell keeps its place: 7 seats are 2023's, not 2019's.
    table = "| Party | 2019 | 2023 |\n| --- | --- | --- |\n| Green Alliance |  | 7 |\n| Farmers | 5 |  |\n"
    assert read_article(_write(tmp_path / "t.md", f"Seats won:\n\n{table}")).text == (
        "Seats won:\n\nParty | 2019 | 2023\n\nGreen Alliance |  | 7\n\nFarmers | 5 |")


def test_markdown_headings_html_footnotes_and_struck_words(tmp_path: Path) -> None:
    # The title is the first level-one heading outside code, `#` or underlined.
    readme = "Fastgrep\n========\n\nA fast grep.\n\n```bash\n# install from source\ncargo install fastgrep\n```\n"
    article = read_article(_write(tmp_path / "readme.md", readme))
    assert (article.title, article.text) == ("Fastgrep", "A fast grep.\n\n# install from source\ncargo install fastgrep")
    # A date in a heading or a list item is the story's, not the article's dateline.
    log = read_article(_write(tmp_path / "log.md", "# Changelog\n\n## 2.0.0 (2024-03-12)\n\n- March 3, 2024: Cracks found\n"))
    assert (log.date, log.text) == (None, "2.0.0 (2024-03-12)\n\nMarch 3, 2024: Cracks found")
    # HTML ends lines where it breaks them (its blocks are paragraphs), and scripts are no text.
    html = ("Youth unemployment<br>fell to 11 percent.\n\n<div><p>Homes were evacuated.</p><p>Flights resumed.</p>"
            "<script>gtag('config', 'G-XYZ');</script></div>\n\n<ul><li>apples</li><li>pears</li></ul>\n")
    assert read_article(_write(tmp_path / "html.md", html)).text == (
        "Youth unemployment\nfell to 11 percent.\n\nHomes were evacuated.\n\nFlights resumed.\n\napples\n\npears")
    # A footnote's mark is no word, its note is the article's; struck-out words were taken back.
    notes = "The bridge closed,[^1] and ~~the deadline is 1 May.~~ the deadline moved to 15 May.\n\n[^1]: City figures.\n"
    assert read_article(_write(tmp_path / "notes.md", notes)).text == (
        "The bridge closed, and the deadline moved to 15 May.\n\nCity figures.")
    # A clipper's title that ends with the site's name: the headline is the title, said once.
    clipped = "---\ntitle: Ferry service suspended - The Coastal Gazette\n---\n\n# Ferry service suspended\n\nBody.\n"
    article = read_article(_write(tmp_path / "site.md", clipped))
    assert (article.title, article.text) == ("Ferry service suspended", "Body.")
    # Hugo's TOML front matter.
    hugo = '+++\ntitle = "Bike Lane Plan Passes"\ndate = 2024-03-12T09:00:00Z\ndraft = false\n+++\n\nThe council voted.\n'
    post = read_article(_write(tmp_path / "hugo.md", hugo))
    assert (post.title, post.date, post.text) == ("Bike Lane Plan Passes", "2024-03-12", "The council voted.")
    # A title taken from a long first line ends at a word.
    long_line = "The council voted on Tuesday to close two of the four remaining branch libraries " * 3
    title = read_article(_write(tmp_path / "long.md", long_line + "\n")).title
    assert len(title) <= 120 and long_line.startswith(title + " ")


@pytest.mark.parametrize("dateline", ["Published: 12 March 2024", "*Published 2024-03-12*", "By Ana Smith | March 12, 2024"])
def test_a_markdown_dateline_under_the_heading_is_the_date_as_in_a_text_file(tmp_path: Path, dateline: str) -> None:
    story = "The port grew by ten percent last year, officials said on Monday."
    article = read_article(_write(tmp_path / "g.md", f"# Port grows\n\n{dateline}\n\n{story}\n"))
    assert (article.title, article.date, article.text) == ("Port grows", "2024-03-12", story)
    # A date inside the story is the story's, not the article's, and the paragraph stays whole.
    later = read_article(_write(tmp_path / "h.md", f"# Port grows\n\n{story}\n\nPublished: 12 March 2024\n"))
    assert later.date is None and "Published" in later.text
    dated = ("The Broncos won their third title by a score of 24-10 in a game played on January 18, 1974, at "
             "Rice Stadium in Houston.")  # a paragraph with "by" and a date once read as a dateline and dropped
    assert read_article(_write(tmp_path / "i.md", f"---\ntitle: Super Bowl 50\n---\n\n{dated}\n")).text == dated


@pytest.mark.parametrize("content", ["# \n", "# Title only\n", "---\n\n* * *\n"])
def test_a_markdown_file_with_no_words_to_quote_is_skipped(tmp_path: Path, content: str) -> None:
    with pytest.raises(IngestError, match="no text left after cleaning"):
        read_article(_write(tmp_path / "empty.md", content))


# -- decoding -------------------------------------------------------------------------------------


def test_utf8_bom_is_stripped(tmp_path: Path) -> None:
    text = "Café owners said on Monday that prices would rise again."
    path = _write(tmp_path / "bom.txt", ("\ufeff" + text).encode())
    assert read_article(path).text == text


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("cp1252", "Le café « chéri » — “quoted” ‘text’ naïve résumé. Prices rose by 5 € this week."),
        ("cp1251", "Россия может направить миротворцев в Ирак, заявил в четверг министр обороны."),
        ("koi8_r", "Россия может направить миротворцев в Ирак, заявил в четверг министр обороны."),
        ("shift_jis", "ロシアはイラクに平和維持部隊を派遣する可能性があると国防相が木曜日に述べた。"),
        ("utf-16", "An article saved as UTF-16 with a byte order mark, as some editors do."),
    ],
)
def test_legacy_encodings_decode(tmp_path: Path, encoding: str, text: str) -> None:
    data = text.encode(encoding)
    article = read_article(_write(tmp_path / "legacy.txt", data))
    assert article.text == text
    assert article.content_hash == content_hash(data)


@pytest.mark.parametrize("bad", [b"\xff", b"\xe2\x80", b"\xc3"])  # a stray byte; a character cut short
def test_utf8_with_a_few_bad_bytes_keeps_its_letters(tmp_path: Path, bad: bytes) -> None:
    # It used to be read whole as a legacy encoding: "The cafĂŠ served…", and "café" never matched.
    before, after = "The café served 700 meals, the owner said. ", " The naïve critic praised the crêpe."
    article = read_article(_write(tmp_path / "mixed.txt", before.encode() + bad + after.encode()))
    assert article.text == f"{before}\ufffd{after}"


def test_read_article_accepts_bytes_already_read(tmp_path: Path) -> None:
    path = tmp_path / "never-written.txt"
    data = "Officials said on Friday that the talks would resume next week.".encode()
    article = read_article(path, data)
    assert article.text == data.decode()
    assert article.path == str(path)


# -- files that are not articles ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"  \n\t\r\n  ", "empty file"),
        (random.Random(7).randbytes(4096) + b"\x00", BINARY_FILE),
        (bytes(range(32)) * 64, BINARY_FILE),
        (bytes(b for b in random.Random(7).randbytes(4096) if b), _UNDECODABLE),
        (b"Advertisement\n\nShare this article\n", "no text left after cleaning"),
    ],
)
def test_unusable_content_raises(tmp_path: Path, data: bytes, reason: str) -> None:
    path = _write(tmp_path / "bad.txt", data)
    with pytest.raises(IngestError) as caught:
        read_article(path)
    assert str(caught.value) == reason


def test_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: takes no space, reads as NUL bytes
    with pytest.raises(IngestError, match="larger than 50 MB"):
        read_article(path)
    with pytest.raises(IngestError, match="larger than 50 MB"):
        read_article(tmp_path / "given.txt", b"a" * (MAX_FILE_BYTES + 1))


def test_missing_and_dangling_files_raise(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="could not be read: "):
        read_article(tmp_path / "nowhere.txt")
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "gone.txt")
    with pytest.raises(IngestError, match="could not be read: "):
        read_article(tmp_path / "dangling.txt")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    with pytest.raises(IngestError, match="not a regular file"):
        read_article(tmp_path / "pipe.txt")


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file_raises(tmp_path: Path) -> None:
    path = _write(tmp_path / "locked.txt", "Secret text that nobody may read.")
    path.chmod(0)
    try:
        with pytest.raises(IngestError, match="could not be read: Permission denied"):
            read_article(path)
    finally:
        path.chmod(0o600)


# -- discovery ------------------------------------------------------------------------------------


def test_discover_walks_folders_in_order_and_skips_what_is_not_an_article(tmp_path: Path) -> None:
    for name in ("b.txt", "a.HTML", "sub/c.md", "sub/deeper/d.markdown", "sub/e.htm"):
        _write(tmp_path / name, "text")
    for name in ("notes.docx", "image.png", ".hidden.txt", ".git/config.txt", "sub/.cache/f.txt"):
        _write(tmp_path / name, "text")
    docx = tmp_path / "notes.docx"

    found, skipped = discover_files([tmp_path, docx, tmp_path / "missing", tmp_path / "b.txt"])

    assert found == [
        tmp_path / "a.HTML",
        tmp_path / "b.txt",
        tmp_path / "sub" / "c.md",
        tmp_path / "sub" / "deeper" / "d.markdown",
        tmp_path / "sub" / "e.htm",
    ]
    assert all(path.is_absolute() for path in found)
    assert skipped == [
        SkippedFile(str(docx), "not an article file (.docx)"),
        SkippedFile(str(tmp_path / "missing"), "no such file or folder"),
    ]


def test_discover_returns_absolute_paths_for_relative_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "corpus" / "a.txt", "text")
    monkeypatch.chdir(tmp_path)
    found, skipped = discover_files(["corpus"])
    assert (found, skipped) == ([tmp_path / "corpus" / "a.txt"], [])


def test_discover_names_a_hidden_file_given_explicitly(tmp_path: Path) -> None:
    hidden = _write(tmp_path / ".draft.txt", "text")
    assert discover_files([hidden]) == ([hidden], [])


def test_discover_survives_symlink_loops_and_links_to_the_same_file(tmp_path: Path) -> None:
    _write(tmp_path / "a.txt", "text")
    _write(tmp_path / "sub" / "b.txt", "text")
    os.symlink(tmp_path, tmp_path / "sub" / "up")  # sub/up -> its own grandparent: a loop
    os.symlink(tmp_path / "sub", tmp_path / "alias")  # a second way into sub/
    os.symlink(tmp_path / "a.txt", tmp_path / "sub" / "same.txt")
    os.symlink("self.txt", tmp_path / "self.txt")

    found, skipped = discover_files([tmp_path])

    assert found == [tmp_path / "a.txt", tmp_path / "sub" / "b.txt"]
    assert SkippedFile(str(tmp_path / "self.txt"), "symlink loop") in skipped
    assert SkippedFile(str(tmp_path / "sub" / "up"), "symlink loop") in skipped


def test_a_file_reached_through_a_link_keeps_its_real_name_wherever_the_link_sorts(tmp_path: Path) -> None:
    real = _write(tmp_path / "news" / "archive" / "x.txt", "text")
    os.makedirs(tmp_path / "news" / "a_links")
    os.symlink("../archive/x.txt", tmp_path / "news" / "a_links" / "fav.txt")  # "a_links" < "archive"
    os.symlink("news/archive", tmp_path / "0_archive")  # a linked folder, sorting before the real one
    assert discover_files([tmp_path / "news"]) == ([real], [])
    assert discover_files([tmp_path]) == ([real], [])


def test_discover_reports_broken_links_and_fifos(tmp_path: Path) -> None:
    os.symlink(tmp_path / "gone.txt", tmp_path / "dangling.txt")
    os.mkfifo(tmp_path / "pipe.txt")
    os.symlink(tmp_path / "pipe.txt", tmp_path / "to-pipe.txt")  # whole, but not to a file
    found, skipped = discover_files([tmp_path])
    assert found == []
    assert skipped == [
        SkippedFile(str(tmp_path / "pipe.txt"), "not a regular file"),
        SkippedFile(str(tmp_path / "dangling.txt"), "broken symlink"),  # links come after real entries
        SkippedFile(str(tmp_path / "to-pipe.txt"), "not a regular file"),
    ]


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root reads every folder")
def test_discover_reports_unreadable_folder_and_goes_on(tmp_path: Path) -> None:
    _write(tmp_path / "a.txt", "text")
    locked = tmp_path / "locked"
    _write(locked / "b.txt", "text")
    locked.chmod(0)
    try:
        found, skipped = discover_files([tmp_path])
    finally:
        locked.chmod(0o700)
    assert found == [tmp_path / "a.txt"]
    assert skipped == [SkippedFile(str(locked), "permission denied")]


# -- identity -------------------------------------------------------------------------------------


def test_document_id_is_stable_and_path_specific(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = document_id(tmp_path / "a.txt")
    assert first == document_id(str(tmp_path / "a.txt"))
    assert len(first) == 16 and int(first, 16) >= 0
    assert first != document_id(tmp_path / "b.txt")
    monkeypatch.chdir(tmp_path)
    assert document_id("a.txt") == first  # relative paths mean the same file


def test_content_hash_is_sha256_of_the_bytes() -> None:
    assert content_hash(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert content_hash(b"a") != content_hash(b"b")
