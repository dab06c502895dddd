"""The chat, driven with lines of text and read back from the console it printed to."""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from rich.console import Console

from qa.embed import Embedder
from qa.errors import IndexCorruptError
from qa.repl import PROMPT, ChatSession

from conftest import store_location
from qa_processes import held_by_another_process, writer_lock_of

if TYPE_CHECKING:
    from conftest import CorpusArticle

    from qa.stores.location import StoreLocation

IVANOV_QUESTION = "Who did Igor Ivanov give the informal document to?"
_BOX = re.compile(r"[│╭╮╰╯─┃━┏┓┗┛]")


def flat(text: str) -> str:
    """Console text with panel borders dropped and all whitespace one space, so wrapped phrases match."""
    return " ".join(_BOX.sub(" ", text).split())


class Chat:
    """What one chat session printed, cut into the reply to each line typed."""

    def __init__(self, output: str, lines: list[str]) -> None:
        self.output = output
        self.banner, *pieces = output.split(PROMPT)
        # The chat echoes every line it reads after the prompt; its reply runs to the next prompt.
        self.replies: list[tuple[str, str]] = []
        for piece in pieces:
            typed = max((line for line in lines if piece.startswith(line)), key=len)
            self.replies.append((typed, piece[len(typed) :]))
        self.answered = [typed for typed, _ in self.replies]

    def reply(self, line: str, nth: int = 1) -> str:
        """The flattened text printed in response to the `nth` time `line` was typed."""
        found = [reply for typed, reply in self.replies if typed == line]
        return flat(found[nth - 1])


def chat(index_dir: Path | StoreLocation, embedder: Embedder, lines: list[str]) -> Chat:
    console = Console(file=io.StringIO(), width=100)
    ChatSession(index_dir, console=console, embedder=embedder).run(lines=lines)
    return Chat(console.file.getvalue(), lines)


@pytest.fixture
def index_dir(seeds_index: Path, tmp_path: Path) -> Path:
    """This test's own copy of the session's seeds index (what a fresh chat builds)."""
    return Path(shutil.copytree(seeds_index, tmp_path / "index"))


@pytest.fixture
def new_article(tmp_path: Path, extra_article: CorpusArticle) -> Path:
    """The extra article, written to a file outside any indexed folder."""
    path = tmp_path / "inbox" / extra_article.name
    path.parent.mkdir()
    path.write_text(extra_article.text, encoding="utf-8")
    return path


def test_a_whole_session(
    tmp_path: Path, embedder: Embedder, new_article: Path, extra_article: CorpusArticle, store_kind: str
) -> None:
    lines = [
        IVANOV_QUESTION,
        "/sources",
        "/open 1",
        "/k 3",
        "/stats",
        "/help",
        "/frobnicate now",
        "/open 99",
        f"/add {new_article}",
        extra_article.question,
        "/sources",
        "/stats",
        "/quit",
        "How much does Baghdad owe Russia?",  # after /quit: never read
    ]
    session = chat(store_location(store_kind, tmp_path), embedder, lines)

    # A fresh index is built from seeds/ on start.
    assert "2 articles" in flat(session.banner)
    assert session.answered == lines[:-1]

    answer = session.reply(IVANOV_QUESTION)
    assert "Madeleine Albright" in answer
    assert "[1]" in answer and "Sources" in answer
    assert "Ivanov's Offer Links Iraq to Chechnya" in answer

    sources = session.reply("/sources")
    assert "[1] Ivanov's Offer Links Iraq to Chechnya" in sources
    assert "Madeleine Albright" in sources
    assert "score" in sources

    article = session.reply("/open 1")
    assert "Ivanov's Offer Links Iraq to Chechnya" in article
    assert "000_22cb3c343393cc32.txt" in article
    # The whole article, from its first sentence to its last, not just the cited passage.
    assert "Russia has suggested for the first time" in article
    assert "barred them from returning." in article
    assert "Get the latest updates" not in article
    # The quoted sentence is marked with its number, which shows without colour too.
    quoted = answer.split(" [1]")[0]
    assert f"{quoted[-60:]} [1]" in article

    assert "Retrieving 3 passages per question." in session.reply("/k 3")

    stats = session.reply("/stats")
    assert re.search(r"documents 2\b", stats)
    assert "all-MiniLM-L6-v2 (384 dimensions)" in stats

    help_text = session.reply("/help")
    for command in ("/help", "/sources", "/open N", "/k N", "/mode M", "/add PATH", "/stats", "/quit"):
        assert command in help_text
    assert "(now 3)" in help_text  # /k took effect

    assert "Unknown command /frobnicate; /help lists the commands." in session.reply("/frobnicate now")
    assert "There is no source 99; /sources lists them." in session.reply("/open 99")

    added = session.reply(f"/add {new_article}")
    assert "1 added" in added
    assert "3 documents" in added

    orchid = session.reply(extra_article.question)
    assert extra_article.answer_phrase in orchid
    assert "Botanists Name New Orchid Found on Madagascar Mountain" in orchid
    assert "$8 billion" not in session.output

    # /k 3 holds for later questions: three passages behind the new answer.
    assert session.reply("/sources", 2).count(" score ") == 3
    assert re.search(r"documents 3\b", session.reply("/stats", 2))
    assert new_article.parent.name in session.reply("/stats", 2)  # the folder /add remembered


