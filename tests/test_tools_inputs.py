"""Bad input to a live-tools suite: one clear line each (file, field, expected, got); a case that errors is
recorded as an error and the run goes on."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.errors import ConfigError, ServiceError
from evalkit.runner import RunOptions, run_suite
from evalkit.suite import load_suite

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "orders"
PY = sys.executable

BASE = f"""
name: bad
target: {{callable: "tests.test_agent_scripts:call_many"}}
services:
  orders:
    command: ["{PY}", "{EXAMPLE / 'service.py'}", "--port", "{{port}}", "--db", "{{work_dir}}/orders.db"]
    start_timeout: 20
state:
  sqlite: {{path: "{{work_dir}}/orders.db", seed: "{EXAMPLE / 'seed.sql'}"}}
tools:
  echo: {{python: "tests.test_agent_scripts:echo"}}
  remember: {{python: "tests.test_agent_scripts:remember", effect: write}}
  get_order: {{http: {{service: orders, path: "/orders/{{order_id}}"}}}}
faults:
  flaky:
    - {{tool: echo, kind: server, probability: 0.5}}
cases:
  - id: one
    vars: {{calls: 1}}
"""


@pytest.fixture(autouse=True)
def _repo_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))


def _load_error(write, text: str) -> str:  # type: ignore[no-untyped-def]
    path = write("bad.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_suite(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_unknown_service(write) -> None:  # type: ignore[no-untyped-def]
    message = _load_error(write, BASE.replace("{service: orders, path", "{service: shop, path"))
    assert message.startswith("bad.yaml:")
    assert message.endswith("tools.get_order.http.service: expected one of the declared services (orders), got 'shop'")


def test_fault_profile_naming_an_unknown_tool(write) -> None:  # type: ignore[no-untyped-def]
    message = _load_error(write, BASE.replace("{tool: echo, kind: server", "{tool: ecko, kind: server"))
    assert message.endswith("faults.flaky[0].tool: expected a declared tool or '*', got 'ecko' "
                            "(tools: echo, get_order, remember)")


def test_fault_rule_naming_no_tool(write) -> None:  # type: ignore[no-untyped-def]
    message = _load_error(write, BASE.replace("{tool: echo, kind: server", "{kind: server"))
    assert message.endswith("faults.flaky[0]: missing required field 'tool'")


def test_case_naming_an_unknown_fault_profile(write) -> None:  # type: ignore[no-untyped-def]
    message = _load_error(write, BASE.replace("  - id: one\n", "  - id: one\n    faults: flakey\n"))
    assert message.endswith("cases[0].faults: expected one of the fault profiles (flaky, none), got 'flakey'")


def test_unknown_fault_kind(write) -> None:  # type: ignore[no-untyped-def]
    message = _load_error(write, BASE.replace("kind: server", "kind: explode"))
    assert "faults.flaky[0].kind: expected one of ['latency', 'rate_limit', 'server', 'timeout'" in message


def test_tools_sections_without_tools(write) -> None:  # type: ignore[no-untyped-def]
    text = BASE.split("tools:\n")[0].replace("state:", "cases: [{id: x}]\nstate:").split("cases: [")[0]
    message = _load_error(write, "name: bad\ntarget: {callable: 'a.b:c'}\nfaults: {x: []}\ncases: [{id: x}]\n")
    assert text and message == "bad.yaml:3: faults: expected a 'tools' section beside 'faults', got none"


def _run_error(write, tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> str:  # type: ignore[no-untyped-def]
    path = write("bad.yaml", text)
    code = main(["run", str(path), "--out", str(tmp_path / "runs"), "-q"])
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.strip()]
    assert code in (2, 5), lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("evalkit: error: ")
    return lines[0].removeprefix("evalkit: error: ")


def test_service_that_never_becomes_ready(write, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    text = BASE.replace(f'command: ["{PY}", "{EXAMPLE / "service.py"}"',
                        f'command: ["{PY}", "-c", "import sys, time; print(\'warming up\', file=sys.stderr, '
                        f'flush=True); time.sleep(60)", "{EXAMPLE / "service.py"}"').replace("start_timeout: 20",
                                                                                           "start_timeout: 1")
    line = _run_error(write, tmp_path, text, capsys)
    assert "services.orders: expected service 'orders' to be ready (GET /health to answer 2xx) within 1 s" in line
    assert line.endswith("stderr: warming up")


def test_service_that_exits_while_starting(write, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    text = BASE.replace('"--db", "{work_dir}/orders.db"', '"--dbb", "x"')
    line = _run_error(write, tmp_path, text, capsys)
    assert "service 'orders' exited with code 2 while starting:" in line
    assert "unrecognized arguments" in line or "required" in line


def test_mcp_server_that_fails_to_start(write, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    text = BASE.replace("tools:\n", f'mcp:\n  mail:\n    command: ["{PY}", "-c", "import sys; '
                                    f'sys.exit(\'no mail today\')"]\n    start_timeout: 10\ntools:\n'
                        ).replace("  echo: {", "  send_email: {mcp: mail, effect: write}\n  echo: {")
    line = _run_error(write, tmp_path, text, capsys)
    assert line.startswith("bad.yaml:") and "mcp.mail" in line
    assert "no mail today" in line


def test_state_query_with_an_sql_error(write, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    text = BASE.replace("    vars: {calls: 1}\n",
                        "    vars: {calls: 1}\n    expect:\n      - state: {sql: 'SELECT colour FROM orders'}\n")
    line = _run_error(write, tmp_path, text, capsys)
    assert line.endswith("case 'one': expect.state.sql: sql error against the seed database: no such column: colour")


def test_state_check_argument_is_validated_at_load(write) -> None:  # type: ignore[no-untyped-def]
    message = _load_error(write, BASE.replace("    vars: {calls: 1}\n",
                                              "    vars: {calls: 1}\n    expect:\n      - state: {equals: 1}\n"))
    assert message.endswith("cases[0].expect[0].state: expected exactly one of sql, http or python, got equals")


def test_tool_answering_non_json_is_one_line_and_the_run_goes_on(write, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "page.html").write_text("<html><body>legacy</body></html>", "utf-8")
    text = f"""
