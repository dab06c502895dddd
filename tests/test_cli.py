"""The `qa` command line: JSON shapes, help texts, one-line errors, and a light `--help`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from qa.cli import main
from qa.stores import open_store

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
IVANOV_QUESTION = "Who did Igor Ivanov give the informal document to?"
CITATION_KEYS = {"n", "doc_id", "title", "path", "start", "end", "quote", "score", "page", "date"}
HIT_KEYS = {"doc_id", "title", "path", "start", "end", "text", "score"}
STATS_KEYS = {"index_dir", "documents", "chunks", "model", "dimension", "size_bytes", "sources"}


def qa(*args: str, input: str | None = None) -> Result:
    """Run `qa ARGS` in this process, as a user would type it."""
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=True)


def assert_one_line_error(result: Result, expected: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    assert expected in lines[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    """`qa index seeds/ --index DIR --json`, run once for this module: (index folder, its result)."""
    index_dir = tmp_path_factory.mktemp("cli") / "index"
    return index_dir, qa("index", str(SEEDS), "--index", str(index_dir), "--json")


@pytest.fixture
def index_dir(built: tuple[Path, Result]) -> Path:
    return built[0]


def document_text(index_dir: Path, doc_id: str) -> str:
    index = open_store(index_dir)
    try:
        document = index.document(doc_id)
        assert document is not None
        return document.text
    finally:
        index.close()


def test_index_json_reports_what_it_did(built: tuple[Path, Result]) -> None:
    index_dir, result = built
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["added"] == 2
    assert report["documents"] == 2
    assert report["chunks"] == report["chunks_embedded"] > 2
    assert report["skipped"] == []
    assert (index_dir / "manifest.json").is_file()


def test_index_without_option_uses_qa_index_dir(tmp_path: Path, default_index_dir: Path) -> None:
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "note.txt").write_text(
        "Harbour Pilots Vote to Strike\n\nHarbour pilots in Port Alder voted on Monday to strike for "
        "three days next week, the pilots' association said, after talks over night-shift pay failed.\n",
        encoding="utf-8",
    )
    result = qa("index", str(folder))
    assert result.exit_code == 0, result.output
    assert "1 added" in result.stdout
    assert (default_index_dir / "manifest.json").is_file()

    stats = qa("stats", "--json")
    assert stats.exit_code == 0, stats.output
    assert json.loads(stats.stdout)["index_dir"] == str(default_index_dir)


def test_ask_json_has_the_documented_shape(index_dir: Path) -> None:
    result = qa("ask", IVANOV_QUESTION, "--index", str(index_dir), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"question", "answer", "answerable", "citations"} <= set(data)
    assert data["question"] == IVANOV_QUESTION
    assert data["answerable"] is True
    assert data["citations"]
    for n, citation in enumerate(data["citations"], start=1):
        assert set(citation) == CITATION_KEYS
        assert citation["n"] == n
        assert isinstance(citation["start"], int) and isinstance(citation["end"], int)
        assert isinstance(citation["score"], float)
        assert citation["quote"] == document_text(index_dir, citation["doc_id"])[citation["start"] : citation["end"]]
        assert f"[{n}]" in data["answer"]
    first = data["citations"][0]
    assert first["title"] == "Ivanov's Offer Links Iraq to Chechnya"
    assert "Madeleine Albright" in first["quote"]
    assert Path(first["path"]).resolve() == SEEDS / "000_22cb3c343393cc32.txt"
    # The article's day, as its passage gives it: when a news story said it.
    assert first["date"] == next(p["date"] for p in data["passages"] if p["doc_id"] == first["doc_id"]) is not None


def test_ask_json_for_an_unanswerable_question(index_dir: Path) -> None:
    result = qa("ask", "What is the boiling point of tungsten?", "--index", str(index_dir), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["answerable"] is False
    assert data["citations"] == []


def test_ask_prints_the_answer_and_its_source(index_dir: Path) -> None:
    result = qa("ask", "How much does Baghdad owe Russia?", "--index", str(index_dir))
    assert result.exit_code == 0, result.output
    assert "$8 billion" in result.stdout
    assert "[1]" in result.stdout
    assert "Russia May Send Peacekeepers to Iraq" in result.stdout


def test_search_json_has_the_documented_shape(index_dir: Path) -> None:
    result = qa("search", "peacekeepers Iraq", "-k", "3", "--index", str(index_dir), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"query", "hits"}
    assert data["query"] == "peacekeepers Iraq"
    assert 1 <= len(data["hits"]) <= 3
    for hit in data["hits"]:
        assert HIT_KEYS <= set(hit)
        assert hit["text"] == document_text(index_dir, hit["doc_id"])[hit["start"] : hit["end"]]
    assert data["hits"][0]["title"] == "Russia May Send Peacekeepers to Iraq"
    scores = [hit["score"] for hit in data["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_search_align_ranks_as_ask_does(index_dir: Path) -> None:
    question = "How much does Baghdad owe Russia?"
    result = qa("search", question, "--align", "-k", "3", "--index", str(index_dir), "--json")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)["hits"]
    assert "$8 billion" in hits[0]["text"]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    answer = json.loads(qa("ask", question, "--index", str(index_dir), "--json").stdout)
    assert answer["citations"][0]["doc_id"] == hits[0]["doc_id"]
    plain = json.loads(qa("search", question, "-k", "3", "--index", str(index_dir), "--json").stdout)["hits"]
    assert [h["score"] for h in plain] != [h["score"] for h in hits]  # a second look changes the scores


def test_search_align_in_a_mode_it_cannot_rank_is_said_not_ignored(index_dir: Path) -> None:
    # A usage error (exit 2), as every other pair of options that cannot go together is.
    result = qa("search", "Iraq", "--align", "--mode", "keyword", "--index", str(index_dir))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--align reads hybrid search's best passages again; it does not go with --mode keyword" in result.output


def test_search_with_a_source_filter_keeps_to_it(index_dir: Path) -> None:
    result = qa("search", "Iraq", "--source", "000_*", "--index", str(index_dir), "--json")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)["hits"]
    assert hits
    assert {Path(hit["path"]).name for hit in hits} == {"000_22cb3c343393cc32.txt"}


def test_stats_json_fields(index_dir: Path, built: tuple[Path, Result]) -> None:
    result = qa("stats", "--index", str(index_dir), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == STATS_KEYS
    report = json.loads(built[1].stdout)
    assert (data["documents"], data["chunks"]) == (2, report["chunks"])
    assert (data["model"], data["dimension"]) == ("all-MiniLM-L6-v2", 384)
    assert data["size_bytes"] > 0
    assert [Path(source).resolve() for source in data["sources"]] == [SEEDS]


def test_a_first_index_with_no_folder_named_says_it_is_the_bundled_samples(tmp_path: Path) -> None:
    # `qa index --index NEWDIR`, the folder forgotten: it builds the samples, and says so.
    index_dir = tmp_path / "idx"
    first = qa("index", "--index", str(index_dir))
    assert first.exit_code == 0, first.output
    said = " ".join(first.stderr.split())
    assert f"no folder named: indexing the bundled sample articles ({SEEDS})" in said
    # The command it names keeps the typed index, or it would build the default one.
    assert f"index yours with `qa index PATH --index {index_dir}`" in said
    data = json.loads(qa("stats", "--index", str(index_dir), "--json").stdout)
    assert [Path(source).resolve() for source in data["sources"]] == [SEEDS]
    again = qa("index", "--index", str(index_dir))  # it remembers the samples now: nothing to say
    assert again.exit_code == 0, again.output
    assert "bundled" not in again.stderr


def test_the_index_is_named_by_its_whole_path_as_over_http(index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(index_dir.parent)  # typed relative, as `qa stats --index idx`
    data = json.loads(qa("stats", "--index", index_dir.name, "--json").stdout)
    assert data["index_dir"] == str(index_dir)
    assert json.loads(qa("doctor", "--index", index_dir.name, "--json").stdout)["index"] == str(index_dir)


def test_doctor_json_with_no_index_is_still_one_json_object(tmp_path: Path) -> None:
    result = qa("doctor", "--index", str(tmp_path / "none"), "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["index"] == str(tmp_path / "none")
    assert "no index in" in data["problems"][0]


def test_stats_text(index_dir: Path) -> None:
    result = qa("stats", "--index", str(index_dir))
    assert result.exit_code == 0, result.output
    assert "documents" in result.stdout and "all-MiniLM-L6-v2 (384 dimensions)" in result.stdout


def test_chat_reads_questions_from_piped_input(index_dir: Path) -> None:
    result = qa("chat", "--index", str(index_dir), "--no-update", input="How much does Baghdad owe Russia?\n/quit\n")
    assert result.exit_code == 0, result.output
    assert "2 articles" in result.stdout
    assert "$8 billion" in result.stdout


def test_a_chat_left_at_once_exits_cleanly(index_dir: Path) -> None:
    # The model loads in a thread from the chat's start; a real process that leaves before it is
    # loaded must wait for it, or the interpreter exits under its native threads (exit 134).
    for given in ("/quit\n", ""):
        result = subprocess.run(
            [sys.executable, "-m", "qa.cli", "chat", "--index", str(index_dir), "--no-update"],
            input=given, capture_output=True, text=True, timeout=120, env=dict(os.environ, HF_HUB_OFFLINE="1"),
        )
        assert result.returncode == 0, result.stderr
        assert "terminate" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "resumable"), [([], True), (["--rebuild"], False)])
def test_ctrl_c_in_qa_index_says_whether_running_it_again_goes_on(
        args: list[str], resumable: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qa import indexer

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # what Ctrl-C raises while an update runs

    monkeypatch.setattr(indexer, "update_index", interrupted)
    result = qa("index", str(SEEDS), "--index", str(tmp_path / "idx"), *args)
    assert result.exit_code == 130
    assert "Interrupted; the index keeps its last completed update." in result.output
    # A rebuild commits once, at its end: run again, it starts over.
    assert ("Run the same command again to go on" in result.output) is resumable


def test_a_chat_option_given_to_bare_qa_says_where_it_goes() -> None:
    result = qa("--no-update")
    assert result.exit_code == 2
    assert "the chat's options follow `qa chat`: qa chat --no-update" in result.output
    assert "follow `qa chat`" not in qa("--bogus").output  # an option nothing takes is click's own error


def test_commands_have_help() -> None:
    assert main.commands
    top = qa("--help")
    assert top.exit_code == 0 and "Example" in top.output
    for name in main.commands:
        result = qa(name, "--help")
        assert result.exit_code == 0, name
        assert "Example" in result.output, f"`qa {name} --help` shows no example"


def test_ask_with_no_index_is_a_one_line_error(default_index_dir: Path) -> None:
    result = qa("ask", IVANOV_QUESTION)
    assert_one_line_error(result, "no index in")
    assert "qa index" in result.output
    assert not default_index_dir.exists()  # asking does not create an index folder


def test_the_fix_for_a_missing_index_names_the_index_typed(tmp_path: Path) -> None:
    # Run as it was printed, `qa index PATH` would have built the default index instead.
    result = qa("ask", IVANOV_QUESTION, "--index", str(tmp_path / "none"))
    assert_one_line_error(result, f"run `qa index PATH --index {tmp_path / 'none'}` to build one")


def test_stats_with_no_index_is_a_one_line_error() -> None:
    assert_one_line_error(qa("stats"), "no index in")


def test_empty_question_is_a_one_line_error(index_dir: Path) -> None:
    assert_one_line_error(qa("ask", "", "--index", str(index_dir)), "the question is empty")
    assert_one_line_error(qa("ask", "  ?! ", "--index", str(index_dir)), "no words")
    assert_one_line_error(qa("search", "   ", "--index", str(index_dir)), "the query is empty")
    # Refused as the HTTP API refuses it, not cut mid-word (once searched for "Igo" and told that
    # no article mentions it).
    long_question = "Who did Igor Ivanov give the informal document to? " * 40
    assert_one_line_error(qa("ask", long_question, "--index", str(index_dir)), "the question is longer than 2000 characters")


def test_an_empty_question_is_said_before_the_index_is_looked_for(tmp_path: Path) -> None:
    # Said at once, not after the model loads, and not hidden behind "no index".
    assert_one_line_error(qa("ask", " ", "--index", str(tmp_path / "none")), "the question is empty")
    assert_one_line_error(qa("search", "?!", "--index", str(tmp_path / "none")), "the query has no words in it")


def test_index_location_that_is_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    assert_one_line_error(qa("stats", "--index", str(not_a_folder)), "is a file, not a folder")


def test_a_question_with_bytes_that_are_not_utf8_is_answered(index_dir: Path) -> None:
    # The shell passes "\xff" through; Python's argv holds it as a lone surrogate.
    result = qa("ask", "How much does Baghdad owe \udcff Russia?", "--index", str(index_dir), "--json")
    assert result.exit_code == 0, result.output
    assert "$8 billion" in json.loads(result.stdout)["answer"]
    searched = qa("search", "Baghdad owes \udcff Russia", "--index", str(index_dir), "--json")
    assert searched.exit_code == 0, searched.output
    assert json.loads(searched.stdout)["query"] == "Baghdad owes \ufffd Russia"


def test_an_index_folder_that_cannot_be_made_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    articles = tmp_path / "articles"
    articles.mkdir()
    result = qa("index", str(articles), "--index", str(tmp_path / "afile" / "index"))
    assert_one_line_error(result, "cannot make the index folder")


def test_an_index_that_never_held_an_article_finds_nothing_in_every_mode(tmp_path: Path) -> None:
    empty, index = tmp_path / "empty", tmp_path / "index"
    empty.mkdir()
    assert qa("index", str(empty), "--index", str(index)).exit_code == 0
    # Long enough for the whole-article search too (qa.retrieve.ARTICLE_MIN_QUESTION_WORDS).
    question = "How much money does Baghdad owe the Russian government after the long talks in Moscow?"
    for mode in ("hybrid", "keyword", "dense"):
        result = qa("ask", question, "--mode", mode, "--index", str(index), "--json")
        assert result.exit_code == 0, result.output
        answer = json.loads(result.stdout)
        assert answer["citations"] == [] and answer["answer"] == "The index holds no articles yet: add some with qa index PATH."
        searched = qa("search", question, "--mode", mode, "--index", str(index), "--json")
        assert json.loads(searched.stdout)["hits"] == []


@pytest.mark.parametrize("option", ["--since", "--until"])
def test_bad_date_is_a_usage_error(option: str, index_dir: Path) -> None:
    result = qa("ask", IVANOV_QUESTION, option, "27/07/2016", "--index", str(index_dir))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert option in result.output and "not a date like 2016-07-27" in result.output


def test_a_date_range_that_holds_no_day_is_a_usage_error(index_dir: Path) -> None:
    result = qa("ask", IVANOV_QUESTION, "--since", "2021-01-01", "--until", "2020-01-01", "--index", str(index_dir))
    assert result.exit_code == 2
    assert "--since 2021-01-01 is after --until 2020-01-01" in result.output


def test_filters_no_article_passes_are_named_in_the_answer(index_dir: Path) -> None:
    result = qa("ask", IVANOV_QUESTION, "--since", "2030-01-01", "--index", str(index_dir), "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["answer"] == ("No passage was found in the articles that match the filters (since=2030-01-01); "
                                "an article that states no date is left out by a date filter.")
    assert not answer["answerable"] and answer["citations"] == []
    # `qa search` names them too (it once said only "No passages found for 'Iraq'.").
    result = qa("search", "Iraq", "--source", "nomatch*", "--index", str(index_dir))
    assert result.exit_code == 0, result.output
    assert " ".join(result.output.split()) == (
        "No passages found for 'Iraq' in the articles that match the filters (source=nomatch*).")


def test_k_out_of_range_is_a_usage_error(index_dir: Path) -> None:
    result = qa("search", "Iraq", "-k", "0", "--index", str(index_dir))
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_installed_qa_help_runs() -> None:
    script = Path(sys.executable).parent / "qa"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Examples" in result.stdout and "ask" in result.stdout


def test_help_and_stats_do_not_import_the_heavy_libraries(index_dir: Path) -> None:
    # A fresh interpreter: this test process has long since imported torch.
    code = textwrap.dedent(
        f"""
        import sys
        import qa.cli
        heavy = ("torch", "faiss", "sentence_transformers", "transformers")
        try:
            qa.cli.main(["--help"], standalone_mode=False)
        except SystemExit:
            pass
        loaded = [name for name in heavy if name in sys.modules]
        assert not loaded, f"qa --help imported {{loaded}}"
        qa.cli.main(["stats", "--index", {str(index_dir)!r}], standalone_mode=False)
        loaded = [name for name in ("torch", "sentence_transformers") if name in sys.modules]
        assert not loaded, f"qa stats imported {{loaded}}"
        print("light")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("light")


