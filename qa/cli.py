"""The `qa` command line: thin commands over the library, each with an example in its help.

Heavy modules (torch through qa.embed, faiss through qa.stores) are imported inside the commands,
so `qa --help` and argument errors answer at once.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from qa.config import DEFAULT_TOP_K
from qa.errors import ConfigError, IndexUnavailableError, QAError

MODE_CHOICE = click.Choice(["hybrid", "dense", "keyword"])


class QAGroup(click.Group):
    """Shows QAError messages in one line, never a traceback, and exits non-zero."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            # Bare `qa` opens the chat, but takes none of its options: say where they go.
            chat_command = self.commands.get("chat")
            if chat_command is not None and any(exc.option_name in p.opts for p in chat_command.params):
                raise click.NoSuchOption(
                    exc.option_name, f"No such option: {exc.option_name} (the chat's options follow `qa chat`: "
                    f"qa chat {exc.option_name} …)", ctx=ctx,
                ) from None
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except QAError as exc:
            click.secho(f"Error: {_naming_the_index(str(exc), ctx)}", fg="red", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            # Only a command that may write the index has an update to speak of.
            writes = ctx.invoked_subcommand in (None, "index", "chat", "watch") or ctx.meta.get(_WRITES)
            message = "Interrupted; the index keeps its last completed update." if writes else "Interrupted."
            if ctx.meta.get(_INTERRUPTED):
                message = ctx.meta[_INTERRUPTED]
            elif ctx.meta.get(_RESUMABLE):
                # Updates commit as they go and skip what is committed: the same command resumes.
                message += " Run the same command again to go on: what was stored is not embedded again."
            click.secho(message, fg="yellow", err=True)
            sys.exit(130)


# Set by a command for the Ctrl-C message (QAGroup.invoke): it writes the index (`serve --watch`),
# or a run of it stopped goes on where it was when run again (an update; not a rebuild, which
# commits once at its end, nor a copy from another store).
_WRITES = "qa_writes"
_RESUMABLE = "qa_resumable"
# What a command says of itself when stopped, where the words above do not fit (a copy).
_INTERRUPTED = "qa_interrupted"

# Where a command was told the index is, on its command line, for the commands an error suggests:
# the library names the fix as `qa index --rebuild`, which run as it is would rebuild the default
# index, not the store the user named.
_TYPED_LOCATION = "qa_typed_location"


def _naming_the_index(message: str, ctx: click.Context) -> str:
    from qa.errors import naming_the_index

    # meta is one dict, shared with the subcommand's context
    return naming_the_index(message, ctx.meta.get(_TYPED_LOCATION))


def index_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """--index DIR and --store STORE: where the index lives."""
    func = click.option(
        "--store",
        metavar="STORE",
        envvar="QA_STORE",
        help="Keep the index in a store instead of a folder: faiss:DIR, milvus:FILE.db (Milvus Lite) "
        "or milvus://HOST:PORT/COLLECTION ($QA_STORE).",
    )(func)
    return click.option(
        "--index",
        "index_dir",
        metavar="DIR",
        envvar="QA_INDEX_DIR",
        help="Index folder (default: index/ in the qa checkout, or $QA_INDEX_DIR).",
    )(func)


def _location(index_dir: str | None, store: str | None):
    from click.core import ParameterSource

    from qa.stores.location import parse_store

    context = click.get_current_context(silent=True)
    if context is not None and index_dir and store:
        # Where the user typed one and the environment set the other, what was typed wins;
        # both typed is a mistake to say, not one to pick from silently.
        typed_index, typed_store = (context.get_parameter_source(name) == ParameterSource.COMMANDLINE
                                    for name in ("index_dir", "store"))
        if typed_index and typed_store:
            raise click.UsageError("--index and --store both say where the index is: give one of them")
        if typed_index:
            store = f"faiss:{index_dir}"
    if context is not None:
        for name, flag, value in (("store", "--store", store), ("index_dir", "--index", index_dir)):
            if value and context.get_parameter_source(name) == ParameterSource.COMMANDLINE:
                context.meta[_TYPED_LOCATION] = f"{flag} {shlex.quote(str(value))}"
                break
    return parse_store(store, index_dir)


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")(func)


reranker_option = click.option(
    "--reranker", metavar="PATH", envvar="QA_RERANKER", type=click.Path(exists=True, file_okay=False),
    help="A local sentence-transformers CrossEncoder folder that reorders the top passages ($QA_RERANKER).",
)


backend_option = click.option(
    "--backend", type=click.Choice(["torch", "onnx", "onnx-int8"]), envvar="QA_BACKEND",
    help="Encoder backend ($QA_BACKEND); by default the one the index was built with.",
)


def llm_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--llm URL and --llm-model NAME: answers written by a model server, each sentence checked."""
    func = click.option(
        "--llm-model", metavar="NAME", help="The server's model to use ($QA_LLM_MODEL); by default its only one.",
    )(func)
    return click.option(
        "--llm", "llm_url", metavar="URL",
        help="Have the answer written by an OpenAI-compatible model server: ollama:MODEL, "
        "http://localhost:8080 (llama.cpp), http://HOST:8000/v1 (vLLM) ($QA_LLM, or [llm] url in the config file).",
    )(func)


def _llm_settings(llm_url: str | None, llm_model: str | None):
    """The model server to use, or None to stay offline; says once when passages will leave the machine."""
    from qa.llm import is_loopback, resolve_llm_settings

    settings = resolve_llm_settings(llm_url, llm_model)
    if settings is not None and not is_loopback(settings.url):
        click.secho(f"Note: passages will be sent to {settings.shown_url}, which is not this machine.", fg="yellow", err=True)
    return settings


def retrieval_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """-k, --mode and the filters shared by `ask`, `search` and `chat`."""
    decorators = [
        click.option("-k", "k", type=click.IntRange(1, 100), default=DEFAULT_TOP_K, show_default=True,
                     help="How many passages to retrieve."),
        click.option("--mode", type=MODE_CHOICE, default="hybrid", show_default=True,
                     help="Retrieval by meaning (dense), by keywords (BM25), or both fused."),
        click.option("--source", metavar="GLOB", help="Only articles whose path matches GLOB."),
        click.option("--since", metavar="DATE", help="Only articles dated on or after DATE (YYYY-MM-DD)."),
        click.option("--until", metavar="DATE", help="Only articles dated on or before DATE (YYYY-MM-DD)."),
        reranker_option,
        backend_option,
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _emit_json(data: dict[str, Any]) -> None:
    click.echo(_json_text(data, indent=2))


def _json_text(data: Any, indent: int | None = None) -> str:
    """`data` as JSON, non-ASCII as it is; a lone surrogate, which is how Python holds a file name's
    byte that is not UTF-8, is written as its \\u escape: written raw, it became that byte, and the
    output was not UTF-8, so no JSON reader took it. Python's json reads it back to the same name."""
    return _LONE_SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", json.dumps(data, ensure_ascii=False, indent=indent))


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@click.group(cls=QAGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qa", prog_name="qa")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Ask questions of a folder of articles; every answer cites the sentences it quotes.

    \b
    Examples:
      qa                                  open the chat over the index (built from seeds/ at first)
      qa index ~/news                     index a folder; run again to pick up changes
      qa ask "Who did Igor Ivanov give the informal document to?"
      qa search "peacekeepers Iraq" -k 3 --json
      qa stats
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(chat)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--rebuild", is_flag=True, help="Embed everything again from scratch.")
@click.option("--only", is_flag=True,
              help="Look at PATHS alone, not every remembered folder: a quick add to a large index.")
@click.option("--from-store", metavar="STORE",
              help="Copy the index in STORE into this one (--store/--index), without embedding again.")
@click.option("--forget", "forget", metavar="PATH", multiple=True,
              help="Forget a remembered folder or file: its articles leave the index (repeat for more).")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="Embed with Ray: on this machine with no ADDRESS, else on the Ray cluster at ADDRESS.")
@backend_option
@index_option
@json_option
def index(paths: tuple[Path, ...], rebuild: bool, only: bool, from_store: str | None, forget: tuple[str, ...],
          ray_address: str | None, backend: str | None, index_dir: str | None, store: str | None,
          as_json: bool) -> None:
    """Bring the index up to date with PATHS and every folder it already knows.

    New files are embedded, changed files (by content hash) are embedded again, deleted files are
    removed, unchanged files are left alone. The folders given are remembered, so later a plain
    `qa index` updates them all. With no paths and a fresh index, seeds/ is indexed. With --only,
    just PATHS are looked at, so adding today's files to a big index takes only as long as they do.

    \b
    Examples:
      qa index ~/news ~/clippings/today.html
      qa index                      # update every remembered folder
      qa index --only ~/news/2026-11-23/   # just today's folder; the rest is not scanned
      qa index --rebuild            # start over (e.g. after changing the model)
      qa index --forget ~/old-drive # a folder renamed or gone for good: drop its articles
      qa index --index /tmp/idx ./articles --json
      qa index ~/news --store milvus:news.db                # Milvus Lite, in one folder
      qa index ~/news --store milvus://db:19530/news --ray  # Milvus server, embedding with Ray
      qa index --from-store faiss:index/ --store milvus://db:19530/news   # copy, no embedding
    """
    from qa.indexer import update_index
    from qa.paths import typed_path
    from qa.progress import RichIndexProgress
    from qa.render import render_update_report

    location = _location(index_dir, store)
    paths, ray_address = _split_ray_address(paths, ray_address)
    click.get_current_context().meta[_RESUMABLE] = not (rebuild or forget or from_store is not None)
    err = _console(stderr=True)
    if from_store is not None:
        from click.core import ParameterSource

        # --backend counts only typed: $QA_BACKEND, set for every command, is no option to a copy.
        typed_backend = backend and click.get_current_context().get_parameter_source("backend") == ParameterSource.COMMANDLINE
        if paths or rebuild or ray_address or only or forget or typed_backend:
            # Said, not ignored: `--forget` or `--backend` with a copy did nothing, silently.
            raise click.UsageError("--from-store copies an index as it is: give no paths, --rebuild, --only, "
                                   "--forget, --backend or --ray with it")
        _migrate(from_store, location, as_json)
        return
    if only and rebuild:
        raise click.UsageError("--only cannot go with --rebuild, which reads every remembered folder again")
    if only and not paths:
        raise click.UsageError("--only needs the files or folders to look at: qa index --only PATH")
    if forget and (paths or rebuild or only or ray_address is not None):
        raise click.UsageError("--forget is done on its own: give it no PATHS, --rebuild, --only or --ray")
    # Each path as the index names it: a typed path that is not there is told by this name.
    typed_as = {p: typed_path(p) for p in paths}
    if paths and all(not os.path.exists(typed_as[p]) for p in paths):
        from qa.stores import index_is_missing

        # Nothing typed is there, and with no index yet nothing can have been removed: said before
        # an empty index is made and called up to date.
        if index_is_missing(location):
            click.secho(f"Error: no such file or folder: {', '.join(map(str, paths))}", fg="red", err=True)
            sys.exit(1)
    context = click.get_current_context()
    with RichIndexProgress(err, reword=lambda note: _naming_the_index(note, context)) as progress:
        embedder = _embedder(location, backend, rebuild) if not forget else None
        if ray_address is not None:
            embedder = _ray_embedder(embedder, ray_address, progress)
        try:
            report = update_index(
                location, list(paths) or None, embedder=embedder, rebuild=rebuild, only=only, progress=progress,
                forget=forget,
            )
        finally:
            if hasattr(embedder, "close"):
                embedder.close()  # a Ray this command started is shut down
    # A path typed on the command line that is not there is an error for scripts to see, as with
    # `ls` or `cp`; the other paths were still indexed.
    # (A deleted file that was indexed is not one: it was removed.) A remembered folder typed again
    # that is not there is one too, its articles kept: a nightly `qa index /mnt/usb/news` with the
    # drive unplugged must not look like success.
    skipped = {s.path for s in report.skipped} | set(report.missing_sources)
    missing = [p for p in paths if typed_as[p] in skipped and not os.path.exists(typed_as[p])]
    if as_json:
        from dataclasses import asdict

        _emit_json(asdict(report))
    else:
        from dataclasses import replace

        # Said once, in the error line below, not also as a skipped file.
        typed = {typed_as[p] for p in missing}
        _console().print(render_update_report(replace(report, skipped=tuple(s for s in report.skipped if s.path not in typed))))
    if missing:
        click.secho(f"Error: no such file or folder: {', '.join(map(str, missing))}", fg="red", err=True)
        sys.exit(1)


def _embedder(location, backend: str | None, rebuild: bool = False):
    """The embedder for an index: the backend asked for, else the one the index was built with."""
    from qa.embed import Embedder
    from qa.stores import encoder_backend

    if backend is None and not rebuild:
        backend = encoder_backend(location)
    return Embedder(backend=backend)


def _split_ray_address(paths: tuple[Path, ...], ray_address: str | None) -> tuple[tuple[Path, ...], str | None]:
    """`--ray` takes an optional address, so `qa index --ray ~/news` would read the folder as one:
    a value that is not an address (HOST:PORT, auto, local, or a URL, which RayEmbedder judges) is a path after all.
    Returns the paths and the Ray address: None for no Ray, "local" for a Ray on this machine."""
    import re

    if ray_address is None or ray_address in ("local", "auto") or "://" in ray_address:
        return paths, ray_address
    if re.fullmatch(r"[\w.-]+:\d+", ray_address) and not Path(ray_address).exists():
        return paths, ray_address
    return (Path(ray_address), *paths), "local"


def _ray_embedder(embedder, address: str, progress):
    from qa.distributed import RayEmbedder

    progress.note("starting Ray …" if address == "local" else f"connecting to Ray at {address} …")
    return RayEmbedder(address=None if address == "local" else address, backend=embedder.backend)


def _migrate(from_store: str, location, as_json: bool) -> None:
    from dataclasses import asdict

    from qa.stores.location import parse_store
    from qa.migrate import migrate_store
    from qa.progress import RichIndexProgress

    if not from_store.strip():
        # Empty, it would have named $QA_STORE or the default index: a copy from one not typed.
        raise click.UsageError("--from-store is empty: name the index to copy from, e.g. --from-store faiss:index/")
    # A copy stopped halfway is a partial index; the same command copies again what it holds
    # (each article replaced whole) and the rest.
    click.get_current_context().meta[_INTERRUPTED] = (
        "Interrupted; the copy is not finished: run the same command again to finish it."
    )
    source = parse_store(from_store, option="--from-store")
    try:
        with RichIndexProgress(_console(stderr=True)) as progress:
            report = migrate_store(source, location, progress)
    except QAError as exc:
        if exc.about_source:  # its hint names the store to copy from
            click.get_current_context().meta[_TYPED_LOCATION] = f"--store {shlex.quote(from_store)}"
            if "name it as --store " in str(exc):  # a store of the other kind: named where it was typed
                raise type(exc)(str(exc).replace("name it as --store ", "name it as --from-store ")) from exc
        raise
    if as_json:
        _emit_json(asdict(report))
    else:
        from qa.text import counted

        _console().print(
            f"Copied {counted(report.documents, 'document')} ({counted(report.chunks, 'chunk')}, "
            f"{counted(report.sentences, 'sentence vector')}) "
            f"from {report.source} to {report.target}; nothing was embedded again.",
            markup=False,
        )
        if report.kept_in_target:
            # A copy adds to the target: said, since a second backup keeps what the source dropped.
            _console(stderr=True).print(
                f"The target also holds {counted(report.kept_in_target, 'document')} the source does not; "
                "they were kept (copy into an empty store for an exact copy).",
                style="yellow", markup=False,
            )


def _open(index_dir: str | None, reranker: str | None = None, backend: str | None = None, store: str | None = None):
    from qa.retrieve import open_retriever

    return open_retriever(_location(index_dir, store), backend=backend, reranker=reranker)


# What a browser sends as Origin: a scheme and a host (and port), nothing after; or "null" (a page
# opened from a file).
_ORIGIN = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s?#]+|null")


def _origins(values: tuple[str, ...]) -> tuple[str, ...]:
    """--cors values, each an origin exactly as a browser sends it (or "*"): "http://x:3000/" never
    matches one, so it is refused rather than silently never allowing anything."""
    for value in values:
        if value != "*" and not _ORIGIN.fullmatch(value):
            raise click.BadParameter(f"{value!r} is not an origin; give scheme://host[:port] with nothing after, "
                                     "e.g. http://localhost:3000", param_hint="--cors")
    return values


def _filters(source: str | None, since: str | None, until: str | None):
    from qa.types import SearchFilters

    filters = SearchFilters(source=source, since=_day(since, "--since"), until=_day(until, "--until"))
    problem = filters.problem(prefix="--")
    if problem:
        raise click.UsageError(problem)
    return filters


def _day(value: str | None, option: str) -> str | None:
    from qa.retrieve import iso_day

    if value is None:
        return None
    day = iso_day(value)
    if day is None:
        raise click.BadParameter(f"{value!r} is not a date like 2016-07-27", param_hint=option)
    return day


@main.command()
@click.argument("question")
@retrieval_options
@llm_options
@click.option("--stream", is_flag=True,
              help="With --llm: print newline-delimited JSON events (token, claim, done) as they happen.")
@index_option
@json_option
def ask(question: str, k: int, mode: str, source: str | None, since: str | None, until: str | None,
        reranker: str | None, backend: str | None, llm_url: str | None, llm_model: str | None, stream: bool,
        index_dir: str | None, store: str | None, as_json: bool) -> None:
    """Answer QUESTION with sentences quoted from the articles, each cited.

    With --llm, a model server you run (Ollama, llama.cpp, vLLM, LM Studio) writes the answer from
    the same passages, and qa checks every sentence against the passages it cites: supported
    sentences show their [n], the others are marked. If the server fails, the quoted answer is
    given with a one-line note.

    \b
    Examples:
      qa ask "Who did Igor Ivanov give the informal document to?"
      qa ask "How much does Baghdad owe Russia?" --json
      qa ask "What did Ivanov say about peacekeepers?" --since 2016-01-01 -k 8
      qa ask "How much does Baghdad owe Russia?" --llm ollama:llama3.2
      qa ask "How much does Baghdad owe Russia?" --llm http://localhost:8080 --stream
    """
    from qa.render import answer_json, render_answer

    from qa.retrieve import clean_query

    clean_query(question)  # an empty question is said before the model loads
    filters = _filters(source, since, until)
    settings = _llm_settings(llm_url, llm_model)
    if stream and settings is None:
        raise click.UsageError("--stream needs a model server: --llm URL, $QA_LLM or the config file")
    retriever = _open(index_dir, reranker, backend, store)
    if settings is None:
        from qa.answer import answer_question

        answer = answer_question(retriever, question, k=k, mode=mode, filters=filters)
    else:
        answer = _generated(retriever, settings, question, k, mode, filters, stream, as_json)
    answer = _with_pages(answer, retriever)
    if stream:
        _emit_event({"event": "done", "answer": answer_json(answer)})
    elif as_json:
        _emit_json(answer_json(answer))
    else:
        _console().print(render_answer(answer))


def _generated(retriever, settings, question: str, k: int, mode: str, filters, stream: bool, as_json: bool):
    from qa.generate import generate_answer
    from qa.llm import ChatClient
    from qa.render import claim_json

    on_token = None
    if stream:
        def on_token(delta: str) -> None:
            _emit_event({"event": "token", "text": delta})
    elif not as_json and sys.stdout.isatty():
        # The draft is for a person watching: dimmed, it shows the model at work before its
        # sentences are checked. Written to a file or a pipe it would read as the answer.
        out = _console()

        def on_token(delta: str) -> None:
            out.print(delta, end="", style="dim", markup=False, highlight=False)
    with ChatClient(settings) as client:
        answer = generate_answer(retriever, client, question, k=k, mode=mode, filters=filters, on_token=on_token)
    if on_token is not None and not stream:
        _console().print()  # the streamed draft ends; the checked answer follows
    if stream:
        for claim in answer.claims:
            _emit_event({"event": "claim", **claim_json(claim)})
    return answer


def _with_pages(answer, retriever):
    """The answer with the page of each citation and passage from a PDF."""
    from qa.pages import answer_with_pages

    return answer_with_pages(answer, retriever.store)


def _emit_event(data: dict[str, Any]) -> None:
    click.echo(_json_text(data))
    sys.stdout.flush()


@main.command()
@click.argument("query")
@click.option("--align", is_flag=True,
              help="Rank as `qa ask` does: read the best hybrid passages again, token by token (slower).")
@retrieval_options
@index_option
@json_option
def search(query: str, align: bool, k: int, mode: str, source: str | None, since: str | None, until: str | None,
           reranker: str | None, backend: str | None, index_dir: str | None, store: str | None,
           as_json: bool) -> None:
    """Show the passages that best match QUERY, without composing an answer.

    Search ranks in one fast pass; `qa ask` also reads the best ten passages again (fifteen for
    a long question), token by token, before it answers, and --align does that here too.

    \b
    Examples:
      qa search "weapons inspections Iraq"
      qa search "Chechnya" -k 10 --mode keyword --json
      qa search "How much does Baghdad owe Russia?" --align
    """
    from qa.render import render_hits, search_json

    from qa.retrieve import clean_query

    clean_query(query, "query")  # an empty query is said before the model loads
    if align and mode != "hybrid":
        raise click.UsageError(f"--align reads hybrid search's best passages again; it does not go with --mode {mode}")
    filters = _filters(source, since, until)
    retriever = _open(index_dir, reranker, backend, store)
    hits = retriever.search(query, k=k, mode=mode, filters=filters, align=align)
    from qa.pages import hits_with_pages

    hits = hits_with_pages(hits, retriever.store)  # passages of PDFs say their page
    # Echoed as it was searched: bytes that are not UTF-8 (lone surrogates) cannot be printed.
    from qa.retrieve import printable_text

    shown = printable_text(query)
    if as_json:
        _emit_json(search_json(shown, hits))
    else:
        _console().print(render_hits(shown, hits, filters))


@main.command()
@index_option
@json_option
def stats(index_dir: str | None, store: str | None, as_json: bool) -> None:
    """Show how many documents and chunks the index holds, its model and size.

    \b
    Examples:
      qa stats
      qa stats --json
    """
    from dataclasses import asdict

    from qa.render import render_stats
    from qa.stores import open_store

    opened = open_store(_location(index_dir, store))
    try:
        facts = opened.stats()
    finally:
        opened.close()
    if as_json:
        _emit_json(asdict(facts))
    else:
        _console().print(render_stats(facts))


@main.command()
@retrieval_options
@llm_options
@index_option
@click.option("--no-update", is_flag=True, help="Do not check the corpus folders for changes first.")
def chat(k: int, mode: str, source: str | None, since: str | None, until: str | None,
         reranker: str | None, backend: str | None, llm_url: str | None, llm_model: str | None,
         index_dir: str | None, store: str | None, no_update: bool) -> None:
    """Open the chat: ask questions, see cited answers; /help lists commands.

    On start the chat brings the index up to date with its folders (a fresh index is built from
    seeds/). Ctrl-C abandons the line you are typing, Ctrl-D leaves.

    \b
    Examples:
      qa chat
      qa chat --index /tmp/idx -k 8
      qa chat --llm ollama:llama3.2        # answers written by your model, each sentence checked
    """
    from qa.llm import resolve_llm_settings
    from qa.repl import ChatSession

    session = ChatSession(
        _location(index_dir, store), console=_console(), k=k, mode=mode,
        filters=_filters(source, since, until), reranker=reranker, backend=backend,
        llm=resolve_llm_settings(llm_url, llm_model),
    )
    session.run(update=not no_update)


@main.command()
@index_option
@json_option
def doctor(index_dir: str | None, store: str | None, as_json: bool) -> None:
    """Check that the index is whole: vectors, keyword index and metadata agree.

    Also checks that every chunk's span still cuts its document's text. Exits 1, saying what is
    wrong and how to fix it, when a check fails; 3 when the index could not be looked at now
    (another process holds it, its server is out of reach, a copy into it is under way), which
    says nothing of damage.

    \b
    Examples:
      qa doctor
      qa doctor --index /tmp/idx --json
    """
    from qa.migrate import copy_under_way
    from qa.stores import check_store
    from qa.stores.base import REBUILD_HINT, UNFINISHED_COPY_PROBLEM

    location = _location(index_dir, store)
    directory = location.describe()
    context = click.get_current_context()
    try:
        problems = check_store(location)
    except QAError as exc:
        # Not looked at. Held by another process (a Milvus Lite file a chat has open) or a server
        # out of reach: exit 3, so that a script does not rebuild an index found busy.
        unavailable = isinstance(exc, IndexUnavailableError)
        if not as_json:
            if unavailable:
                click.secho(f"Error: {_naming_the_index(str(exc), context)}; not checked", fg="red", err=True)
                sys.exit(3)
            raise
        # No index there at all, or one of another kind: still one JSON object for `jq .ok`.
        _emit_json({"index": str(directory), "ok": False, "checked": False,
                    "problems": [_naming_the_index(str(exc), context)]})
        sys.exit(3 if unavailable else 1)
    copying = [problem for problem in problems if problem.startswith(UNFINISHED_COPY_PROBLEM)]
    if copying and copy_under_way(location):
        # The mark of a copy that is still running: not a copy that stopped.
        busy = f"a copy into {directory} is under way; not checked"
        if as_json:
            _emit_json({"index": str(directory), "ok": False, "checked": False, "problems": [busy]})
        else:
            click.secho(f"Error: {busy}", fg="red", err=True)
        sys.exit(3)
    if as_json:
        _emit_json({"index": str(directory), "ok": not problems, "checked": True,
                    "problems": [_naming_the_index(problem, context) for problem in problems]})
    elif problems:
        for problem in problems:
            click.secho(f"problem: {_naming_the_index(problem, context)}", fg="red", err=True)
        # Where the catalog (the list of folders) is lost, a rebuild must be told them.
        named = any("`qa index PATH --rebuild`" in problem for problem in problems)
        fix = "build it again with `qa index PATH --rebuild`, naming your folders" if named else REBUILD_HINT
        if len(copying) == len(problems):
            click.secho(f"The index in {directory} is not whole: finish the copy as said above.", fg="red", err=True)
        else:
            click.secho(f"The index in {directory} is damaged; {_naming_the_index(fix, context)}.", fg="red", err=True)
    else:
        from rich.text import Text

        _console().print(Text(f"The index in {directory} is consistent.", style="green"))
    if problems:
        sys.exit(1)


def _service(index_dir: str | None, store: str | None, backend: str | None, reranker: str | None,
             llm_url: str | None, llm_model: str | None):
    from qa.service import IndexService

    return IndexService(_location(index_dir, store), backend=backend, reranker=reranker,
                        llm=_llm_settings(llm_url, llm_model))


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any but this machine's needs --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port to listen on.")
@click.option("--token", envvar="QA_TOKEN", metavar="TOKEN",
              help="Require 'Authorization: Bearer TOKEN' on every request ($QA_TOKEN; at least 16 characters).")
@click.option("--cors", "cors_origins", multiple=True, metavar="ORIGIN", callback=lambda _c, _p, v: _origins(v),
              help="Let web pages from ORIGIN (like http://localhost:3000, or *) call the API (repeat for several); "
                   "off by default.")
@click.option("--watch", is_flag=True,
              help="Also keep the index current as files appear, change or vanish in PATHS and its folders.")
@reranker_option
@backend_option
@llm_options
@index_option
def serve(paths: tuple[Path, ...], host: str, port: int, token: str | None, cors_origins: tuple[str, ...],
          watch: bool, reranker: str | None, backend: str | None, llm_url: str | None, llm_model: str | None,
          index_dir: str | None, store: str | None) -> None:
    """Answer questions over HTTP: POST /ask and /search, GET /documents/ID, /stats, /health.

    Bodies are the objects `qa ask`, `qa search` and `qa stats` print with --json; the schema is
    at /openapi.json and browsable at /docs. Listens on 127.0.0.1 unless --host says otherwise,
    which needs --token. With --watch, files added to the index's folders (and PATHS) are indexed
    as they arrive, and answerable without a restart.

    \b
    Examples:
      qa serve
      curl -s localhost:8765/ask --json '{"question": "How much does Baghdad owe Russia?"}'
      qa serve --watch ~/news                    # index ~/news now and as files arrive
      QA_TOKEN=$(openssl rand -hex 16) qa serve --host 0.0.0.0
      qa serve --llm ollama:llama3.2             # /ask answers written by your model, checked
    """
    from qa.serve import check_bind, check_port, run_server

    if paths and not watch:
        raise click.UsageError("PATHS are the folders to watch: give them with --watch")
    check_bind(host, token)
    check_port(host, port)
    _refuse_missing_to_watch(paths)
    location = _location(index_dir, store)
    click.get_current_context().meta[_WRITES] = watch
    watcher = _start_watcher(location, paths, backend) if watch else None
    service = _service(index_dir, store, backend, reranker, llm_url, llm_model)
    service.warm_up()
    shown_host = f"[{host}]" if ":" in host else host

    def ready(listening: int) -> None:
        click.secho(f"qa serve: answering on http://{shown_host}:{listening} (docs at /docs); Ctrl-C stops it.",
                    err=True, fg="green")

    try:
        with _stopped_by_sigterm("qa serve"):
            run_server(service, host, port, token, cors_origins, on_ready=ready)
    finally:
        if watcher is not None:
            watcher.stop()
        service.close()


def _refuse_missing_to_watch(paths: tuple[Path, ...]) -> None:
    """Nothing there to watch: said now (`qa watch`, `qa serve --watch`), not after a catch-up that finds nothing."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ConfigError(f"no such file or folder: {', '.join(missing)}")


def _start_watcher(location, paths: tuple[Path, ...], backend: str | None):
    """Watch PATHS and the index's folders in a thread; return once the index has caught up with them."""
    from qa.watch import FolderWatcher

    watcher = FolderWatcher(location, [str(p) for p in paths], embedder=_embedder(location, backend),
                            log=lambda line: click.echo(line, err=True))
    watcher.start()
    return watcher


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@backend_option
@index_option
def watch(paths: tuple[Path, ...], backend: str | None, index_dir: str | None, store: str | None) -> None:
    """Keep the index current as files appear, change or vanish in PATHS and the index's folders.

    Bursts are one update (a folder of 500 new files is indexed once, not 500 times), through the
    same path as `qa index --only`; each update prints one line. Readers (the chat, `qa serve`)
    keep answering from the last complete update and see the new one when it lands.

    \b
    Examples:
      qa watch ~/news                   # index ~/news now, then as files arrive
      qa watch                          # every folder the index already knows
    """
    from qa.watch import FolderWatcher

    _refuse_missing_to_watch(paths)
    location = _location(index_dir, store)
    watcher = FolderWatcher(location, [str(p) for p in paths], embedder=_embedder(location, backend),
                            log=lambda line: click.echo(line, err=True))

    def ready(roots: list[str]) -> None:
        click.secho(f"qa watch: watching {', '.join(roots)}; Ctrl-C stops it.", err=True, fg="green")

    try:
        watcher.run(on_ready=ready)
    except KeyboardInterrupt:
        if watcher.updating:
            click.secho("qa watch: stopped during an update; what it had committed stays in the index, and the "
                        "next `qa watch` or `qa index` indexes the rest.", fg="yellow", err=True)
            sys.exit(130)
        click.echo("qa watch: stopped.", err=True)
        return
    if not watcher.roots:  # run() came back at once: there was nothing to watch (it said so)
        sys.exit(1)


@main.command(name="mcp")
@reranker_option
@backend_option
@llm_options
@index_option
def mcp_server(reranker: str | None, backend: str | None, llm_url: str | None, llm_model: str | None,
               index_dir: str | None, store: str | None) -> None:
    """Serve the index to an AI assistant over MCP (stdio): tools search, ask and open_document.

    An assistant (Claude Desktop, an IDE, any MCP client) starts this command itself; see the
    README for the configuration snippet. Results carry each passage's document id, title and
    exact character span, so what the assistant quotes can be checked.

    \b
    Examples:
      qa mcp --index ~/news-index
      npx @modelcontextprotocol/inspector qa mcp      # try the tools by hand
    """
    from qa.mcp_server import run_stdio

    service = _service(index_dir, store, backend, reranker, llm_url, llm_model)
    try:
        # SIGTERM ends it at once, as before: it only reads the index, and the SDK's reader of
        # stdin is a thread that would keep a process stopped more gently alive.
        run_stdio(service)
    finally:
        service.close()


@contextmanager
def _stopped_by_sigterm(name: str) -> Iterator[None]:
    """SIGTERM (systemd, docker stop, kill) ends `qa serve` as Ctrl-C would, its watcher stopped
    and its index closed, and with exit 0 and one line. Without it the process died by the signal
    (uvicorn, having shut down gracefully, raises it again) and skipped every `finally`."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    except _Terminated:
        click.secho(f"{name}: stopped.", err=True)
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Terminated(Exception):
    """Raised in the main thread by SIGTERM, while a server runs."""


@main.command(name="eval")
@click.argument("eval_set", metavar="PREFIX")
@click.option("--mode", "modes", type=click.Choice(["all", "hybrid", "dense", "keyword"]), multiple=True,
              default=["all"], show_default=True, help="Retrieval mode(s) to measure; repeat for several.")
@click.option("--limit", type=click.IntRange(1), help="Ask only the first N questions (a quick run).")
@click.option("--store", metavar="STORE",
              help="Keep the eval index in a store: 'milvus' (Milvus Lite in the cache), milvus:FILE.db, "
              "or milvus://HOST:PORT/COLLECTION. Default: a cached local index.")
@click.option("--no-align", is_flag=True,
              help="Measure hybrid search without its second look at the best passages (as `qa search` ranks).")
@click.option("--off-topic", metavar="PREFIX2",
              help="Also ask PREFIX2's questions about articles this corpus lacks (told apart by title) and "
              "report the share each mode declines.")
@click.option("--questions-out", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write each question's outcome in each mode to FILE (replaced when the run ends), one "
              "JSON line each: the documents ranked, the first gold one's rank, the sentence the answer would "
              "quote first; compare two runs question by question with bench/paired.py.")
@reranker_option
@backend_option
@json_option
def evaluate(eval_set: str, modes: tuple[str, ...], limit: int | None, store: str | None, no_align: bool,
             off_topic: str | None, questions_out: Path | None, reranker: str | None, backend: str | None,
             as_json: bool) -> None:
    """Measure retrieval and answers on a question set with known answers.

    PREFIX names PREFIX.corpus.jsonl and PREFIX.queries.jsonl. The corpus is indexed once into
    its own cached index ($QA_CACHE_DIR, default ~/.cache/qa), then every question is asked.

    \b
    Examples:
      qa eval ../shared/eval/squad-dev-v1.1
      qa eval ../shared/eval/squad-dev-v1.1 --mode hybrid --limit 500
      qa eval ../shared/eval/squad-dev-v1.1 --no-align         # hybrid as `qa search` ranks
      qa eval ../shared/eval/squad-dev-v2.0 --json
      qa eval ../shared/eval/squad-dev-v2.0 --off-topic ../shared/eval/squad-dev-v1.1
      qa eval ../shared/eval/squad-dev-v1.1 --store milvus     # the same on Milvus Lite
      qa eval news-dev --mode hybrid --questions-out after.jsonl
      .venv/bin/python bench/paired.py before.jsonl after.jsonl   # two runs, question by question
    """
    import os
    from dataclasses import asdict

    from qa.evaluate import QuestionResult, run_eval
    from qa.progress import RichIndexProgress
    from qa.render import render_eval_report
    from qa.retrieve import MODES

    chosen = list(MODES) if "all" in modes else list(dict.fromkeys(modes))
    # Checked before the run, so a path that cannot be written stops it at once, not after it.
    folder = questions_out.absolute().parent if questions_out else None
    if folder is not None and not (folder.is_dir() and os.access(folder, os.W_OK)):
        raise ConfigError(f"cannot write {questions_out}: {folder} is not a folder this user can write to")
    outcomes: list[QuestionResult] | None = [] if questions_out else None
    with RichIndexProgress(_console(stderr=True)) as progress:
        from qa.embed import Embedder

        report = run_eval(eval_set, chosen, limit=limit, progress=progress, reranker=reranker,
                          embedder=Embedder(backend=backend), store=store, align=not no_align,
                          off_topic=off_topic, question_results=outcomes)
    if questions_out and outcomes is not None:
        # Written whole, then renamed over FILE: a run stopped midway leaves an earlier FILE as it was.
        partial = questions_out.with_name(questions_out.name + ".partial")
        try:
            with open(partial, "w", encoding="utf-8") as handle:
                handle.writelines(json.dumps(asdict(row), ensure_ascii=False) + "\n" for row in outcomes)
            os.replace(partial, questions_out)
        except OSError as error:
            partial.unlink(missing_ok=True)  # a disk that filled up midway leaves no half file behind
            raise ConfigError(f"cannot write {questions_out}: {error.strerror or error}") from None
    if as_json:
        _emit_json(asdict(report))
    else:
        _console().print(render_eval_report(report))


def run() -> None:
    """Console-script entry point."""
    main(prog_name="qa")


if __name__ == "__main__":  # pragma: no cover
    run()
