"""Bring a format-4 local index to format 5 in place, embedding nothing.

Format 4 kept every vector in one file per generation (`vectors-000007.faiss`); format 5 keeps a log
of segment files (qa.stores.local.segments) and adds catalog tables for them. The format-4 file
holds exactly the live chunks' vectors, so it is already a valid first segment: the upgrade gives it
the name `segment-000001.faiss` (a hard link; a copy where links fail), lists it in the catalog in
one transaction, and then writes the new manifest. A process killed at any step leaves an index the
next upgrade finishes: the new name is made under a temporary one and renamed, the catalog step is
skipped when a segment is already listed, and the manifest (the last step) is replaced atomically.

Only a writer upgrades (`qa index`, which holds the writer lock); a reader of a format-4 index
is told to run it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

from qa.errors import IndexCorruptError
from qa.stores.base import FORMAT_VERSION, REBUILD_HINT, Manifest
from qa.stores.local.catalog import Catalog, SegmentRow
from qa.stores.local.segments import segment_path
from qa.stores.local.vectors import FaissVectorStore

UPGRADABLE_FORMAT = 4
UPGRADE_HINT = "run `qa index` to upgrade it in place (nothing is embedded again)"


def upgrade_format_4(index_dir: Path, manifest: Manifest, manifest_path: Path, catalog_path: Path) -> Manifest:
    """Make the format-4 index in `index_dir`, whose `manifest` was read from `manifest_path`, a
    format-5 one (see the module's notes); the new manifest, as written."""
    # Creating the tables format 5 adds (segments, dead_vectors, the file-facts index) is idempotent.
    catalog = Catalog.open(catalog_path, create=True)
    try:
        if not catalog.segments():
            generation = catalog.generation
            chunks = catalog.counts()[1]
            if generation and chunks:
                _list_first_segment(index_dir, catalog, manifest, generation)
    finally:
        catalog.close()
    upgraded = replace(manifest, format_version=FORMAT_VERSION)
    tmp = manifest_path.with_name(manifest_path.name + ".tmp")
    tmp.write_text(upgraded.to_json())
    os.replace(tmp, manifest_path)
    return upgraded


def _list_first_segment(index_dir: Path, catalog: Catalog, manifest: Manifest, generation: int) -> None:
    source = index_dir / f"vectors-{generation:06d}.faiss"
    if not source.is_file():
        raise IndexCorruptError(f"the vector file {source.name} of this format-4 index is missing; {REBUILD_HINT}")
    vectors = FaissVectorStore.load(source, manifest.dimension)
    first_id, last_id = catalog.chunk_id_range()
    segment_id = catalog.next_segment_id()
    target = segment_path(index_dir, segment_id)
    partial = target.with_name(target.name + ".upgrading")
    partial.unlink(missing_ok=True)  # left by an upgrade killed before its rename
    try:
        # Segment files are never written again, so the old file's data can simply gain the new
        # name: no copy of what may be gigabytes of vectors.
        os.link(source, partial)
    except OSError:
        shutil.copyfile(source, partial)
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
    os.replace(partial, target)
    with catalog.transaction():
        catalog.add_segment(SegmentRow(segment_id, first_id, last_id, len(vectors), vectors.approximate))
        catalog.set_meta("next_segment_id", segment_id + 1)
    # The old file is now a leftover; the writer's clean-up of unlisted vector files removes it.
