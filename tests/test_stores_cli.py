"""The same commands on a Milvus store (Milvus Lite, in tmp_path), and copying an index between stores."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from qa.cli import _split_ray_address, main
from qa.stores.location import parse_store

from qa_processes import held_by_another_process, milvus_lite_file, writer_lock_of

pytest.importorskip("pymilvus")

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
IVANOV_QUESTION = "Who did Igor Ivanov give the informal document to?"
QUESTIONS = (
    IVANOV_QUESTION,
    "How much does Baghdad owe Russia?",
    "Would Russia send peacekeepers to Iraq?",
    "Chechnya",
)


def qa(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=True)


def as_json(result: Result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, seeds_index: Path) -> tuple[str, str, str]:
    """(local --store, Milvus Lite built by `qa index`, Milvus Lite copied from the local one)."""
    folder = tmp_path_factory.mktemp("stores")
    local = f"faiss:{seeds_index}"
    built = f"milvus:{folder / 'built.db'}"
    copied = f"milvus:{folder / 'copied.db'}"
    report = as_json(qa("index", str(SEEDS), "--store", built, "--json"))
    assert (report["added"], report["documents"], report["chunks"]) == (2, 2, report["chunks_embedded"])
    copy = as_json(qa("index", "--from-store", local, "--store", copied, "--json"))
    assert copy["documents"] == 2 and copy["chunks"] == report["chunks"]
    return local, built, copied


def test_ask_on_milvus_cites_exact_quotes(stores: tuple[str, str, str]) -> None:
    _, built, _ = stores
    answer = as_json(qa("ask", IVANOV_QUESTION, "--store", built, "--json"))
    assert answer["answerable"]
    assert "Albright" in answer["answer"]
    for citation in answer["citations"]:
        text = Path(citation["path"]).read_text(encoding="utf-8")
        assert citation["quote"] in text  # quoted from the article itself, not made up


def test_every_store_gives_the_same_top_passages(stores: tuple[str, str, str]) -> None:
    local, built, copied = stores
    for question in QUESTIONS:
        for mode in ("hybrid", "dense", "keyword"):
            ranked = [
                [(h["doc_id"], h["start"], h["end"]) for h in as_json(qa("search", question, "-k", "3", "--mode", mode,
                                                                            "--store", store, "--json"))["hits"]]
                for store in (local, built, copied)
            ]
            assert ranked[0], (question, mode)
            # The best passage is the same everywhere; below it, scores of a few near-ties may
            # swap by float16 rounding of the local sentence vectors.
            assert ranked[0][0] == ranked[1][0] == ranked[2][0], (question, mode, ranked)


def test_filters_work_on_milvus(stores: tuple[str, str, str]) -> None:
    _, built, _ = stores
    hits = as_json(qa("search", "Iraq", "--store", built, "--source", "*004_*", "--json"))["hits"]
    assert hits and all("004_" in h["path"] for h in hits)
    assert as_json(qa("search", "Iraq", "--store", built, "--until", "1999-01-01", "--json"))["hits"] == []


def test_stats_and_doctor_on_milvus(stores: tuple[str, str, str]) -> None:
    _, built, copied = stores
    stats = as_json(qa("stats", "--store", built, "--json"))
    assert stats["documents"] == 2 and stats["chunks"] > 2
    assert stats["sources"] == [str(SEEDS.absolute())]
    for store in (built, copied):
        report = as_json(qa("doctor", "--store", store, "--json"))
        assert report["ok"], report


def test_copy_back_to_a_folder_keeps_every_chunk(stores: tuple[str, str, str], tmp_path: Path) -> None:
    _, built, _ = stores
    copy = as_json(qa("index", "--from-store", built, "--index", str(tmp_path / "back"), "--json"))
    assert copy["documents"] == 2
    assert as_json(qa("doctor", "--index", str(tmp_path / "back"), "--json"))["ok"]
    answer = as_json(qa("ask", "How much does Baghdad owe Russia?", "--index", str(tmp_path / "back"), "--json"))
    assert "$8 billion" in answer["citations"][0]["quote"]


def test_updating_a_milvus_store_embeds_nothing_new(stores: tuple[str, str, str]) -> None:
    _, built, _ = stores
    report = as_json(qa("index", "--store", built, "--json"))
    assert report["chunks_embedded"] == 0 and report["unchanged"] == 2


@pytest.mark.parametrize(
    "store, message",
    [
        ("redis://localhost/1", "is not a store qa knows"),
        ("milvus:news.sqlite", "ends in .db"),
        ("milvus://localhost:19530/bad-name", "letters, digits and underscores"),
    ],
)
def test_bad_store_names_are_one_line_errors(store: str, message: str) -> None:
    result = qa("stats", "--store", store)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert message in result.output


def test_an_empty_milvus_store_says_how_to_build_it(tmp_path: Path) -> None:
    result = qa("ask", "anything", "--store", f"milvus:{tmp_path / 'empty.db'}")
    assert result.exit_code == 1
    assert "qa index PATH --store" in result.output
    # Reading a Milvus Lite file that is not there makes neither it nor its folders.
    for args in (("ask", "anything"), ("stats",), ("doctor",)):
        result = qa(*args, "--store", f"milvus:{tmp_path / 'typo' / 'nope.db'}")
        assert result.exit_code == 1 and "no index in" in result.output, result.output
    assert not (tmp_path / "empty.db").exists() and not (tmp_path / "typo").exists()


def test_from_store_refuses_paths_and_options_a_copy_would_ignore(tmp_path: Path, stores: tuple[str, str, str]) -> None:
    local, _, _ = stores
    target = str(tmp_path / "x")
    # --forget, --only and --backend were taken and ignored: the whole index was copied, exit 0.
    for extra in ([str(SEEDS)], ["--forget", str(SEEDS)], ["--only"], ["--backend", "onnx"]):
        result = qa("index", *extra, "--from-store", local, "--index", target)
        assert result.exit_code == 2, extra
        assert "--from-store copies an index as it is" in result.output
    # $QA_BACKEND, set for every command, is no option typed: the copy goes on (it refused all).
    result = CliRunner().invoke(main, ["index", "--from-store", local, "--index", str(tmp_path / "y")],
                                env={"QA_BACKEND": "onnx-int8"})
    assert result.exit_code == 0, result.output
    # Empty, it named $QA_STORE or the default index, which the user never typed.
    result = qa("index", "--from-store", "", "--index", target)
    assert result.exit_code == 2 and "--from-store is empty" in result.output
    # A bare folder, or a name of no store, is said of the option it was given to.
    folder = local.removeprefix("faiss:")
    result = qa("index", "--from-store", folder, "--index", target)
    assert result.exit_code == 1 and f"--from-store '{folder}' is a folder: name it as faiss:{folder}" in result.output
    result = qa("index", "--from-store", "redis://x/1", "--index", target)
    assert result.exit_code == 1 and "--from-store 'redis://x/1' is not a store qa knows" in result.output
    assert not Path(target).exists()


def test_a_copy_onto_the_same_store_through_a_link_is_refused(tmp_path: Path, stores: tuple[str, str, str]) -> None:
    _, built, _ = stores
    built_file = Path(built.removeprefix("milvus:"))
    (tmp_path / "link.db").symlink_to(built_file)
    # It said "open in another process" (the same process held the file twice).
    result = qa("index", "--from-store", f"milvus:{tmp_path / 'link.db'}", "--store", built)
    assert result.exit_code == 1 and "name the same index; nothing to copy" in result.output, result.output


def test_a_copy_onto_a_store_that_holds_other_articles_says_it_kept_them(stores: tuple[str, str, str], tmp_path: Path) -> None:
    # A second backup of a changed index kept the articles the index had dropped, and said only
    # "Copied 35 documents".
    local, _, _ = stores
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "ferry.txt").write_text("The ferry to Oban sails at noon on Sundays from the north pier.\n", encoding="utf-8")
    target = f"milvus:{tmp_path / 'backup.db'}"
    as_json(qa("index", str(folder), "--store", target, "--json"))
    report = as_json(qa("index", "--from-store", local, "--store", target, "--json"))
    assert (report["documents"], report["kept_in_target"]) == (2, 1)
    result = CliRunner().invoke(main, ["index", "--from-store", local, "--store", target])
    assert result.exit_code == 0
    assert "The target also holds 1 document the source does not; they were kept" in result.stderr
    assert as_json(qa("index", "--from-store", local, "--index", str(tmp_path / "fresh"), "--json"))["kept_in_target"] == 0


def stop_a_copy_after_its_first_group(source: str, target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`qa index --from-store SOURCE --store TARGET` stopped by a write error after one commit."""
    from qa import migrate
    from qa.errors import IndexWriteError

    real_copy = migrate._copy

    def stopped_after_the_first_group(exported, writer, sources, documents, total_chunks, progress, source):
        real_copy(list(exported)[:1], writer, sources, documents, total_chunks, progress, source)
        raise IndexWriteError("the disk is full")

    monkeypatch.setattr(migrate, "_copy", stopped_after_the_first_group)
    assert qa("index", "--from-store", source, "--store", target).exit_code == 1
    monkeypatch.undo()


