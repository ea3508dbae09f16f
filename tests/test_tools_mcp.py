"""MCP tools through the official SDK (1.x): the example's e-mail server over stdio and over streamable HTTP;
tool schemas come from ``list_tools``; what reaches the server is recorded, and state checks see its writes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from evalkit.runner import RunOptions, run_suite
from evalkit.suite import load_suite
from evalkit.tools.environment import open_env

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "orders"

COMMON = f"""
state:
  sqlite: {{path: "{{work_dir}}/orders.db", seed: "{EXAMPLE / 'seed.sql'}"}}
tools:
  send_email: {{mcp: mail, effect: write}}
  add_note: {{mcp: {{server: mail, tool: add_note}}, effect: write}}
cases:
  - id: mail
    expect:
      - state: {{sql: "SELECT COUNT(*) FROM emails WHERE to_addr = :to", params: {{to: TO}}, equals: 1}}
      - state: {{sql: "SELECT text FROM notes", equals: NOTE}}
      - no-unsupported-claims: true
"""

STDIO = f"""
name: mcp_stdio
target: {{callable: "tests.test_agent_scripts:mail_via_boundary"}}
mcp:
  mail:
    command: ["{{python}}", "{EXAMPLE / 'mail_server.py'}"]
    env: {{ORDERS_DB: "{{work_dir}}/orders.db"}}
""" + COMMON.replace("TO", "maria@example.com").replace("NOTE", "customer e-mailed")

HTTP = f"""
name: mcp_http
target: {{callable: "tests.test_agent_scripts:mail_via_mcp_client"}}
services:
  mail:
    command: ["{{python}}", "{EXAMPLE / 'mail_server.py'}", "--http", "{{port}}"]
    env: {{ORDERS_DB: "{{work_dir}}/orders.db"}}
    ready: {{port: true}}
mcp:
  mail: {{service: mail}}
""" + COMMON.replace("TO", "sam@example.com").replace(
    "      - state: {sql: \"SELECT text FROM notes\", equals: NOTE}\n", "")


@pytest.fixture(autouse=True)
def _repo_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))


def test_stdio_server_schemas_come_from_list_tools(write) -> None:  # type: ignore[no-untyped-def]
    suite = load_suite(write("s.yaml", STDIO))
    assert suite.toolkit is not None

    async def definitions() -> dict[str, dict[str, object]]:
        async with open_env(suite.toolkit, suite.path) as env:
            return env.definitions

    found = asyncio.run(definitions())
    parameters = found["send_email"]["parameters"]
    assert isinstance(parameters, dict)
    assert sorted(parameters["properties"]) == ["body", "subject", "to"]
    assert found["send_email"]["description"] == "Send an e-mail to a customer."


def test_stdio_calls_are_recorded_and_reach_the_store(write, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = run_suite(write("s.yaml", STDIO), RunOptions(out=tmp_path / "runs"))
    result = run.results[0]
    assert result.error is None
    assert [(e.tool, e.ok, e.effect) for e in result.trajectory.tool_events] == [
        ("send_email", True, "write"), ("add_note", True, "write")]
    assert [s.passed for s in result.scores] == [True, True, True], result.scores
    claims = result.scores[-1]
    assert claims.details["match"] == 1 and claims.details["unclaimed"] == 1  # the note was not mentioned


def test_streamable_http_through_the_proxy(write, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = run_suite(write("h.yaml", HTTP), RunOptions(out=tmp_path / "runs"))
    result = run.results[0]
    assert result.error is None, result.error
    assert result.output == "sent=True tools=3"
    events = result.trajectory.tool_events
    assert [(e.tool, e.ok, e.arguments["to"]) for e in events] == [("send_email", True, "sam@example.com")]
    assert all(s.passed for s in result.scores), result.scores
