"""The OpenAI-compatible chat client: against a real llama.cpp server, and a scripted one for failures."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.errors import ConfigError, LLMError
from qa.llm import (
    MAX_CHARS_PER_TOKEN,
    OLLAMA_URL,
    ChatClient,
    LLMSettings,
    config_path,
    is_loopback,
    parse_llm_url,
    resolve_llm_settings,
)

from llm_servers import LLAMA_MODEL_ID, SCRIPTED_MODEL_ID, free_port, scripted_server

HELLO = [{"role": "user", "content": "Say hello."}]


def one_line_error(excinfo: pytest.ExceptionInfo[LLMError], url: str) -> str:
    """The error's message, checked to be one line that names the server."""
    message = str(excinfo.value)
    assert "\n" not in message
    assert url in message
    return message


# -- the real server --------------------------------------------------------------------------------


@pytest.fixture
def llama(llm_url: str) -> Iterator[ChatClient]:
    """A client of the session's llama.cpp server (conftest's llm_url, started by llama_server())."""
    with ChatClient(LLMSettings(url=llm_url, timeout=60)) as client:
        yield client


def test_real_server_lists_its_one_model(llama: ChatClient) -> None:
    assert llama.models() == [LLAMA_MODEL_ID]
    assert llama.resolve_model() == LLAMA_MODEL_ID


def test_real_server_streams_a_reply_in_pieces(llama: ChatClient) -> None:
    chunks = list(llama.stream_chat(HELLO, max_tokens=24))
    assert len(chunks) > 1
    assert all(chunks)
    assert "".join(chunks).strip()


def test_real_server_completes(llama: ChatClient) -> None:
    assert llama.complete(HELLO, max_tokens=16).strip()


def test_closing_a_stream_early_leaves_the_client_usable(llama: ChatClient) -> None:
    stream = llama.stream_chat([{"role": "user", "content": "Count from one to fifty in words."}], max_tokens=32)
    assert next(stream)
    stream.close()  # what a consumer does when it stops reading, e.g. on Ctrl-C
    assert list(stream) == []
    assert "".join(llama.stream_chat(HELLO, max_tokens=16)).strip()
    assert llama.complete(HELLO, max_tokens=16).strip()


def test_unknown_model_names_the_ones_the_server_has(llm_url: str) -> None:
    with ChatClient(LLMSettings(url=llm_url, model="llama3.2")) as client, pytest.raises(LLMError) as excinfo:
        client.resolve_model()
    message = one_line_error(excinfo, llm_url)
    assert "has no model 'llama3.2'" in message
    assert LLAMA_MODEL_ID in message


def test_prompt_longer_than_the_context_is_a_clear_error(llama: ChatClient) -> None:
    long_prompt = [{"role": "user", "content": "news " * 6000}]  # about 6,000 tokens; the context is 4,096
    with pytest.raises(LLMError) as excinfo:
        llama.complete(long_prompt, max_tokens=16)
    message = one_line_error(excinfo, llama.url)
    assert "prompt is too long for the model's context" in message
    assert "4096" in message
    # Streaming, llama-cpp-python answers 200 and then ends the stream with nothing in it.
    with pytest.raises(LLMError) as excinfo:
        list(llama.stream_chat(long_prompt, max_tokens=16))
    assert "ended the stream without an answer" in one_line_error(excinfo, llama.url)


# -- no server -------------------------------------------------------------------------------------


def test_a_password_in_the_url_is_not_repeated_in_messages() -> None:
    settings = LLMSettings(url=f"http://user:secret@127.0.0.1:{free_port()}")
    assert settings.shown_url.startswith("http://user:***@127.0.0.1:")
    with ChatClient(settings) as client, pytest.raises(LLMError) as excinfo:
        client.models()
    assert "secret" not in str(excinfo.value) and "user:***@" in str(excinfo.value)
    with pytest.raises(ConfigError) as refused:
        parse_llm_url("http://user:secret@127.0.0.1:port")
    assert "secret" not in str(refused.value) and "user:***@" in str(refused.value)


def test_closed_port_is_not_reachable() -> None:
    client = ChatClient(LLMSettings(url=f"http://127.0.0.1:{free_port()}"))  # makes no request yet
    with client, pytest.raises(LLMError) as excinfo:
        client.models()
    assert "is not reachable (connection refused)" in one_line_error(excinfo, client.url)


def test_importing_the_client_does_not_import_httpx() -> None:
    code = "import sys, qa.llm; assert 'httpx' not in sys.modules, 'httpx imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)


# -- scripted failures -----------------------------------------------------------------------------


