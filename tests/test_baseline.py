"""Baselines: saved diffable, read back exactly, refused when foreign or incomplete."""

from __future__ import annotations

import json
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


def make_run(outcomes: dict[str, bool], *, status: str = "complete", hour: int = 10) -> Run:
    conditions = Conditions(
        started_at_utc="2026-11-23T10:00:00+00:00", started_at_local="2026-11-23T10:00:00+00:00", timezone="UTC",
        hour_local=hour, weekday="Monday", host_platform="Linux", loadavg_start=(0.1, 0.1, 0.1),
        concurrency_configured=2, provider="local", endpoint="127.0.0.1:1", model_requested="m",
        evalkit_version="0.1.0", python_version="3.11", versions={}, git_commit=None, git_dirty=None,
        suite_sha256="s", template_sha256={"p.md": "t"}, rendered_prompts_sha256="r", models_returned=("m",),
    )
    results = []
    for case_id, passed in outcomes.items():
        call = CallRecord(provider="local", model_requested="m", started_at="t", output=f"out {case_id}",
                          latency_s=0.2, ttft_s=0.05, attempts=(Attempt(1, 0.0, 0.2),), model_returned="m")
        results.append(CaseResult(case_id, 0, passed, f"out {case_id}",
                                  (Score("contains", passed, None, "r"), Score("contains", True, None, "r")),
                                  Trajectory((call,)), ("route",)))
    suite = SuiteIdentity("demo", "suites/demo.yaml", "s", tuple(outcomes), {"provider": "local"}, {})
    return Run("run-1", suite, 1, conditions, tuple(results), status=status)


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
    ('{"format": "evalkit.baseline/9"}', "format: expected 'evalkit.baseline/1', got 'evalkit.baseline/9'"),
    ("[1, 2]", "format: expected 'evalkit.baseline/1', got 'list'"),
    ("{nope", ":1: invalid JSON"),
    ('{"format": "evalkit.baseline/1"}', "expected a complete baseline record, missing 'suite'"),
])
def test_bad_baseline_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(BaselineError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_baseline(path)


def test_missing_baseline_file(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="baseline file not found"):
        load_baseline(tmp_path / "none.json")


def test_cached_latencies_are_not_samples() -> None:
    run = make_run({"a": True})
    cached_call = replace(run.results[0].call, cached=True)
    cached = replace(run, results=(replace(run.results[0], trajectory=Trajectory((cached_call,))),))
    assert baseline_of(cached).samples[0].latency_s is None
