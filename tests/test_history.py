"""Change points over a suite's history: the method on simulated series, tags, and the command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evalkit.analysis.changepoints import find_change_points, history_series, robust_scale
from evalkit.cli import main
from evalkit.store import open_store

from .history_runs import make_run, start


def p95_series(seeds: int, runs: int = 60, calls: int = 100, step: float = 1.2, seed: int = 0) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """Per-run p95 latency of ``calls`` log-normal calls (sd 0.35) with a 5% run-to-run wobble: a stable
    series, and the same series stepped up by ``step`` at a random run between 10 and runs − 10."""
    rng = np.random.default_rng(seed)
    p95 = np.percentile(np.exp(rng.normal(0, 0.35, (seeds, runs, calls))), 95, axis=2)
    p95 = p95 * np.exp(rng.normal(0, 0.05, (seeds, runs)))
    at = rng.integers(10, runs - 10 + 1, seeds)
    stepped = p95 * np.where(np.arange(runs)[None, :] >= at[:, None], step, 1.0)
    return p95, stepped, at


def test_a_planted_step_is_found_within_two_runs_and_a_stable_series_is_not_flagged() -> None:
    seeds = 300
    stable, stepped, at = p95_series(seeds)
    flagged = sum(bool(find_change_points(np.log(series))) for series in stable)
    assert flagged / seeds <= 0.05
    found = 0
    reported = misplaced = 0
    for series, where in zip(stepped, at, strict=True):
        points = [i for i, _ in find_change_points(np.log(series))]
        found += any(abs(i - where) <= 2 for i in points)
        reported += len(points)
        misplaced += sum(abs(i - where) > 2 for i in points)
    print(f"stable series flagged {flagged}/{seeds}; +20% step found within ±2 runs in {found}/{seeds}; "
          f"{misplaced}/{reported} reported change points more than 2 runs off")
    assert found / seeds >= 0.90
    assert misplaced / reported <= 0.10


def test_change_points_are_exact_on_clean_steps() -> None:
    values = [1.0] * 10 + [2.0] * 10 + [1.0] * 10
    assert [i for i, _ in find_change_points(values)] == [10, 20]
    assert find_change_points([1.0] * 30) == []
    assert find_change_points([1.0, 2.0] * 3) == []  # too short to split
    assert robust_scale(np.array([1.0, 1.0, 5.0, 5.0, 5.0])) > 0


def test_history_tags_what_else_changed(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    with open_store(tmp_path / "h.sqlite") as store:
        for i in range(24):
            slower = 1.3 if i >= 12 else 1.0
            store.ingest(make_run(f"run-{i:02d}", start(i // 8, 3 * (i % 8)),
                                  list(np.exp(rng.normal(0, 0.1, 40)) * slower),
                                  model="model-b" if i >= 12 else "model-a", prompt="p2" if i >= 13 else "p1"))
        series = history_series(store.calls("svc"), store.runs("svc"), suite="svc", metric="latency_p95")
    assert [cp.run_id for cp in series.change_points] == ["run-12"]
    cp = series.change_points[0]
    assert cp.relative == pytest.approx(0.3, abs=0.08)
    assert [(c.attribute, c.before, c.after, c.run_id) for c in cp.changes] == [
        ("served model", "model-a", "model-b", "run-12"), ("prompt", "p1", "p2", "run-13")]


def test_history_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(5)
    url = str(tmp_path / "h.sqlite")
    with open_store(url) as store:
        for i in range(16):
            passed = list(rng.uniform(size=40) < (0.9 if i < 8 else 0.5))
            store.ingest(make_run(f"run-{i:02d}", start(i), [0.5] * 40, passed=passed,
                                  version="0.2.0" if i >= 8 else "0.1.0"))
    code = main(["history", "svc", "--store", url, "--json", str(tmp_path / "h.json")])
    out = capsys.readouterr().out
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith("change point")]
    assert len(lines) == 1
    assert lines == ["change point at run-08 (2025-03-11T00:00:00): 90.6% → 54.1% (-40%), p = 1.7e-06; also "
                     "changed: evalkit 0.1.0 → 0.2.0 at run-08"]
    code = main(["history", "svc", "--metric", "latency_p95", "--route", "billing", "--store", url])
    out = capsys.readouterr().out
    assert code == 0 and "no change points (none reached p ≤ 0.001)" in out
    code = main(["history", "svc", "--since", "3d", "--store", url])
    assert code == 2
    assert "expected calls of suite 'svc' since" in capsys.readouterr().err


def test_a_short_history_is_not_enough(tmp_path: Path) -> None:
    with open_store(tmp_path / "h.sqlite") as store:
        for i in range(5):
            store.ingest(make_run(f"r{i}", start(i), [0.5] * 4))
        series = history_series(store.calls("svc"), store.runs("svc"), suite="svc")
    assert series.not_enough == ("5 runs with a pass_rate value; change points need ≥ 8 (segments of ≥ 3 runs "
                                 "either side)")
