"""`qa serve`: the index as an HTTP JSON API (FastAPI on uvicorn).

Every response body is the object the CLI prints with --json (`qa ask`, `qa search`, `qa stats`),
built by the same functions, so one schema serves both. Errors are ``{"error": "one line"}`` with a
4xx status for anything the client sent wrong.

Safety: loopback by default; any other address needs a token (sent as ``Authorization: Bearer
TOKEN``, compared in constant time on every request). Without a token, only requests addressed to
this machine by name (Host: localhost, 127.0.0.1 or [::1]) are answered: a web page whose name an
attacker points at 127.0.0.1 (DNS rebinding) would otherwise read every article. CORS is off
unless origins are named. No endpoint takes a file path: documents are served by id, and only
indexed ones. Bodies, questions and k are bounded.
"""

from __future__ import annotations

import hmac
import json
import queue
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.exceptions import HTTPException

from qa.config import DEFAULT_TOP_K, package_version
from qa.errors import (
    ConfigError,
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexMissingError,
    QAError,
    QueryError,
)
from qa.service import MAX_FILTER_CHARS, MAX_K, MAX_QUESTION_CHARS, IndexService, as_searched, validation_line

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_PORT = 8765
MAX_BODY_BYTES = 64 * 1024
MIN_TOKEN_CHARS = 16
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# The Host header a request to a loopback server may carry without a token (an IPv6 literal in brackets).
LOOPBACK_HOST_HEADERS = ("127.0.0.1", "localhost", "[::1]")
TOKEN_ENV = "QA_TOKEN"
# The routes that take a JSON body.
BODY_ROUTES = ("/ask", "/search")

Mode = Literal["hybrid", "dense", "keyword"]


class _Filters(BaseModel):
    # Strict: `"k": true` or `"k": " 4 "` is a client's mistake to be told of, not a 1 or a 4.
    model_config = ConfigDict(extra="forbid", strict=True)

    k: int = Field(DEFAULT_TOP_K, ge=1, le=MAX_K, description="How many passages to retrieve.")
    mode: Mode = Field("hybrid", description="Retrieval by meaning (dense), keywords (BM25), or both.")
    source: str | None = Field(None, max_length=MAX_FILTER_CHARS, description="Only articles whose path matches this glob.")
    since: str | None = Field(None, max_length=40, description="Only articles dated on or after this day (YYYY-MM-DD).")
    until: str | None = Field(None, max_length=40, description="Only articles dated on or before this day (YYYY-MM-DD).")


class AskRequest(_Filters):
    """POST /ask: what `qa ask QUESTION --json` takes."""

    # No min_length: "" is refused as "   " is, with 400 and the QueryError's words (not 422).
    question: Annotated[str, Field(max_length=MAX_QUESTION_CHARS, examples=["How much does Baghdad owe Russia?"]),
                        BeforeValidator(as_searched)]
    stream: bool = Field(False, description="Send server-sent events (token, claim, done) as the answer is written.")


class SearchRequest(_Filters):
    """POST /search: what `qa search QUERY --json` takes."""

    query: Annotated[str, Field(max_length=MAX_QUESTION_CHARS, examples=["peacekeepers Iraq"]),
                     BeforeValidator(as_searched)]
    align: bool = Field(False, description="Rank as /ask does: read the best passages again, token by token.")


