"""A client for OpenAI-compatible chat servers (Ollama, llama.cpp, vLLM, LM Studio, OpenAI itself).

Which server is used comes from one string, given as `--llm` or $QA_LLM, or as `url` under `[llm]`
in the config file::

    ollama                        Ollama on this machine; the model is the only one it has
    ollama:llama3.2               Ollama on this machine, model llama3.2
    http://127.0.0.1:8080         any OpenAI-compatible server; /v1 is added when no path is given
    https://api.example.org/v1

No server set anywhere means qa stays offline. httpx is imported only when a request is made.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from qa.errors import ConfigError, LLMError

if TYPE_CHECKING:
    import httpx

LLM_ENV = "QA_LLM"
LLM_MODEL_ENV = "QA_LLM_MODEL"
LLM_API_KEY_ENV = "QA_LLM_API_KEY"
CONFIG_ENV = "QA_CONFIG"

OLLAMA_URL = "http://localhost:11434/v1"
DEFAULT_TIMEOUT = 120.0
CONNECT_TIMEOUT = 5.0
# The most characters a token of a streamed answer may average before the stream counts as
# running past max_tokens (a token is a few characters; 32 leaves room for any tokenizer).
MAX_CHARS_PER_TOKEN = 32
# A stream line longer than this is no server-sent event a chat server writes (a token's chunk is
# a few hundred characters): the server is not speaking the protocol.
MAX_STREAM_LINE_CHARS = 1_000_000
_LINE_END = re.compile(r"\r\n|\r|\n")
LLM_URL_EXAMPLES = "ollama, ollama:MODEL or http://HOST:PORT[/v1]"

_OFF = ("", "off", "none")
_PASSWORD = re.compile(r"(//[^/@:\s]*:)[^/@\s]*@")
_REASON_CHARS = 200
# A 400 whose reason says one of these is the prompt not fitting the model's context window
# (llama.cpp: "exceeds the available context size", OpenAI and vLLM: "maximum context length"). Not
# "tokens" alone: "max_tokens must be at least 1" is a different mistake.
_CONTEXT_OVERFLOW = re.compile(r"context|too long|exceed|too many tokens|token limit", re.IGNORECASE)


def model_label(model: str) -> str:
    """A model's id as a line names it: the file name where a server reports a weights file's
    whole path (llama-cpp-python does), ``"/opt/m/SmolLM2-135M.Q4_1.gguf" -> "SmolLM2-135M.Q4_1.gguf"``."""
    if model.lower().endswith((".gguf", ".ggml", ".bin", ".safetensors")) and ("/" in model or "\\" in model):
        return re.split(r"[/\\]", model)[-1]
    return model


@dataclass(frozen=True)
class LLMSettings:
    """Where the chat model is served and how long to wait for it."""

    url: str  # base URL of the OpenAI-compatible API, normalised to end in /v1 when no path is given
    model: str | None = None  # None: the server's only model
    timeout: float = DEFAULT_TIMEOUT  # seconds without a word of an answer (or an answer to a request) before giving up
    api_key: str | None = None  # sent as a Bearer token when set

    @property
    def shown_url(self) -> str:
        """The URL as qa prints it: a password in it (``http://user:secret@host``) is not repeated."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, f"{parts.username}:***@{host}", parts.path, parts.query, parts.fragment))

    def __post_init__(self) -> None:
        # Settings built by hand ("ollama:phi3", "http://h:8080/") get the same normal form as parsed ones.
        url, url_model = parse_llm_url(self.url)
        object.__setattr__(self, "url", url)
        if self.model is None and url_model is not None:
            object.__setattr__(self, "model", url_model)
        if not self.timeout > 0:
            raise ConfigError(f"the model server timeout must be a positive number of seconds, not {self.timeout!r}")


def parse_llm_url(value: str) -> tuple[str, str | None]:
    """'ollama:llama3.2' -> (OLLAMA_URL, 'llama3.2'); 'http://h:8080' -> ('http://h:8080/v1', None)."""
    text = value.strip()
    # Errors below quote the value; a password in it ("http://me:secret@h") is not repeated.
    value = _PASSWORD.sub(r"\1***@", text)
    scheme, _, rest = text.partition(":")
    if scheme.lower() == "ollama":
        if rest.startswith("//"):
            raise ConfigError(f"model server {value!r}: for Ollama on another machine use http://HOST:11434")
        return OLLAMA_URL, rest.strip() or None
    try:
        # urlsplit itself refuses a bracketed host that is not an IPv6 address ("http://[::1").
        parts = urlsplit(text)
        hostname = parts.hostname
    except ValueError:
        raise ConfigError(f"model server {value!r} is not a URL qa can use; use {LLM_URL_EXAMPLES}") from None
    if parts.scheme.lower() not in ("http", "https") or not hostname:
        raise ConfigError(f"model server {value!r} is not a URL qa can use; use {LLM_URL_EXAMPLES}")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ConfigError(f"model server {value!r} has a port that is not a number") from None
    if parts.query or parts.fragment:
        raise ConfigError(f"model server {value!r}: give the server's base URL, without ?… or #…")
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme.lower(), parts.netloc, path, parts.query, "")), None


