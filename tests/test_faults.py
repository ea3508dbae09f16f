"""Seeded fault schedules: a pure function of (seed, case, repeat, tool, call number) — identical at any
concurrency and in any process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalkit.results import load_run
from evalkit.runner import RunOptions, run_suite
from evalkit.tools.faults import decide, schedule
from evalkit.tools.spec import FaultProfile, FaultRule

REPO = Path(__file__).resolve().parent.parent

PROFILE = FaultProfile("mixed", (
    FaultRule("echo", "server", probability=0.3),
    FaultRule("*", "rate_limit", probability=0.2, retry_after_s=0.0),
    FaultRule("remember", "timeout", phase="after", probability=0.2, hold_s=0.0),
    FaultRule("*", "malformed", probability=0.1),
))


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32), case=st.text(min_size=1, max_size=12), repeat=st.integers(0, 5),
       tool=st.sampled_from(["echo", "remember"]), calls=st.integers(1, 20))
def test_a_schedule_is_a_pure_function_of_its_parts(seed: int, case: str, repeat: int, tool: str, calls: int) -> None:
    first = schedule(PROFILE, seed, case, repeat, tool, calls)
    assert first == schedule(PROFILE, seed, case, repeat, tool, calls)
    # Asking for one call alone gives the same answer as asking for it inside a longer schedule.
    assert [schedule(PROFILE, seed, case, repeat, tool, n)[-1] for n in range(1, calls + 1)] == first


def test_nth_rules_fire_exactly_on_their_calls() -> None:
    profile = FaultProfile("p", (FaultRule("cancel", "timeout", phase="after", nth=(2, 4)),))
    assert schedule(profile, 0, "c", 0, "cancel", 5) == [None, "timeout/after", None, "timeout/after", None]
    assert decide(profile, 0, "c", 0, "other", 2) is None


def test_probabilities_are_honoured() -> None:
    profile = FaultProfile("p", (FaultRule("*", "server", probability=0.25),))
    hits = sum(decide(profile, 7, f"case{i}", 0, "t", 1) is not None for i in range(4000))
    assert 0.22 < hits / 4000 < 0.28


SUITE = """
name: faults
target: {callable: "tests.test_agent_scripts:call_many"}
tools:
  echo: {python: "tests.test_agent_scripts:echo"}
  remember: {python: "tests.test_agent_scripts:remember", effect: write}
faults:
  mixed:
    - {tool: echo, kind: server, probability: 0.3}
    - {tool: "*", kind: rate_limit, retry_after: 0, probability: 0.2}
    - {tool: remember, kind: timeout, phase: after, hold: 0, probability: 0.2}
    - {tool: "*", kind: malformed, probability: 0.1}
defaults: {faults: mixed, vars: {calls: 5}}
repeats: 2
cases:
"""


def _faults_of(directory: Path) -> dict[tuple[str, int], list[tuple[str, int, str | None]]]:
    run = load_run(directory)
    out = {}
    for result in run.results:
        numbered: dict[str, int] = {}
        events = []
        for event in result.trajectory.tool_events:
            numbered[event.tool] = numbered.get(event.tool, 0) + 1
            kind = f"{event.fault.kind}/{event.fault.phase}" if event.fault else None
            events.append((event.tool, numbered[event.tool], kind))
        out[result.key] = events
    return out


@pytest.fixture
def faults_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(REPO))
    path = tmp_path / "faults.yaml"
    path.write_text(SUITE + "".join(f"  - id: case-{i}\n" for i in range(12)), "utf-8")
    return path


def test_schedules_are_identical_at_three_concurrency_levels_and_in_two_processes(faults_suite: Path,
                                                                                 tmp_path: Path) -> None:
    runs = {}
    for concurrency in (1, 4, 16):
        run = run_suite(faults_suite, RunOptions(out=tmp_path / "runs", run_id=f"c{concurrency}",
                                                 concurrency=concurrency, seed=11))
        runs[concurrency] = _faults_of(run.directory or tmp_path)
    # A second process (a fresh interpreter, so a different builtin-hash salt) with the same seed.
    code = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
            "from evalkit.runner import RunOptions, run_suite; "
            "run_suite(sys.argv[2], RunOptions(out=Path(sys.argv[3]), run_id='other', concurrency=3, seed=11))")
    subprocess.run([sys.executable, "-c", code, str(REPO), str(faults_suite), str(tmp_path / "runs")], check=True,
                   env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin", "EVALKIT_HOME": str(tmp_path / "h")},
                   timeout=300)
    runs[0] = _faults_of(tmp_path / "runs" / "other")
    reference = runs[1]
    injected = sum(kind is not None for events in reference.values() for _, _, kind in events)
    assert len(reference) == 24 and injected > 20  # the schedule is not trivially empty
    for concurrency, faults in runs.items():
        assert faults == reference, f"schedule differs at concurrency {concurrency}"
    other_seed = run_suite(faults_suite, RunOptions(out=tmp_path / "runs", run_id="seed12", concurrency=4, seed=12))
    assert _faults_of(other_seed.directory or tmp_path) != reference
    assert json.dumps(sorted(map(str, reference.items())))  # printable for a failure message
