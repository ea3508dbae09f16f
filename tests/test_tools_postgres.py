"""Postgres state against a real throwaway server: a per-case database recreated from a template built
from the seed, the example service reading and writing it, state checks reading it with real SQL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from evalkit.runner import RunOptions, run_suite

postgres = pytest.importorskip("tests.postgres", reason="the throwaway-Postgres test module (tests/postgres.py)")
postgres_server = postgres.postgres_server

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "orders"


def _suite(write, url: str) -> Path:  # type: ignore[no-untyped-def]
    server = url.rsplit("/", 1)[0]
    return write("pg.yaml", f"""
name: pg
target: {{callable: "tests.test_agent_scripts:scripted", timeout: 30}}
concurrency: 4
services:
  orders:
    command: ["{{python}}", "{EXAMPLE / 'service.py'}", "--port", "{{port}}", "--db", "{server}/orders_case"]
state:
  postgres: {{url_env: EVALKIT_TEST_PG, database: orders_case, seed: "{EXAMPLE / 'seed.sql'}"}}
tools:
  get_order: {{http: {{service: orders, path: "/orders/{{order_id}}"}}}}
  cancel_order:
    http: {{service: orders, method: POST, path: "/orders/{{order_id}}/cancel"}}
    effect: write
    confirm: {{sql: "SELECT status = 'cancelled' FROM orders WHERE id = :order_id"}}
  refund_order: {{http: {{service: orders, method: POST, path: "/orders/{{order_id}}/refund"}}, effect: write}}
defaults:
  vars: {{action: cancel, plant: honest}}
  expect:
    - state: {{sql: "SELECT status FROM orders WHERE id = :order_id", equals: cancelled}}
    - state: {{sql: "SELECT COUNT(*) FROM orders WHERE status = 'cancelled'", equals: 2}}
    - state-unchanged: {{except: ["orders[id=A1001]", "orders[id=A1004]"]}}
    - no-unsupported-claims: true
cases:
  - {{id: first, vars: {{order_id: A1001}}}}
  - {{id: again, vars: {{order_id: A1001}}}}
  - {{id: other, vars: {{order_id: A1004}}}}
""")


def test_postgres_state_is_reset_per_case_and_read_by_the_checks(write, tmp_path: Path, postgres_server,  # type: ignore[no-untyped-def]
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))
    url = postgres_server.url()
    monkeypatch.setenv("EVALKIT_TEST_PG", url)
    run = run_suite(_suite(write, url), RunOptions(out=tmp_path / "runs"))
    assert run.status == "complete"
    for result in run.results:
        # Each case found A1001/A1004 placed (the template), cancelled one, and left the rest untouched.
        assert result.passed, (result.case_id, result.error, [s.reason for s in result.scores if not s.passed])
        assert result.output.endswith("has been cancelled.")


def test_sql_errors_are_caught_against_the_template(write, tmp_path: Path, postgres_server,  # type: ignore[no-untyped-def]
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.errors import ConfigError

    monkeypatch.syspath_prepend(str(REPO))
    url = postgres_server.url()
    monkeypatch.setenv("EVALKIT_TEST_PG", url)
    path = _suite(write, url)
    path.write_text(path.read_text("utf-8").replace("SELECT status FROM orders WHERE",
                                                    "SELECT colour FROM orders WHERE"), "utf-8")
    with pytest.raises(ConfigError, match=re.escape('expect.state.sql: sql error against the seed database: '
                                                    'column "colour" does not exist')):
        run_suite(path, RunOptions(out=tmp_path / "runs"))
