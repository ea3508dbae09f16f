"""Router drift: the rule on profiles and on the command line, and seeded simulations of its false alarms on
unchanged traffic and its power against a 5-point shift."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from evalkit.analysis.drift import DriftConfig, arm_skew, arm_skew_flags, drift, drift_flags, parse_weights
from evalkit.analysis.traffic import RouteTraffic, TrafficProfile, import_traffic
from evalkit.cli import main
from evalkit.errors import ExitCode

from .conftest import REPO

EXAMPLE = REPO / "examples" / "traffic" / "traffic.csv"
MIX = np.array([0.555, 0.102, 0.091, 0.085, 0.052, 0.044, 0.043, 0.028])
"""Route shares of the example traffic, largest (general) first."""


def _profile(counts: dict[str, int], arms: dict[str, int] | None = None, path: str = "p") -> TrafficProfile:
    routes = {name: RouteTraffic(count, arms=dict(arms or {}) if i == 0 else {})
              for i, (name, count) in enumerate(counts.items())}
    return TrafficProfile(routes=routes, path=path)


# --- the rule on profiles ------------------------------------------------------------------------------------


def test_example_weeks_drift_after_the_router_update() -> None:
    week1 = import_traffic([EXAMPLE], "csv", until="2025-03-10")
    week2 = import_traffic([EXAMPLE], "csv", since="2025-03-10")
    result = drift(week1, week2, DriftConfig(arm_weights={"warm": 1, "concise": 1, "formal": 1}))
    assert result.route_drift and result.arm_skew and result.flagged
    assert result.tvd == pytest.approx(0.096, abs=0.001)
    assert result.p_value < 0.01 and result.tvd_upper >= 0.05
    general = next(r for r in result.routes if r.route == "general")
    assert general.change == pytest.approx(0.092, abs=0.001)
    assert result.arms_new is not None and result.arms_new.top[0] == "warm" and result.arms_new.top[1] > 0.85
    assert json.loads(json.dumps(result.to_dict()))["format"] == "evalkit.drift/1"


def test_the_same_window_twice_is_not_drift() -> None:
    week1 = import_traffic([EXAMPLE], "csv", until="2025-03-10")
    result = drift(week1, week1, DriftConfig(arm_weights={"warm": 0.9, "concise": 0.06, "formal": 0.04}))
    assert not result.flagged and result.reasons == ()
    assert result.tvd == 0.0 and result.p_value == 1.0


def test_new_and_vanished_routes() -> None:
    old = _profile({"general": 600, "billing": 300, "legacy": 100})
    new = _profile({"general": 600, "billing": 300, "refunds-v2": 100})
    result = drift(old, new)
    statuses = {r.route: (r.status, r.flagged) for r in result.routes}
    assert statuses == {"general": ("", False), "billing": ("", False), "legacy": ("vanished", True),
                        "refunds-v2": ("new", True)}
    assert "new route 'refunds-v2': 10.0% of the new window" in result.reasons
    # One stray request of a route never seen before is listed, not flagged.
    quiet = drift(_profile({"general": 600, "billing": 300}), _profile({"general": 600, "billing": 300, "x": 1}))
    assert not quiet.route_drift and next(r for r in quiet.routes if r.route == "x").status == "new"


def test_arm_skew_against_configured_weights() -> None:
    two = arm_skew({"a": 70, "b": 30}, {"a": 1, "b": 1})
    assert two is not None and two.test == "exact binomial" and two.flagged
    assert two.p_value == pytest.approx(sps.binomtest(70, 100, 0.5).pvalue)
    three = arm_skew({"warm": 900, "concise": 60, "formal": 40}, None)
    assert three is not None and three.flagged and not three.configured and three.arms == ("warm", "concise", "formal")
    # Significant at production volume but only a point off the weights: not flagged (the TVD floor).
    near = arm_skew({"a": 51_000, "b": 49_000}, {"a": 1, "b": 1})
    assert near is not None and near.p_value < 1e-6 and not near.flagged
    surprise = arm_skew({"a": 50, "b": 50, "c": 10}, {"a": 1, "b": 1})
    assert surprise is not None and surprise.test == "unexpected arm" and surprise.flagged
    assert arm_skew({"only": 10}, None) is None


def test_parse_weights() -> None:
    assert parse_weights("warm=2, concise=1,formal=1") == {"warm": 2.0, "concise": 1.0, "formal": 1.0}
    assert parse_weights(None) is None
    with pytest.raises(ValueError, match=r"expected arm=weight .*, got 'warm'"):
        parse_weights("warm")
    with pytest.raises(ValueError, match="expected at least one arm with a weight above 0"):
        parse_weights("a=0")


# --- the command -----------------------------------------------------------------------------------------------


def test_cli_drift_prints_the_verdict_and_writes_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["traffic", "import", str(EXAMPLE), "--from", "csv", "--until", "2025-03-10", "--out", "w1.json"]) == 0
    assert main(["traffic", "import", str(EXAMPLE), "--from", "csv", "--since", "2025-03-10", "--out", "w2.json"]) == 0
    capsys.readouterr()
    code = main(["coverage", "drift", "--traffic", "w1.json", "w2.json", "--arm-weights", "warm=1,concise=1,formal=1",
                 "--json", "drift.json", "--markdown", "drift.md"])
    assert code == ExitCode.OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        "ROUTE DRIFT · ARM SKEW: w1.json (2,089 requests, 2025-03-03 → 2025-03-09) → w2.json (2,011, "
        "2025-03-10 → 2025-03-16)",
        "  route mix shifted: TVD 0.096 (upper bound 0.122 ≥ 0.05), permutation p < 0.001 (α 0.01)",
        "  arm skew: 'warm' takes 89% of the new window against 33% configured (χ² goodness of fit p < 0.001)",
    ]
    assert any(line.startswith("general        1,066   51.0%   1,210   60.2%    +9.1") for line in lines)
    assert json.loads(Path("drift.json").read_text())["route_drift"] is True
    assert Path("drift.md").read_text().startswith("## Router drift: 🔴 ROUTE DRIFT · ARM SKEW")
    assert main(["coverage", "drift", "--traffic", "w1.json", "w2.json", "--check"]) == ExitCode.COVERAGE_FAILED
    assert main(["coverage", "drift", "--traffic", "w1.json", "w1.json", "--check",
                 "--arm-weights", "warm=90,concise=6,formal=4"]) == ExitCode.OK


def test_cli_drift_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["coverage", "drift", "--traffic", "a.json", "b.json"]) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err == ("evalkit: error: a.json: traffic profile not found (write one with: evalkit "
                                       "traffic import)\n")
    assert main(["coverage", "drift", "--traffic", "a.json", "b.json", "--arm-weights", "x"]) == ExitCode.USAGE_ERROR
    assert "--arm-weights: expected arm=weight (e.g. warm=1,concise=1), got 'x'" in capsys.readouterr().err


# --- simulations ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [100, 300, 1000, 3000, 10_000, 30_000, 100_000])
def test_false_alarms_on_unchanged_traffic_stay_under_one_percent(n: int) -> None:
    """1,000 seeded pairs of windows of n requests each from one route mix. Every flag needs an exact
    permutation test at alpha = 1%, so the true rate is at most 1%; the count of alarms must be consistent
    with that (a one-sided binomial test would notice 2.5%)."""
    rng = np.random.default_rng(n)
    old, new = rng.multinomial(n, MIX, size=(2, 1000))
    alarms = int(drift_flags(old, new, DriftConfig(), all_pvalues=False)["flagged"].sum())
    assert sps.binomtest(alarms, 1000, 0.01, alternative="greater").pvalue > 0.01, alarms


def test_the_fixed_psi_rule_would_alarm_on_most_small_unchanged_windows() -> None:
    rng = np.random.default_rng(100)
    old, new = rng.multinomial(100, MIX, size=(2, 1000))
    flags = drift_flags(old, new, DriftConfig(), all_pvalues=False)
    assert float((flags["psi"] >= 0.1).mean()) > 0.5
    assert float(flags["flag_psi"].mean()) <= 0.01


SHIFTS = {"general → shipping": (0, 1), "general → returns": (0, 2), "general → account": (0, 4),
          "shipping → general": (1, 0)}


@pytest.mark.integration  # about 5 s per case: the permutation test runs in full on every flagged window
@pytest.mark.parametrize(("shift", "n"), [*((shift, 2000) for shift in SHIFTS), ("general → shipping", 3000),
                                          ("shipping → general", 3000), ("general → shipping", 100_000)])
def test_a_five_point_shift_is_flagged(shift: str, n: int) -> None:
    """1,000 seeded pairs of windows where 5 points of traffic moved between two routes (a TVD of 0.05):
    flagged at least 88% of the time at 2,000 requests per window (measured 90-93%), 95% from 3,000."""
    source, target = SHIFTS[shift]
    moved = MIX.copy()
    moved[source] -= 0.05
    moved[target] += 0.05
    rng = np.random.default_rng(n + source * 10 + target)
    old = rng.multinomial(n, MIX, size=1000)
    new = rng.multinomial(n, moved, size=1000)
    power = float(drift_flags(old, new, DriftConfig(), all_pvalues=False)["flagged"].mean())
    assert power >= (0.95 if n >= 3000 else 0.88), power


@pytest.mark.parametrize("design", [(0.5, 0.5), (1 / 3, 1 / 3, 1 / 3), (0.7, 0.2, 0.1)])
def test_arm_skew_false_alarms_and_detection(design: tuple[float, ...]) -> None:
    """Arms drawn as configured: alarms consistent with at most 1% (1,000 seeds per n); the winning arm taking
    90% where the design gives it at most 70%: flagged at least 99% of the time from 100 requests."""
    rng = np.random.default_rng(len(design))
    expected = np.array(design)
    for n in (100, 1000, 100_000):
        flagged = arm_skew_flags(rng.multinomial(n, expected, size=1000), expected)["flagged"]
        assert sps.binomtest(int(flagged.sum()), 1000, 0.01, alternative="greater").pvalue > 0.01
    skewed = np.array([0.9, *([0.1 / (len(design) - 1)] * (len(design) - 1))])
    assert float(arm_skew_flags(rng.multinomial(100, skewed, size=1000), expected)["flagged"].mean()) >= 0.99