def scripted_client(url: str, **settings: object) -> ChatClient:
    return ChatClient(LLMSettings(url=url, **settings))  # type: ignore[arg-type]


def test_scripted_server_that_behaves_streams_and_completes() -> None:
    with scripted_server("ok") as url, scripted_client(url) as client:
        assert list(client.stream_chat(HELLO)) == ["Hello", " there"]
        assert client.complete(HELLO) == "Hello there"


def test_an_html_error_page_gives_its_status_reason_not_its_markup() -> None:
    with (
        scripted_server("html_error") as url,
        scripted_client(url, model=SCRIPTED_MODEL_ID) as client,
        pytest.raises(LLMError) as excinfo,
    ):
        list(client.stream_chat(HELLO))
    message = one_line_error(excinfo, url)
    assert message.endswith("answered HTTP 501: Not Implemented") and "<" not in message


def test_a_server_that_ignores_stream_and_answers_whole_is_read() -> None:
    with scripted_server("json_to_stream") as url, scripted_client(url) as client:
        assert list(client.stream_chat(HELLO)) == ["Hello there"]


def test_http_500_gives_its_reason_on_one_line() -> None:
    with scripted_server("http_500") as url, scripted_client(url) as client, pytest.raises(LLMError) as excinfo:
        client.models()
    assert "answered HTTP 500: Internal error: the model crashed" in one_line_error(excinfo, url)


@pytest.mark.parametrize(("behaviour", "detail"), [("malformed_stream", "not JSON"), ("no_choices", "no choices")])
def test_broken_stream_is_not_openai_compatible(behaviour: str, detail: str) -> None:
    with scripted_server(behaviour) as url, scripted_client(url) as client, pytest.raises(LLMError) as excinfo:
        list(client.stream_chat(HELLO))
    message = one_line_error(excinfo, url)
    assert "not OpenAI-compatible" in message
    assert detail in message


def test_error_object_in_the_stream_stops_it() -> None:
    received: list[str] = []
    with scripted_server("stream_error") as url, scripted_client(url) as client, pytest.raises(LLMError) as excinfo:
        for chunk in client.stream_chat(HELLO):
            received.append(chunk)
    assert received == ["Hello"]
    assert "reported an error: the model ran out of memory" in one_line_error(excinfo, url)


def test_stream_cut_short_is_an_error() -> None:
    received: list[str] = []
    with scripted_server("truncated_stream") as url, scripted_client(url) as client, pytest.raises(LLMError) as excinfo:
        for chunk in client.stream_chat(HELLO):
            received.append(chunk)
    assert received == ["Hello"]
    assert "broke off the answer before data: [DONE]" in one_line_error(excinfo, url)


def test_server_that_hangs_times_out() -> None:
    started = time.monotonic()
    with (
        scripted_server("hang") as url,
        scripted_client(url, timeout=1.0) as client,
        pytest.raises(LLMError) as excinfo,
    ):
        list(client.stream_chat(HELLO))
    assert "did not answer within 1 s" in one_line_error(excinfo, url)
    assert time.monotonic() - started < 4


@pytest.mark.parametrize("behaviour", ["keep_alive", "no_line_end", "empty_events"])
def test_a_stream_that_stalls_does_not_hold_the_question_past_the_timeout(behaviour: str) -> None:
    # Each byte or empty event came within httpx's timeout, which counts between reads: bytes
    # with no line end held `qa ask` for ever, and empty events for 416 of them.
    started = time.monotonic()
    received: list[str] = []
    with (
        scripted_server(behaviour) as url,
        scripted_client(url, timeout=1.0) as client,
        pytest.raises(LLMError) as excinfo,
    ):
        for chunk in client.stream_chat(HELLO):
            received.append(chunk)
    assert received == ["Hello"]
    assert "sent nothing of an answer for 1 s" in one_line_error(excinfo, url)
    assert time.monotonic() - started < 4


@pytest.mark.parametrize("behaviour", ["runaway", "runaway_short"])  # past the characters / the events
def test_a_stream_that_runs_past_max_tokens_is_stopped(behaviour: str) -> None:
    received: list[str] = []
    with scripted_server(behaviour) as url, scripted_client(url) as client, pytest.raises(LLMError) as excinfo:
        for chunk in client.stream_chat(HELLO, max_tokens=50):
            received.append(chunk)
    assert "wrote past the 50 tokens asked for" in one_line_error(excinfo, url)
    # Stopped there, not at the server's end.
    assert len("".join(received)) <= 50 * MAX_CHARS_PER_TOKEN and len(received) <= 2 * 50 + 16


