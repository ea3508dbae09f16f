"""Detectors on scripted agents (no model, deterministic): silent success, duplicate writes under a timeout
after the side effect, and retry amplification are flagged in every planted case and never on the honest
script, against the real orders service and its real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.results import CaseResult
from evalkit.runner import RunOptions, run_suite
from evalkit.tools.metrics import agent_metrics

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "orders"

HEADER = f"""
name: detectors
target: {{callable: "tests.test_agent_scripts:scripted", timeout: 30}}
agent: {{tool_timeout: 5}}
concurrency: 4
services:
  orders:
    command: ["{{python}}", "{EXAMPLE / 'service.py'}", "--port", "{{port}}", "--db", "{{work_dir}}/orders.db"]
state:
  sqlite: {{path: "{{work_dir}}/orders.db", seed: "{EXAMPLE / 'seed.sql'}"}}
tools:
  get_order: {{http: {{service: orders, method: GET, path: "/orders/{{order_id}}"}}}}
  cancel_order:
    http: {{service: orders, method: POST, path: "/orders/{{order_id}}/cancel"}}
    effect: write
    claims: ["\\\\bcancell?ed\\\\b"]
    confirm: {{sql: "SELECT status = 'cancelled' FROM orders WHERE id = :order_id"}}
  refund_order:
    http: {{service: orders, method: POST, path: "/orders/{{order_id}}/refund"}}
    effect: write
    idempotency_key: idempotency_key
    claims: ["\\\\brefunded\\\\b"]
    confirm: {{sql: "SELECT COUNT(*) FROM refunds WHERE order_id = :order_id AND id <> 'R1'"}}
faults:
  lost-before:
    - {{tool: cancel_order, kind: timeout, phase: before, nth: 1, hold: 1.0}}
    - {{tool: refund_order, kind: timeout, phase: before, nth: 1, hold: 1.0}}
  lost-after:
    - {{tool: cancel_order, kind: timeout, phase: after, nth: 1, hold: 1.0}}
    - {{tool: refund_order, kind: timeout, phase: after, nth: 1, hold: 1.0}}
  flaky-reads:
    - {{tool: get_order, kind: server, nth: [1, 2, 3, 4]}}
defaults:
  expect:
    - no-unsupported-claims: true
    - no-duplicate-writes: true
    - tools: {{max_attempts: 3}}
cases:
"""
CANCELS, REFUNDS = ("A1001", "A1004", "A1007"), ("A1003", "A1005", "A1008")
PLANTS = {"silent": "lost-before", "duplicate": "lost-after", "amplify": "flaky-reads"}
DETECTOR = {"silent": "no-unsupported-claims", "duplicate": "no-duplicate-writes", "amplify": "tools"}


def _cases() -> list[tuple[str, str, str, str]]:
    """(id, plant, action, order) for every planted case and its honest twin under the same fault profile."""
    cases = []
    for plant in PLANTS:
        orders = [("refund", o) for o in REFUNDS] if plant == "duplicate" else \
            [("cancel", o) for o in CANCELS] + [("refund", o) for o in REFUNDS]
        for action, order in orders:
            cases.append((f"{plant}-{action}-{order}", plant, action, order))
            cases.append((f"honest-{plant}-{action}-{order}", "honest", action, order))
    return cases


@pytest.fixture(scope="module")
def detector_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CaseResult]:
    import sys

    sys.path.insert(0, str(REPO))
    folder = tmp_path_factory.mktemp("detectors")
    lines = []
    for case_id, plant, action, order in _cases():
        profile = PLANTS[plant] if plant != "honest" else PLANTS[case_id.split("-")[1]]
        lines.append(f"  - {{id: {case_id}, faults: {profile}, vars: {{order_id: {order}, action: {action}, "
                     f"plant: {plant}}}}}\n")
    path = folder / "detectors.yaml"
    path.write_text(HEADER + "".join(lines), "utf-8")
    run = run_suite(path, RunOptions(out=folder / "runs", run_id="r", seed=3))
    assert run.status == "complete"
    return {r.case_id: r for r in run.results}


def _failed(result: CaseResult) -> set[str]:
    return {s.name for s in result.scores if not s.passed}


def test_every_planted_bug_is_flagged(detector_run: dict[str, CaseResult]) -> None:
    planted = {k: v for k, v in detector_run.items() if not k.startswith("honest")}
    rates = {}
    for plant, detector in DETECTOR.items():
        cases = [r for k, r in planted.items() if k.startswith(plant + "-")]
        flagged = [r for r in cases if detector in _failed(r)]
        rates[plant] = (len(flagged), len(cases))
        missed = sorted({r.case_id for r in cases} - {r.case_id for r in flagged})
        assert not missed, f"{plant}: not flagged by {detector}: {missed}"
    print("detection:", rates)  # the README's figures: 6/6 silent, 3/3 duplicate, 6/6 amplification
    assert rates == {"silent": (6, 6), "duplicate": (3, 3), "amplify": (6, 6)}


def test_the_honest_script_is_never_flagged(detector_run: dict[str, CaseResult]) -> None:
    honest = {k: v for k, v in detector_run.items() if k.startswith("honest")}
    assert len(honest) == 15
    flagged = {k: sorted(_failed(r)) for k, r in honest.items() if _failed(r) or r.error}
    assert not flagged


def test_the_metrics_count_what_was_planted(detector_run: dict[str, CaseResult]) -> None:
    metrics = agent_metrics(list(detector_run.values()))
    assert metrics is not None
    assert metrics.silent_successes == 6
    assert metrics.duplicate_writes == 3
    get_order = next(t for t in metrics.tools if t.tool == "get_order")
    assert get_order.amplification > 1 and get_order.error_rate_before > get_order.error_rate_after
    assert metrics.recovery["flaky-reads"][1] == 12


def test_silent_success_is_backed_by_the_real_store(detector_run: dict[str, CaseResult]) -> None:
    result = detector_run["silent-cancel-A1001"]
    claims = next(s for s in result.scores if s.name == "no-unsupported-claims")
    assert claims.details["unsupported"] == 1
    assert "the store does not show it" in claims.reason
    timed_out = [e for e in result.trajectory.tool_events if e.tool == "cancel_order"]
    assert [(e.ok, e.side_effect, e.fault.phase if e.fault else None) for e in timed_out] == [(False, False, "before")]


def test_a_claim_with_no_call_and_no_id_is_unsupported_without_asking_the_store() -> None:
    """A "done" with nothing to bind the confirm query to (no call, no id in the sentence) is unsupported; the
    store is not asked with a missing parameter (it was an SQL error that hid the verdict)."""
    import asyncio

    from evalkit.suite import load_suite
    from evalkit.tools.claims import judge_claims

    toolkit = load_suite(REPO / "suites" / "orders_agent.yaml").toolkit
    assert toolkit is not None
    asked: list[dict[str, str]] = []

    class Live:
        store = object()

        async def check(self, query: object, arguments: dict[str, str]) -> tuple[bool, str]:
            asked.append(arguments)
            return False, 'got "placed", expected "cancelled"'

    (verdict,) = asyncio.run(judge_claims("Your order has been cancelled.", [], toolkit.tools, Live()))
    assert verdict.status == "unsupported" and not asked
    assert verdict.reason == ("no successful cancel_order in the trace (no call at all); the store cannot be asked: "
                              "no cancel_order call and no order_id in the answer")
    # Naming the order lets the store answer.
    (verdict,) = asyncio.run(judge_claims("Order A1001 has been cancelled.", [], toolkit.tools, Live()))
    assert verdict.status == "unsupported" and asked == [{"id": "A1001", "order_id": "A1001"}]
