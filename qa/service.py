"""One open index behind the long-running entry points (`qa serve`, `qa mcp`).

Each call is the library call that `qa ask`, `qa search` and `qa stats` make with --json, and
returns the same JSON object, so one schema serves the CLI, HTTP and MCP. Calls run one at a time:
the retriever holds one SQLite connection and one encoder, and on two cores a second request
would only share the same CPU (the encoder already uses every core). The index is opened once; `Index.reading()` loads a writer's newer
generation before each search, so articles a watcher (or `qa index`) adds are answerable without
a restart, and a half-written update is never read. Every call runs on one worker thread, the one
that opened the index: SQLite connections belong to the thread that made them.

Limits on what a client may send live here, so HTTP and MCP enforce the same ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TypeVar

from qa.config import DEFAULT_TOP_K
from qa.errors import QAError, QueryError

if TYPE_CHECKING:
    from qa.generate import Written
    from qa.llm import LLMSettings
    from qa.retrieve import Retriever
    from qa.stores.location import StoreLocation
    from qa.types import Answer, Article, Hit, IndexStats, SearchFilters

MAX_QUESTION_CHARS = 2000  # the longest qa.retrieve.clean_query takes (MAX_QUERY_CHARS)
MAX_K = 100  # as `qa ask -k`
MAX_FILTER_CHARS = 400
MODES = ("hybrid", "dense", "keyword")
DOC_ID_CHARS = 16  # qa.ingest.document_id: 16 hex digits


def as_searched(text: Any) -> Any:
    """A question or query as qa.retrieve.clean_query reads it (searched_text); anything else as it
    came, for the schema to refuse. HTTP and MCP check MAX_QUESTION_CHARS on this, so a question
    pasted with its line breaks is as long there as on the command line."""
    from qa.retrieve import searched_text

    return searched_text(text) if isinstance(text, str) else text

T = TypeVar("T")


class IndexService:
    """The index at `location`, opened once, answering search, ask, document and stats calls."""

    def __init__(self, location: StoreLocation, backend: str | None = None, reranker: str | None = None,
                 llm: LLMSettings | None = None) -> None:
        from qa.retrieve import open_retriever

        self.location = location
        self.llm = llm
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-index")
        try:
            self._retriever: Retriever = self._run(open_retriever, location, backend=backend, reranker=reranker)
        except BaseException:
            self._worker.shutdown()
            raise

    def error_text(self, exc: QAError) -> str:
        """What a client is told of `exc`: a fix it suggests (`qa index --rebuild`) names the index
        served, which the shell's default need not be."""
        import shlex

        from qa.errors import naming_the_index

        location = self.location
        typed = (f"--index {shlex.quote(str(location.path))}" if location.is_local
                 else f"--store {shlex.quote(location.argument())}")
        return naming_the_index(str(exc), typed)

    def _run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`function(*args, **kwargs)` on the worker thread, after the calls before it."""
        return self._worker.submit(function, *args, **kwargs).result()

    def warm_up(self) -> None:
        """Load the encoder now, so the first request does not wait for it."""
        self._run(self._retriever.search, "warm up", k=1, mode="dense")

    def search(self, query: str, k: int = DEFAULT_TOP_K, mode: str = "hybrid", source: str | None = None,
               since: str | None = None, until: str | None = None, align: bool = False) -> dict[str, Any]:
        """The `qa search --json` object."""
        from qa.render import search_json

        check_text(query, "query")
        filters = search_filters(k, mode, source, since, until)
        hits = self._run(self._search, query, k, mode, filters, align)
        return search_json(query, hits)

    def _search(self, query: str, k: int, mode: str, filters: SearchFilters, align: bool) -> list[Hit]:
        from qa.pages import hits_with_pages

        hits = self._retriever.search(query, k=k, mode=mode, filters=filters, align=align)
        return hits_with_pages(hits, self._retriever.store)

    def ask(self, question: str, k: int = DEFAULT_TOP_K, mode: str = "hybrid", source: str | None = None,
            since: str | None = None, until: str | None = None,
            on_token: Callable[[str], None] | None = None) -> Answer:
        """The answer `qa ask` gives: quoted, or with a model server set, written by it and checked."""
        filters = self.check_ask(question, k, mode, source, since, until)
        if self.llm is None:
            return self._run(self._quoted, question, k, mode, filters)
        from qa.answer import answer_question
        from qa.generate import Written, model_writes
        from qa.llm import ChatClient

        # The index's steps run on its worker; the model writes on this request's thread, so a
        # slow or silent model server holds up no other request (search, stats, other answers).
        quoted = self._run(answer_question, self._retriever, question, k, mode, filters)
        with ChatClient(self.llm) as client:
            written = model_writes(client, quoted, on_token)
        if isinstance(written, Written):
            return self._run(self._checked, quoted, written)
        return self._run(self._with_pages, written)

    def check_ask(self, question: str, k: int = DEFAULT_TOP_K, mode: str = "hybrid", source: str | None = None,
                  since: str | None = None, until: str | None = None) -> SearchFilters:
        """A QueryError for a request `ask` would refuse, before anything is searched (a stream's
        status is sent before its answer); the filters it asks for otherwise."""
        check_text(question, "question")
        return search_filters(k, mode, source, since, until)

    def check_index(self) -> None:
        """The QAError a search would meet now for the index itself (removed, damaged, built again
        by another encoder), before anything is searched: a stream's status is sent first."""
        self._run(self._check_index)

    def _check_index(self) -> None:
        with self._retriever.store.reading():
            pass

    def _quoted(self, question: str, k: int, mode: str, filters: SearchFilters) -> Answer:
        from qa.answer import answer_question

        return self._with_pages(answer_question(self._retriever, question, k=k, mode=mode, filters=filters))

    def _checked(self, quoted: Answer, written: Written) -> Answer:
        from qa.generate import checked_answer

        return self._with_pages(checked_answer(self._retriever, quoted, written))

    def _with_pages(self, answer: Answer) -> Answer:
        from qa.pages import answer_with_pages

        return answer_with_pages(answer, self._retriever.store)

    def ask_json(self, question: str, **options: Any) -> dict[str, Any]:
        """The `qa ask --json` object."""
        from qa.render import answer_json

        return answer_json(self.ask(question, **options))

    def document(self, doc_id: str) -> dict[str, Any] | None:
        """An indexed document's clean text, title, date and path by its id; None for any other id."""
        if not is_document_id(doc_id):
            return None
        article = self._run(self._document, doc_id)
        return None if article is None else asdict(article)

    def _document(self, doc_id: str) -> Article | None:
        store = self._retriever.store
        with store.reading():
            return store.document(doc_id)

    def stats(self) -> dict[str, Any]:
        """The `qa stats --json` object."""
        return asdict(self._run(self._stats))

    def _stats(self) -> IndexStats:
        store = self._retriever.store
        with store.reading():
            return store.stats()

    def close(self) -> None:
        self._run(self._retriever.store.close)
        self._worker.shutdown()


