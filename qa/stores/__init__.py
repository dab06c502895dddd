"""The store stage: one `Store` protocol (`qa.stores.base`), one backend a subpackage, chosen here.

A store's location names its kind by scheme (`qa.stores.location`): a plain folder or `faiss:DIR`
is the local store (`qa.stores.local`: FAISS + SQLite), `milvus:FILE.db` and `milvus://HOST/NAME`
the Milvus store (`qa.stores.milvus`). The registry maps each kind to its backend module, which is
imported only when a location of that kind is opened, in the manner of simonw/llm's plugins: the
built-in backends are registered exactly as another one would be, `qa --help` imports none of them,
and pymilvus is needed only by whoever opens a Milvus store.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

from qa.errors import ConfigError, IndexMissingError, QAError
from qa.stores.location import refuse_another_kind

if TYPE_CHECKING:
    from qa.stores.base import Backend, Store, StoreWriter
    from qa.stores.location import StoreLocation

# Store kind (the location's scheme) -> the module that implements it.
BACKENDS: dict[str, str] = {
    "faiss": "qa.stores.local",
    "milvus": "qa.stores.milvus",
}


def register(kind: str, module: str) -> None:
    """Serve locations of `kind` with the backend module `module` (imported when first used)."""
    BACKENDS[kind] = module


def backend(kind: str) -> Backend:
    """The backend module serving stores of `kind`."""
    name = BACKENDS.get(kind)
    if name is None:
        raise ConfigError(f"no store backend for {kind!r}; qa knows {', '.join(sorted(BACKENDS))}")
    return importlib.import_module(name)  # type: ignore[return-value]


def _location(where: StoreLocation | str | os.PathLike[str]) -> StoreLocation:
    """`where` as a location, refused when its folder holds the other kind of store."""
    from qa.stores.location import as_location

    location = as_location(where)
    refuse_another_kind(location)
    return location


def open_store(where: StoreLocation | str | os.PathLike[str]) -> Store:
    """The index at `where` (a location, or a local index folder) opened for reading."""
    location = _location(where)
    return backend(location.kind).open_store(location)


def open_writer(
    where: StoreLocation | str | os.PathLike[str], model: str, dimension: int, encoder_backend: str, rebuild: bool
) -> StoreWriter:
    """A writer for the index at `where`, whose vectors are (or will be) those of `model`.

    The one way qa opens a writer, for `qa index` and for `--from-store` alike: an existing index
    built with another model, dimension or encoder backend is refused (unless `rebuild`); where
    there is none, a new manifest is written with the first commit.
    """
    from qa.stores.base import new_manifest

    location = _location(where)
    impl = backend(location.kind)
    manifest = None
    if not rebuild:
        try:
            manifest = impl.read_manifest(location, upgrade=True)
            manifest.check_model(model, dimension, location.describe(), encoder_backend)
        except IndexMissingError:
            manifest = None
    fresh = manifest is None
    manifest = manifest or new_manifest(model, dimension, encoder_backend, store=location.kind)
    return impl.open_writer(location, manifest, fresh, rebuild)


def check_store(where: StoreLocation | str | os.PathLike[str]) -> list[str]:
    """Problems found in the index at `where`, one line each (`qa doctor`); one that keeps it from
    opening (a vector file missing or cut short, the catalog gone) is the problem found."""
    from qa.errors import IndexCorruptError

    try:
        store = open_store(where)
    except IndexCorruptError as exc:
        return [str(exc)]
    try:
        return store.check()
    finally:
        store.close()


def read_sources(where: StoreLocation | str | os.PathLike[str]) -> list[str]:
    """The folders and files the index at `where` remembers, without loading its vectors."""
    location = _location(where)
    return backend(location.kind).read_sources(location)


def index_is_missing(where: StoreLocation | str | os.PathLike[str]) -> bool:
    """Whether there is no index at all at `where` (not one that cannot be read now: damaged, of an
    older format to upgrade, a server out of reach)."""
    from qa.errors import IndexMissingError, QAError

    try:
        location = _location(where)
        backend(location.kind).read_manifest(location)
    except IndexMissingError:
        return True
    except QAError:
        return False
    return False


def encoder_backend(where: StoreLocation | str | os.PathLike[str]) -> str | None:
    """The encoder backend an existing index was built with, or None where there is no readable index."""
    from qa.stores.location import as_location

    location = as_location(where)
    try:
        refuse_another_kind(location)  # as _location does, but said as "no readable index"
        return backend(location.kind).read_manifest(location).backend
    except QAError:
        return None
