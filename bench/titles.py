"""How often a news page saved as text gets its own headline as its title.

Many users save an article as a text file: the headline on the first line, a blank line, then the
page's text as copied (a dateline such as "New York CNN Business —", a credit such as "Special to
the Detroit Free Press", a photo caption, then the story). This writes each document of a corpus
in the `qa eval` format (`{id, title, text}` a line, such as the news sets that
../shared/eval/news_from_realtimeqa.py builds) so, reads it as `qa index` reads a .txt file
(qa.ingest.clean_news_text), and counts the documents whose title is their headline. With `--above`,
a line stands above each headline, as a site's name does on a page copied whole. Nothing is
written to disk.

    .venv/bin/python bench/titles.py NEWS/news-dev.corpus.jsonl            # the figure
    .venv/bin/python bench/titles.py NEWS/news-dev.corpus.jsonl --show 30  # and 30 misses
    .venv/bin/python bench/titles.py NEWS/news-dev.corpus.jsonl --above "World news"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.ingest import clean_news_text  # noqa: E402


def same_title(found: str | None, wanted: str) -> bool:
    """The title read is the first line, up to a trailing ellipsis or stop (a title cut short)."""
    if found is None:
        return False
    return found.rstrip(" .…") == wanted.rstrip(" .…")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, help="a corpus in the qa eval format: {id, title, text} a line")
    parser.add_argument("--show", type=int, default=0, metavar="N", help="print N documents whose title is not their headline")
    parser.add_argument("--above", metavar="LINE", default="",
                        help='a line written above each headline, as a page copied with its site\'s name ("World news")')
    args = parser.parse_args()
    total = right = untitled = 0
    misses: list[tuple[str, str | None, str]] = []
    with args.corpus.open(encoding="utf-8") as rows:
        for line in rows:
            row = json.loads(line)
            wanted = " ".join(str(row.get("title") or "").split())
            if not wanted or not row["text"].strip():
                continue
            total += 1
            above = f"{args.above}\n\n" if args.above else ""
            _, title, _ = clean_news_text(f"{above}{wanted}\n\n{row['text']}")
            if same_title(title, wanted):
                right += 1
            else:
                untitled += title is None
                misses.append((str(row["id"]), title, wanted))
    print(f"{args.corpus}: {total:,} documents with a title; the headline is the title for {right:,} "
          f"({right / max(total, 1):.1%}); {total - right - untitled:,} got another line, {untitled:,} none "
          "(the file name then)")
    for doc_id, title, wanted in misses[: args.show]:
        print(f"  {doc_id}  read {title!r}\n  {' ' * len(doc_id)}  first line {wanted!r}")


if __name__ == "__main__":
    main()