def test_commands_before_any_question_and_bad_arguments(index_dir: Path, embedder: Embedder) -> None:
    lines = ["/sources", "/open 1", "/k 0", "/k many", "/mode fuzzy", "/mode keyword", "/add", "/add /no/such/file.txt", "/open x"]
    session = chat(index_dir, embedder, lines)
    assert session.answered == lines
    assert "ask a question first" in session.reply("/sources")
    assert "Ask a question first" in session.reply("/open 1")
    assert "Usage: /k N with N from 1 to 100 (now 5)." in session.reply("/k 0")
    assert "Usage: /k N" in session.reply("/k many")
    assert "Usage: /mode hybrid|dense|keyword (now hybrid)." in session.reply("/mode fuzzy")
    assert "Retrieval mode: keyword." in session.reply("/mode keyword")
    assert "Usage: /add PATH" in session.reply("/add")
    assert "No such file or folder: /no/such/file.txt" in session.reply("/add /no/such/file.txt")
    assert "Usage: /open N" not in session.reply("/open x")  # no answer yet: that comes first
    assert "Ask a question first" in session.reply("/open x")


def test_an_error_on_one_line_does_not_end_the_chat(index_dir: Path, embedder: Embedder) -> None:
    lines = ["?!", "How much does Baghdad owe Russia?", "/open two"]
    session = chat(index_dir, embedder, lines)
    assert session.answered == lines
    assert "The question has no words in it." in session.reply("?!")
    assert "Traceback" not in session.output
    assert "$8 billion" in session.reply("How much does Baghdad owe Russia?")
    assert "Usage: /open N, where N is a source number like 1." in session.reply("/open two")


def test_what_a_user_typed_is_printed_as_text_not_read_as_markup(index_dir: Path, embedder: Embedder) -> None:
    # Rich reads "[/x]" in a markup string as a closing tag and raises; the chat must echo it.
    lines = ["/foo[/x]", "/add /no/such/[/zz]", "/filter since=[/x]", "/llm notaurl[/v1]",
             "/filter since=2021-01-01 until=2020-01-01", "/llm http://[::1", "How much does Baghdad owe Russia?"]
    session = chat(index_dir, embedder, lines)
    assert session.answered == lines
    assert "Unknown command /foo[/x]" in session.reply("/foo[/x]")
    assert "No such file or folder: /no/such/[/zz]" in session.reply("/add /no/such/[/zz]")
    assert "'[/x]' is not a date like 2016-07-27." in session.reply("/filter since=[/x]")
    assert "notaurl[/v1]" in session.reply("/llm notaurl[/v1]")
    assert "/llm: model server 'http://[::1' is not a URL qa can use" in session.reply("/llm http://[::1")
    assert ("Filters not changed: since 2021-01-01 is after until 2020-01-01"
            in session.reply("/filter since=2021-01-01 until=2020-01-01"))
    assert "$8 billion" in session.reply("How much does Baghdad owe Russia?")


def test_unanswerable_question_shows_the_closest_passages(index_dir: Path, embedder: Embedder) -> None:
    question = "What is the boiling point of tungsten?"
    session = chat(index_dir, embedder, [question])
    reply = session.reply(question)
    assert "The articles do not seem to answer this." in reply
    assert "Closest passages" in reply
    assert "[1]" in reply


