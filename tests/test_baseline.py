"""Baselines: saved diffable, read back exactly, refused when foreign or incomplete."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from evalkit import BaselineError
from evalkit.baseline import BASELINE_FORMAT, baseline_of, load_baseline, save_baseline
from evalkit.conditions import Conditions
from evalkit.core.trajectory import Trajectory
from evalkit.providers.base import Attempt, CallRecord
from evalkit.results import CaseResult, Run, SuiteIdentity
from evalkit.scorers import Score

from .conftest import REPO


def make_run(outcomes: dict[str, bool], *, status: str = "complete", hour: int = 10, latency: float = 0.2,
             run_id: str = "run-1", error: str | None = None, name: str = "demo", sha: str = "s") -> Run:
    conditions = Conditions(
        started_at_utc="2026-11-23T10:00:00+00:00", started_at_local="2026-11-23T10:00:00+00:00", timezone="UTC",
        hour_local=hour, weekday="Monday", host_platform="Linux", loadavg_start=(0.1, 0.1, 0.1),
        concurrency_configured=2, provider="local", endpoint="127.0.0.1:1", model_requested="m",
        evalkit_version="0.1.0", python_version="3.11", versions={}, git_commit=None, git_dirty=None,
        suite_sha256="s", template_sha256={"p.md": "t"}, rendered_prompts_sha256="r", models_returned=("m",),
    )
    results = []
    for i, (case_id, passed) in enumerate(outcomes.items()):
        if error is not None:
            call = CallRecord(provider="local", model_requested="m", started_at="t", error_class=error,
                              error=f"{error}: refused", attempts=(Attempt(1, 0.0, 0.01, error, "refused"),))
        else:
            call = CallRecord(provider="local", model_requested="m", started_at="t", output=f"out {case_id}",
                              latency_s=latency * (1 + i % 7 / 10), ttft_s=0.05, attempts=(Attempt(1, 0.0, latency),),
                              model_returned="m", in_flight_at_start=1 + i % 2)
        results.append(CaseResult(case_id, 0, passed and error is None, f"out {case_id}",
                                  (Score("contains", passed, None, "r"), Score("contains", True, None, "r")),
                                  Trajectory((call,)), ("route",)))
    suite = SuiteIdentity(name, f"suites/{name}.yaml", sha, tuple(outcomes), {"provider": "local"}, {})
    return Run(run_id, suite, 1, conditions, tuple(results), status=status)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    run = make_run({"a": True, "b": False})
    save_baseline(run, tmp_path / "baselines" / "demo.json")
    loaded = load_baseline(tmp_path / "baselines" / "demo.json")
    assert loaded == baseline_of(run)
    assert loaded.samples[0].checks == {"contains": True, "contains#2": True}
    assert loaded.fingerprints["models_returned"] == ["m"]


def test_the_file_is_diffable_one_sample_per_line(tmp_path: Path) -> None:
    path = tmp_path / "demo.json"
    save_baseline(make_run({"a": True, "b": False}), path)
    text = path.read_text()
    assert json.loads(text)["format"] == BASELINE_FORMAT
    sample_lines = [line for line in text.splitlines() if line.startswith('    {"case_id"')]
    assert len(sample_lines) == 2
    save_baseline(make_run({"a": True, "b": False}), tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == text  # stable: same run, same bytes


def test_an_incomplete_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="expected a complete run to save as a baseline, got 'interrupted'"):
        save_baseline(make_run({"a": True}, status="interrupted"), tmp_path / "x.json")


@pytest.mark.parametrize(("content", "message"), [
    ('{"format": "evalkit.baseline/9"}', "format: expected 'evalkit.baseline/2', got 'evalkit.baseline/9'"),
    ("[1, 2]", "format: expected 'evalkit.baseline/2', got 'list'"),
    ("{nope", ":1: invalid JSON"),
    ('{"format": "evalkit.baseline/1"}', "(top level): missing required field 'suite'"),
    ('{"format": "evalkit.baseline/2", "suite": {"name": "s"}, "fingerprints": {}, "conditions": {}, "repeats": 1, '
     '"samples": [], "runs": [{"run_id": "r"}]}', "runs[0]: missing required field 'calls'"),
])
def test_bad_baseline_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(BaselineError, match=re.escape(message)):
        load_baseline(path)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("passed", "yes", "samples[1].passed: expected a boolean, got a string ('yes')"),
    ("repeat", "zero", "samples[1].repeat: expected an integer, got a string ('zero')"),
    ("latency_s", True, "samples[1].latency_s: expected a number or null, got a boolean (true)"),
    ("latency_s", -1, "samples[1].latency_s: expected a value >= 0, got an integer (-1)"),
])
def test_a_sample_of_the_wrong_type_is_one_line(tmp_path: Path, field: str, value: object, message: str) -> None:
    path = tmp_path / "b.json"
    save_baseline(make_run({"a": True, "b": False}), path)
    data = json.loads(path.read_text())
    data["samples"][1][field] = value
    data["samples"][0]["a_field_from_a_newer_evalkit"] = 1  # ignored
    path.write_text(json.dumps(data))
    with pytest.raises(BaselineError) as caught:
        load_baseline(path)
    assert str(caught.value) == f"{path}: {message}"


def test_missing_baseline_file(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="baseline file not found"):
        load_baseline(tmp_path / "none.json")


def test_cached_latencies_are_not_samples() -> None:
    run = make_run({"a": True})
    cached_call = replace(run.results[0].call, cached=True)
    cached = replace(run, results=(replace(run.results[0], trajectory=Trajectory((cached_call,))),))
    assert baseline_of(cached).samples[0].latency_s is None


def test_several_runs_make_one_baseline_with_a_summary_each(tmp_path: Path) -> None:
    ids = {f"c{i}": i % 3 != 0 for i in range(150)}
    runs = [make_run(ids, run_id=f"r{k}", latency=0.2 + 0.01 * k) for k in range(3)]
    saved = save_baseline(runs, tmp_path / "b.json")
    loaded = load_baseline(tmp_path / "b.json")
    assert loaded == saved and loaded.origin == str(tmp_path / "b.json")
    assert [r.run_id for r in loaded.runs] == ["r0", "r1", "r2"] and loaded.run_id == "r0"
    assert len(loaded.samples) == 150  # the first run's cases are what comparisons pair with
    p95s = [r.latency.p95 for r in loaded.runs if r.latency is not None]
    assert p95s == sorted(p95s) and len(p95s) == 3
    first = loaded.runs[0]
    assert first.calls == 150 and first.errors == 0 and first.in_flight_at_start == pytest.approx(1.5, abs=0.01)
    assert first.conditions["host_cpus"] is None and first.conditions["hour_local"] == 10
    text = (tmp_path / "b.json").read_text()
    assert sum(line.startswith('    {"calls"') for line in text.splitlines()) == 3  # one line per run


def test_format_1_baselines_are_still_read(tmp_path: Path) -> None:
    committed = load_baseline(REPO / "baselines" / "support_reply.json")
    assert committed.runs == () and len(committed.run_summaries) == 1
    assert committed.run_summaries[0].latency is not None
    path = tmp_path / "old.json"
    data = json.loads((REPO / "baselines" / "support_reply.json").read_text())
    assert data["format"] == "evalkit.baseline/1"
    path.write_text(json.dumps(data))
    assert load_baseline(path).samples == committed.samples


def test_an_all_error_run_is_refused(tmp_path: Path) -> None:
    failed = make_run({"a": True, "b": True, "c": False}, error="connection")
    with pytest.raises(BaselineError) as caught:
        save_baseline(failed, tmp_path / "x.json")
    assert str(caught.value) == ("run-1: every call failed (3 of 3: connection 3); a run without a single answer "
                                 "cannot be a baseline")
    assert not (tmp_path / "x.json").exists()


def test_runs_of_different_suites_or_the_same_run_twice_are_refused(tmp_path: Path) -> None:
    ids = {"a": True}
    with pytest.raises(BaselineError, match="a baseline holds runs of one suite version"):
        save_baseline([make_run(ids), make_run(ids, run_id="r2", sha="other")], tmp_path / "x.json")
    with pytest.raises(BaselineError, match="run 'run-1' is given twice"):
        save_baseline([make_run(ids), make_run(ids)], tmp_path / "x.json")