def config_path() -> Path:
    """The config file: $QA_CONFIG, else $XDG_CONFIG_HOME/qa/config.toml, else ~/.config/qa/config.toml."""
    chosen = os.environ.get(CONFIG_ENV)
    if chosen:
        return Path(os.path.expanduser(chosen))
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "qa" / "config.toml"


def resolve_llm_settings(url: str | None = None, model: str | None = None, named: str = "--llm") -> LLMSettings | None:
    """--llm/--llm-model, then $QA_LLM/$QA_LLM_MODEL, then [llm] in the config file; None: stay offline.
    `named`: what an error calls `url` (the chat's "/llm")."""
    option = (url, _nonempty(model))
    env = (os.environ.get(LLM_ENV), _nonempty(os.environ.get(LLM_MODEL_ENV)))
    chosen_url, source = (url, named) if url is not None else (env[0], f"${LLM_ENV}")
    # An explicit "off" wins over the layers below it, and a broken config file cannot undo it.
    if chosen_url is not None and _is_off(chosen_url):
        return None
    path = config_path()
    section = _read_llm_section(path)
    config = (_config_value(section, "url", str, path), _nonempty(_config_value(section, "model", str, path)))
    if chosen_url is None:
        chosen_url, source = config[0], f"config file {path}"
    if chosen_url is None or _is_off(chosen_url):
        return None
    try:
        base_url, _ = parse_llm_url(chosen_url)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    # Each layer's model (its own setting, else the one named in its URL) outranks the layers below.
    chosen_model = None
    for layer_url, layer_model in (option, env, config):
        chosen_model = layer_model or _url_model(layer_url)
        if chosen_model:
            break
    timeout = _config_value(section, "timeout", (int, float), path)
    if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
        raise ConfigError(f"config file {path}: [llm] timeout must be a positive number of seconds, not {timeout!r}")
    api_key = _nonempty(os.environ.get(LLM_API_KEY_ENV)) or _nonempty(_config_value(section, "api_key", str, path))
    return LLMSettings(
        url=base_url,
        model=chosen_model,
        timeout=float(timeout) if timeout is not None else DEFAULT_TIMEOUT,
        api_key=api_key,
    )