class ErrorBody(BaseModel):
    """What every refusal and failure answers with."""

    error: str = Field(examples=["k: Input should be less than or equal to 100"])


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The schema's word on a route's errors: each is an ErrorBody, 422 included (FastAPI's own
    422 schema says {"detail": [...]}, which this server never sends)."""
    reasons = {400: "The request cannot be answered as asked (an empty question, a bad date, a body that is not JSON).",
               401: "The token is missing or wrong (a server started with --token).",
               404: "No indexed document has that id.",
               413: "The body is larger than the server takes.",
               415: "The body is not sent as application/json.",
               422: "The request does not fit the schema.",
               503: "The index is missing, damaged, busy, or built again by another encoder since the server started."}
    return {status: {"model": ErrorBody, "description": reasons[status]} for status in (*statuses, 401)}


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token, or with one too short to resist guessing."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"the token must be at least {MIN_TOKEN_CHARS} characters long")
    if token is not None and (token != token.strip() or any(ch.isspace() or not ch.isprintable() for ch in token)):
        raise ConfigError("the token may not hold spaces or control characters: no client could send it")
    if host not in LOOPBACK_HOSTS and not token:
        raise ConfigError(
            f"listening on {host} would open the index to other machines: give a token with --token or "
            f"${TOKEN_ENV} (clients send it as 'Authorization: Bearer TOKEN'), or serve on 127.0.0.1"
        )


def check_port(host: str, port: int) -> None:
    """Refuse a port something else listens on now, before the model loads (uvicorn would say it
    after, in a log line of its own)."""
    import errno
    import socket

    if port == 0:  # the system picks a free one
        return
    try:
        # The socket uvicorn will bind: IPv6 for an address with a colon, IPv4 for any other name.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind((host, port))
    except socket.gaierror as exc:  # a host name the system cannot look up: no port would do
        raise ConfigError(f"cannot listen on {host}: {exc.strerror or exc} (give --host an address of this "
                          "machine, such as 127.0.0.1 or 0.0.0.0)") from None
    except OSError as exc:
        hint = "is another server there? pick a port with --port" if exc.errno == errno.EADDRINUSE else (
            "give --host an address of this machine, such as 127.0.0.1 or 0.0.0.0"
            if exc.errno == errno.EADDRNOTAVAIL else "pick another with --host or --port")
        raise ConfigError(f"cannot listen on {host} port {port}: {exc.strerror or exc} ({hint})") from None


def create_app(service: IndexService, token: str | None = None, cors_origins: Sequence[str] = ()) -> ASGIApp:
    """The API over `service`, wrapped in the token check (or, without one, the Host check), the
    body limit and CORS when asked for."""
    app = FastAPI(
        title="qa",
        summary="Ask questions of a folder of articles; every answer cites the sentences it quotes.",
        version=package_version(),
    )
    _add_routes(app, service)
    _add_error_handlers(app, service)
    if token:
        _declare_bearer_token(app)
    wrapped: ASGIApp = _BodyLimit(app, MAX_BODY_BYTES)
    if token:
        wrapped = _TokenCheck(wrapped, token)
    if cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        wrapped = CORSMiddleware(wrapped, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
                                 allow_headers=["Authorization", "Content-Type"])
    if not token:
        wrapped = _LoopbackHostCheck(wrapped)
    return _Unraised(wrapped)


def _declare_bearer_token(app: FastAPI) -> None:
    """The schema says every route wants 'Authorization: Bearer TOKEN': client generators then
    send it, and /docs (read with the token) offers an Authorize button for its "Try it out"."""
    build = app.openapi

    def with_token() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()  # kept by FastAPI as app.openapi_schema
            schema.setdefault("components", {})["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            schema["security"] = [{"bearer": []}]
        return app.openapi_schema

    app.openapi = with_token  # type: ignore[method-assign]


def run_server(service: IndexService, host: str, port: int, token: str | None = None,
               cors_origins: Sequence[str] = (), on_ready: Any = None) -> None:
    """Serve until Ctrl-C or SIGTERM; `on_ready(port)` is called once the socket listens, with the
    port it got (the one asked for, or the one the system gave for port 0)."""
    import uvicorn

    check_bind(host, token)
    config = uvicorn.Config(create_app(service, token, cors_origins), host=host, port=port, log_level="warning",
                            access_log=False, lifespan="off", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    if on_ready is not None:
        _call_when_started(server, on_ready)
    server.run()


def _add_routes(app: FastAPI, service: IndexService) -> None:
    @app.post("/ask", summary="Answer a question with cited sentences (the `qa ask --json` object)",
              responses=_errors(400, 413, 415, 422, 503))
    def ask(request: AskRequest) -> Any:
        options = request.model_dump(exclude={"question", "stream"})
        if request.stream:
            # A request that cannot be answered is refused with its 4xx before the stream's 200,
            # and an index that cannot be read with its 503.
            service.check_ask(request.question, **options)
            service.check_index()
            return StreamingResponse(_answer_events(service, request.question, options),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-store"})
        return service.ask_json(request.question, **options)

    @app.post("/search", summary="The passages that best match a query (the `qa search --json` object)",
              responses=_errors(400, 413, 415, 422, 503))
    def search(request: SearchRequest) -> Any:
        return service.search(**request.model_dump())

    @app.get("/documents/{doc_id}", summary="An indexed document by id: clean text, title, date, path",
             responses=_errors(404, 422, 503))
    def document(doc_id: str) -> Any:
        found = service.document(doc_id)
        if found is None:
            raise HTTPException(404, f"no indexed document has the id {doc_id[:40]!r}")
        return found

    @app.get("/stats", summary="What the index holds (the `qa stats --json` object)", responses=_errors(503))
    def stats() -> Any:
        return service.stats()

    # GET and HEAD as two routes: one route of both methods gave both one operationId, which
    # FastAPI warned of on every start and client generators refuse.
    @app.head("/health", include_in_schema=False)
    @app.get("/health", summary="Whether the server is up", operation_id="health")  # first: a 405 says Allow: GET
    def health() -> Any:
        return {"ok": True}


def _answer_events(service: IndexService, question: str, options: dict[str, Any]) -> Iterator[str]:
    """Server-sent events for one answer: ``token`` as a model writes, ``claim`` per checked sentence,
    then ``done`` with the `qa ask --json` object (or ``error`` with one line)."""
    from qa.render import answer_json, claim_json

    events: queue.Queue[tuple[str, Any] | None] = queue.Queue()

    def produce() -> None:
        try:
            answer = service.ask(question, on_token=lambda text: events.put(("token", {"text": text})), **options)
            for claim in answer.claims:
                events.put(("claim", claim_json(claim)))
            events.put(("done", answer_json(answer)))
        except QAError as exc:
            events.put(("error", {"error": service.error_text(exc)}))
        except Exception as exc:  # never a traceback to the client; the stream ends with one line
            events.put(("error", {"error": f"internal error: {type(exc).__name__}"}))
        finally:
            events.put(None)

    threading.Thread(target=produce, name="qa-answer", daemon=True).start()
    while (event := events.get()) is not None:
        name, data = event
        yield f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _add_error_handlers(app: FastAPI, service: IndexService) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # A body that is not JSON at all is a bad request (400), as one that is not UTF-8 is; 422
        # is for JSON that does not fit the schema.
        status = 400 if any(error.get("type") == "json_invalid" for error in exc.errors()) else 422
        return _error(status, validation_line(exc.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        detail = str(exc.detail)
        if exc.status_code == 400 and detail == "There was an error parsing the body":  # FastAPI's, past json.loads
            detail = {UnicodeDecodeError: "the body is not valid JSON (it is not UTF-8 text)",
                      RecursionError: "the body is not valid JSON (nested too deeply)"}.get(
                          type(exc.__cause__), "the body is not valid JSON")
        response = _error(exc.status_code, detail)
        response.headers.update(exc.headers or {})  # a 405's Allow
        return response

    @app.exception_handler(QAError)
    async def qa_error(request: Request, exc: QAError) -> JSONResponse:
        status = 400 if isinstance(exc, QueryError) else 503 if isinstance(
            exc, (IndexMissingError, IndexCorruptError, IndexLockedError, IndexMismatchError)) else 500
        return _error(status, service.error_text(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        print(f"qa serve: {request.method} {request.url.path} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return _error(500, f"internal error: {type(exc).__name__}")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(message.split())}, status_code=status)


class _LoopbackHostCheck:
    """Answers only requests whose Host header names this machine: localhost, 127.0.0.1 or [::1],
    with or without a port. (Starlette's TrustedHostMiddleware does this too, but answers in plain
    text, and older Starlette versions read "[::1]:8765" as the host "[".)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if host_name(dict(scope.get("headers") or ()).get(b"host", b"")) not in LOOPBACK_HOST_HEADERS:
            await _send_error(send, 400, "this server answers requests to localhost only (Host: localhost, "
                                         "127.0.0.1 or [::1]); give it a token to be reached by other names")
            return
        await self.app(scope, receive, send)


