"""A format-4 local index (one vector file per generation) is upgraded in place by `qa index`,
embedding nothing, and answers as before; a reader is told to run `qa index`.

The format-4 index is made from a format-5 one as format 4 laid it out: the single segment file
renamed to `vectors-NNNNNN.faiss`, the catalog without the tables and index format 5 added.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from qa.embed import Embedder
from qa.errors import IndexMismatchError
from qa.indexer import update_index
from qa.retrieve import open_retriever
from qa.stores import check_store
from qa.stores.base import Manifest
from qa.stores.local.store import LocalStore

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def as_format_4(index_dir: Path) -> None:
    """Lay out a one-segment format-5 index as format 4 did."""
    [segment] = list(index_dir.glob("segment-*.faiss"))
    db = sqlite3.connect(index_dir / "catalog.sqlite", isolation_level=None)
    generation = int(db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
    db.executescript(
        "DROP TABLE segments; DROP TABLE dead_vectors; DROP INDEX documents_file_facts;"
        "DELETE FROM meta WHERE key = 'next_segment_id';"
    )
    db.close()
    segment.rename(index_dir / f"vectors-{generation:06d}.faiss")
    manifest = json.loads((index_dir / "manifest.json").read_text())
    manifest["format_version"] = 4
    (index_dir / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture()
def old_index(tmp_path: Path, embedder: Embedder) -> tuple[Path, Path]:
    folder = tmp_path / "articles"
    shutil.copytree(SEEDS, folder)
    index_dir = tmp_path / "index"
    update_index(index_dir, [folder], embedder=embedder)
    return folder, index_dir


def test_qa_index_upgrades_a_format_4_index_without_embedding(old_index: tuple[Path, Path], embedder: Embedder) -> None:
    folder, index_dir = old_index
    question = "How much money does Iraq owe Moscow?"
    retriever = open_retriever(index_dir, embedder=embedder)
    before = [(h.chunk_id, h.score) for h in retriever.search(question, k=5)]
    retriever.store.close()
    as_format_4(index_dir)

    with pytest.raises(IndexMismatchError, match="run `qa index` to upgrade it"):
        LocalStore.open(index_dir)

    report = update_index(index_dir, [folder], embedder=embedder)
    assert (report.added, report.changed, report.removed, report.chunks_embedded) == (0, 0, 0, 0)
    assert json.loads((index_dir / "manifest.json").read_text())["format_version"] == 5
    assert [p.name for p in index_dir.glob("vectors-*.faiss")] == []
    assert check_store(index_dir) == []
    retriever = open_retriever(index_dir, embedder=embedder)
    assert [(h.chunk_id, h.score) for h in retriever.search(question, k=5)] == before
    retriever.store.close()

    # The upgraded index takes updates as any format-5 one does.
    (folder / "extra.txt").write_text("Sines harbour\n\nThe harbour of Sines handles container ships.\n")
    assert update_index(index_dir, [folder], embedder=embedder).added == 1


def test_an_upgrade_cut_short_after_the_catalog_step_finishes_next_time(
    old_index: tuple[Path, Path], embedder: Embedder
) -> None:
    from qa.stores.local import upgrade

    folder, index_dir = old_index
    as_format_4(index_dir)
    # As if killed after the catalog listed the segment, before the manifest was written.
    manifest_path = index_dir / "manifest.json"
    saved = manifest_path.read_text()
    manifest = Manifest.from_json(saved, str(manifest_path), "faiss", oldest=upgrade.UPGRADABLE_FORMAT)
    upgrade.upgrade_format_4(index_dir, manifest, manifest_path, index_dir / "catalog.sqlite")
    manifest_path.write_text(saved)

    update_index(index_dir, [folder], embedder=embedder)
    db = sqlite3.connect(index_dir / "catalog.sqlite")
    assert db.execute("SELECT count(*) FROM segments").fetchone()[0] == 1
    db.close()
    assert check_store(index_dir) == []


def test_forgetting_a_folder_upgrades_a_format_4_index_first(tmp_path: Path, embedder: Embedder) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "sines.txt").write_text("Sines harbour\n\nThe harbour of Sines handles container ships.\n")
    index_dir = tmp_path / "index"
    both = update_index(index_dir, [SEEDS, extra], embedder=embedder)
    as_format_4(index_dir)

    report = update_index(index_dir, embedder=embedder, forget=[extra])
    assert (report.removed, report.forgotten, report.documents) == (1, (str(extra),), both.documents - 1)
    assert json.loads((index_dir / "manifest.json").read_text())["format_version"] == 5
    assert check_store(index_dir) == []


def test_the_upgrade_hint_names_the_index_it_is_about(old_index: tuple[Path, Path]) -> None:
    from click.testing import CliRunner

    from qa.cli import main

    _, index_dir = old_index
    as_format_4(index_dir)
    result = CliRunner().invoke(main, ["stats", "--index", str(index_dir)])
    assert result.exit_code == 1
    # Run as printed, the hint upgrades this index, not the default one in the checkout.
    assert f"run `qa index --index {index_dir}` to upgrade it in place" in " ".join(result.output.split())


def test_copying_from_a_format_4_index_names_that_index_in_the_hint(old_index: tuple[Path, Path], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from qa.cli import main

    _, index_dir = old_index
    as_format_4(index_dir)
    target = tmp_path / "copy"
    result = CliRunner().invoke(main, ["index", "--from-store", f"faiss:{index_dir}", "--index", str(target)])
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    # The index to upgrade is the one copied from; the target (still empty) is not named.
    assert f"run `qa index --store faiss:{index_dir}` to upgrade it in place" in said
    assert str(target) not in said