name: nonjson
target: {{callable: "tests.test_tools_inputs:read_page"}}
services:
  legacy:
    command: ["{PY}", "-m", "http.server", "{{port}}", "--bind", "127.0.0.1", "--directory", "{tmp_path}"]
    ready: {{http: /page.html}}
tools:
  page: {{http: {{service: legacy, path: /page.html}}}}
cases: [{{id: a}}, {{id: b}}]
"""
    path = write("nonjson.yaml", text)
    run = run_suite(path, RunOptions(out=tmp_path / "runs"))
    assert run.status == "complete" and len(run.results) == 2
    event = run.results[0].trajectory.tool_events[0]
    assert not event.ok and event.error_class == "bad_response"
    assert event.error == "tool page answered non-JSON (text/html): '<html><body>legacy</body></html>'"


async def read_page(task) -> str:  # type: ignore[no-untyped-def]
    response = await task.call("page", {})
    return response.error or response.body


_resets = {"n": 0}


def flaky_reset() -> None:
    """A python state reset that breaks on its second call (the case it serves errors, the run goes on)."""
    _resets["n"] += 1
    if _resets["n"] == 2:
        raise RuntimeError("the store is locked")


def test_a_case_that_errors_is_recorded_and_the_run_goes_on(write, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _resets["n"] = 0
    path = write("errors.yaml", """
name: errors
target: {callable: "tests.test_agent_scripts:call_many"}
state:
  python: {reset: "tests.test_tools_inputs:flaky_reset"}
tools:
  echo: {python: "tests.test_agent_scripts:echo"}
defaults: {vars: {calls: 1}}
cases: [{id: a}, {id: b}, {id: c}]
""")
    run = run_suite(path, RunOptions(out=tmp_path / "runs", concurrency=1))
    assert run.status == "complete"
    errors = {r.case_id: r.error for r in run.results}
    assert sum(e is not None for e in errors.values()) == 1
    broken = next(e for e in errors.values() if e)
    assert broken == "StateError: tests.test_tools_inputs:flaky_reset: RuntimeError: the store is locked"
    assert sum(r.passed for r in run.results) == 2


def test_service_error_exit_code() -> None:
    assert ServiceError("x").exit_code == 5
