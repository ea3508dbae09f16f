"""Conditions: percentiles against numpy, in-flight accounting, clock and git fingerprints."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalkit.conditions import InFlight, at_start, git_state, percentile


@given(st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), min_size=1, max_size=200),
       st.sampled_from([50, 95, 99]))
def test_percentile_matches_numpy_linear(values: list[float], q: int) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-9, abs=1e-9)


def test_percentile_of_nothing_is_none() -> None:
    assert percentile([], 95) is None


def test_in_flight_tracks_mean_and_max() -> None:
    tracker = InFlight()
    tracker.enter()
    tracker.enter()
    tracker.exit()
    assert tracker.maximum == 2
    assert 0 < tracker.mean() <= 2


def test_git_state(tmp_path: Path) -> None:
    assert git_state(tmp_path) == (None, None)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "f").write_text("a")
    subprocess.run(["git", "add", "f"], cwd=tmp_path, check=True)
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x"], cwd=tmp_path,
                   check=True)
    commit, dirty = git_state(tmp_path)
    assert commit is not None and len(commit) == 40 and dirty is False
    (tmp_path / "f").write_text("b")
    assert git_state(tmp_path)[1] is True


def test_start_conditions_record_the_clock_and_never_a_key(tmp_path: Path) -> None:
    c = at_start(concurrency=3, provider="openai", endpoint="api.example.com", model="m", suite_sha256="s",
                 template_sha256={"p.md": "h"}, rendered_prompts_sha256="r", suite_folder=tmp_path)
    assert c.started_at_utc.endswith("+00:00")
    assert c.hour_local == int(c.started_at_local[11:13])
    assert c.weekday in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    assert c.loadavg_start is not None and len(c.loadavg_start) == 3
    assert c.endpoint == "api.example.com"
    assert c.ended_at_utc is None  # completed only after the last call
