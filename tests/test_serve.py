"""`qa serve` as a real process on a loopback port, called with a real HTTP client (httpx).

The bodies must be the --json objects of `qa ask`, `qa search` and `qa stats`; bad requests of
every kind get a 4xx with one line, never a 5xx; and the bind and token rules hold.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from qa.cli import main
from qa_processes import qa_server

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUESTION = "How much does Baghdad owe Russia?"
ALLOWED_ORIGIN = "http://localhost:3000"


@pytest.fixture(scope="module")
def index_copy(seeds_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    index_dir = tmp_path_factory.mktemp("serve") / "index"
    shutil.copytree(seeds_index, index_dir)
    return index_dir


@pytest.fixture(scope="module")
def server(index_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`qa serve --index COPY --token TOKEN` on 127.0.0.1 (a token binds loopback requests too)."""
    log = tmp_path_factory.mktemp("serve-log") / "stderr.txt"
    with qa_server(["--index", str(index_copy), "--token", TOKEN, "--cors", ALLOWED_ORIGIN], log,
                   token=TOKEN) as (url, _process):
        yield url


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, headers=AUTH, timeout=60) as http:
        yield http


def cli_json(*args: str) -> dict:
    result = CliRunner().invoke(main, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_ask_body_is_the_cli_json_object(client: httpx.Client, index_copy: Path) -> None:
    response = client.post("/ask", json={"question": QUESTION})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == cli_json("ask", QUESTION, "--index", str(index_copy))
    assert body["answerable"] and "$8 billion" in body["answer"]
    citation = body["citations"][0]
    document = client.get(f"/documents/{citation['doc_id']}").json()
    assert document["text"][citation["start"]:citation["end"]] == citation["quote"]
    assert citation["page"] is None  # a text article has no pages


def test_search_and_stats_bodies_are_the_cli_json_objects(client: httpx.Client, index_copy: Path) -> None:
    body = client.post("/search", json={"query": "peacekeepers Iraq", "k": 3, "mode": "keyword"}).json()
    assert body == cli_json("search", "peacekeepers Iraq", "-k", "3", "--mode", "keyword", "--index", str(index_copy))
    assert len(body["hits"]) == 3
    assert client.get("/stats").json() == cli_json("stats", "--index", str(index_copy))


def test_filters_narrow_the_search(client: httpx.Client) -> None:
    body = client.post("/search", json={"query": "Iraq", "since": "2030-01-01"}).json()
    assert body == {"query": "Iraq", "hits": []}
    assert client.post("/search", json={"query": "Iraq", "since": "soon"}).json() == {
        "error": "since is not a date like 2016-07-27"}
    refused = client.post("/search", json={"query": "Iraq", "since": "2021-01-01", "until": "2020-01-01"})
    assert refused.status_code == 400  # as every QueryError: a question the search cannot take
    assert refused.json() == {"error": "since 2021-01-01 is after until 2020-01-01: no day is in both"}
    refused = client.post("/search", json={"query": "Iraq", "mode": "dense", "align": True})
    assert refused.status_code == 400
    assert refused.json() == {"error": "align reads hybrid search's best passages again; it does not go with mode 'dense'"}


def test_a_body_that_is_not_json_is_said_in_plain_words(client: httpx.Client) -> None:
    response = client.post("/ask", content=b"{bad json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400  # as a body that is not UTF-8; 422 is JSON that misfits the schema
    error = response.json()["error"]
    assert error.startswith("the body is not valid JSON (") and "\n" not in error


def test_documents_are_served_by_indexed_id_only(client: httpx.Client, seeds_index: Path) -> None:
    hit = client.post("/search", json={"query": "Ivanov", "k": 1}).json()["hits"][0]
    document = client.get(f"/documents/{hit['doc_id']}").json()
    assert set(document) == {"doc_id", "path", "title", "text", "content_hash", "date"}
    assert document["text"][hit["start"]:hit["end"]] == hit["text"]
    for doc_id in ("0000000000000000", "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd",
                   "C:%5CWindows%5Cwin.ini", hit["doc_id"].upper(), hit["doc_id"][:-1]):
        response = client.get(f"/documents/{doc_id}")
        assert response.status_code == 404, (doc_id, response.text)
        assert "\n" not in response.json()["error"]


def test_openapi_schema_and_docs(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/ask", "/search", "/documents/{doc_id}", "/stats", "/health"} <= set(schema["paths"])
    assert schema["components"]["schemas"]["AskRequest"]["properties"]["k"]["maximum"] == 100
    # One operationId each: client generators refuse a schema that repeats one (GET and HEAD
    # /health once shared "health_health_head").
    operations = [op["operationId"] for route in schema["paths"].values() for op in route.values()]
    assert len(operations) == len(set(operations))
    assert "swagger" in client.get("/docs").text.lower()
    # Errors are described as they are sent: {"error": "..."}, 422 included (not FastAPI's {"detail"}).
    assert schema["components"]["schemas"]["ErrorBody"]["required"] == ["error"]
    for path, method, statuses in (("/ask", "post", {"400", "401", "413", "415", "422", "503"}),
                                   ("/documents/{doc_id}", "get", {"401", "404", "503"})):
        responses = schema["paths"][path][method]["responses"]
        assert statuses <= set(responses), (path, set(responses))
        for status in statuses:
            assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert "HTTPValidationError" not in json.dumps(schema["paths"])
    # The token this server wants is declared, so that a generated client sends it.
    assert schema["security"] == [{"bearer": []}]
    assert schema["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}


def test_answer_streams_as_server_sent_events(client: httpx.Client) -> None:
    with client.stream("POST", "/ask", json={"question": QUESTION, "stream": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    events = [block.split("\n", 1) for block in text.strip().split("\n\n")]
    assert [name for name, _ in events][-1] == "event: done"
    done = json.loads(events[-1][1].removeprefix("data: "))
    assert done == client.post("/ask", json={"question": QUESTION}).json()


def test_token_is_required_on_every_request(server: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}0"},
                    {"Authorization": f"Bearer{TOKEN}"}):
        for method, path in (("GET", "/health"), ("GET", "/stats"), ("POST", "/search"), ("GET", "/openapi.json")):
            response = httpx.request(method, server + path, headers=headers, json={"query": "Iraq"})
            assert response.status_code == 401, (headers, path)
            assert response.json()["error"].startswith("missing or wrong token")
    # The scheme's name is case-insensitive (RFC 9110), and a token-bound server answers any Host.
    for headers in ({"Authorization": f"bearer {TOKEN}"}, {"Authorization": f"BEARER {TOKEN}", "Host": "qa.example.org"}):
        assert httpx.get(server + "/stats", headers=headers).status_code == 200, headers


def test_cors_allows_only_the_origins_asked_for(client: httpx.Client) -> None:
    response = client.options("/search", headers={"Origin": "https://evil.example",
                                                  "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in response.headers
    response = client.get("/stats", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    response = client.options("/search", headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"})
    assert response.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN
    assert client.get("/stats", headers={"Origin": ALLOWED_ORIGIN}).headers["access-control-allow-origin"] == ALLOWED_ORIGIN


@pytest.mark.parametrize(("args", "message"), [
    (["--host", "0.0.0.0"], "would open the index to other machines"),
    (["--host", "192.168.1.20"], "give a token with --token or $QA_TOKEN"),
    (["--host", "0.0.0.0", "--token", "short"], "at least 16 characters"),
    (["--host", "0.0.0.0", "--token", " 0123456789abcdef0123"], "may not hold spaces"),
])
def test_refuses_to_listen_beyond_loopback_without_a_token(args: list[str], message: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QA_TOKEN", raising=False)
    result = CliRunner().invoke(main, ["serve", *args])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output


@pytest.mark.parametrize("origin", ["notanorigin", "http://localhost:3000/", "localhost:3000", "https://x.org/app", "nul"])
def test_a_cors_value_a_browser_would_never_send_is_refused(origin: str) -> None:
    # A browser's Origin is scheme://host[:port]: "http://localhost:3000/" would never match it.
    result = CliRunner().invoke(main, ["serve", "--cors", origin])
    assert result.exit_code == 2
    assert f"{origin!r} is not an origin" in result.output and "Traceback" not in result.output


def hostile_requests(seed: int = 17) -> list[tuple[str, str, dict]]:
    """At least 1,000 requests a server must refuse (or answer) without a 5xx: wrong types, huge
    bodies, unicode junk, path-like ids, k out of range, bad JSON, wrong methods, no token."""
    rng = random.Random(seed)
    junk_chars = ["\x00", "\ud800", "\udfff", "\u202e", "\ufeff", "\U0001f4a9", "e\u0301", "\u0000\u0000", "%s%n",
                  "' OR 1=1 --", "<script>", "NEAR(", '"', "*", "\\", "\n" * 50, "\u3000", "ÿ", "\x7f"]
    bad_values = [None, True, 1.5, -1, [], {}, [1, 2], {"a": 1}, "", " ", 10**30, -(10**30), "x" * 3000]
    requests: list[tuple[str, str, dict]] = []

    def junk(n: int) -> str:
        return "".join(rng.choice(junk_chars) if rng.random() < 0.5 else chr(rng.randint(32, 0x2FFF))
                       for _ in range(n))

    for _ in range(200):  # wrong types and out-of-range values in every field
        path, text_field = rng.choice([("/ask", "question"), ("/search", "query")])
        body: dict = {text_field: rng.choice(["Iraq", *bad_values])}
        field = rng.choice(["k", "mode", "source", "since", "until", "stream" if path == "/ask" else "align", "extra"])
        body[field] = rng.choice([*bad_values, "five", 0, 101, -5, "HYBRID", "2016-13-45", "../../"])
        if body[text_field] == "Iraq" and field in ("k", "mode", "since", "until") and body[field] in (None,):
            body[field] = -1
        requests.append(("POST", path, {"json": body}))
    for _ in range(120):  # unicode junk as the question, escaped as JSON writes it (lone surrogates too)
        path, text_field = rng.choice([("/ask", "question"), ("/search", "query")])
        raw = '{"%s": %s, "k": %d}' % (text_field, json.dumps(junk(rng.randint(1, 40))), rng.choice([1, 2, 0, -3]))
        requests.append(("POST", path, {"content": raw.encode(), "headers": {"Content-Type": "application/json"}}))
    for size in (2001, 5000, 60_000, 65_536, 70_000, 1_000_000, 3_000_000):  # long and huge bodies
        for path, text_field in (("/ask", "question"), ("/search", "query")):
            requests.append(("POST", path, {"json": {text_field: "a" * size}}))
            requests.append(("POST", path, {"content": (chunk for chunk in [b'{"query": "', b"a" * size, b'"}']),
                                            "headers": {"Content-Type": "application/json"}}))
    for _ in range(150):  # bad JSON
        raw = rng.choice(['{"question": ', "{", "[", "null", "1", '"Iraq"', "{'question': 'Iraq'}", "NaN",
                          '{"question": "Iraq"} trailing', '{"question": "Iraq", "k": NaN}', "\x00\x01",
                          "[" * 5000 + "]" * 5000, '{"a":' * 3000 + "1" + "}" * 3000,
                          '{"question": "Iraq", "k": 1e400}', '{"query": "\\ud800"}', '{"query": "\\x"}'])
        requests.append(("POST", rng.choice(["/ask", "/search"]),
                         {"content": raw.encode("utf-8", "surrogatepass"), "headers": {"Content-Type": "application/json"}}))
    path_like = ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "%00", "~root",
                 "....//....//etc/passwd", "C:%5CWindows%5Cwin.ini", "%252e%252e%252f", "index%2Fcatalog.sqlite",
                 "0" * 17, "g" * 16, "%ff%fe", "%C0%AE%C0%AE%2F", "seeds%2F000_22cb3c343393cc32.txt", "a/b", "%20"]
    for _ in range(200):
        requests.append(("GET", f"/documents/{rng.choice(path_like)}{rng.choice(['', '/', '?x=1', '#'])}", {}))
    for _ in range(120):  # wrong methods, unknown routes and paths that try to leave the API
        method = rng.choice(["GET", "PUT", "DELETE", "PATCH", "POST"])
        path = rng.choice(["/ask", "/search", "/stats", "/health", "/admin", "/../../etc/passwd", "/index/catalog.sqlite",
                           "/docs/../openapi.json", "/%2e%2e/%2e%2e/etc/passwd", "/documents", "/documents/", "//"])
        if (method, path) in {("POST", "/ask"), ("POST", "/search"), ("GET", "/stats"), ("GET", "/health")}:
            method = "DELETE"
        requests.append((method, path, {"json": {"question": "Iraq"}} if method in ("POST", "PUT", "PATCH") else {}))
    for _ in range(100):  # not JSON at all
        content_type = rng.choice(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                   "application/xml", "", "application/jsonx"])
        requests.append(("POST", rng.choice(["/ask", "/search"]),
                         {"content": b'{"question": "Iraq"}', "headers": {"Content-Type": content_type}}))
    for _ in range(100):  # no token, or the wrong one
        headers = rng.choice([{}, {"Authorization": "Bearer " + "x" * len(TOKEN)}, {"Authorization": "Basic dXNlcjpwYXNz"},
                              {"Authorization": TOKEN}, {"Authorization": "Bearer " + TOKEN[:-1]},
                              {"Authorization": "Bearer " + TOKEN + "0"}])
        requests.append((rng.choice(["GET", "POST"]), rng.choice(["/stats", "/ask", "/search", "/documents/x"]),
                         {"headers": headers, "json": {"question": "Iraq"}, "auth_override": True}))
    return requests


def test_a_thousand_hostile_requests_get_no_5xx_and_the_server_lives(server: str, client: httpx.Client) -> None:
    requests = hostile_requests()
    assert len(requests) >= 1000
    statuses: dict[int, int] = {}
    server_errors = []
    with httpx.Client(base_url=server, timeout=60) as raw:
        for method, path, options in requests:
            options = dict(options)
            headers = dict(options.pop("headers", {}))
            if not options.pop("auth_override", False):
                headers.update(AUTH)
            try:
                response = raw.request(method, path, headers=headers, **options)
            except httpx.HTTPError as exc:  # a refused body may be cut off mid-upload: not a 5xx
                statuses[0] = statuses.get(0, 0) + 1
                assert "RemoteProtocolError" in type(exc).__name__ or "WriteError" in type(exc).__name__, exc
                continue
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                server_errors.append((method, path, response.status_code, response.text[:200]))
            elif response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
                error = response.json().get("error", "")
                assert error and "\n" not in error and "Traceback" not in error, (method, path, error)
    assert server_errors == [], server_errors
    assert sum(n for status, n in statuses.items() if 400 <= status < 500) > 800, statuses
    assert client.get("/health").json() == {"ok": True}
    assert client.post("/ask", json={"question": QUESTION}).json()["answerable"]


def test_with_llm_ask_returns_the_checked_generated_answer_and_streams_it(
        index_copy: Path, llm_url: str, tmp_path: Path) -> None:
    """A real model server (llama.cpp serving SmolLM2-135M on loopback) writes the answer."""
    with qa_server(["--index", str(index_copy), "--llm", llm_url], tmp_path / "serve.log") as (url, _server), \
            httpx.Client(base_url=url, timeout=300) as http:
        body = http.post("/ask", json={"question": QUESTION}).json()
        with http.stream("POST", "/ask", json={"question": QUESTION, "stream": True}) as response:
            text = "".join(response.iter_text())
    assert body["model"] and "claims" in body and "generated" in body  # the --llm shape of `qa ask --json`
    assert all(claim["verdict"] in ("supported", "unsupported", "uncited") for claim in body["claims"])
    names = [block.split("\n", 1)[0] for block in text.strip().split("\n\n")]
    assert names[-1] == "event: done"
    if json.loads(text.strip().split("\n\n")[-1].split("\n", 1)[1].removeprefix("data: "))["generated"]:
        assert "event: token" in names and "event: claim" in names


def test_a_silent_model_server_holds_up_no_other_request(index_copy: Path, tmp_path: Path) -> None:
    # The scripted model server waits HANG_SECONDS on every request. While one /ask waits on it,
    # search and stats (which need only the index) answer at once, and the /ask still gets its answer.
    import threading
    import time

    from llm_servers import HANG_SECONDS, scripted_server

    with scripted_server("hang") as llm_url, qa_server(
        ["--index", str(index_copy), "--llm", llm_url, "--llm-model", "smollm2"], tmp_path / "log.txt"
    ) as (url, _process), httpx.Client(base_url=url, timeout=120) as http:
        asked: dict[str, httpx.Response] = {}
        asking = threading.Thread(target=lambda: asked.update(answer=http.post("/ask", json={"question": QUESTION})))
        started = time.monotonic()
        asking.start()
        time.sleep(1.0)  # the /ask is now waiting on the model server
        assert http.post("/search", json={"query": "peacekeepers Iraq", "k": 1}).status_code == 200
        assert http.get("/stats").status_code == 200
        assert time.monotonic() - started < HANG_SECONDS  # not queued behind the model
        asking.join()
    assert asked["answer"].status_code == 200
    assert "$8 billion" in json.dumps(asked["answer"].json())


@pytest.fixture(scope="module")
def open_server(index_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`qa serve` with no token, as most users run it, on 127.0.0.1."""
    log = tmp_path_factory.mktemp("open-serve-log") / "stderr.txt"
    with qa_server(["--index", str(index_copy)], log) as (url, _process):
        yield url


def test_without_a_token_only_requests_to_this_machine_by_name_are_answered(open_server: str) -> None:
    # A page on attacker.example whose name now points at 127.0.0.1 (DNS rebinding) is same-origin
    # with the server in the browser's eyes: its requests carry its own name as Host.
    port = open_server.rsplit(":", 1)[1]
    for host in (f"attacker.example:{port}", "attacker.example", f"127.0.0.1.attacker.example:{port}"):
        for method, path in (("GET", "/stats"), ("POST", "/ask"), ("GET", "/documents/0123456789abcdef")):
            response = httpx.request(method, open_server + path, headers={"Host": host}, json={"question": QUESTION})
            assert response.status_code == 400, (host, path, response.text)
            assert response.json()["error"].startswith("this server answers requests to localhost only")
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost", f"[::1]:{port}"):
        assert httpx.get(open_server + "/stats", headers={"Host": host}).status_code == 200, host


@pytest.mark.parametrize(("header", "host"), [
    (b"[::1]:8765", "[::1]"), (b"[::1]", "[::1]"), (b"LocalHost:80", "localhost"), (b"127.0.0.1", "127.0.0.1"),
    (b"attacker.example:8765", "attacker.example"), (b"[::1]x", ""), (b"[::1]:", ""), (b"::1", ""),
    (b"localhost:80x", ""), (b"", ""),
])
def test_the_host_a_host_header_names(header: bytes, host: str) -> None:
    from qa.serve import host_name

    assert host_name(header) == host


def test_a_streamed_request_that_cannot_be_answered_is_refused_before_its_stream(open_server: str) -> None:
    for body, message in (({"question": "   ", "stream": True}, "question is empty"),
                          ({"question": ""}, "the question is empty"),
                          ({"question": "?!", "stream": True}, "the question has no words in it"),
                          ({"question": QUESTION, "since": "soon", "stream": True}, "since is not a date")):
        response = httpx.post(open_server + "/ask", json=body)
        assert response.status_code == 400, (body, response.text)
        assert message in response.json()["error"]
    refused = httpx.post(open_server + "/search", json={"query": "?"})
    assert refused.status_code == 400 and refused.json()["error"] == "the query has no words in it"
    refused = httpx.post(open_server + "/search", json={"query": ""})
    assert refused.status_code == 400 and refused.json()["error"] == "the query is empty"


def test_a_body_of_bytes_that_are_not_utf8_is_said_in_plain_words(open_server: str) -> None:
    response = httpx.post(open_server + "/search", content=b'{"query": "caf\xe9"}',
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": "the body is not valid JSON (it is not UTF-8 text)"}
    deep = b'{"query": ' + b"[" * 30000 + b"]" * 30000 + b"}"
    response = httpx.post(open_server + "/search", content=deep, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json() == {"error": "the body is not valid JSON (nested too deeply)"}


def test_types_are_taken_as_sent_not_coerced(open_server: str) -> None:
    for body in ({"query": "Iraq", "k": True}, {"query": "Iraq", "k": " 4 "}, {"query": "Iraq", "k": 2.0},
                 {"query": "Iraq", "align": "yes"}, {"query": "Iraq", "mode": ["dense"]}):
        response = httpx.post(open_server + "/search", json=body)
        assert response.status_code == 422, (body, response.text)
        assert "\n" not in response.json()["error"]
    response = httpx.post(open_server + "/ask", json={"question": QUESTION, "stream": 1})
    assert response.status_code == 422 and response.json()["error"].startswith("stream: ")


def test_a_question_is_as_long_over_http_as_on_the_command_line(open_server: str) -> None:
    # Its length was checked as sent: a question pasted with its line breaks was refused (422)
    # where `qa ask` takes it, since the search reads runs of spaces as one.
    padded = "Iraq  \n" * 400  # 2,800 characters as sent, 1,999 as searched
    response = httpx.post(open_server + "/search", json={"query": padded, "k": 1})
    assert response.status_code == 200 and response.json()["query"] == " ".join(["Iraq"] * 400), response.text
    response = httpx.post(open_server + "/ask", json={"question": "why " * 501})
    assert response.status_code == 422 and response.json()["error"].startswith("question: String should have at most 2000")


def test_methods_and_media_types_get_the_status_http_gives_them(open_server: str) -> None:
    as_json = json.dumps({"query": "Iraq", "k": 2})
    for content_type in ("Application/JSON", "application/json; charset=utf-8"):
        response = httpx.post(open_server + "/search", content=as_json, headers={"Content-Type": content_type})
        assert response.status_code == 200, (content_type, response.text)
    for content_type in ("application/jsonfoo", "text/plain"):
        response = httpx.post(open_server + "/search", content=as_json, headers={"Content-Type": content_type})
        assert response.status_code == 415, content_type
    for method, path, allowed in (("POST", "/stats", "GET"), ("GET", "/ask", "POST"), ("DELETE", "/health", "GET")):
        response = httpx.request(method, open_server + path)
        assert response.status_code == 405, (method, path)
        assert allowed in response.headers["allow"] and "error" in response.json()
    assert httpx.post(open_server + "/nowhere", json={}).status_code == 404
    assert httpx.head(open_server + "/health").status_code == 200


def test_port_zero_says_the_port_it_got_and_a_taken_port_is_said_before_the_model_loads(
    open_server: str, index_copy: Path, tmp_path: Path
) -> None:
    import re

    from qa_processes import QAProcess, wait_for

    server = QAProcess(["serve", "--index", str(index_copy), "--port", "0"], tmp_path / "stderr.txt")
    try:
        said = wait_for(lambda: re.search(r"answering on http://127\.0\.0\.1:(\d+)", server.output()),
                        "the server said where it answers", server)
        port = int(said.group(1))
        assert port != 0 and httpx.get(f"http://127.0.0.1:{port}/health").json() == {"ok": True}
    finally:
        server.stop()
    taken = open_server.rsplit(":", 1)[1]
    result = CliRunner().invoke(main, ["serve", "--index", str(index_copy), "--port", taken])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1 port {taken}" in result.output and "Traceback" not in result.output
    assert "pick a port with --port" in result.output
    # A host name that names no address of this machine is no matter of ports.
    result = CliRunner().invoke(main, ["serve", "--index", str(index_copy), "--host", "nosuch.invalid",
                                       "--token", TOKEN])
    assert result.exit_code == 1 and "cannot listen on nosuch.invalid" in result.output, result.output
    assert "--port" not in result.output and "give --host an address of this machine" in result.output


def test_serve_watch_refuses_a_path_that_is_not_there(index_copy: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "--index", str(index_copy), "--watch", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "no such file or folder" in result.output


def test_an_index_removed_under_a_running_server_is_a_503_with_no_traceback(seeds_index: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(seeds_index, index_dir)
    log = tmp_path / "stderr.txt"
    with qa_server(["--index", str(index_dir)], log) as (url, process):
        shutil.rmtree(index_dir)
        response = httpx.get(url + "/stats")
        assert response.status_code == 503 and "no index in" in response.json()["error"]
        assert "Traceback" not in process.output()


def test_an_index_built_again_by_another_encoder_under_a_running_server_is_a_503(seeds_index: Path,
                                                                                 tmp_path: Path) -> None:
    # `qa index --rebuild --backend torch` in the folder served: the server went on embedding
    # questions with its int8 encoder against the torch vectors, and said nothing.
    index_dir = tmp_path / "index"
    shutil.copytree(seeds_index, index_dir)
    log = tmp_path / "stderr.txt"
    with qa_server(["--index", str(index_dir)], log) as (url, process):
        assert httpx.get(url + "/stats").status_code == 200
        manifest = json.loads((index_dir / "manifest.json").read_text())
        other = "torch" if manifest["backend"] != "torch" else "onnx-int8"
        (index_dir / "manifest.new").write_text(json.dumps({**manifest, "backend": other}))
        os.replace(index_dir / "manifest.new", index_dir / "manifest.json")  # as qa writes it
        for response in (httpx.get(url + "/stats"), httpx.post(url + "/ask", json={"question": QUESTION}),
                         httpx.post(url + "/ask", json={"question": QUESTION, "stream": True})):
            assert response.status_code == 503, response.text
            assert f"built again with all-MiniLM-L6-v2 ({other})" in response.json()["error"], response.text
        assert "Traceback" not in process.output()


def test_a_fix_the_server_suggests_names_the_index_it_serves(seeds_index: Path, tmp_path: Path) -> None:
    # Run as it was said, `qa index --rebuild` rebuilt the default index, not the one served.
    index_dir = tmp_path / "served index"
    shutil.copytree(seeds_index, index_dir)
    article = tmp_path / "solo.txt"
    article.write_text("Ferry fares\n\nFerry fares to Sines rise by ten cents in May.\n", encoding="utf-8")
    log = tmp_path / "stderr.txt"
    with qa_server(["--index", str(index_dir)], log) as (url, process):
        result = CliRunner().invoke(main, ["index", "--only", str(article), "--index", str(index_dir)])
        assert result.exit_code == 0, result.output
        newest = max(index_dir.glob("segment-*.faiss"), key=lambda path: path.stat().st_mtime_ns)
        newest.write_bytes(random.Random(7).randbytes(64))
        response = httpx.post(url + "/ask", json={"question": "How much will ferry fares rise?"})
        assert response.status_code == 503, response.text
        assert f"`qa index --rebuild --index '{index_dir}'" in response.json()["error"], response.text
        assert "Traceback" not in process.output()


def test_sigterm_stops_the_server_as_ctrl_c_does(index_copy: Path, tmp_path: Path) -> None:
    # systemd and `docker stop` send SIGTERM: the server once died by it (uvicorn raises it again
    # after its shutdown), skipping its watcher's stop and the index's close.
    with qa_server(["--index", str(index_copy)], tmp_path / "serve.log") as (_url, server):
        server.process.terminate()
        assert server.process.wait(timeout=60) == 0, server.output()
        assert server.output().strip().endswith("qa serve: stopped."), server.output()