def test_index_of_only_a_mistyped_path_makes_no_index(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["index", "--index", str(tmp_path / "idx"), str(tmp_path / "typo")])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: no such file or folder: {tmp_path / 'typo'}"
    assert not (tmp_path / "idx").exists()  # not made empty and called up to date
    # An index that is there but cannot be read now is not taken for no index: its own error is said.
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "manifest.json").write_text('{"format_version": 4, "model": "m", "dimension": 3}')
    result = CliRunner().invoke(main, ["index", "--index", str(tmp_path / "idx"), str(tmp_path / "typo")])
    assert result.exit_code == 1 and "no such file or folder" not in result.output, result.output


def test_a_folder_named_like_another_users_home_is_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # "~nosuchuser" is a name like any other where no user has it: `qa index ./~nosuchuser` (click
    # hands it on as "~nosuchuser") ended in pathlib's RuntimeError, "Could not determine home
    # directory", a traceback.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "~nosuchuser").mkdir()
    result = qa("index", "--index", str(tmp_path / "idx"), "./~nosuchuser")
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert f"{tmp_path / '~nosuchuser'} holds no articles" in " ".join(result.output.split())
    result = qa("index", "--index", str(tmp_path / "idx"), "--forget", "./~nosuchuser")
    assert result.exit_code == 0, result.output
    # So is an index folder named so.
    result = qa("stats", "--index", "~nosuchuser/idx")
    assert result.exit_code == 1 and "Traceback" not in result.output and "no index" in result.output, result.output
    # And every other path a user types or sets: a Milvus Lite file, the config file, an eval set,
    # the model and cache folders.
    result = qa("stats", "--store", "milvus:~nosuchuser/x.db")
    assert result.exit_code == 1 and "Traceback" not in result.output and "no index" in result.output, result.output
    result = qa("eval", "~nosuchuser/set")
    assert_one_line_error(result, "no eval file ~nosuchuser/set.corpus.jsonl")
    monkeypatch.setenv("QA_CONFIG", "~nosuchuser/config.toml")
    assert_one_line_error(qa("ask", "--index", str(tmp_path / "idx"), "hi"), "~nosuchuser/config.toml")
    monkeypatch.delenv("QA_CONFIG")
    monkeypatch.setenv("QA_MODEL", "~nosuchuser/model")
    assert_one_line_error(qa("index", "--index", str(tmp_path / "idx2"), "./~nosuchuser"), "~nosuchuser/model")
    monkeypatch.delenv("QA_MODEL")
    from qa.config import cache_dir, model_cache_dir

    monkeypatch.setenv("QA_CACHE_DIR", "~nosuchuser/cache")
    monkeypatch.setenv("QA_MODEL_CACHE", "~nosuchuser/models")
    assert (str(cache_dir()), str(model_cache_dir())) == ("~nosuchuser/cache", "~nosuchuser/models")


