"""The example agent suite through the CLI with the embedded model: the prompted tool protocol (JSON
constrained by a response_format schema) drives the live orders service, and the state checks read the real
SQLite store. One case of the real suite (a shard holding exactly it), to keep CI time small."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.results import load_run, shard_of

REPO = Path(__file__).resolve().parent.parent
SUITE = REPO / "suites" / "orders_agent.yaml"


def _shard_of_one(case_id: str, case_ids: list[str]) -> tuple[int, int]:
    for n in range(len(case_ids), 10 * len(case_ids)):
        index = shard_of(case_id, n)
        if [c for c in case_ids if shard_of(c, n) == index] == [case_id]:
            return index, n
    raise AssertionError("no shard holds the case alone")


@pytest.mark.integration
def test_example_suite_case_runs_end_to_end_on_the_embedded_model(tmp_path: Path) -> None:
    from evalkit.suite import load_suite

    suite = load_suite(SUITE)
    assert len(suite.cases) >= 30
    index, count = _shard_of_one("cancel-placed", [c.id for c in suite.cases])
    done = subprocess.run(
        [sys.executable, "-m", "evalkit", "run", str(SUITE), "--shard", f"{index}/{count}", "--out",
         str(tmp_path / "runs"), "--run-id", "model", "-q"],
        cwd=REPO, capture_output=True, text=True, timeout=1500,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run = load_run(tmp_path / "runs" / "model")
    (result,) = run.results
    assert result.case_id == "cancel-placed" and result.error is None
    calls = result.trajectory.calls
    assert calls and all(c.ok for c in calls)
    for call in calls:  # every turn is one JSON object of the protocol (the grammar holds the model to it)
        step = json.loads(call.output)
        assert step["tool"] in (*suite.toolkit.tools, "answer") if suite.toolkit else False
    assert result.trajectory.termination in ("complete", "max_turns", "max_tool_calls")
    state = next(s for s in result.scores if s.name == "state")
    # The real store answered: the order is either still placed or (if the model managed it) cancelled.
    assert state.reason in ('got "placed", expected "cancelled"', 'got "cancelled"'), state.reason
    unchanged = next(s for s in result.scores if s.name == "state-unchanged")
    assert unchanged.passed, unchanged.reason
    assert "agent: state checks" in done.stdout