def test_model_the_server_refuses_is_named() -> None:
    with scripted_server("unknown_model") as url, scripted_client(url) as client, pytest.raises(LLMError) as excinfo:
        list(client.stream_chat(HELLO))
    assert f"has no model {SCRIPTED_MODEL_ID!r}" in one_line_error(excinfo, url)


def test_context_overflow_says_the_prompt_is_too_long() -> None:
    with scripted_server("context_overflow") as url, scripted_client(url) as client, pytest.raises(LLMError) as excinfo:
        client.complete(HELLO)
    message = one_line_error(excinfo, url)
    assert "prompt is too long for the model's context" in message
    assert "maximum context length is 4096 tokens" in message


def test_models_list_that_is_not_json() -> None:
    with scripted_server("models_not_json") as url, scripted_client(url) as client, pytest.raises(LLMError) as excinfo:
        client.resolve_model()
    message = one_line_error(excinfo, url)
    assert "not OpenAI-compatible" in message
    assert "GET /models is not JSON" in message


def test_several_models_ask_for_a_choice() -> None:
    with scripted_server("two_models") as url:
        with scripted_client(url) as client, pytest.raises(LLMError) as excinfo:
            client.resolve_model()
        message = one_line_error(excinfo, url)
        assert f"has several models ({SCRIPTED_MODEL_ID}, other-model); choose one with --llm-model" in message
        with scripted_client(url, model="other-model") as client:
            assert client.resolve_model() == "other-model"


@pytest.mark.parametrize(("wanted", "resolved"), [("llama3.2", "llama3.2:latest"), ("phi3:mini", "phi3:mini")])
def test_ollama_tags_match_without_latest(wanted: str, resolved: str) -> None:
    with scripted_server("ollama_tags") as url, scripted_client(url, model=wanted) as client:
        assert client.resolve_model() == resolved


def test_server_without_a_model_list_takes_the_chosen_model_on_trust() -> None:
    with scripted_server("no_models_endpoint") as url:
        with scripted_client(url, model="anything") as client:
            assert client.complete(HELLO) == "Hello there"
        with scripted_client(url) as client, pytest.raises(LLMError) as excinfo:
            client.resolve_model()
        assert "does not list its models" in one_line_error(excinfo, url)
        assert "--llm-model" in str(excinfo.value)


def test_api_key_is_sent_as_bearer_only_when_set() -> None:
    with scripted_server("echo_auth") as url:
        with scripted_client(url, model=SCRIPTED_MODEL_ID, api_key="sk-test") as client:
            assert client.complete(HELLO) == "Bearer sk-test"
        with scripted_client(url, model=SCRIPTED_MODEL_ID) as client:
            assert client.complete(HELLO) == "none"


def test_refused_request_asks_for_a_key() -> None:
    with scripted_server("unauthorized") as url:
        with scripted_client(url) as client, pytest.raises(LLMError) as excinfo:
            client.models()
        assert "wants an API key" in one_line_error(excinfo, url)
        with scripted_client(url, api_key="sk-wrong") as client, pytest.raises(LLMError) as excinfo:
            client.models()
        assert "refused the API key (HTTP 401: Incorrect API key provided)" in one_line_error(excinfo, url)


# -- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ollama", (OLLAMA_URL, None)),
        ("ollama:llama3.2", (OLLAMA_URL, "llama3.2")),
        ("ollama:llama3.2:1b", (OLLAMA_URL, "llama3.2:1b")),
        ("http://h:8080", ("http://h:8080/v1", None)),
        ("http://h:8080/", ("http://h:8080/v1", None)),
        ("http://h:8080/v1/", ("http://h:8080/v1", None)),
        (" https://api.example.org/openai/v1 ", ("https://api.example.org/openai/v1", None)),
    ],
)
def test_parse_llm_url(value: str, expected: tuple[str, str | None]) -> None:
    assert parse_llm_url(value) == expected


@pytest.mark.parametrize("value", ["", "ftp://h/v1", "localhost:8080", "http://", "http://h:port", "ollama://h",
                                   "http://[::1", "http://[zz]:80"])