@pytest.mark.parametrize("kind", ["faiss", "milvus"])
def test_a_copy_stopped_before_its_end_is_named_by_doctor_until_it_is_run_again(
    kind: str, stores: tuple[str, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A copy killed halfway left a store with part of the source's articles that doctor called
    # consistent; nothing said the copy had not finished.
    local, built, _ = stores
    target = f"faiss:{tmp_path / 'copy'}" if kind == "faiss" else f"milvus:{tmp_path / 'copy.db'}"
    stop_a_copy_after_its_first_group(local, target, monkeypatch)
    report = qa("doctor", "--store", target, "--json")
    assert report.exit_code == 1
    (problem,) = json.loads(report.stdout)["problems"]
    target_argument = parse_store(target).argument()
    # The command it gives is the one that finishes this copy, into this store (not the default).
    assert problem.startswith(f"a copy from {local} into it stopped before it finished")
    assert problem.endswith(f"run `qa index --from-store {local} --store {target_argument}` again to finish it")
    plain = qa("doctor", "--store", target)
    assert "finish the copy as said above" in plain.output and "--rebuild" not in plain.output
    # A copy of it would look whole: refused, naming the copy to finish.
    refused = qa("index", "--from-store", target, "--index", str(tmp_path / "second"))
    assert refused.exit_code == 1 and f"is an unfinished copy of {local} itself" in refused.output
    # Another source's copy, finished, is not this one: the mark stays.
    other = f"faiss:{tmp_path / 'other'}"
    as_json(qa("index", "--from-store", built, "--store", other, "--json"))
    as_json(qa("index", "--from-store", other, "--store", target, "--json"))
    assert json.loads(qa("doctor", "--store", target, "--json").stdout)["problems"] == [problem]
    assert as_json(qa("index", "--from-store", local, "--store", target, "--json"))["documents"] == 2
    assert as_json(qa("doctor", "--store", target, "--json"))["ok"]


def test_a_rebuild_takes_the_mark_of_an_unfinished_copy_off(stores: tuple[str, str, str], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    local, _, _ = stores
    target = f"faiss:{tmp_path / 'copy'}"
    stop_a_copy_after_its_first_group(local, target, monkeypatch)
    assert qa("doctor", "--store", target).exit_code == 1
    as_json(qa("index", str(SEEDS), "--rebuild", "--store", target, "--json"))
    assert as_json(qa("doctor", "--store", target, "--json"))["ok"]


def test_doctor_during_a_copy_says_it_did_not_check(stores: tuple[str, str, str], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Run while a copy was still going, doctor called the store damaged and said to rebuild it.
    local, _, _ = stores
    target = tmp_path / "copy"
    stop_a_copy_after_its_first_group(local, f"faiss:{target}", monkeypatch)
    # A copy at work on the store: the writer lock, and the copy's process named beside it.
    copying = writer_lock_of(target) + f"\nimport os\nPath({str(target / 'copying.pid')!r}).write_text(str(os.getpid()))"
    with held_by_another_process(copying):
        report = qa("doctor", "--index", str(target), "--json")
        assert report.exit_code == 3, report.output
        assert json.loads(report.stdout) == {"index": str(target), "ok": False, "checked": False,
                                             "problems": [f"a copy into {target} is under way; not checked"]}
    # Stopped (its process gone), with another writer at work (a plain update): it is said so.
    with held_by_another_process(writer_lock_of(target)):
        stopped = qa("doctor", "--index", str(target))
        assert stopped.exit_code == 1 and "stopped before it finished" in stopped.output


def test_doctor_on_no_index_says_it_checked_nothing(tmp_path: Path) -> None:
    report = qa("doctor", "--index", str(tmp_path / "nowhere"), "--json")
    assert report.exit_code == 1 and json.loads(report.stdout)["checked"] is False


@pytest.mark.parametrize("kind", ["faiss", "milvus"])
def test_a_lost_document_or_chunk_row_is_named_by_doctor(kind: str, stores: tuple[str, str, str], tmp_path: Path) -> None:
    # A lost document row was said as "chunk 13 spans 0–518, outside its document (0 characters)",
    # once a chunk; a lost chunk row of a Milvus store passed.
    local, built, _ = stores
    if kind == "faiss":
        import sqlite3

        shutil.copytree(local.removeprefix("faiss:"), tmp_path / "damaged")
        damaged = f"faiss:{tmp_path / 'damaged'}"
        with sqlite3.connect(tmp_path / "damaged" / "catalog.sqlite") as db:
            db.execute("DELETE FROM documents WHERE doc_id = (SELECT min(doc_id) FROM documents)")
        expected = "the chunks of 1 document belong to no indexed document"
    else:
        damaged = f"milvus:{tmp_path / 'damaged.db'}"
        as_json(qa("index", "--from-store", built, "--store", damaged, "--json"))
        delete_one_milvus_row(tmp_path / "damaged.db", "qa")
        expected = "1 document lacks chunks"
    report = qa("doctor", "--store", damaged, "--json")
    assert report.exit_code == 1
    problems = json.loads(report.stdout)["problems"]
    assert any(problem.startswith(expected) for problem in problems), problems
    assert not any("outside its document" in problem for problem in problems), problems


def test_a_chunk_milvus_clips_keeps_its_store_whole_and_copyable(tmp_path: Path) -> None:
    # A chunk past a Milvus text field's length (a run of 20,000 spaces) is stored clipped, and its
    # sentences past the cut were dropped from the chunk row but not their vectors: doctor called
    # the store damaged, and a copy out of it was refused, whatever was rebuilt.
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "pad.txt").write_text("Padded Table\n\nThe table starts here" + " " * 20_000
                                    + "and ends here. Next sentence is short.\n", encoding="utf-8")
    store = f"milvus:{tmp_path / 'padded.db'}"
    as_json(qa("index", str(folder), "--store", store, "--json"))
    assert as_json(qa("doctor", "--store", store, "--json"))["ok"]
    assert as_json(qa("index", "--from-store", store, "--index", str(tmp_path / "copy"), "--json"))["documents"] == 1
    assert as_json(qa("doctor", "--index", str(tmp_path / "copy"), "--json"))["ok"]


def drop_one_sentence_vector(store: str) -> None:
    """Delete one stored sentence vector, as a damaged disk or a hand-edited index might."""
    location = parse_store(store)
    if location.is_local:
        import sqlite3

        with sqlite3.connect(location.index_dir / "catalog.sqlite") as db:
            db.execute("DELETE FROM sentences WHERE id = (SELECT min(id) + 3 FROM sentences)")
        return
    delete_one_milvus_row(location.path, "qa_sentences")


def delete_one_milvus_row(path: Path, collection: str) -> None:
    """Delete one row of `collection` in the Milvus Lite file at `path`."""
    from pymilvus import MilvusClient

    client = MilvusClient(str(path))
    try:
        client.load_collection(collection)
        (row,) = client.query(collection, filter="", limit=1, output_fields=["id"])
        client.delete(collection, ids=[row["id"]])
    finally:
        client.close()


@pytest.mark.parametrize("kind", ["faiss", "milvus"])
def test_a_missing_sentence_vector_is_found_by_doctor_and_refused_by_a_copy(
    kind: str, stores: tuple[str, str, str], tmp_path: Path
) -> None:
    # doctor said "consistent"; a copy then gave every later sentence of the article its
    # neighbour's vector (to Milvus) or stopped with an IndexError traceback (to a folder).
    local, built, _ = stores
    if kind == "faiss":
        damaged = f"faiss:{tmp_path / 'damaged'}"
        shutil.copytree(local.removeprefix("faiss:"), tmp_path / "damaged")
    else:
        damaged = f"milvus:{tmp_path / 'damaged.db'}"
        as_json(qa("index", "--from-store", built, "--store", damaged, "--json"))
    assert as_json(qa("doctor", "--store", damaged, "--json"))["ok"]
    drop_one_sentence_vector(damaged)
    report = qa("doctor", "--store", damaged, "--json")
    assert report.exit_code == 1
    (problem,) = json.loads(report.stdout)["problems"]
    assert problem.startswith("the sentence vectors of 1 document do not match their sentences (1 missing, 0 unknown")
    for target in (f"milvus:{tmp_path / 'copy.db'}", f"faiss:{tmp_path / 'copy'}"):
        result = qa("index", "--from-store", damaged, "--store", target)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert "sentence vectors for the" in result.output and "it is damaged" in result.output
        assert f"qa index --rebuild --store {damaged}" in result.output


def test_ray_option_tells_an_address_from_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "news"
    folder.mkdir()
    assert _split_ray_address((), None) == ((), None)
    assert _split_ray_address((), "local") == ((), "local")
    assert _split_ray_address((), "ray://head:10001") == ((), "ray://head:10001")
    assert _split_ray_address((), "head:6379") == ((), "head:6379")
    assert _split_ray_address((), "auto") == ((), "auto")
    # `qa index --ray ~/news`: the folder was read as --ray's value, and is a path after all.
    assert _split_ray_address((Path("b"),), str(folder)) == ((folder, Path("b")), "local")


def test_store_strings_parse() -> None:
    server = parse_store("milvus://db.example.org:19530/news")
    assert (server.kind, server.uri, server.collection) == ("milvus", "http://db.example.org:19530", "news")
    lite = parse_store("milvus:/tmp/x/news.db#archive")
    assert (lite.kind, str(lite.path), lite.collection) == ("milvus", "/tmp/x/news.db", "archive")
    assert parse_store("faiss:/tmp/idx").index_dir == Path("/tmp/idx")


def test_a_folder_of_the_other_kind_a_file_or_a_clashing_name_is_refused(
    stores: tuple[str, str, str], seeds_index: Path, tmp_path: Path
) -> None:
    _, built, _ = stores
    lite_folder = built.split(":", 1)[1]
    # Each kind of store named as the other is said to be what it is, not given a second index.
    local = tmp_path / "local.db"
    shutil.copytree(seeds_index, local)
    before = sorted(p.name for p in local.iterdir())
    for command in (["index", str(SEEDS)], ["stats"]):
        result = qa(*command, "--store", f"milvus:{local}")
        assert result.exit_code == 1 and f"name it as --store faiss:{local}" in result.output
    assert sorted(p.name for p in local.iterdir()) == before  # Milvus Lite made nothing there
    result = qa("index", str(SEEDS), "--index", lite_folder)
    assert result.exit_code == 1 and f"name it as --store milvus:{lite_folder}" in result.output
    assert not (Path(lite_folder) / "catalog.sqlite").exists()
    # Typed bare, or as the other kind, to --from-store: the hint names that option and the kind.
    result = qa("index", "--from-store", lite_folder, "--index", str(tmp_path / "copy"))
    assert result.exit_code == 1 and f"is a folder: name it as milvus:{lite_folder}" in result.output
    result = qa("index", "--from-store", f"faiss:{lite_folder}", "--index", str(tmp_path / "copy"))
    assert result.exit_code == 1 and f"name it as --from-store milvus:{lite_folder}" in result.output
    # A plain file where the Lite folder would be.
    (tmp_path / "notes.db").write_text("hi")
    result = qa("stats", "--store", f"milvus:{tmp_path / 'notes.db'}")
    assert result.exit_code == 1 and "is a file, not a Milvus Lite store" in result.output
    # A new store named as another store's side collection would be.
    result = qa("index", str(SEEDS), "--store", f"{built}#qa_documents")
    assert result.exit_code == 1 and "may not end in _documents" in result.output
    assert as_json(qa("stats", "--store", built, "--json"))["documents"] == 2


def test_a_typed_index_or_store_wins_over_the_environment(stores: tuple[str, str, str], seeds_index: Path) -> None:
    _, built, _ = stores
    runner = CliRunner()
    typed_index = runner.invoke(main, ["stats", "--index", str(seeds_index), "--json"], env={"QA_STORE": built})
    assert as_json(typed_index)["index_dir"] == str(seeds_index)
    typed_store = runner.invoke(main, ["stats", "--store", built, "--json"], env={"QA_INDEX_DIR": str(seeds_index)})
    assert as_json(typed_store)["index_dir"] == built
    both = qa("stats", "--index", str(seeds_index), "--store", built)
    assert both.exit_code == 2 and "--index and --store both say where the index is" in both.output


def test_a_writer_waits_for_a_milvus_lite_file_the_last_process_is_letting_go_of(tmp_path: Path) -> None:
    """Milvus Lite keeps a file open for as long as the process that opened it: another process
    holds it here for a few seconds."""
    import subprocess
    import sys
    import time

    from qa.stores.milvus.store import MilvusError, _client

    location = parse_store(f"milvus:{tmp_path / 'held.db'}")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from pymilvus import MilvusClient; "
         f"c = MilvusClient(uri={str(location.path)!r}); print('open', flush=True); time.sleep(6)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(MilvusError, match="is open in another process"):
            _client(location)  # a reader is told at once
        started = time.monotonic()
        client = _client(location, wait_seconds=30)  # a writer waits for the holder to go
        waited = time.monotonic() - started
        client.close()
        assert waited > 1  # it opened once the holder let go (its process may still be exiting)
    finally:
        holder.kill()
        holder.wait()


def test_doctor_on_a_store_another_process_holds_says_it_did_not_check(stores: tuple[str, str, str], tmp_path: Path) -> None:
    # It said "ok": false with exit 1, as for damage: a script would rebuild an index that was busy.
    import subprocess
    import sys

    local, _, _ = stores
    held = tmp_path / "held.db"
    # Written by another process: Milvus Lite keeps a file open as long as the process that opened it.
    subprocess.run([sys.executable, "-m", "qa.cli", "index", "--from-store", local, "--store", f"milvus:{held}"],
                   check=True, capture_output=True)
    with held_by_another_process(milvus_lite_file(held)):
        report = qa("doctor", "--store", f"milvus:{held}", "--json")
        assert report.exit_code == 3
        body = json.loads(report.stdout)
        assert body["checked"] is False and "open in another process" in body["problems"][0]
        plain = qa("doctor", "--store", f"milvus:{held}")
        assert plain.exit_code == 3 and "not checked" in plain.output and "Traceback" not in plain.output
    report = as_json(qa("doctor", "--store", f"milvus:{held}", "--json"))
    assert report["ok"] and report["checked"]


def test_a_rebuild_starts_over_a_milvus_store_too_damaged_to_read(tmp_path: Path) -> None:
    from qa.stores.milvus.store import MilvusCollections

    store = f"milvus:{tmp_path / 'damaged.db'}"
    first = as_json(qa("index", str(SEEDS), "--store", store, "--json"))
    collections = MilvusCollections(parse_store(store))
    try:
        collections.client.drop_collection(collections.documents)  # its documents gone
    finally:
        collections.close()
    assert qa("stats", "--store", store).exit_code == 1
    rebuilt = as_json(qa("index", "--rebuild", "--store", store, "--json"))
    assert (rebuilt["documents"], rebuilt["chunks"]) == (first["documents"], first["chunks"])
    assert as_json(qa("doctor", "--store", store, "--json"))["ok"]


def test_settings_longer_than_a_milvus_row_are_kept_whole(tmp_path: Path) -> None:
    """A commit that drops thousands of documents writes their ids down first; a Milvus VARCHAR
    holds 65,535 bytes, which 5,000 ids outgrow."""
    from qa.stores.milvus.store import PENDING_KEY, MilvusCollections, pending_documents

    collections = MilvusCollections(parse_store(f"milvus:{tmp_path / 'long.db'}"))
    try:
        collections.create(384)
        collections.load()
        ids = [f"{n:016x}" for n in range(5000)]
        collections.set_long_meta(PENDING_KEY, json.dumps(ids))
        assert pending_documents(collections) == ids
        folders = [f"/home/reporter/news/2026-ü-{n:05d}.txt" for n in range(5000)]  # 4-byte-safe parts
        collections.set_long_meta("sources", json.dumps(folders))
        assert json.loads(collections.get_long_meta("sources") or "[]") == folders
        collections.set_long_meta(PENDING_KEY, "[]")  # short again: one row, the parts left unread
        assert pending_documents(collections) == []
    finally:
        collections.close()
