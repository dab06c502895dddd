"""Where things live and the settings every stage agrees on."""

from __future__ import annotations

import os
from pathlib import Path

from qa.errors import ConfigError
from qa.paths import typed_path, unstorable_name

INDEX_DIR_ENV = "QA_INDEX_DIR"
CACHE_ENV = "QA_CACHE_DIR"
MODEL_CACHE_ENV = "QA_MODEL_CACHE"
BACKEND_ENV = "QA_BACKEND"
MODEL_ENV = "QA_MODEL"

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
ARTICLE_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")

# all-MiniLM-L6-v2 reads 256 word pieces including [CLS] and [SEP]; chunks stay well inside that
# so nothing is cut off unseen, and short enough that one vector still means one topic.
MODEL_MAX_TOKENS = 256
CHUNK_MAX_TOKENS = 160
CHUNK_OVERLAP_SENTENCES = 1

DEFAULT_TOP_K = 5


def package_version() -> str:
    """qa's version as installed (pyproject.toml's), for the HTTP API and the MCP server to report."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qa")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0"


def project_root() -> Path:
    """The folder holding the qa package (the checkout), where `seeds/` and `index/` sit by default."""
    return Path(__file__).resolve().parent.parent


def resolve_index_dir(option: str | os.PathLike[str] | None = None) -> Path:
    """The index folder: the `--index` option, else $QA_INDEX_DIR, else `index/` in the checkout."""
    chosen = option if option not in (None, "") else os.environ.get(INDEX_DIR_ENV) or None
    path = Path(chosen) if chosen is not None else project_root() / "index"
    # Absolute, so that every report names it alike: `qa stats --json` said "idx" where the HTTP
    # API, which resolves it at start, said "/home/me/idx".
    # "lnk/../idx" read as the system reads it (the folder beside the link's target, where `ls`
    # and `qa index` look), not folded by its text; "~nosuchuser/idx" is a folder like any other.
    # A ".." typed_path keeps after a folder that is not there is folded by its text: that is
    # where `qa index` makes the index (os.makedirs("new/../idx") makes idx beside "new").
    path = Path(os.path.normpath(typed_path(path)))
    if unstorable_name(str(path)):
        # FAISS takes its file names as UTF-8: it failed with a traceback, half an index written.
        shown = str(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise ConfigError(f"index location {shown} is not a valid UTF-8 name: choose another with --index DIR")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"index location {path} is a file, not a folder; pass --index DIR")
    return path


def cache_dir() -> Path:
    """Where derived files are kept (eval indexes, exported ONNX models): $QA_CACHE_DIR, else ~/.cache/qa."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen:  # os.path.expanduser: Path.expanduser raises on "~nosuchuser"
        return Path(os.path.expanduser(chosen))
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qa"


def model_cache_dir() -> Path:
    """Where exported encoder models are kept: $QA_MODEL_CACHE, else models/ in the cache folder."""
    chosen = os.environ.get(MODEL_CACHE_ENV)
    return Path(os.path.expanduser(chosen)) if chosen else cache_dir() / "models"


def default_corpus() -> list[Path]:
    """The corpus a fresh index is built from when no paths are given."""
    return [project_root() / "seeds"]


def offline_environment() -> None:
    """Make Hugging Face libraries stay offline and quiet: the model ships inside a Python package."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