def test_an_index_folder_whose_name_is_not_utf8_is_refused_in_one_line(tmp_path: Path) -> None:
    # FAISS failed to write its file with a traceback, and left half an index that said 0 chunks.
    folder = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9")
    assert_one_line_error(qa("index", "--index", folder, str(SEEDS)), "is not a valid UTF-8 name")
    assert not os.path.exists(folder)


def test_an_index_folder_typed_past_a_link_is_where_the_system_finds_it(tmp_path: Path) -> None:
    # `--index lnk/../idx` with lnk -> real/sub names real/idx, as `ls` and `qa index` read it;
    # folded by its text it was tmp/idx, an index nobody built.
    from qa.config import resolve_index_dir

    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "lnk").symlink_to(tmp_path / "real" / "sub")
    assert resolve_index_dir(str(tmp_path / "lnk" / ".." / "idx")) == tmp_path / "real" / "idx"
    assert resolve_index_dir(str(tmp_path / "plain" / ".." / "idx")) == tmp_path / "idx"


def test_index_reports_a_mistyped_path_and_exits_non_zero(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "note.txt").write_text(
        "Harbour Reopens\n\nThe harbour at Eastmere reopened on Monday after three weeks of repairs to the crane.\n"
    )
    result = CliRunner().invoke(main, ["index", "--index", str(tmp_path / "idx"), str(corpus), str(tmp_path / "typo")])
    assert result.exit_code == 1
    assert "no such file or folder" in result.output and "Traceback" not in result.output
    assert "1 added" in result.output  # the real folder was still indexed
    # A remembered folder typed again that is not there now (a drive unplugged): its articles are
    # kept, and a nightly script still sees that something is wrong.
    corpus.rename(tmp_path / "unplugged")
    result = CliRunner().invoke(main, ["index", "--index", str(tmp_path / "idx"), str(corpus)])
    assert result.exit_code == 1, result.output
    assert "its indexed articles are kept" in result.output and f"Error: no such file or folder: {corpus}" in result.output
    assert CliRunner().invoke(main, ["index", "--index", str(tmp_path / "idx")]).exit_code == 0  # not typed: a note


