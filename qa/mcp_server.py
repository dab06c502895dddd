"""`qa mcp`: the index as Model Context Protocol tools over stdio, for AI assistants.

Three tools, each the library call behind a CLI command, each returning that command's --json
object: `search` (`qa search`), `ask` (`qa ask`) and `open_document` (an indexed article by id).
Every passage and citation carries its document id, title, path and exact character span, so an
assistant's quotation can be checked against `open_document`'s text. Arguments are checked as the
HTTP API checks them (qa.service); a bad call is a tool error with one line, never a crash.
Nothing is written to stdout but the protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field, Strict

from qa.config import DEFAULT_TOP_K, package_version
from qa.errors import QAError
from qa.service import MAX_FILTER_CHARS, MAX_K, MAX_QUESTION_CHARS, as_searched, validation_line

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from qa.service import IndexService

INSTRUCTIONS = (
    "Tools over the user's own archive of articles. `ask` answers a question with sentences quoted "
    "word for word from the articles, each with a citation [n] giving the document id and the character "
    "span (quote == text[start:end]); `search` returns the best passages; `open_document` returns one "
    "article's whole text by its doc_id. Quote what the tools return; do not add facts they do not hold."
)


def _not_a_bool(value: Any) -> Any:
    # JSON's true would pass as 1. Assistants often send numbers as strings ("5"), which pass.
    if isinstance(value, bool):
        from pydantic_core import PydanticCustomError

        raise PydanticCustomError("int_type", "Input should be a valid integer, not true or false")
    return value


# No min_length: an empty question is refused by the service, in the words the HTTP API and the
# command line use ("the question is empty"), not pydantic's.
# Its length is checked as the command line checks it, after spaces are collapsed (as_searched).
Query = Annotated[str, Strict(), Field(max_length=MAX_QUESTION_CHARS), BeforeValidator(as_searched)]
# The validator after the bounds, so that the schema still shows them as minimum and maximum.
K = Annotated[int, Field(ge=1, le=MAX_K, description="How many passages to retrieve."), BeforeValidator(_not_a_bool)]
Mode = Annotated[Literal["hybrid", "dense", "keyword"], Field(description="By meaning, keywords, or both.")]
Glob = Annotated[str | None, Field(max_length=MAX_FILTER_CHARS, description="Only articles whose path matches.")]
Day = Annotated[str | None, Field(max_length=40, description="An ISO day, YYYY-MM-DD.")]
Align = Annotated[bool, Strict(), Field(description="Rank as ask does: read the best passages again, token by token.")]


def build_server(service: IndexService) -> MCPServer:
    """The MCP server whose tools call `service`."""
    import inspect

    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
    from pydantic import ValidationError

    taken: dict[str, frozenset[str]] = {}  # each tool's argument names

    class OneLineErrors(MCPServer):
        """Tool errors in one line, as the HTTP API gives them: the SDK's argument check reports
        pydantic's several-line text, and passes over arguments a tool does not take."""

        async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
            unknown = sorted(set(arguments) - taken.get(name, frozenset(arguments)))
            if unknown:
                raise ToolError(f"Error executing tool {name}: it takes no argument {unknown[0]!r} "
                                f"(it takes {', '.join(sorted(taken[name]))})")
            try:
                return await super().call_tool(name, arguments, context)
            except ToolError as exc:
                if isinstance(exc, UnexpectedToolError) or not isinstance(exc.__cause__, ValidationError):
                    raise
                raise ToolError(f"Error executing tool {name}: {validation_line(exc.__cause__.errors())}") from None

    server = OneLineErrors(name="qa", version=package_version(), instructions=INSTRUCTIONS, log_level="WARNING")

    def checked(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return call(*args, **kwargs)
        except QAError as exc:
            raise ToolError(service.error_text(exc)) from None

    @server.tool()
    def search(query: Query, k: K = DEFAULT_TOP_K, mode: Mode = "hybrid", source: Glob = None,
               since: Day = None, until: Day = None, align: Align = False) -> dict[str, Any]:
        """The passages of the user's articles that best match `query`, best first (at most two
        of one article ahead of other articles' passages), each with its doc_id, title, path,
        character span (start, end), text and page (PDFs)."""
        return checked(service.search, query, k=k, mode=mode, source=source, since=since, until=until, align=align)

    @server.tool()
    def ask(question: Query, k: K = DEFAULT_TOP_K, mode: Mode = "hybrid", source: Glob = None,
            since: Day = None, until: Day = None) -> dict[str, Any]:
        """Answer `question` from the user's articles: `answer` is made of sentences quoted word for
        word, each marked [n]; `citations` holds one entry per quoted sentence, and those whose `n` is
        n say which document (doc_id, title, path, page) and which characters (start, end) the
        sentences marked [n] quote (one source may give several sentences). `answerable` is false when the articles do not answer;
        `absent_names` lists names in the question that no article holds: the answer may then be
        about something else."""
        return checked(service.ask_json, question, k=k, mode=mode, source=source, since=since, until=until)

    @server.tool()
    def open_document(doc_id: Annotated[str, Field(min_length=1, max_length=64)]) -> dict[str, Any]:
        """One indexed article by its doc_id (from search or ask): its clean text, title, date and path.
        Citation spans index into `text`."""
        # Through `checked` as the other tools: an index removed or rebuilt while open is said in
        # its line, where it was "Error executing tool open_document" and a traceback on stderr.
        found = checked(service.document, doc_id)
        if found is None:
            raise ToolError(f"no indexed document has the id {doc_id[:40]!r}")
        return found

    for tool in (search, ask, open_document):
        taken[tool.__name__] = frozenset(inspect.signature(tool).parameters)
    return server


def run_stdio(service: IndexService) -> None:
    """Serve the tools on stdin/stdout until the client closes them; the encoder loads meanwhile."""
    import threading

    threading.Thread(target=service.warm_up, name="qa-warm-up", daemon=True).start()
    build_server(service).run("stdio")
