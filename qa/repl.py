"""The chat: a Rich REPL over the index, with line editing and history from prompt_toolkit.

Input is a parameter (`run(lines=[...])`), so tests drive the chat with strings and read the
console's text; a person at a terminal gets prompt_toolkit.
"""

from __future__ import annotations

import os
import shlex
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from qa.config import DEFAULT_TOP_K
from qa.errors import IndexLockedError, QAError
from qa.followup import Conversation, is_follow_up, shares_a_name, topic_share
from qa.retrieve import MODES, iso_day
from qa.text import counted
from qa.types import SearchFilters

if TYPE_CHECKING:
    from prompt_toolkit.history import History

    from qa.embed import Embedder
    from qa.llm import ChatClient, LLMSettings
    from qa.retrieve import Retriever
    from qa.stores.location import StoreLocation
    from qa.types import Answer

PROMPT = "qa> "

COMMANDS = [
    ("/help", "this list"),
    ("/sources", "the last answer's passages in full, cited sentences highlighted"),
    ("/open N", "the whole article of source N, the cited sentence highlighted"),
    ("/k N", "retrieve N passages per question (now {k})"),
    ("/mode M", "retrieval mode: hybrid, dense or keyword (now {mode})"),
    ("/filter …", "limit sources: /filter source=GLOB since=DATE until=DATE; /filter off; /filter shows it"),
    ("/new", "forget the conversation: the next question is not read as a follow-up"),
    ("/add PATH", "index more files or a folder now"),
    ("/llm …", "answers written by a model server: /llm URL (ollama:MODEL, http://HOST:PORT), /llm on, /llm off (now {llm})"),
    ("/stats", "documents, chunks, model and size of the index"),
    ("/quit", "leave (Ctrl-D works too)"),
]


