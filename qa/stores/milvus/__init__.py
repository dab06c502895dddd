"""The Milvus store: the whole index in Milvus collections, on a server or cluster
(`milvus://HOST:PORT/NAME`) or in-process with Milvus Lite (`milvus:FILE.db`).

`store.py` holds the collections, the reader (`MilvusStore`) and the writer (`MilvusWriter`). This
module is the backend the registry (`qa.stores`) imports for `milvus:` locations; pymilvus itself
is imported only when a store is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qa.stores.milvus.store import (
    WRITER_WAIT_SECONDS,
    MilvusCollections,
    MilvusStore,
    MilvusWriter,
    load_manifest,
    refuse_missing_lite_file,
    settle_earlier_rebuild,
)

if TYPE_CHECKING:
    from qa.stores.base import Manifest
    from qa.stores.location import StoreLocation


def open_store(location: StoreLocation) -> MilvusStore:
    return MilvusStore.open(location)


def read_manifest(location: StoreLocation, upgrade: bool = False) -> Manifest:
    # No older Milvus format can be upgraded in place. `upgrade` is asked by a writer alone, which
    # holds the writer lock: a Milvus Lite file still open is the last writer's, exiting.
    refuse_missing_lite_file(location)
    collections = MilvusCollections(location, WRITER_WAIT_SECONDS if upgrade else 0.0)
    try:
        if upgrade:
            settle_earlier_rebuild(collections)  # a writer's first step: a rebuild cut short is finished or dropped
        return load_manifest(collections)
    finally:
        collections.close()


def open_writer(location: StoreLocation, manifest: Manifest, fresh: bool, rebuild: bool) -> MilvusWriter:
    return MilvusWriter(location, manifest, rebuild)


def read_sources(location: StoreLocation) -> list[str]:
    refuse_missing_lite_file(location)
    collections = MilvusCollections(location)
    try:
        return sorted(collections.sources())
    finally:
        collections.close()


def refuse_another_programs(location: StoreLocation) -> None:
    # Nothing to look at first: the writer lock lives in a folder of qa's own (location.state_dir),
    # and a collection whose manifest is another program's is refused when the writer reads it.
    return None
