"""The local store, the default: FAISS vectors and a SQLite catalog (with FTS5 keywords) in one folder.

`store.py` holds the reader (`LocalStore`) and the writer (`LocalWriter`), `catalog.py` the SQLite
catalog and `vectors.py` the FAISS vector file. This module is the backend the registry
(`qa.stores`) imports for `faiss:DIR` and plain folders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qa.stores.local.catalog import Catalog
from qa.stores.local.store import (
    CATALOG_FILE,
    LocalStore,
    LocalWriter,
    load_manifest,
    load_manifest_for_writing,
    refuse_another_programs_folder,
)

if TYPE_CHECKING:
    from qa.stores.base import Manifest
    from qa.stores.location import StoreLocation


def open_store(location: StoreLocation) -> LocalStore:
    return LocalStore.open(location)


def read_manifest(location: StoreLocation, upgrade: bool = False) -> Manifest:
    # A writer upgrades a format-4 index in place (qa.stores.local.upgrade); a reader is told to.
    return load_manifest_for_writing(location.index_dir) if upgrade else load_manifest(location.index_dir)


def open_writer(location: StoreLocation, manifest: Manifest, fresh: bool, rebuild: bool) -> LocalWriter:
    return LocalWriter(location.index_dir, manifest, fresh, rebuild)


def read_sources(location: StoreLocation) -> list[str]:
    catalog = Catalog.open(location.index_dir / CATALOG_FILE)
    try:
        return catalog.sources()
    finally:
        catalog.close()


def refuse_another_programs(location: StoreLocation) -> None:
    # Before the writer lock: its file is made in the index folder, which would be theirs.
    refuse_another_programs_folder(location.index_dir)