def is_document_id(value: str) -> bool:
    """Whether `value` has the shape of a document id: ``"22cb3c343393cc32" -> True``, ``"../etc" -> False``."""
    return len(value) == DOC_ID_CHARS and all(ch in "0123456789abcdef" for ch in value)


def check_text(value: str, name: str) -> None:
    """Refuse a question or query that is empty, too long, or not text that can be written back."""
    if not isinstance(value, str):
        raise QueryError(f"the {name} must be a string")
    if len(value) > MAX_QUESTION_CHARS:
        raise QueryError(f"the {name} is longer than {MAX_QUESTION_CHARS} characters")
    if not value.strip():
        raise QueryError(f"the {name} is empty")
    _check_encodable(value, f"the {name}")
    from qa.retrieve import clean_query

    clean_query(value, name)  # "the query has no words in it"


def validation_line(errors: Sequence[Any]) -> str:
    """Pydantic's errors of a request in one line: ``k: Input should be less than or equal to 100``
    (the HTTP API's bodies and the MCP tools' arguments are checked by pydantic first)."""
    parts = []
    for error in errors[:3]:
        if error.get("type") == "json_invalid":  # its loc is ("body", character): no field to name
            reason = (error.get("ctx") or {}).get("error")
            parts.append(f"the body is not valid JSON{f' ({reason})' if reason else ''}")
            continue
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
        parts.append(f"{where[:60]}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def search_filters(k: int, mode: str, source: str | None, since: str | None, until: str | None) -> SearchFilters:
    """The filters of a request, after checking k, mode and the filter values."""
    from qa.retrieve import iso_day
    from qa.types import SearchFilters

    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise QueryError(f"k must be a whole number from 1 to {MAX_K}")
    if mode not in MODES:
        raise QueryError(f"mode must be one of {', '.join(MODES)}")
    days: dict[str, str | None] = {}
    for name, value in (("source", source), ("since", since), ("until", until)):
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > MAX_FILTER_CHARS:
            raise QueryError(f"{name} must be a string of at most {MAX_FILTER_CHARS} characters")
        _check_encodable(value, name)
    for name, value in (("since", since), ("until", until)):
        day = iso_day(value) if value else None
        if value and day is None:
            raise QueryError(f"{name} is not a date like 2016-07-27")
        days[name] = day
    filters = SearchFilters(source=source or None, since=days.get("since"), until=days.get("until"))
    problem = filters.problem()
    if problem:
        raise QueryError(problem)
    return filters


def _check_encodable(value: str, name: str) -> None:
    # A lone surrogate ("\ud800") parses from JSON but cannot be written back as UTF-8; NUL has no
    # place in a question and SQLite's text functions stop at it.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise QueryError(f"{name} holds characters that are not valid Unicode text") from None
    if "\x00" in value:
        raise QueryError(f"{name} holds a NUL character")