def is_loopback(url: str) -> bool:
    """Whether the URL's host is this machine: localhost, 127.0.0.0/8 or ::1."""
    host = urlsplit(url if "//" in url else f"//{url}").hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ChatClient:
    """Talks to one OpenAI-compatible server; makes no request until one is asked for."""

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self._http: httpx.Client | None = None
        self._model: str | None = None

    @property
    def url(self) -> str:
        return self.settings.url

    @property
    def model(self) -> str | None:
        """The model asked, once resolve_model found it; else the one chosen, if any."""
        return self._model or self.settings.model

    def models(self) -> list[str]:
        """The ids of the models the server offers (GET /models)."""
        body = self._request_json("GET", "/models")
        data = body.get("data") if isinstance(body, dict) else None
        ids = [item.get("id") for item in data if isinstance(item, dict)] if isinstance(data, list) else []
        if not isinstance(data, list) or len(ids) != len(data) or not all(isinstance(name, str) for name in ids):
            raise self._incompatible(f"GET /models has no list of models with ids: {_excerpt(body)}")
        return [str(name) for name in ids]

    def resolve_model(self) -> str:
        """The model to ask: the one chosen, checked against the server's list, else the server's only model."""
        if self._model is not None:
            return self._model
        wanted = self.settings.model
        try:
            available = self.models()
        except _ModelsNotListed:
            # Some servers do not list their models; then a chosen name is taken on trust.
            if wanted is None:
                raise LLMError(
                    f"{self._server} does not list its models (GET /models: HTTP 404); "
                    "check the URL, or choose a model with --llm-model"
                ) from None
            self._model = wanted
            return wanted
        if wanted is not None:
            self._model = self._match_model(wanted, available)
        elif len(available) == 1:
            self._model = available[0]
        elif not available:
            raise LLMError(f"{self._server} has no models")
        else:
            raise LLMError(f"{self._server} has several models ({', '.join(available)}); choose one with --llm-model")
        return self._model

    def stream_chat(
        self,
        messages: list[dict[str, str]],
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        """Yield the reply's text as the server writes it; closing the iterator closes the response."""
        import httpx

        payload = self._chat_payload(messages, max_tokens, temperature, stop, stream=True)
        try:
            with self._client().stream("POST", self._endpoint("/chat/completions"), json=payload) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._status_error(response, payload["model"])
                if response.headers.get("content-type", "").startswith("application/json"):
                    # A server that ignores "stream" answers with the whole completion at once.
                    whole = self._completion_text(self._parse_json(response.read().decode("utf-8", "replace"),
                                                                   "the reply"), max_tokens)
                    if whole:
                        yield whole
                    return
                events = written = 0
                # The timeout counts from the last event that carried something (text, or a
                # thinking model's reasoning), not from the last byte: a server that sends only
                # keep-alive comments, empty events, or bytes that never end a line would
                # otherwise hold the question for ever (httpx's timeout is between two reads).
                progress = [time.monotonic()]
                for line in self._stream_lines(response, progress):
                    field, _, data = line.partition(":")
                    if field != "data":
                        # Blank lines end events; ':' comments and event/id/retry fields carry no text.
                        if line and field not in ("", "event", "id", "retry"):
                            raise self._incompatible(f"stream line is not a server-sent event: {_excerpt(line)}")
                        continue
                    data = data.strip()
                    if data == "[DONE]":
                        return
                    events += 1
                    text, moved = self._delta_text(data)
                    if moved:
                        progress[0] = time.monotonic()
                    written += len(text)
                    # A server that ignores max_tokens would be read (and every sentence checked)
                    # for as long as it writes: past what the tokens asked for could hold, stop.
                    if written > max_tokens * MAX_CHARS_PER_TOKEN:
                        raise self._past_max_tokens(max_tokens)
                    if events > 2 * max_tokens + 16:
                        raise self._past_max_tokens(max_tokens) if written else LLMError(
                            f"{self._server} sent {events} events without any text; its answer was not used")
                    if text:
                        yield text
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        # Every OpenAI-compatible server ends a stream with [DONE]; without it the answer is cut short.
        if events == 0:
            # llama-cpp-python, for one, fails a too-long prompt this way once the stream has begun.
            raise LLMError(
                f"{self._server} ended the stream without an answer or data: [DONE] "
                "(its log says why; a prompt longer than the model's context is one cause)"
            )
        raise LLMError(f"{self._server} broke off the answer before data: [DONE]")

    def complete(self, messages: list[dict[str, str]], max_tokens: int = 128, temperature: float = 0.0) -> str:
        """The whole reply to the messages, in one request."""
        payload = self._chat_payload(messages, max_tokens, temperature, None, stream=False)
        body = self._request_json("POST", "/chat/completions", json=payload)
        return self._completion_text(body, max_tokens)

    def _completion_text(self, body: Any, max_tokens: int) -> str:
        """The text of a whole (not streamed) chat completion."""
        self._raise_error_object(body)
        try:
            content = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise self._incompatible(f"no choices[0].message.content in {_excerpt(body)}") from None
        if content is not None and not isinstance(content, str):
            raise self._incompatible(f"choices[0].message.content is not text: {_excerpt(content)}")
        if content and len(content) > max_tokens * MAX_CHARS_PER_TOKEN:
            raise self._past_max_tokens(max_tokens)
        return content or ""

    def _stream_lines(self, response: httpx.Response, progress: list[float]) -> Iterator[str]:
        """The lines of a server-sent event stream (ended by CR LF, LF or CR), raising LLMError
        once `self.settings.timeout` seconds pass after `progress[0]` (the last event that carried
        something), whatever bytes come meanwhile, or once a line runs past MAX_STREAM_LINE_CHARS."""
        pending = ""
        for piece in response.iter_text():
            pending += piece
            # A CR at the end may be the first half of a CR LF: it waits for the next piece.
            lines = _LINE_END.split(pending[:-1] if pending.endswith("\r") else pending)
            pending = lines.pop() + ("\r" if pending.endswith("\r") else "")
            yield from lines
            if len(pending) > MAX_STREAM_LINE_CHARS:
                raise self._incompatible(f"stream line runs past {MAX_STREAM_LINE_CHARS:,} characters: "
                                         f"{_excerpt(pending)}")
            if time.monotonic() - progress[0] > self.settings.timeout:
                raise LLMError(f"{self._server} sent nothing of an answer for {self.settings.timeout:g} s "
                               "(only keep-alive lines, empty events or a line that never ends)")
        if pending.rstrip("\r"):
            yield pending.rstrip("\r")

    def _past_max_tokens(self, max_tokens: int) -> LLMError:
        return LLMError(f"{self._server} wrote past the {max_tokens} tokens asked for; its answer was not used")

    def close(self) -> None:
        """Close the connections to the server."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- requests ---------------------------------------------------------------------------------

    @property
    def _server(self) -> str:
        return f"model server at {self.settings.shown_url}"

    def _client(self) -> httpx.Client:
        if self._http is None:
            import httpx

            headers = {"Accept": "application/json"}
            if self.settings.api_key:
                headers["Authorization"] = f"Bearer {self.settings.api_key}"
            timeout = httpx.Timeout(self.settings.timeout, connect=min(CONNECT_TIMEOUT, self.settings.timeout))
            # A proxy set in the environment for the web must not take requests meant for this machine.
            self._http = httpx.Client(headers=headers, timeout=timeout, trust_env=not is_loopback(self.url))
        return self._http

    def _endpoint(self, path: str) -> str:
        return self.url + path

    def _request_json(self, method: str, path: str, json: dict[str, Any] | None = None) -> Any:
        import httpx

        try:
            response = self._client().request(method, self._endpoint(path), json=json)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        if response.status_code >= 400:
            if path == "/models" and response.status_code in (404, 405, 501):
                raise _ModelsNotListed(f"{self._server} does not list its models (HTTP {response.status_code})")
            raise self._status_error(response, (json or {}).get("model"))
        return self._parse_json(response.text, f"{method} {path}")

    def _chat_payload(
        self, messages: list[dict[str, str]], max_tokens: int, temperature: float, stop: list[str] | None, stream: bool
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.resolve_model(),
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": stream,
        }
        if stop:
            payload["stop"] = stop
        return payload

    def _match_model(self, wanted: str, available: list[str]) -> str:
        if wanted in available:
            return wanted
        # Ollama names "llama3.2" and "llama3.2:latest" the same model.
        bare = wanted.removesuffix(":latest")
        for name in available:
            if name.removesuffix(":latest") == bare:
                return name
        choices = ", ".join(available) if available else "none"
        raise LLMError(f"{self._server} has no model {wanted!r}; it has: {choices}")

    # -- reading answers --------------------------------------------------------------------------

    def _delta_text(self, data: str) -> tuple[str, bool]:
        """A stream chunk's text, and whether it carried anything (text, or a thinking model's
        reasoning, which vLLM and Ollama send beside the content) more than its role."""
        chunk = self._parse_json(data, "stream chunk")
        self._raise_error_object(chunk)
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        if not isinstance(choices, list):
            raise self._incompatible(f"stream chunk has no choices: {_excerpt(data)}")
        if not choices:
            return "", False  # a closing chunk that carries only usage figures
        choice = choices[0]
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            raise self._incompatible(f"stream chunk has no choices[0].delta: {_excerpt(data)}")
        content = delta.get("content")
        text = content if isinstance(content, str) else ""
        return text, bool(text) or any(isinstance(value, str) and value for key, value in delta.items() if key != "role")

    def _parse_json(self, text: str, what: str) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            raise self._incompatible(f"{what} is not JSON: {_excerpt(text)}") from None

    def _raise_error_object(self, body: Any) -> None:
        if isinstance(body, dict) and body.get("error"):
            raise LLMError(f"{self._server} reported an error: {_reason_of(body)}")

    # -- errors -----------------------------------------------------------------------------------

    def _incompatible(self, detail: str) -> LLMError:
        return LLMError(f"{self._server} sent a response that is not OpenAI-compatible ({detail})")

    def _status_error(self, response: httpx.Response, model: str | None) -> LLMError:
        status = response.status_code
        body = _json_or_text(response.text)
        # An HTML error page says nothing a line can hold that its status's reason does not.
        html = isinstance(body, str) and body.lstrip()[:1] == "<"
        reason = (not html and _reason_of(body)) or response.reason_phrase or "no reason given"
        if status == 400 and _CONTEXT_OVERFLOW.search(reason):
            return LLMError(f"{self._server} says the prompt is too long for the model's context ({reason})")
        if status == 404 and model and "model" in reason.lower():
            return LLMError(f"{self._server} has no model {model!r} (HTTP 404: {reason})")
        if status == 404:
            return LLMError(f"{self._server} answered HTTP 404: {reason} (is the URL the API's base, often .../v1?)")
        if status in (401, 403):
            if not self.settings.api_key:
                return LLMError(f"{self._server} wants an API key (HTTP {status}: {reason}); set ${LLM_API_KEY_ENV}")
            return LLMError(f"{self._server} refused the API key (HTTP {status}: {reason})")
        return LLMError(f"{self._server} answered HTTP {status}: {reason}")

    def _transport_error(self, exc: Exception) -> LLMError:
        import httpx

        if isinstance(exc, httpx.ConnectTimeout):
            seconds = min(CONNECT_TIMEOUT, self.settings.timeout)
            return LLMError(f"{self._server} is not reachable (no connection within {seconds:g} s)")
        if isinstance(exc, httpx.ConnectError):
            return LLMError(f"{self._server} is not reachable ({_connect_reason(exc)})")
        if isinstance(exc, httpx.TimeoutException):
            return LLMError(f"{self._server} did not answer within {self.settings.timeout:g} s")
        if isinstance(exc, httpx.RemoteProtocolError):
            return LLMError(f"{self._server} broke off the connection ({_one_line(str(exc)) or 'protocol error'})")
        return LLMError(f"{self._server} could not be read ({type(exc).__name__}: {_one_line(str(exc))})")


class _ModelsNotListed(LLMError):
    """The server has no GET /models."""


def _nonempty(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip() or None


def _is_off(value: str) -> bool:
    return value.strip().lower() in _OFF


def _url_model(value: str | None) -> str | None:
    """The model named in an 'ollama:MODEL' setting, without checking the rest of it."""
    if value is None or _is_off(value):
        return None
    scheme, _, rest = value.strip().partition(":")
    return _nonempty(rest) if scheme.lower() == "ollama" and not rest.startswith("//") else None


def _read_llm_section(path: Path) -> dict[str, Any]:
    # A missing file is the usual case: most people never write one. One named by $QA_CONFIG
    # was meant to be read: a typo there would otherwise be ignored without a word.
    if not path.exists():
        if os.environ.get(CONFIG_ENV):
            raise ConfigError(f"config file {path}, named by ${CONFIG_ENV}, is not there")
        return {}
    if not path.is_file():
        raise ConfigError(f"config file {path} is not a file")
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ConfigError(f"{path}: reading the config file needs Python 3.11+ or the tomli package") from None
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML ({_one_line(str(exc))})") from None
    section = data.get("llm", {})
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: llm must be a table, [llm]")
    return section


def _config_value(section: dict[str, Any], key: str, kind: type | tuple[type, ...], path: Path) -> Any:
    value = section.get(key)
    if value is not None and not isinstance(value, kind):
        raise ConfigError(f"config file {path}: [llm] {key} has the wrong type ({type(value).__name__})")
    return value


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _reason_of(body: Any) -> str:
    """The message in an error body: OpenAI's {"error": {"message": …}}, {"error": "…"}, {"detail": …} or text."""
    if isinstance(body, dict):
        for key in ("error", "detail", "message"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value
            if isinstance(value, list):
                # FastAPI validation errors: a list of {"msg": …}.
                value = "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in value)
            if value:
                return _one_line(str(value))
    return _one_line(str(body)) if body not in (None, "") else ""


def _connect_reason(exc: Exception) -> str:
    text = str(exc)
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "nodename nor servname" in lowered or "getaddrinfo" in lowered:
        return "host name not found"
    return _one_line(text) or type(exc).__name__


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _REASON_CHARS else flat[: _REASON_CHARS - 1].rstrip() + "…"


def _excerpt(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= 80 else flat[:79] + "…")
