"""Paths as a user types them, read as the system reads them.

Stdlib only, in the foundation layer: `qa.config` reads `--index` with it, which every command
imports before any stage.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def typed_path(path: str | os.PathLike[str]) -> str:
    """A path a user typed, made absolute with no "." or "..": "~" expanded, each ".." read as
    the system reads it ("~/x/../news" -> "/home/me/news"; past a link, "lnk/../news" is the news
    folder beside the link's target, and named from there), links kept elsewhere. Typed so, a
    folder was remembered, and each of its articles cited, as "/home/me/x/../news/…", and a source
    with ".." in it held, by its text, what it does not. A ".." after a folder that is not there
    is kept: the path names nothing, as for `ls`."""
    typed = os.path.expanduser(os.fspath(path))  # "~nosuchuser" stays as typed
    # The working folder only for a relative path: a watcher started in a folder deleted since
    # still names its absolute paths.
    parts = Path(typed if os.path.isabs(typed) else os.path.join(os.getcwd(), typed)).parts
    named = parts[0]
    for n, part in enumerate(parts[1:], start=1):
        if part != "..":
            named = os.path.join(named, part)
        elif not os.path.isdir(named):
            return os.path.join(named, *parts[n:])
        else:
            lexical, real = os.path.dirname(named), os.path.dirname(os.path.realpath(named))
            named = lexical if os.path.realpath(lexical) == real else real
    return named


def path_is_under(path: str, roots: Sequence[str]) -> bool:
    """Whether path is one of roots or inside one: ``("/a/b.txt", ["/a"]) -> True``, ``("/ab", ["/a"]) -> False``."""
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def unstorable_name(path: str) -> str | None:
    """Why the file or folder at `path` cannot be recorded in an index, or None. A name that is not
    valid UTF-8 (say, a file named in Latin-1 on an older system) reaches Python with stand-in
    characters that no UTF-8 catalog can hold: ``"/news/caf\\udce9.txt"`` gives a reason."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8: rename it to index it"
    return None