class ChatSession:
    """One chat over one index: a local folder or a store."""

    def __init__(
        self,
        location: Path | StoreLocation,
        console: Console | None = None,
        k: int = DEFAULT_TOP_K,
        mode: str = "hybrid",
        filters: SearchFilters | None = None,
        embedder: Embedder | None = None,
        reranker: str | None = None,
        backend: str | None = None,
        llm: LLMSettings | None = None,
    ) -> None:
        from qa.stores.location import as_location

        self.location = as_location(location)
        self.console = console or Console()
        self.k = k
        self.mode = mode
        self.filters = filters or SearchFilters()
        self._embedder = embedder
        self._reranker_path = reranker
        self._backend = backend
        self._retriever: Retriever | None = None
        self.last_answer: Answer | None = None
        # The last answer that quoted something: what a follow-up asks more than (an unanswered
        # follow-up between them leaves the subject as it was, qa.followup).
        self.last_answered: Answer | None = None
        self.conversation = Conversation()
        self.llm = llm  # answers are written by this model server when set; quoted when None
        self._llm_settings = llm  # what `/llm on` turns back on
        self._llm_client: ChatClient | None = None
        self._warned_remote: set[str] = set()

    # Start-up ---------------------------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from qa.embed import Embedder
            from qa.stores import encoder_backend

            self._embedder = Embedder(backend=self._backend or encoder_backend(self.location), bulk=False)
        return self._embedder

    def update(self, paths: list[str] | None = None) -> None:
        """Bring the index up to date with its folders, or with `paths` alone, showing progress."""
        from qa.indexer import update_index
        from qa.progress import RichIndexProgress
        from qa.render import render_update_report

        try:
            with RichIndexProgress(self.console) as progress:
                # `/add PATH` looks at PATH alone (qa index --only): the rest was checked at start.
                report = update_index(
                    self.location, paths, embedder=self.embedder, progress=progress, lock_timeout=0,
                    only=bool(paths),
                )
        except IndexLockedError:
            if paths:  # said as what it is: the /add was not done (it read as the start-up notice)
                self.console.print("[yellow]Another qa process is updating this index; nothing was added: "
                                   "/add again when it has finished.[/]")
            else:
                self.console.print(
                    "[yellow]Another qa process is updating this index; answering from the last completed update.[/]"
                )
            return
        if report.changed_anything or report.skipped or paths:
            self.console.print(render_update_report(report))
        self._close_retriever()

    def retriever(self) -> Retriever:
        if self._retriever is None:
            from qa.retrieve import open_retriever

            self._retriever = open_retriever(self.location, reranker=self._reranker_path, embedder=self.embedder)
        return self._retriever

    def _close_retriever(self) -> None:
        if self._retriever is not None:
            self._retriever.store.close()
            self._retriever = None

    # The loop -------------------------------------------------------------------------------------------

    def run(self, lines: Iterable[str] | None = None, update: bool = True) -> None:
        """Read questions and commands until /quit or end of input; a QAError when the index
        cannot be brought up to date or opened (the errors of one question are said in the chat)."""
        # Loading torch takes seconds: start it now, while the index is checked and the user types.
        # NumPy is imported here first: both threads need it, and two threads importing it at once
        # can each meet it half made ("cannot import name '__cpu_features__'").
        import numpy  # noqa: F401

        warm_up = threading.Thread(target=self._warm_up, daemon=True)
        warm_up.start()
        try:
            self._converse(lines, update)
        finally:
            # A chat left at once may leave the model loading: the interpreter must not exit under
            # its native threads, which aborts the process ("terminate called…", exit 134).
            warm_up.join()

    def _converse(self, lines: Iterable[str] | None, update: bool) -> None:
        # An index that cannot be opened is raised, not printed: `qa chat` then says it as every
        # command does (naming the --index to rebuild) and exits 1, as a script expects.
        if update:
            self.update()
        documents, chunks = self.retriever().store.counts()
        self.console.print(
            f"[bold]qa[/] — {counted(documents, 'article')}, {counted(chunks, 'passage')}. Ask a question; /help for commands."
        )
        if self.llm is not None:
            self.console.print(Text(f"Answers are written by the model server at {self.llm.shown_url}, each sentence checked."))
            self._warn_if_remote()
        piped = lines is None and not sys.stdin.isatty()
        for line in self._read(lines):
            try:
                if not self.handle(line):
                    break
            except QAError as exc:
                self.console.print(Text(as_sentence(str(exc)), style="red"))
            except KeyboardInterrupt:
                # Ctrl-C stops what the line started (a search, an answer, an /add), not the
                # chat: it ended the chat and lost the conversation. An update commits as it goes.
                # Questions piped in are no conversation: there, Ctrl-C stops the run.
                if piped:
                    raise
                stopped = "Stopped; the index keeps what /add had stored: /add again to go on." \
                    if line.lstrip().startswith("/add") else "Stopped."
                self.console.print(Text(stopped, style="yellow"))
        self._close_retriever()
        if self._llm_client is not None:
            self._llm_client.close()

    def _warm_up(self) -> None:
        try:
            self.embedder.load()
        except QAError:
            pass  # reported when a question needs the model

    def _read(self, lines: Iterable[str] | None) -> Iterator[str]:
        if lines is not None:
            for line in lines:
                self.console.print(Text(PROMPT + line, style="dim"))
                yield line
            return
        yield from self._prompt_lines()

    def _prompt_lines(self) -> Iterator[str]:
        if not sys.stdin.isatty():
            # Piped input: one question per line, no line editor.
            for line in sys.stdin:
                yield line.rstrip("\n")
            return
        from prompt_toolkit import PromptSession

        session: PromptSession[str] = PromptSession(history=_history(self.location.state_dir() / ".chat_history"))
        while True:
            try:
                yield session.prompt(PROMPT)
            except KeyboardInterrupt:
                continue  # Ctrl-C abandons the line being typed
            except EOFError:
                return  # Ctrl-D leaves

    # One line ---------------------------------------------------------------------------------------------

    def handle(self, line: str) -> bool:
        """Act on one line of input; False means leave."""
        text = line.strip()
        if not text:
            return True
        if text.startswith("/"):
            return self._command(text)
        self.ask(text)
        return True

    def ask(self, question: str) -> Answer:
        from qa.render import render_answer

        # `leaned`: whether the answer's search read the turns before (a rule-made follow-up).
        answer, leaned = self._generate(question) if self.llm is not None else self._quoted(question)
        from qa.pages import answer_with_pages

        answer = answer_with_pages(answer, self.retriever().store)  # PDF citations say their page
        self.conversation.record(answer.question, answer.answerable, answer.understood_as, standalone=not leaned)
        self.last_answer = answer
        if answer.answerable:
            self.last_answered = answer
        self.console.print(render_answer(answer))
        return answer

    def _quoted(self, question: str) -> tuple[Answer, bool]:
        """The extractive answer, a follow-up read with the questions before it (qa.followup), and
        whether it was."""
        from qa.answer import answer_question, cited_passages

        expanded = self.conversation.contextualize(question)
        # Read with the turn before, the question would find that turn's answer again first.
        before = self.last_answered
        said_before = before.citations if expanded and before else ()
        with self.console.status("Searching…", spinner="dots"):
            answer = answer_question(
                self.retriever(), question, k=self.k, mode=self.mode, filters=self.filters, retrieval_query=expanded,
                said_before=said_before, said_for=before.question if said_before and before else "",
            )
            if expanded is None or topic_share(question, cited_passages(answer)) > 0:
                return answer, expanded is not None
            # Read with the turns before, its answer says nothing of what it asks about ("Who is
            # the mayor?" after the chess club): asked anew, if that answer does and is about the
            # chat's subject still (it names something the chat did: the club's town). An answer
            # from another story ("What was the score?" after a darts final, answered with a
            # football game's) would be worse than the one that misses.
            alone = answer_question(self.retriever(), question, k=self.k, mode=self.mode, filters=self.filters)
            # The turns before and the last answer, not the question itself: a name it gives
            # ("What about Chechnya?") would be found in any answer about it.
            turns_before = expanded.removesuffix(" ".join(question.split()))
            context = [turns_before, *(c.quote for c in before.citations)] if before else [turns_before]
            # Either way the chat's subject stays: the next follow-up leans on it, not on this.
            if topic_share(question, cited_passages(alone)) == 1.0 and shares_a_name(context, cited_passages(alone)):
                return alone, True
            return answer, True

    def _generate(self, question: str) -> tuple[Answer, bool]:
        """The answer written by the model server, streamed as it comes (Ctrl-C stops it and keeps
        what came), and whether its search read the turns before by the rule (a model's rewrite of
        a follow-up stands alone)."""
        from rich.live import Live

        from qa.errors import LLMError
        from qa.generate import condense_question, generate_answer
        from qa.llm import ChatClient
        from qa.render import streaming_text

        assert self.llm is not None
        if self._llm_client is None:
            self._llm_client = ChatClient(self.llm)
        self._warn_if_remote()
        rewritten = None
        leaned = False
        history = self.conversation.history()
        if history and is_follow_up(question):
            try:
                with self.console.status("Reading the question…", spinner="dots"):
                    rewritten = condense_question(self._llm_client, history, question)
            except LLMError as exc:
                # The server that could not rewrite the question would fail the answer too: one
                # notice, the quoted answer, instead of a second wait and a second message.
                quoted, leaned = self._quoted(question)
                return replace(quoted, notice=f"{str(exc).rstrip('.')}; showing the quoted answer instead"), leaned
            except KeyboardInterrupt:
                pass  # Ctrl-C skips the rewrite, not the question
            if rewritten is None:  # no model rewrite: the rule-based one
                rewritten = self.conversation.contextualize(question)
                leaned = rewritten is not None
        written: list[str] = []
        # The answer appears as it is written; once checked, the final render takes its place.
        with Live(streaming_text("Searching…"), console=self.console, transient=True, refresh_per_second=12) as live:
            def show(delta: str) -> None:
                written.append(delta)
                live.update(streaming_text("".join(written)))

            # A follow-up made whole is searched, but the check exempts only what the user typed
            # in the questions it was read with: a model's rewrite may add a year or a sum (and the
            # rule's reading may lead with a rewrite of the turn before).
            typed = None
            if rewritten is not None:
                typed = " ".join([*self.conversation.typed_context(question, by_model=not leaned), question])
            return generate_answer(
                self.retriever(), self._llm_client, question, k=self.k, mode=self.mode, filters=self.filters,
                retrieval_query=rewritten if rewritten and rewritten.strip() != question.strip() else None,
                on_token=show, user_words=typed,
            ), leaned

    def _command(self, text: str) -> bool:
        try:
            parts = shlex.split(text)
        except ValueError:
            parts = text.split()
        name, args = parts[0].lower(), parts[1:]
        rest = text.split(None, 1)[1:] or [""]  # what follows the command, as typed, quotes and all
        if name in ("/quit", "/exit", "/q"):
            return False
        handler = {
            "/help": self._help,
            "/sources": self._sources,
            "/open": self._open,
            "/k": self._set_k,
            "/mode": self._set_mode,
            "/add": lambda args: self._add(args, rest[0]),
            "/stats": self._stats,
            "/new": self._new,
            "/filter": self._filter,
            "/llm": self._set_llm,
        }.get(name)
        if handler is None:
            self.console.print(Text(f"Unknown command {name}; /help lists the commands.", style="yellow"))
        else:
            handler(args)
        return True

    def _help(self, args: list[str]) -> None:
        table = Table(show_header=False, box=None, padding=(0, 2))
        for command, description in COMMANDS:
            table.add_row(f"[bold]{command}[/]", description.format(k=self.k, mode=self.mode, llm=self._llm_state()))
        self.console.print("Type a question in plain English, or a command:")
        self.console.print(table)

    def _sources(self, args: list[str]) -> None:
        from qa.render import render_sources

        if self.last_answer is None:
            self.console.print("[yellow]No sources yet: ask a question first.[/]")
            return
        self.console.print(render_sources(self.last_answer))

    def _open(self, args: list[str]) -> None:
        from qa.render import render_article

        answer = self.last_answer
        if answer is None:
            self.console.print("[yellow]Ask a question first; /open N shows the article of source N.[/]")
            return
        if len(args) != 1 or not args[0].isdecimal():
            self.console.print("[yellow]Usage: /open N, where N is a source number like 1.[/]")
            return
        n = int(args[0])
        if not 1 <= n <= len(answer.passages):
            self.console.print(f"[yellow]There is no source {n}; /sources lists them.[/]")
            return
        doc_id = answer.passages[n - 1].doc_id
        article = self.retriever().store.document(doc_id)
        if article is None:
            self.console.print("[yellow]That article is no longer in the index.[/]")
            return
        self.console.print(render_article(article, [c for c in answer.citations if c.n == n]))

    def _set_k(self, args: list[str]) -> None:
        if len(args) != 1 or not args[0].isdecimal() or not 1 <= int(args[0]) <= 100:
            self.console.print(f"[yellow]Usage: /k N with N from 1 to 100 (now {self.k}).[/]")
            return
        self.k = int(args[0])
        self.console.print(f"Retrieving {self.k} passages per question.")

    def _set_mode(self, args: list[str]) -> None:
        if len(args) != 1 or args[0] not in MODES:
            self.console.print(f"[yellow]Usage: /mode {'|'.join(MODES)} (now {self.mode}).[/]")
            return
        self.mode = args[0]
        self.console.print(f"Retrieval mode: {self.mode}.")

    def _add(self, args: list[str], typed: str = "") -> None:
        """`args`, the paths as the shell would split them; `typed`, the text after /add as it was
        typed (one path whose apostrophes the split read as quotes: /add O'Brien's notes.txt)."""
        if not args:
            self.console.print("[yellow]Usage: /add PATH [PATH …] — a file or a folder of articles.[/]")
            return
        # os.path.expanduser: "~nosuchuser/x" is a name like any other (Path's raised RuntimeError).
        missing = [a for a in args if not os.path.exists(os.path.expanduser(a))]
        if missing and len(args) > 1 and os.path.exists(os.path.expanduser(" ".join(args))):
            args, missing = [" ".join(args)], []  # one path with spaces, typed without quotes
        elif missing and typed and os.path.exists(os.path.expanduser(typed)):
            args, missing = [typed], []
        if missing:
            self.console.print(Text(f"No such file or folder: {', '.join(missing)} (quote a path that holds spaces: "
                                    "/add \"My News\")", style="yellow"))
            return
        self.update([os.path.expanduser(a) for a in args])

    def _new(self, args: list[str]) -> None:
        self.conversation.forget()
        self.last_answer = self.last_answered = None
        self.console.print("New conversation: earlier questions are forgotten.")

    def _filter(self, args: list[str]) -> None:
        if args == ["off"]:
            self.filters = SearchFilters()
        elif args:
            settings = {"source": self.filters.source, "since": self.filters.since, "until": self.filters.until}
            for arg in args:
                key, sep, value = arg.partition("=")
                if not sep or key not in settings:
                    self.console.print("[yellow]Usage: /filter source=GLOB since=YYYY-MM-DD until=YYYY-MM-DD, or /filter off.[/]")
                    return
                if key in ("since", "until") and value:
                    value = iso_day(value)
                    if value is None:
                        self.console.print(Text(f"{arg.partition('=')[2]!r} is not a date like 2016-07-27.", style="yellow"))
                        return
                settings[key] = value or None
            filters = SearchFilters(**settings)
            problem = filters.problem()
            if problem:
                self.console.print(Text(f"Filters not changed: {problem}.", style="yellow"))
                return
            self.filters = filters
        self.console.print(Text(f"Filters: {_describe_filters(self.filters)}."))

    def _warn_if_remote(self) -> None:
        """Say once per chat, per server, that passages will leave this machine."""
        from qa.llm import is_loopback

        if self.llm is not None and not is_loopback(self.llm.url) and self.llm.url not in self._warned_remote:
            self._warned_remote.add(self.llm.url)
            self.console.print(Text(f"Passages will be sent to {self.llm.shown_url}, which is not this machine.", style="yellow"))

    def _llm_state(self) -> str:
        return f"on, {self.llm.shown_url}" + (f" {self.llm.model}" if self.llm.model else "") if self.llm else "off"

    def _set_llm(self, args: list[str]) -> None:
        from qa.llm import resolve_llm_settings

        if len(args) != 1:
            self.console.print(Text(f"Usage: /llm on | off | URL, e.g. /llm ollama:llama3.2 (now {self._llm_state()}).",
                                    style="yellow"))
            return
        choice = args[0]
        if choice.lower() == "off":
            self.llm = None
        elif choice.lower() == "on":
            settings = self._llm_settings or resolve_llm_settings()
            if settings is None:
                self.console.print("[yellow]No model server is set: /llm URL, --llm, $QA_LLM or the config file.[/]")
                return
            self.llm = settings
        else:
            # $QA_LLM_API_KEY and the config file's timeout still apply.
            self.llm = resolve_llm_settings(choice, named="/llm")
        if self._llm_client is not None:
            self._llm_client.close()
            self._llm_client = None
        if self.llm is not None:
            self._llm_settings = self.llm
        self.console.print(Text(f"Model server: {self._llm_state()}." if self.llm else "Answers are quoted from the articles."))
        self._warn_if_remote()

    def _stats(self, args: list[str]) -> None:
        from qa.render import render_stats

        self.console.print(render_stats(self.retriever().store.stats()))


def _describe_filters(filters: SearchFilters) -> str:
    return filters.describe() or "none (all articles)"


def _history(path: Path) -> History:
    """The chat's line history, kept in `path` beside the index; in memory alone when that cannot
    be written (another user's index, a read-only disk): the chat then works as it does elsewhere,
    where each line once ended in a traceback from the history's write."""
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError:
        return InMemoryHistory()
    return FileHistory(str(path))


def as_sentence(message: str) -> str:
    """An error's clause ("the question has no words in it", as `Error: …` ends it on the command
    line) written as the chat's other lines are: a sentence, capitalised, with its full stop."""
    message = message.strip()
    if not message:
        return message
    return message[0].upper() + message[1:] + ("" if message[-1] in ".!?)" else ".")