def host_name(header: bytes) -> str:
    """The host a Host header names, port left out: ``b"[::1]:8765" -> "[::1]"``, ``b"LocalHost" -> "localhost"``."""
    value = header.decode("latin-1").strip().lower()
    if value.startswith("["):  # an IPv6 literal
        end = value.find("]")
        name, port = (value[: end + 1], value[end + 1 :]) if end > 0 else ("", "")
        return name if port == "" or (port[:1] == ":" and port[1:].isdigit()) else ""
    name, colon, port = value.partition(":")
    return name if not colon or port.isdigit() else ""


class _TokenCheck:
    """Lets a request through only with ``Authorization: Bearer TOKEN``, compared in constant time."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scheme, _, credentials = dict(scope.get("headers") or ()).get(b"authorization", b"").partition(b" ")
        # The scheme's name is case-insensitive (RFC 9110); the token is compared in constant time.
        if not hmac.compare_digest(b"Bearer " + credentials.strip(), self.expected) or scheme.lower() != b"bearer":
            await _send_error(send, 401, "missing or wrong token: send the header 'Authorization: Bearer TOKEN'",
                              [(b"www-authenticate", b"Bearer")])
            return
        await self.app(scope, receive, send)


class _BodyLimit:
    """Refuses a request body over `limit` bytes with 413, whether or not it said its length, and a
    POST body that is not JSON with 415."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if scope["method"] == "POST" and scope["path"] in BODY_ROUTES and media_type != b"application/json":
            await _send_error(send, 415, "send the body as JSON, with 'Content-Type: application/json'")
            return
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _send_error(send, 413, f"the request body is over {self.limit // 1024} KB")
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await _send_error(send, 413, f"the request body is over {self.limit // 1024} KB")
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


class _Unraised:
    """Keeps an error the app has answered (500, with one line on stderr: see `unexpected`) from
    going on to uvicorn, which would print its traceback too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            if not started or scope["type"] != "http":
                raise


async def _send_error(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


def _call_when_started(server: Any, on_ready: Any) -> None:
    """Call `on_ready` once uvicorn reports that it listens (it sets `started`)."""

    def wait() -> None:
        import time

        while not server.started and not server.should_exit:
            time.sleep(0.02)
        if server.started:
            on_ready(server.servers[0].sockets[0].getsockname()[1])

    threading.Thread(target=wait, name="qa-serve-ready", daemon=True).start()
