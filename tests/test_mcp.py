"""`qa mcp` started through the MCP SDK's own stdio client, its tools called as an assistant calls them."""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path
from typing import Any

import anyio
from click.testing import CliRunner

from qa.cli import main
from qa.config import package_version

QUESTION = "Who did Igor Ivanov give the informal document to?"


async def _with_session(index_dir: Path, work) -> Any:
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, args=["-c", "from qa.cli import run; run()", "mcp",
                                                                 "--index", str(index_dir)],
                                   env=dict(os.environ))
    with open(os.devnull, "w") as quiet:
        async with stdio_client(params, errlog=quiet) as streams, ClientSession(*streams) as session:
            await session.initialize()
            return await work(session)


def with_session(index_dir: Path, work) -> Any:
    """Start `qa mcp --index DIR` over stdio, run `work(session)`, and stop it."""
    return anyio.run(_with_session, index_dir, work)


def cli_json(*args: str) -> dict:
    result = CliRunner().invoke(main, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_tools_return_the_cli_json_objects(seeds_index: Path) -> None:
    async def work(session):
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        asked = await session.call_tool("ask", {"question": QUESTION})
        searched = await session.call_tool("search", {"query": "peacekeepers Iraq", "k": 3})
        aligned = await session.call_tool("search", {"query": "peacekeepers Iraq", "k": 3, "align": True})
        citation = asked.structured_content["citations"][0]
        opened = await session.call_tool("open_document", {"doc_id": citation["doc_id"]})
        return session.server_info, tools, asked, searched, opened, aligned

    server, tools, asked, searched, opened, aligned = with_session(seeds_index, work)
    # `align` as the command line and the HTTP API take it.
    assert aligned.structured_content == cli_json("search", "peacekeepers Iraq", "-k", "3", "--align",
                                                  "--index", str(seeds_index))
    assert (server.name, server.version) == ("qa", package_version()) and server.version
    assert set(tools) == {"search", "ask", "open_document"}
    assert tools["ask"].input_schema["properties"]["k"]["maximum"] == 100
    assert not asked.is_error and not searched.is_error and not opened.is_error
    assert asked.structured_content == cli_json("ask", QUESTION, "--index", str(seeds_index))
    assert "Madeleine Albright" in asked.structured_content["answer"]
    assert searched.structured_content == cli_json("search", "peacekeepers Iraq", "-k", "3", "--index", str(seeds_index))
    citation = asked.structured_content["citations"][0]
    assert opened.structured_content["text"][citation["start"]:citation["end"]] == citation["quote"]


def hostile_calls(seed: int = 17) -> list[tuple[str, dict]]:
    """At least 1,000 tool calls with bad arguments: wrong types, junk, path-like ids, k out of range.
    (No lone surrogates: the SDK's client cannot write them; the HTTP test sends them.)"""
    rng = random.Random(seed)
    bad = [None, True, 1.5, -1, 0, 101, 10**20, [], {}, "", " ", "x" * 2500, "\x00", "../../etc/passwd",
           "2016-99-99", "HYBRID", {"$gt": ""}, "\u202e\U0001f4a9"]
    calls: list[tuple[str, dict]] = []
    for _ in range(700):
        tool = rng.choice(["search", "ask"])
        text = "query" if tool == "search" else "question"
        arguments: dict = {text: rng.choice(["Iraq", *bad])}
        for field in rng.sample(["k", "mode", "source", "since", "until", "path", "file"], rng.randint(1, 3)):
            arguments[field] = rng.choice(bad)
        calls.append((tool, arguments))
    for _ in range(250):
        calls.append(("open_document", {"doc_id": rng.choice([*bad, "0" * 16, "/etc/passwd", "seeds/000.txt",
                                                             "C:\\Windows\\win.ini", "~/.ssh/id_rsa"])}))
    for _ in range(60):
        calls.append((rng.choice(["read_file", "shell", "", "Search", "ask "]), {"path": "/etc/passwd"}))
    calls += [("search", {}), ("ask", {}), ("open_document", {})]
    return calls


def test_a_thousand_bad_tool_calls_are_tool_errors_and_the_server_lives(seeds_index: Path) -> None:
    from mcp import MCPError

    calls = hostile_calls()
    assert len(calls) >= 1000

    async def work(session):
        outcomes = {"tool error": 0, "protocol error": 0, "answered": 0}
        leaks = []
        for name, arguments in calls:
            try:
                result = await session.call_tool(name, arguments)
            except MCPError:
                outcomes["protocol error"] += 1  # an unknown tool is refused by the protocol itself
                continue
            if result.is_error:
                outcomes["tool error"] += 1
                text = result.content[0].text
                if "Traceback" in text or "root:" in text:
                    leaks.append(text)
            else:
                outcomes["answered"] += 1
        alive = await session.call_tool("ask", {"question": QUESTION})
        return outcomes, leaks, alive

    outcomes, leaks, alive = with_session(seeds_index, work)
    assert leaks == []
    assert outcomes["tool error"] > 900, outcomes
    assert not alive.is_error and alive.structured_content["answerable"]


def test_a_bad_argument_is_one_line_naming_it_and_an_unknown_one_is_refused(seeds_index: Path) -> None:
    calls = [
        ("ask", {"question": QUESTION, "k": 0}, "k: Input should be greater than or equal to 1"),
        ("ask", {"question": QUESTION, "k": True}, "k: Input should be a valid integer"),
        ("search", {"query": "Iraq", "k": 2.5}, "k: Input should be a valid integer"),
        ("ask", {}, "question: Field required"),
        ("ask", {"question": 7}, "question: Input should be a valid string"),
        ("search", {"query": "?!"}, "the query has no words in it"),
        ("ask", {"question": QUESTION, "bogus": 1}, "it takes no argument 'bogus'"),
        ("search", {"query": "Iraq", "aligned": True}, "it takes no argument 'aligned'"),
        ("search", {"query": "Iraq", "align": "yes"}, "align: Input should be a valid boolean"),
        ("ask", {"question": ""}, "the question is empty"),
        ("ask", {"question": "why " * 501}, "question: String should have at most 2000 characters"),
        ("open_document", {}, "doc_id: Field required"),
    ]

    async def work(session):
        return [await session.call_tool(name, arguments) for name, arguments, _ in calls]

    async def as_assistants_send_them(session):
        # A number as a string; a query pasted with its line breaks, as long as `qa search` reads it.
        return [await session.call_tool("search", {"query": "Iraq", "k": "2"}),
                await session.call_tool("search", {"query": "Iraq  \n" * 400, "k": 1})]

    taken, padded = with_session(seeds_index, as_assistants_send_them)
    assert not taken.is_error and len(taken.structured_content["hits"]) == 2
    assert not padded.is_error and padded.structured_content["query"] == " ".join(["Iraq"] * 400)
    for (name, arguments, message), result in zip(calls, with_session(seeds_index, work)):
        assert result.is_error, (name, arguments)
        text = result.content[0].text
        assert "\n" not in text and message in text and text.startswith(f"Error executing tool {name}: "), text


def test_an_index_removed_while_served_is_said_by_every_tool(seeds_index: Path, tmp_path: Path) -> None:
    # open_document said only "Error executing tool open_document" (a traceback on stderr) where
    # ask and search said why.
    import shutil

    index_dir = tmp_path / "idx"
    shutil.copytree(seeds_index, index_dir)

    async def work(session):
        found = await session.call_tool("search", {"query": "Iraq", "k": 1})
        doc_id = found.structured_content["hits"][0]["doc_id"]
        shutil.rmtree(index_dir)
        return [await session.call_tool(name, arguments) for name, arguments in
                (("open_document", {"doc_id": doc_id}), ("ask", {"question": QUESTION}))]

    for result in with_session(index_dir, work):
        text = result.content[0].text
        assert result.is_error and "\n" not in text and "removed while open" in text, text
