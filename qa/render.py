"""Render stage: Rich renderables and JSON objects for answers, hits, articles and index facts.

Nothing here touches torch or faiss; every function takes records and returns something to print.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from qa.types import Answer, Article, Citation, Claim, Hit, IndexStats, SearchFilters
from qa.text import counted

if TYPE_CHECKING:
    from qa.evaluate import EvalReport
    from qa.indexer import UpdateReport

CITED_STYLE = "bold black on yellow"
MARKER_STYLE = "bold cyan"


def answer_json(answer: Answer) -> dict[str, Any]:
    """The `qa ask --json` object."""
    data: dict[str, Any] = {
        "question": answer.question,
        "answer": answer.answer,
        "answerable": answer.answerable,
        "citations": [asdict(c) for c in answer.citations],
    }
    if answer.understood_as:
        data["understood_as"] = answer.understood_as
    data["absent_names"] = list(answer.absent_names)
    if answer.absent_within:
        data["absent_within"] = answer.absent_within
    if answer.generated or answer.model or answer.notice:  # a model server was asked
        data["generated"] = answer.generated
        data["model"] = answer.model
        data["claims"] = [claim_json(c) for c in answer.claims]
        data["notice"] = answer.notice
    data["passages"] = [hit_json(h) for h in answer.passages]
    return data


def claim_json(claim: Claim) -> dict[str, Any]:
    """One checked sentence: ``{"text", "citations", "verdict", "support", "evidence": [{"n", "doc_id", "start", "end", "quote"}], "missing", "supporting", "contradicted", "supported_by"}``."""
    data = asdict(claim)
    data["citations"] = list(claim.citations)
    data["missing"] = list(claim.missing)
    data["contradicted"] = list(claim.contradicted)
    data["supporting"] = list(claim.supporting)
    data["supported_by"] = list(claim.supported_by)
    return data


def hit_json(hit: Hit) -> dict[str, Any]:
    return {
        "doc_id": hit.doc_id,
        "title": hit.title,
        "path": hit.path,
        "start": hit.start,
        "end": hit.end,
        "text": hit.text,
        "score": hit.score,
        "date": hit.date,
        "page": hit.page,
    }


def search_json(query: str, hits: Sequence[Hit]) -> dict[str, Any]:
    """The `qa search --json` object."""
    return {"query": query, "hits": [hit_json(h) for h in hits]}


def display_path(path: str) -> str:
    """A path as short as it can be while still findable: relative to the working folder if inside
    it, on one line: a newline, a tab or a byte that is not UTF-8 in a file's name is shown as an
    escape, ``"/news/new\nline.txt" -> "/news/new\\nline.txt"``."""
    try:
        shown = os.path.relpath(path) if Path(path).is_relative_to(Path.cwd()) else path
    except ValueError:
        shown = path
    if shown.isprintable():
        return shown
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in shown)


def _source_line(n: int, title: str, path: str, start: int, end: int, date: str | None,
                 page: int | None = None, more: Sequence[tuple[int, int, int | None]] = ()) -> Text:
    """A source's line; `more` are the spans of other sentences quoted from the same passage, each
    with its page (a passage may run over a PDF's page break)."""
    line = Text()
    line.append(f"[{n}] ", style=MARKER_STYLE)
    line.append(title, style="bold")
    line.append(f"  {display_path(path)}", style="dim")
    spans = sorted({(start, end, page), *more})
    pages = {p for _, _, p in spans}
    if len(pages) == 1:
        if page is not None:
            line.append(f"  page {page}", style="dim")
        line.append(f"  chars {', '.join(f'{a}–{b}' for a, b, _ in spans)}", style="dim")
    else:  # "page 1 chars 139–215, page 2 chars 386–462": each span on the page it is on
        line.append("  " + ", ".join(f"page {p} chars {a}–{b}" for a, b, p in spans), style="dim")
    if date:
        line.append(f"  {date}", style="dim")
    return line


def _answer_text(answer: Answer) -> Text:
    text = Text()
    for index, citation in enumerate(answer.citations):
        if index:
            text.append(" ")
        text.append(" ".join(citation.quote.split()))  # as Answer.answer reads: a PDF's line breaks joined
        text.append(f" [{citation.n}]", style=MARKER_STYLE)
    return text


def absent_names_line(names: Sequence[str], within: str = "", answered: bool = True) -> str:
    """``("Etna",) -> "no article mentions Etna, so the answer may be about something else"``;
    `within`, the filters they were looked for under, says which articles ("no article that
    matches the filters (source=a*.md) mentions Etna, …"). With no answer, the fact alone."""
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    articles = f"no article that matches the filters ({within})" if within else "no article"
    return f"{articles} mentions {listed}" + (", so the answer may be about something else" if answered else "")


def claims_text(claims: Sequence[Claim]) -> Text:
    """A generated answer, sentence by sentence: supported ones plain with their [n]; the others dimmed
    and marked, "(not found in [2])", "($9 billion not in [1])", "([1] says “does not owe”)", "(no source cited)"."""
    text = Text()
    for index, claim in enumerate(claims):
        if index:
            text.append(" ")
        markers = "".join(f"[{n}]" for n in claim.citations)
        if claim.verdict == "supported":
            text.append(claim.text)
            text.append(" " + "".join(f"[{n}]" for n in claim.supported_by), style=MARKER_STYLE)
            idle = [f"[{n}]" for n in claim.citations if n not in claim.supported_by]
            if idle:
                text.append(f" (cited {', '.join(idle)} too, which does not say it)", style="italic dim")
            continue
        text.append(claim.text, style="dim strike" if claim.verdict == "unsupported" else "dim")
        if claim.verdict == "uncited":
            text.append(" (no source cited)", style="italic red")
        elif any(m.startswith("[") for m in claim.missing):
            absent = ", ".join(m for m in claim.missing if m.startswith("["))
            text.append(f" (cites {absent}, which is not one of the passages)", style="italic red")
        elif claim.missing:
            text.append(f" ({', '.join(claim.missing)} not in {markers})", style="italic red")
        elif claim.contradicted:
            said = "".join(f"[{e.n}]" for e in claim.evidence[:1]) or markers
            text.append(f" ({said} says “{claim.contradicted[0]}”)", style="italic red")
        else:
            text.append(f" (not found in {markers})", style="italic red")
    return text


def streaming_text(text: str) -> Text:
    """A generated answer while it is being written, before its sentences are checked."""
    return Text(text, style="dim")


# A line break inside a paragraph, neither beside another nor beside a page break, nor after a
# lead-in's colon or before a list item ("Shelters:" over "- Reykjavik sports hall").
_LINE_IN_PARAGRAPH = re.compile(r"(?<=[^\n\f:])\n(?=[^\n\f])(?!\s*(?:[-–—•*▪◦]|\d{1,3}[.)])\s)")


def shown_text(text: str, from_pdf: bool) -> str:
    """`text` as a panel shows it: a PDF's lines joined, as the page's width broke them and not
    the terminal's (a space for each line break, so offsets into it stay the text's); paragraph
    and page breaks kept. Other articles' line breaks are the writer's (a list, an address)."""
    return _LINE_IN_PARAGRAPH.sub(" ", text) if from_pdf else text


def passage_text(hit: Hit, citations: Sequence[Citation] = ()) -> Text:
    """A passage with every cited sentence inside it highlighted."""
    text = Text(shown_text(hit.text, hit.page is not None))
    for citation in citations:
        if citation.doc_id == hit.doc_id and hit.start <= citation.start and citation.end <= hit.end:
            text.stylize(CITED_STYLE, citation.start - hit.start, citation.end - hit.start)
    return text


def _passage_of(answer: Answer, citation: Citation) -> Hit | None:
    for hit in answer.passages:
        if hit.doc_id == citation.doc_id and hit.start <= citation.start and citation.end <= hit.end:
            return hit
    return None


def render_answer(answer: Answer, show_passages: bool = True) -> RenderableType:
    """An answer, its numbered sources, and the passages with the cited sentences highlighted."""
    parts: list[RenderableType] = []
    if answer.understood_as:
        parts.append(Text(f"(understood as: {answer.understood_as})", style="italic dim"))
    if answer.notice:
        parts.append(Text(f"Note: {answer.notice}.", style="yellow"))
    if answer.absent_names:
        line = absent_names_line(answer.absent_names, answer.absent_within, answer.answerable or answer.generated)
        parts.append(Text(f"Note: {line}.", style="yellow"))
    if answer.generated:
        parts.append(claims_text(answer.claims))
        from qa.llm import model_label

        parts.append(Text(f"Written by {model_label(answer.model)}; each sentence checked against the passages it cites.",
                          style="dim italic"))
    elif answer.answerable:
        parts.append(_answer_text(answer))
    if answer.answerable:
        parts.append(Text())
        parts.append(Text("Sources", style="bold underline"))
        shown: set[int] = set()
        for citation in answer.citations:
            if citation.n in shown:
                continue
            shown.add(citation.n)
            hit = _passage_of(answer, citation)
            date = hit.date if hit else None
            more = [(c.start, c.end, c.page) for c in answer.citations if c.n == citation.n]
            parts.append(
                _source_line(citation.n, citation.title, citation.path, citation.start, citation.end, date,
                             citation.page, more)
            )
            if show_passages and hit is not None:
                parts.append(Panel(passage_text(hit, answer.citations), border_style="dim", padding=(0, 1)))
    else:
        parts.append(Text(answer.answer, style="bold yellow"))
        if answer.passages:
            parts.append(Text())
            parts.append(Text("Closest passages", style="bold underline"))
            parts.extend(_hit_parts(answer.passages[:3]))
    return Group(*parts)


def _hit_parts(hits: Sequence[Hit]) -> list[RenderableType]:
    parts: list[RenderableType] = []
    for n, hit in enumerate(hits, start=1):
        line = _source_line(n, hit.title, hit.path, hit.start, hit.end, hit.date, hit.page)
        line.append(f"  score {hit.score:.3f}", style="dim")
        parts.append(line)
        parts.append(Panel(Text(shown_text(hit.text, hit.page is not None)), border_style="dim", padding=(0, 1)))
    return parts


def render_hits(query: str, hits: Sequence[Hit], filters: SearchFilters | None = None) -> RenderableType:
    """Search results: each passage with where it comes from; with none, what was searched, and
    within which articles when `filters` narrowed them."""
    if not hits:
        within = f" in {filters.nothing_passed()}" if filters and filters.active else ""
        return Text(f"No passages found for {query!r}{within}.", style="yellow")
    return Group(*_hit_parts(hits))


def render_sources(answer: Answer) -> RenderableType:
    """`/sources`: every passage the last answer drew on, numbered, cited sentences highlighted."""
    if not answer.passages:
        return Text("The last question found no passage, so it has no sources.", style="yellow")
    parts: list[RenderableType] = []
    cited = {c.n for c in answer.citations}
    for n, hit in enumerate(answer.passages, start=1):
        line = _source_line(n, hit.title, hit.path, hit.start, hit.end, hit.date, hit.page)
        line.append(f"  score {hit.score:.3f}", style="dim")
        if n in cited:
            line.append("  cited", style="bold green")
        parts.append(line)
        parts.append(Panel(passage_text(hit, answer.citations), border_style="dim", padding=(0, 1)))
    return Group(*parts)


def render_article(article: Article, citations: Sequence[Citation] = ()) -> RenderableType:
    """`/open N`: the whole clean article with the cited spans highlighted; when the article has
    changed since they were quoted (indexed again), a note instead of marks in the wrong words."""
    changed = any(article.text[c.start:c.end] != c.quote for c in citations)
    shown = shown_text(article.text, article.path.lower().endswith(".pdf"))
    text = Text()
    at = 0
    # Highlighted, and marked with its [n] after it: without colour (piped, NO_COLOR) the
    # highlight is gone, and the mark still says which sentence was quoted.
    for citation in sorted({(c.start, c.end, c.n) for c in citations}) if not changed else ():
        start, end, n = citation
        if end <= at:
            continue  # one span quoted under two numbers is marked once
        start = max(start, at)  # one that overlaps the span before is marked from where that ends
        text.append(shown[at:start])
        text.append(shown[start:end], style=CITED_STYLE)
        text.append(f" [{n}]", style=MARKER_STYLE)
        at = end
    text.append(shown[at:])
    header = Text()
    header.append(article.title, style="bold")
    header.append(f"\n{display_path(article.path)}", style="dim")
    if article.date:
        header.append(f"  {article.date}", style="dim")
    if changed:
        header.append("\nThe article has changed since this answer quoted it (it was indexed again): it is "
                      "shown as it is now, and /sources shows the passages as they were.", style="yellow")
    return Panel(Group(header, Text(), text), padding=(0, 1))


def render_stats(stats: IndexStats) -> RenderableType:
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_row("index", display_path(stats.index_dir))
    table.add_row("documents", f"{stats.documents:,}")
    table.add_row("chunks", f"{stats.chunks:,}")
    table.add_row("model", f"{stats.model} ({stats.dimension} dimensions)")
    table.add_row("size on disk", _human_bytes(stats.size_bytes))
    for n, source in enumerate(stats.sources):
        table.add_row("sources" if n == 0 else "", display_path(source))
    return table


def render_update_report(report: UpdateReport) -> RenderableType:
    """One line of what `qa index` did, and a line for each file it skipped."""
    summary = Text()
    summary.append("Index rebuilt: " if report.rebuilt else "Index up to date: ", style="bold green")
    summary.append(
        f"{report.added} added, {report.changed} changed, {report.removed} removed, "
        f"{report.unchanged} unchanged; {counted(report.chunks_embedded, 'chunk')} embedded; "
        f"{counted(report.documents, 'document')}, {counted(report.chunks, 'chunk')} in all."
    )
    lines: list[RenderableType] = [summary]
    for source in report.forgotten:
        lines.append(Text(f"forgot {display_path(source)}: it is no longer updated"))
    kept = set(report.kept)
    for skipped in report.skipped:
        # A file indexed before that cannot be read now keeps its earlier text: say so, since
        # answers will still quote it.
        keeps = "; its earlier text stays in the index" if skipped.path in kept else ""
        lines.append(Text(f"skipped {display_path(skipped.path)}: {skipped.reason}{keeps}", style="yellow"))
    return Group(*lines)


def render_eval_report(report: EvalReport) -> RenderableType:
    """`qa eval`: a row per measure and a column per retrieval mode, so that it fits a narrow
    terminal whatever the measures (a row per mode outgrew 80 columns with SQuAD v2.0's)."""
    from rich import box

    results = report.results
    questions = results[0].questions if results else 0
    heading = Text(f"{report.eval_set}: {counted(questions, 'question')}, {counted(report.documents, 'document')}, "
                   f"{report.backend} backend (index ready in {report.index_seconds:.1f} s)", style="bold")
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1))
    table.add_column("")
    for r in results:
        table.add_column(r.mode, justify="right", no_wrap=True)

    def figure(value: float | None) -> str:
        return f"{value:.3f}" if value is not None else "–"

    measures: list[tuple[str, list[float | None]]] = [
        ("R@1", [r.recall_at_1 for r in results]),
        ("R@5", [r.recall_at_5 for r in results]),
        ("R@20", [r.recall_at_20 for r in results]),
        ("MRR@10", [r.mrr_at_10 for r in results]),
        ("nDCG@10", [r.ndcg_at_10 for r in results]),
        ("answer in top sentence", [r.answer_in_top_sentence for r in results]),
        ("answered", [r.answered for r in results]),
    ]
    if any(r.unanswerable_questions for r in results):
        measures += [("unanswerable declined", [r.declined for r in results]),
                     ("answerable AUROC", [r.answerability_auroc for r in results]),
                     ("judgment accuracy", [r.answerability_accuracy for r in results])]
    if any(r.off_topic_questions for r in results):
        measures.append((f"off-topic declined ({results[0].off_topic_questions})", [r.off_topic_declined for r in results]))
    for name, values in measures:
        table.add_row(name, *(figure(v) for v in values))
    notes = []
    if results:
        # The modes are searched together, one pass over the questions: one time for them all.
        together = " (the modes together)" if len(results) > 1 else ""
        notes.append(Text(f"{results[0].seconds_per_question * 1000:.1f} ms a question{together}", style="dim"))
    if report.respelled_questions:
        count = report.respelled_questions
        said = "1 question was" if count == 1 else f"{count} questions were"
        notes.append(Text(f"{said} asked with a mistyped word read as the corpus spells it, as qa ask reads them",
                          style="dim"))
    return Group(heading, table, *notes)


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