def test_an_index_this_user_may_not_write_is_searched_not_called_damaged(index_dir: Path, tmp_path: Path) -> None:
    # An index on a read-only disk or of another user: every command once said the catalog "cannot
    # be read" and told the user to rebuild it, and `qa index` ended in a PermissionError traceback.
    import shutil

    theirs = tmp_path / "theirs"
    shutil.copytree(index_dir, theirs)
    as_user: list[str] = []
    if os.geteuid() == 0:
        # root writes anything: run qa as root without the right to override file permissions.
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv, which can take away root's override")
        as_user = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    for path in [theirs, *theirs.iterdir()]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*as_user, sys.executable, "-m", "qa.cli", *args, "--index", str(theirs)],
                                  capture_output=True, text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))

        asked = run("ask", "How much does Baghdad owe Russia?", "--json")
        assert asked.returncode == 0, asked.stderr
        assert "$8 billion" in json.loads(asked.stdout)["answer"]
        checked = run("doctor")
        assert checked.returncode == 0 and "consistent" in checked.stdout, checked.stderr
        updated = run("index")
        assert updated.returncode == 1 and "Traceback" not in updated.stderr
        assert "cannot update the index in" in updated.stderr and "can still be searched" in updated.stderr
        assert sorted(p.name for p in theirs.iterdir()) == sorted(p.name for p in index_dir.iterdir())

        # A reader that stays open (a chat, a server) sees what the owner adds later: read without
        # locks, its catalog once went stale and then "database disk image is malformed".
        reader = subprocess.Popen(
            [*as_user, sys.executable, "-c", READER, str(theirs)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
        try:
            assert "$8 billion" in ask_reader(reader, "How much does Baghdad owe Russia?")
            for path in [theirs, *theirs.iterdir()]:  # the owner (this process) may write again
                path.chmod(0o755 if path.is_dir() else 0o644)
            news = tmp_path / "news"
            news.mkdir()
            (news / "harbour.txt").write_text("Harbour Report\n\nThe harbour master of Port Quillon counted "
                                              "45 fishing boats in the northern basin on Monday.\n")
            assert qa("index", str(news), "--index", str(theirs)).exit_code == 0
            for path in [theirs, *theirs.iterdir()]:
                path.chmod(0o555 if path.is_dir() else 0o444)
            assert "45 fishing boats" in ask_reader(reader, "How many fishing boats did the harbour master count?")
        finally:
            reader.stdin.close()
            reader.wait(60)
        assert reader.returncode == 0, reader.stderr.read()
    finally:
        for path in [theirs, *theirs.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)


# A reader that answers each question given on a line of stdin with one line of JSON.
READER = """
import json, sys
from qa.answer import answer_question
from qa.retrieve import open_retriever
retriever = open_retriever(sys.argv[1])
for line in sys.stdin:
    print(json.dumps(answer_question(retriever, line.strip()).answer), flush=True)
"""


def ask_reader(reader: subprocess.Popen, question: str) -> str:
    reader.stdin.write(question + "\n")
    reader.stdin.flush()
    return json.loads(reader.stdout.readline())