def test_a_broken_index_is_raised_before_the_chat_opens(tmp_path: Path, embedder: Embedder) -> None:
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    (index_dir / "manifest.json").write_text("{not json")
    (index_dir / "catalog.sqlite").write_bytes(b"")
    console = Console(file=io.StringIO(), width=100)
    with pytest.raises(IndexCorruptError, match=r"manifest.json is damaged .*qa index --rebuild"):
        ChatSession(index_dir, console=console, embedder=embedder).run(lines=["How much does Baghdad owe Russia?"])
    assert console.file.getvalue().strip() == ""  # no chat opened, no question asked

    # `qa chat` says it as every command does, naming the index to rebuild, and exits 1 (it
    # once printed the error in the chat's own colours and exited 0).
    from click.testing import CliRunner

    from qa.cli import main

    result = CliRunner().invoke(main, ["chat", "--index", str(index_dir), "--no-update"], input="q\n")
    assert result.exit_code == 1, result.output
    assert f"qa index --rebuild --index {index_dir}" in flat(result.output)


def test_the_chat_keeps_its_history_in_memory_where_it_cannot_write_it(tmp_path: Path) -> None:
    # Beside an index this user may not write, each line once ended in a traceback from the
    # history file's write. (A folder that is a file stands in for it: root writes anything.)
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    from qa.repl import _history

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert isinstance(_history(blocked / ".chat_history"), InMemoryHistory)
    assert isinstance(_history(tmp_path / "index" / ".chat_history"), FileHistory)


def test_a_follow_up_is_not_answered_with_the_sentence_the_turn_before_quoted(index_dir: Path, embedder: Embedder) -> None:
    # It used to be: read with the first question, "And what did he say about Iraq?" found the
    # first answer's sentence first and gave it again.
    first, follow_up = "Who did Igor Ivanov give the informal document to?", "And what did he say about Iraq?"
    session = chat(index_dir, embedder, [first, follow_up, first, first])
    said = "informal document that Foreign Minister Igor Ivanov gave"

    def answer(line: str, nth: int = 1) -> str:  # the answer, above its sources
        return session.reply(line, nth).split("Sources")[0]

    assert said in answer(first)
    assert "understood as" in answer(follow_up) and said not in answer(follow_up)
    # A question asked again is asked anew, not as a follow-up of itself.
    assert said in answer(first, 3) and "understood as" not in answer(first, 3)


def test_a_follow_up_the_articles_do_not_answer_leaves_the_chat_where_it_was(index_dir: Path, embedder: Embedder) -> None:
    # The seeds give no height: "How tall is he?" once quoted more of what Ivanov said, and after
    # it was declined, "When did he say it?" was asked back who "he" is.
    first, unanswerable, follow_up = ("What did Ivanov say about peacekeepers?", "How tall is he?",
                                      "When did he say it?")
    session = chat(index_dir, embedder, [first, unanswerable, follow_up])
    said = "It all depends on a specific resolution"
    assert said in session.reply(first).split("Sources")[0]
    assert "do not seem to answer" in session.reply(unanswerable)
    answer = session.reply(follow_up).split("Sources")[0]
    assert "understood as: What did Ivanov say about peacekeepers? When did he say it?" in answer
    # Answered with the day, and not with the line the answer before it (the first) quoted.
    assert "Thursday" in answer and said not in answer, answer


def test_open_after_the_article_was_indexed_again_says_so_instead_of_marking_other_words(
    tmp_path: Path, embedder: Embedder
) -> None:
    from qa.indexer import update_index

    article = tmp_path / "corpus" / "club.txt"
    article.parent.mkdir()
    body = ("Chess Club Elects Leader\n\nThe Riverside Chess Club elected Ana Reis as its president on Monday. "
            "The club has 85 members, and Reis promised free lessons for children.\n")
    article.write_text(body, encoding="utf-8")
    update_index(tmp_path / "index", [article.parent], embedder=embedder)
    question = "How many members does the chess club have?"

    def lines():
        yield question
        yield "/open 1"
        article.write_text(body.replace("\n\nThe Riverside", "\n\nA long new first sentence came. The Riverside"),
                           encoding="utf-8")
        yield f"/add {article}"
        yield "/open 1"

    console = Console(file=io.StringIO(), width=200)
    ChatSession(tmp_path / "index", console=console, embedder=embedder).run(lines=lines(), update=False)
    out = console.file.getvalue()
    first, _, second = out.partition("/add")
    assert "85 members" in first and "has changed since this answer" not in first
    assert "has changed since this answer quoted it" in second