def test_parse_llm_url_rejects(value: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_llm_url(value)
    assert "\n" not in str(excinfo.value)


def test_settings_built_by_hand_are_normalised() -> None:
    assert LLMSettings(url="http://h:8080/").url == "http://h:8080/v1"
    assert LLMSettings(url="ollama:phi3") == LLMSettings(url=OLLAMA_URL, model="phi3")


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        (OLLAMA_URL, True),
        ("http://127.0.0.1:8080/v1", True),
        ("http://127.4.5.6/v1", True),
        ("http://[::1]:8080/v1", True),
        ("localhost:8080", True),
        ("http://192.168.1.20:11434/v1", False),
        ("https://api.example.org/v1", False),
        ("http://localhost.example.org/v1", False),
    ],
)
def test_is_loopback(url: str, loopback: bool) -> None:
    assert is_loopback(url) is loopback


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config file path under tmp_path (not yet written), with every LLM variable unset."""
    for name in ("QA_LLM", "QA_LLM_MODEL", "QA_LLM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "config.toml"
    monkeypatch.setenv("QA_CONFIG", str(path))
    return path


def test_config_path_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_CONFIG", str(tmp_path / "mine.toml"))
    assert config_path() == tmp_path / "mine.toml"
    monkeypatch.delenv("QA_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_path() == tmp_path / "qa" / "config.toml"


def test_no_server_anywhere_stays_offline(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QA_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_file.parent / "nothing-here"))
    assert resolve_llm_settings() is None


def test_a_config_file_named_but_not_there_is_said(config_file: Path) -> None:
    # $QA_CONFIG names a file to read: a typo in it is not read as "no settings".
    with pytest.raises(ConfigError, match=r"named by \$QA_CONFIG, is not there"):
        resolve_llm_settings()


def test_config_file_settings(config_file: Path) -> None:
    config_file.write_text('[llm]\nurl = "http://10.0.0.5:8080"\nmodel = "qwen"\ntimeout = 30\napi_key = "sk-file"\n')
    expected = LLMSettings(url="http://10.0.0.5:8080/v1", model="qwen", timeout=30.0, api_key="sk-file")
    assert resolve_llm_settings() == expected


def test_option_beats_environment_beats_config(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file.write_text('[llm]\nurl = "http://config:1"\nmodel = "config-model"\n')
    monkeypatch.setenv("QA_LLM", "http://env:2")
    monkeypatch.setenv("QA_LLM_API_KEY", "sk-env")
    settings = resolve_llm_settings()
    assert settings is not None
    assert (settings.url, settings.model, settings.api_key) == ("http://env:2/v1", "config-model", "sk-env")
    monkeypatch.setenv("QA_LLM_MODEL", "env-model")
    assert resolve_llm_settings() == LLMSettings(url="http://env:2/v1", model="env-model", api_key="sk-env")
    assert resolve_llm_settings("http://option:3", "option-model") == LLMSettings(
        url="http://option:3/v1", model="option-model", api_key="sk-env"
    )
    # A model named in the URL belongs to that layer: it outranks the layers below.
    settings = resolve_llm_settings("ollama:phi3")
    assert settings is not None
    assert (settings.url, settings.model) == (OLLAMA_URL, "phi3")


@pytest.mark.parametrize("off", ["off", "none", "", "OFF"])
def test_off_keeps_the_tool_offline(off: str, config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file.write_text('[llm]\nurl = "ollama"\n')
    assert resolve_llm_settings(off) is None
    monkeypatch.setenv("QA_LLM", off)
    assert resolve_llm_settings() is None
    assert resolve_llm_settings("ollama") is not None


def test_invalid_config_file_is_named(config_file: Path) -> None:
    config_file.write_text("[llm\nurl = ollama\n")
    with pytest.raises(ConfigError) as excinfo:
        resolve_llm_settings()
    assert str(config_file) in str(excinfo.value)
    assert "\n" not in str(excinfo.value)
    # Turning the model server off does not need the config file.
    assert resolve_llm_settings("off") is None


def test_config_values_of_the_wrong_type(config_file: Path) -> None:
    config_file.write_text('[llm]\nurl = "ollama"\ntimeout = "soon"\n')
    with pytest.raises(ConfigError, match="timeout"):
        resolve_llm_settings()
    config_file.write_text('[llm]\nurl = "gopher://h"\n')
    with pytest.raises(ConfigError, match="gopher") as excinfo:
        resolve_llm_settings()
    assert str(config_file) in str(excinfo.value)


def test_a_weights_files_path_is_named_by_its_file_name() -> None:
    # llama-cpp-python reports its model as the GGUF's whole path: every note carried ~100 characters of it.
    from qa.llm import model_label

    assert model_label("/opt/models/SmolLM2-135M-Instruct.Q4_1.gguf") == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert model_label("meta-llama/Llama-3.1-8B-Instruct") == "meta-llama/Llama-3.1-8B-Instruct"  # a name, not a file
    assert model_label("llama3.2:latest") == "llama3.2:latest"
