"""Where an index lives: a local folder (FAISS + SQLite, the default) or a Milvus collection.

A store is named by one string, given as `--store` or $QA_STORE::

    faiss:index/                      the local index folder (what `--index DIR` names)
    milvus:news.db                    Milvus Lite: the Milvus engine inside this process, in one file
    milvus://db.example.org:19530/news  a Milvus server or cluster, collection "news"
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from qa.config import resolve_index_dir
from qa.errors import ConfigError

STORE_ENV = "QA_STORE"
DEFAULT_COLLECTION = "qa"
STORE_EXAMPLES = "faiss:DIR, milvus:FILE.db or milvus://HOST:PORT/COLLECTION"
_COLLECTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")


@dataclass(frozen=True)
class StoreLocation:
    """A parsed store: `kind` is "faiss" or "milvus"; `path` is the local folder or Milvus Lite file."""

    kind: str
    path: Path | None = None
    uri: str | None = None  # what pymilvus connects to: a server address or a Lite file path
    collection: str = DEFAULT_COLLECTION

    @property
    def is_local(self) -> bool:
        return self.kind == "faiss"

    @property
    def index_dir(self) -> Path:
        """The local index folder; only for faiss stores."""
        if self.path is None or self.kind != "faiss":
            raise ConfigError(f"{self.describe()} is not a local index folder")
        return self.path

    def same_store(self, other: StoreLocation) -> bool:
        """Whether `other` names this store, however written: a Milvus Lite file or a folder
        reached through a link is the one it links to."""
        if self == other:
            return True
        if self.kind != other.kind or self.path is None or other.path is None or self.collection != other.collection:
            return False
        try:
            return os.path.samefile(self.path, other.path)
        except OSError:  # not there yet: a new target
            return False

    def describe(self) -> str:
        if self.kind == "faiss":
            return str(self.path)
        if self.path is not None:
            return f"milvus:{self.path}" + (f"#{self.collection}" if self.collection != DEFAULT_COLLECTION else "")
        return f"{self.uri}/{self.collection}"

    def argument(self) -> str:
        """The `--store` value that names this store: ``faiss:/home/me/index``, ``milvus:news.db``."""
        if self.kind == "faiss":
            return f"faiss:{self.path}"
        if self.path is not None:
            return self.describe()
        scheme = "milvus+https" if (self.uri or "").startswith("https://") else "milvus"
        return f"{scheme}://{(self.uri or '').split('://', 1)[-1]}/{self.collection}"

    def state_dir(self) -> Path:
        """A local folder for this store's small per-user files (chat history, the writer lock)."""
        if self.kind == "faiss":
            return self.index_dir
        if self.path is not None:
            return self.path.with_name(self.path.name + ".qa")
        from qa.config import cache_dir

        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.uri}_{self.collection}")
        return cache_dir() / "stores" / safe


def as_location(where: StoreLocation | str | os.PathLike[str]) -> StoreLocation:
    """`where` as a store: a StoreLocation as it is, a path as the local index folder it names."""
    return where if isinstance(where, StoreLocation) else StoreLocation("faiss", Path(where))


def parse_store(text: str | None, index_dir: str | os.PathLike[str] | None = None, option: str = "--store") -> StoreLocation:
    """The store named by `text` (else $QA_STORE), or the local folder `index_dir` when neither is
    set; `option` is how an error names where `text` was given (`--from-store`).

    >>> parse_store("milvus://localhost:19530/news").uri
    'http://localhost:19530'
    """
    chosen = text if text not in (None, "") else os.environ.get(STORE_ENV) or None
    if chosen is None:
        return StoreLocation("faiss", resolve_index_dir(index_dir))
    chosen = chosen.strip()
    if chosen.startswith("faiss:"):
        return StoreLocation("faiss", resolve_index_dir(chosen[len("faiss:"):] or None))
    if chosen.startswith("milvus://") or chosen.startswith("milvus+https://"):
        secure = chosen.startswith("milvus+https://")
        rest = chosen.split("://", 1)[1]
        host, _, collection = rest.partition("/")
        collection = collection.strip("/") or DEFAULT_COLLECTION
        if not host:
            raise ConfigError(f"{option} {chosen!r} names no server; use milvus://HOST:PORT/COLLECTION")
        _check_collection(collection, chosen, option)
        return StoreLocation("milvus", None, ("https://" if secure else "http://") + host, collection)
    if chosen.startswith("milvus:"):
        rest = chosen[len("milvus:"):]
        file_part, _, collection = rest.partition("#")
        if not file_part.endswith(".db"):
            raise ConfigError(
                f"{option} {chosen!r}: a Milvus Lite store's name ends in .db, e.g. milvus:index/news.db"
            )
        path = Path(os.path.expanduser(file_part)).absolute()
        collection = collection or DEFAULT_COLLECTION
        _check_collection(collection, chosen, option)
        return StoreLocation("milvus", path, str(path), collection)
    folder = Path(os.path.expanduser(chosen))
    if folder.is_dir():
        # A folder typed bare: say how to name it, as the store it holds (Milvus Lite keeps its
        # file as a folder of collections and a LOCK) or the local index it may be.
        lite = (folder / "collections").is_dir() and (folder / "LOCK").exists()
        raise ConfigError(f"{option} {chosen!r} is a folder: name it as {'milvus' if lite else 'faiss'}:{chosen}")
    raise ConfigError(f"{option} {chosen!r} is not a store qa knows; use {STORE_EXAMPLES}")


def _check_collection(name: str, given: str, option: str = "--store") -> None:
    if not _COLLECTION_NAME.match(name):
        raise ConfigError(
            f"{option} {given!r}: collection name {name!r} must be letters, digits and underscores"
        )


def refuse_another_kind(location: StoreLocation) -> None:
    """A folder that holds the other kind of store is named as that kind, not filled with a second
    index beside the first (a Milvus Lite folder keeps `collections/` and a LOCK file; a local
    index its catalog and manifest)."""
    folder = location.path
    if folder is None or not folder.is_dir():
        return
    if location.is_local and (folder / "collections").is_dir() and (folder / "LOCK").exists():
        other = f"milvus:{folder}"
    elif not location.is_local and ((folder / "catalog.sqlite").is_file() or (folder / "manifest.json").is_file()):
        other = f"faiss:{folder}"
    else:
        return
    raise ConfigError(f"{folder} holds a {other.split(':')[0]} index, not a {location.kind} one; name it as --store {other}")