def test_add_takes_a_path_with_spaces_typed_without_quotes(index_dir: Path, embedder: Embedder, tmp_path: Path,
                                                           extra_article: CorpusArticle) -> None:
    folder = tmp_path / "my news ü"
    folder.mkdir()
    (folder / extra_article.name).write_text(extra_article.text, encoding="utf-8")
    session = chat(index_dir, embedder, [f"/add {folder}", "/add /no/such folder"])
    assert "1 added" in session.reply(f"/add {folder}")
    assert 'quote a path that holds spaces' in session.reply("/add /no/such folder")


def test_add_takes_a_name_with_apostrophes_typed_without_quotes(index_dir: Path, embedder: Embedder, tmp_path: Path,
                                                                extra_article: CorpusArticle) -> None:
    # The line's apostrophes were read as quotes: "No such file or folder: …/OBriens, notes.txt".
    path = tmp_path / "O'Brien's notes.txt"
    path.write_text(extra_article.text, encoding="utf-8")
    session = chat(index_dir, embedder, [f"/add {path}"])
    assert "1 added" in session.reply(f"/add {path}")


def test_ctrl_c_while_a_question_is_answered_stops_the_answer_not_the_chat(
    index_dir: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C during "Searching…" ended the chat (exit 130) and lost the conversation.
    import qa.answer

    real_answer = qa.answer.answer_question
    pressed: list[bool] = []

    def ctrl_c_the_first_time(*args, **kwargs):
        if not pressed:
            pressed.append(True)
            raise KeyboardInterrupt  # what Python raises when the user presses Ctrl-C
        return real_answer(*args, **kwargs)

    monkeypatch.setattr(qa.answer, "answer_question", ctrl_c_the_first_time)
    session = chat(index_dir, embedder, [IVANOV_QUESTION, IVANOV_QUESTION])
    assert session.reply(IVANOV_QUESTION, 1) == "Stopped."
    assert "Albright" in session.reply(IVANOV_QUESTION, 2)


def test_ctrl_c_stops_a_chat_whose_questions_are_piped_in(index_dir: Path) -> None:
    # Questions piped from a file are no conversation to keep: Ctrl-C there ends the run (it said
    # "Stopped." and went on to the next of 3,000 questions).
    import signal
    import subprocess
    import sys

    chat_process = subprocess.Popen(
        # A process started in the background (as CI may start the tests) inherits SIGINT ignored.
        [sys.executable, "-c", "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
         "from qa.cli import run; run()", "chat", "--no-update", "--index", str(index_dir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert chat_process.stdin is not None and chat_process.stdout is not None
    chat_process.stdin.write(f"{IVANOV_QUESTION}\n" * 200)  # fewer bytes than a pipe holds: no wait to write
    chat_process.stdin.flush()
    try:
        while "Sources" not in chat_process.stdout.readline():  # the first answer is out
            pass
        chat_process.send_signal(signal.SIGINT)
        assert chat_process.wait(timeout=120) == 130
    finally:
        chat_process.kill()
        chat_process.wait()


def test_a_number_typed_as_a_superscript_is_a_usage_line_not_a_traceback(index_dir: Path, embedder: Embedder) -> None:
    # "²" is a key of its own on an AZERTY keyboard; "²".isdigit() is true and int("²") raises.
    session = chat(index_dir, embedder, [IVANOV_QUESTION, "/k ²", "/open ³"])
    assert "Usage: /k N" in session.reply("/k ²")
    assert "Usage: /open N" in session.reply("/open ³")


def test_add_while_another_process_updates_says_nothing_was_added(index_dir: Path, embedder: Embedder,
                                                                  new_article: Path) -> None:
    # It said the start-up notice, "answering from the last completed update", as if /add had run.
    with held_by_another_process(writer_lock_of(index_dir)):
        console = Console(file=io.StringIO(), width=100)
        ChatSession(index_dir, console=console, embedder=embedder).run(lines=[f"/add {new_article}"], update=False)
        said = flat(console.file.getvalue())
    assert "nothing was added: /add again when it has finished" in said


def answers_of(tmp_path: Path, embedder: Embedder, articles: dict[str, str], lines: list[str]) -> Callable[..., str]:
    """A chat over a folder of `articles` (file name -> text), given `lines`: a function from a
    line typed (and which time it was typed) to the answer printed for it, above its sources."""
    from qa.indexer import update_index

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in articles.items():
        (corpus / name).write_text(text, encoding="utf-8")
    update_index(tmp_path / "index", [corpus], embedder=embedder)
    session = chat(tmp_path / "index", embedder, lines)
    return lambda line, nth=1: session.reply(line, nth).split("Sources")[0]


def test_a_follow_up_whose_answer_misses_what_it_asks_about_is_asked_anew(tmp_path: Path, embedder: Embedder) -> None:
    # It used to be: "Who is the mayor?" after the chess club was searched with the club's words
    # and answered with the club's captain, and "How much will the bridge cost?" with the club again.
    first, mayor, bridge, referring, score = ("Which chess club won the regional title?", "Who is the mayor?",
                                              "How much will the bridge cost?", "And what did he say?",
                                              "What was the score?")
    answer = answers_of(tmp_path, embedder, {
        "chess.txt": "Riverton chess club wins regional title\n\nThe Riverton Chess Club won the regional team "
                     "championship on Saturday, beating six other clubs at the public library.\n\nClub captain "
                     "Maria Lopez, 17, won five games and drew one. The club meets every Tuesday evening.\n",
        "council.txt": "Riverton council approves new bridge\n\nThe Riverton town council voted 5 to 2 on Monday to "
                       "build a footbridge over the Clear River, at a cost of $3.2 million.\n\nMayor Daniel Okafor "
                       "said the bridge would link the east side to the town centre.\n",
        "football.txt": "Harbor City edges Lakeview in overtime\n\nHarbor City beat Lakeview 24-21 in overtime on "
                        "Sunday, and the final score sent the home crowd onto the field.\n",
    }, [first, mayor, bridge, referring, "/new", first, score])

    assert "Chess Club won" in answer(first)
    # Asked anew: the answer names the club's town (Riverton), so it is about the chat's subject.
    assert "Mayor Daniel Okafor" in answer(mayor) and "understood as" not in answer(mayor)
    assert "$3.2 million" in answer(bridge)
    # A follow-up with no word of its own to look for keeps to the turns before.
    assert "understood as" in answer(referring)
    # Asked anew, the score would come from another story, which names nothing the chat did: the
    # question is read with the turns before, as it was.
    assert "Chess Club won" in answer(first, 2)
    assert "24-21" not in answer(score) and f"understood as: {first} {score}" in answer(score)


def test_a_follow_up_asks_for_its_own_kind_of_answer(tmp_path: Path, embedder: Embedder) -> None:
    # It used to be: read with the turns before, "Where was the plane going?" asked for a number
    # (the "How many" of the turn before), and "When will he start?" could not be answered by the
    # sentence that had named him, though it gives the day.
    answer = answers_of(tmp_path, embedder, {
        "flight.txt": "Airline flight hits severe turbulence\n\nOne passenger died and 30 were injured when a "
                      "Singapore Airlines flight hit severe turbulence on Tuesday.\n\nThe plane, a Boeing 777, was "
                      "flying from London to Singapore when it dropped sharply over Myanmar and made an emergency "
                      "landing in Bangkok.\n",
        "show.txt": "Jon Stewart returns to late-night TV\n\nJon Stewart will host The Daily Show every Monday "
                    "beginning Feb. 12, the network said on Wednesday.\n\nStewart left the show in 2015 after 16 "
                    "years as its host.\n",
    }, ["Which airline was hit by deadly turbulence?", "How many people died?", "Where was the plane going?",
        "/new", "Who will host The Daily Show on Mondays?", "When will he start?"])

    assert "from London to Singapore" in answer("Where was the plane going?")
    assert "every Monday beginning Feb. 12" in answer("Who will host The Daily Show on Mondays?")
    assert "every Monday beginning Feb. 12" in answer("When will he start?")  # "Feb." is a month too


def test_a_follow_up_about_the_governor_reads_gov_as_the_governor(tmp_path: Path, embedder: Embedder) -> None:
    # It used to be: news style writes "Gov. Gavin Newsom", so the answer read with the turn before
    # held no "governor", and the question was asked anew and answered from another California story.
    answer = answers_of(tmp_path, embedder, {
        "fire.txt": "California wildfire forces thousands to flee\n\nA wildfire in the hills above Ventura, "
                    "California, forced 12,000 people from their homes on Monday.\n\nGov. Gavin Newsom declared a "
                    "state of emergency and said the state would send 500 more firefighters.\n",
        "budget.txt": "California governor signs budget\n\nThe governor of California signed a $300 billion budget "
                      "on Friday, and said schools would get more money than ever before.\n",
    }, ["How many people fled the wildfire in California?", "What did the governor say?"])

    assert "12,000" in answer("How many people fled the wildfire in California?")
    assert "500 more firefighters" in answer("What did the governor say?")
