"""The gate's truthfulness (exact operating characteristics) and the assembly of a comparison."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from evalkit import BaselineError, ExitCode
from evalkit.baseline import Baseline, Percentiles, RunSummary, Sample
from evalkit.compare import GateConfig, Metric, compare, pass_rate_metric
from evalkit.policy import resolve_policy
from evalkit.report.cells import verdict_line

from .exact_enumeration import rejection_rate

ALPHA = 0.05


# --- operating characteristics, exactly (every outcome enumerated) ------------------------------------


def test_planted_five_point_drop_is_caught_with_a_one_point_margin() -> None:
    """400 cases, 7.5% pass→fail, 2.5% fail→pass (a true 5-point drop, 10% discordance)."""
    power = rejection_rate(400, -0.01, "less", ALPHA, 0.075, 0.025)
    assert power >= 0.80  # normal-approximation theory: about 0.80


def test_planted_five_point_drop_is_caught_with_a_zero_margin() -> None:
    assert rejection_rate(400, 0.0, "less", ALPHA, 0.075, 0.025) >= 0.90


def test_a_a_pairs_rarely_alarm() -> None:
    """Same true pass rate, 10% of cases flipping either way: a regression call is a false alarm."""
    assert rejection_rate(400, -0.01, "less", ALPHA, 0.05, 0.05) <= ALPHA / 4  # 1.1%: the margin is slack
    assert rejection_rate(400, 0.0, "less", ALPHA, 0.05, 0.05) <= ALPHA


def test_thirty_unchanged_cases_rarely_pass() -> None:
    """With nothing flipping, 30 cases never show non-inferiority at 1 point (it takes 299). When cases
    flip both ways (10% discordance, no true change), a lucky sample of gains can: 4.6% of the time."""
    assert pass_rate_metric(np.ones(30), np.ones(30), margin=0.01, alpha=ALPHA).verdict == "inconclusive"
    assert rejection_rate(30, -0.01, "greater", ALPHA, 0.0, 0.0) == 0.0
    assert rejection_rate(30, -0.01, "greater", ALPHA, 0.05, 0.05) <= ALPHA


def test_thirty_unchanged_cases_are_inconclusive_with_an_honest_cases_needed() -> None:
    same = np.array([1.0] * 20 + [0.0] * 10)
    metric = pass_rate_metric(same, same, margin=0.02, alpha=ALPHA)
    assert metric.verdict == "inconclusive" and metric.difference == 0.0
    assert metric.ci_low is not None and metric.ci_low < -0.05  # a zero-width interval would claim too much
    assert metric.cases_needed == 149  # nothing flipped: the exact test needs 149 quiet pairs, not ~1,800
    assert metric.cases_needed_range is not None and metric.cases_needed_range[0] == 149
    assert metric.cases_needed_range[1] > 1000  # 0 flips in 30 still allows a 9% discordance
    assert metric.p_value == metric.p_noninferiority and metric.test == "exact-unconditional: within margin"


def test_thirteen_lost_of_four_hundred_is_not_called_a_regression_at_two_points() -> None:
    base = np.ones(400)
    now = base.copy()
    now[:13] = 0
    metric = pass_rate_metric(base, now, margin=0.02, alpha=ALPHA)
    assert metric.verdict == "inconclusive"
    assert metric.p_regression is not None and metric.p_regression > 0.06
    assert metric.ci_high is not None and metric.ci_high > -0.02  # the interval agrees with the verdict


@pytest.mark.parametrize(("lost", "gained", "verdict"), [(60, 0, "regression"), (0, 40, "improvement"),
                                                        (2, 2, "pass"), (30, 10, "inconclusive")])
def test_the_p_shown_is_the_p_of_the_test_that_decided(lost: int, gained: int, verdict: str) -> None:
    base = np.array([1.0] * 500 + [0.0] * 500)
    now = base.copy()
    now[:lost] = 0
    now[500: 500 + gained] = 1
    metric = pass_rate_metric(base, now, margin=0.02, alpha=ALPHA)
    assert metric.verdict == verdict
    expected = {"regression": (metric.p_regression, "worse than margin"),
                "improvement": (metric.p_improvement, "better"),
                "pass": (metric.p_noninferiority, "within margin"),
                "inconclusive": (metric.p_noninferiority, "within margin")}[verdict]
    assert metric.p_value == expected[0] and metric.test == f"exact-unconditional: {expected[1]}"
    assert metric.ci_low is not None and metric.ci_high is not None
    assert (metric.ci_high < -0.02) == (verdict == "regression")
    assert (metric.ci_low > 0) == (verdict == "improvement")
    assert (metric.ci_low > -0.02) == (verdict in ("pass", "improvement"))


def test_many_discordant_pairs_use_tangos_score_test() -> None:
    rng = np.random.default_rng(3)
    base = (rng.random(20_000) < 0.5).astype(float)
    now = (rng.random(20_000) < 0.5).astype(float)
    metric = pass_rate_metric(base, now, margin=0.02, alpha=ALPHA)
    assert metric.test.startswith("tango-score") and metric.verdict == "pass"


# --- assembling a comparison -------------------------------------------------------------------------


def _samples(outcomes: dict[str, list[bool]], tags: dict[str, tuple[str, ...]] | None = None,
             latency: float = 0.5, rng: np.random.Generator | None = None, score: dict[str, float] | None = None,
             ) -> tuple[Sample, ...]:
    rng = rng or np.random.default_rng(0)
    out = []
    for case_id, results in outcomes.items():
        for repeat, passed in enumerate(results):
            out.append(Sample(case_id=case_id, repeat=repeat, passed=passed, output=f"{case_id}:{passed}",
                              scores={"graded": score[case_id]} if score else {}, checks={},
                              latency_s=float(rng.gamma(9, latency / 9)), ttft_s=0.1,
                              tags=(tags or {}).get(case_id, ())))
    return tuple(out)


def run_summary(run_id: str, p95: float, *, calls: int = 200, errors: int = 0, hour: int = 10, load: float = 0.4,
                cpus: int = 2, in_flight: float = 3.0, concurrency: int = 4, model: str = "m-1",
                pressure: float = 0.05) -> RunSummary:
    """A run as latency comparisons see it (p95 in seconds; load average per machine, not per CPU)."""
    latency = Percentiles(calls - errors, p95 / 2, p95, p95 * 1.3, 0.03)
    return RunSummary(run_id, calls, errors, latency, None, in_flight, {
        "hour_local": hour, "loadavg_start": [load, load, load], "loadavg_end": [load, load, load],
        "host_cpus": cpus, "concurrency_configured": concurrency, "provider": "p", "endpoint": "api.example:443",
        "model_requested": "m", "models_returned": [model], "system_fingerprints": [], "cpu_pressure": pressure})


def _baseline(samples: tuple[Sample, ...], *, repeats: int = 1, hour: int = 10, concurrency: int = 4,
              model: str = "m-1", gate: dict[str, Any] | None = None, run_id: str = "b", name: str = "s",
              runs: tuple[RunSummary, ...] = ()) -> Baseline:
    return Baseline(
        suite={"name": name, "gate": gate or {}},
        fingerprints={"suite_sha256": "x", "models_returned": [model], "model_requested": "m",
                      "system_fingerprints": [], "evalkit_version": "0.1.0"},
        conditions={"hour_local": hour, "concurrency_configured": concurrency, "endpoint": "h", "provider": "p",
                    "models_returned": [model]},
        repeats=repeats, samples=samples, run_id=run_id, runs=runs,
    )


IDS = [f"c{i}" for i in range(400)]


def _stable(run_id: str = "b", **kwargs: Any) -> Baseline:
    return _baseline(_samples({c: [True] for c in IDS}), run_id=run_id, **kwargs)


def test_flips_unpaired_and_comparability_are_reported() -> None:
    before = _baseline(_samples({"a": [True], "b": [False], "c": [True], "gone": [True]}))
    now = _baseline(_samples({"a": [False], "b": [True], "c": [True], "new": [True]}), hour=23, model="m-2",
                    run_id="n")
    result = compare(now, before, GateConfig())
    assert [(f.case_id, f.direction, f.before, f.after) for f in result.flips] == [
        ("a", "pass→fail", "a:True", "a:False"), ("b", "fail→pass", "b:False", "b:True")]
    assert result.unpaired_baseline == ("gone",) and result.unpaired_current == ("new",)
    assert "model returned differs: ['m-1'] → ['m-2']" in result.comparability
    latency = result.metric("latency_p95")
    assert latency.verdict == "not_comparable" and latency.ci_low is None and latency.p_value is None
    assert latency.notes[0].startswith("1 baseline run: judging this needs the spread of at least 3")
    assert "hour band morning → evening" in latency.notes
    assert "model served ['m-1'] → ['m-2']" in latency.notes
    assert any("too few for a stable p95" in n for n in latency.notes)


def test_a_large_clear_regression_fails_the_gate() -> None:
    tags = {c: ("r1" if i % 2 else "r2",) for i, c in enumerate(IDS)}
    before = _baseline(_samples({c: [True] for c in IDS}, tags=tags))
    now = _baseline(_samples({c: [i % 5 != 0] for i, c in enumerate(IDS)}, tags=tags))
    result = compare(now, before, GateConfig())
    assert result.verdict == "regression" and result.exit_code == ExitCode.REGRESSION
    assert result.decided_by == ("pass_rate",)
    assert [s.name for s in result.slices] == ["pass_rate[r1]", "pass_rate[r2]"]
    assert all(s.verdict == "regression" and not s.blocking for s in result.slices)
    assert all(s.test.endswith(", Benjamini-Hochberg") for s in result.slices)
    assert verdict_line(result).startswith("REGRESSION (pass_rate): pass rate -20.0 pts (90% CI -")


def test_identical_large_runs_pass_and_small_ones_are_inconclusive() -> None:
    big = {f"c{i}": [i % 3 != 0] for i in range(2000)}
    assert compare(_baseline(_samples(big)), _baseline(_samples(big)), GateConfig()).verdict == "pass"
    small = {f"c{i}": [i % 3 != 0] for i in range(30)}
    result = compare(_baseline(_samples(small)), _baseline(_samples(small)), GateConfig())
    assert result.verdict == "inconclusive" and result.exit_code == ExitCode.INCONCLUSIVE
    relaxed = GateConfig(inconclusive_blocks=False)
    assert compare(_baseline(_samples(small)), _baseline(_samples(small)), relaxed).exit_code == ExitCode.OK


def test_repeats_make_the_case_the_unit_and_report_flakiness() -> None:
    before = {f"c{i}": [True, True, i % 4 != 0] for i in range(60)}
    now = {f"c{i}": [True, i % 2 == 0, True] for i in range(60)}
    result = compare(_baseline(_samples(now), repeats=3), _baseline(_samples(before), repeats=3), GateConfig())
    primary = result.metrics[0]
    assert primary.n == 60  # cases, not 180 samples
    assert "t_test_p" in primary.tests and primary.test.startswith("t-test: ")
    assert primary.cases_needed_range is not None and primary.cases_needed_range[0] <= primary.cases_needed_range[1]
    assert ("c0", "2/3", "3/3") in result.flaky and ("c1", "3/3", "2/3") in result.flaky


def test_continuous_scores_use_bca() -> None:
    rng = np.random.default_rng(5)
    ids = [f"c{i}" for i in range(300)]
    base_scores = {c: float(rng.uniform(0.5, 1.0)) for c in ids}
    worse = {c: v - 0.2 + float(rng.normal(0, 0.05)) for c, v in base_scores.items()}
    before = _baseline(_samples({c: [True] for c in ids}, score=base_scores, rng=rng))
    now = _baseline(_samples({c: [True] for c in ids}, score=worse, rng=rng))
    result = compare(now, before, GateConfig(margins={"pass_rate": 0.02, "score:graded": 0.05}))
    score = result.metric("score:graded")
    assert score.kind == "continuous" and score.verdict == "regression" and score.test.startswith("bca-bootstrap")
    assert score.ci_high is not None and score.ci_high < -0.05
    assert result.verdict == "pass"  # it does not block unless configured
    blocked = compare(now, before, GateConfig(margins={"score:graded": 0.05}, block_on=("pass_rate", "score:graded")))
    assert blocked.verdict == "regression" and blocked.decided_by == ("score:graded",)


def test_ordinal_scores_use_wilcoxon_and_sign_test() -> None:
    ids = [f"c{i}" for i in range(80)]
    before = _baseline(_samples({c: [True] for c in ids}, score={c: float(1 + i % 5) for i, c in enumerate(ids)}))
    now = _baseline(_samples({c: [True] for c in ids}, score={c: float(1 + i % 5) for i, c in enumerate(ids)}))
    metric = compare(now, before, GateConfig()).metric("score:graded")
    assert metric.kind == "ordinal" and metric.test.startswith("wilcoxon-pratt")
    assert set(metric.tests) == {"wilcoxon_pratt_p", "sign_test_p", "bootstrap_resamples"}


# --- latency, TTFT and error rate: the run is the unit -------------------------------------------------


BLOCK_LATENCY = GateConfig(block_on=("pass_rate", "latency_p95"))


def test_one_run_each_side_is_never_a_latency_verdict_however_large_the_change() -> None:
    before = _stable(runs=(run_summary("b", 0.10),))
    now = _stable("n", runs=(run_summary("n", 0.50),))  # five times slower
    result = compare(now, before, BLOCK_LATENCY)
    latency = result.metric("latency_p95")
    assert latency.verdict == "not_comparable" and latency.difference == pytest.approx(4.0)
    assert result.verdict == "pass" and result.exit_code == ExitCode.OK and result.decided_by == ("pass_rate",)
    assert "blocking but not judged: latency_p95" in verdict_line(result)


def _history(p95s: list[float], **kwargs: Any) -> tuple[RunSummary, ...]:
    return tuple(run_summary(f"b{i}", p95, **kwargs) for i, p95 in enumerate(p95s))


def test_several_baseline_runs_judge_latency_with_the_run_to_run_spread() -> None:
    history = _history([0.100, 0.104, 0.097, 0.102, 0.099])
    before = _stable(runs=history)
    slow = compare(_stable("n", runs=(run_summary("n", 0.150),)), before, BLOCK_LATENCY)
    latency = slow.metric("latency_p95")
    assert latency.verdict == "regression" and latency.n == 5 and latency.n_unit == "runs"
    assert latency.test == "run-level-t(4 df): worse than margin, Holm"
    assert latency.p_value == latency.p_regression and latency.p_value < ALPHA
    assert latency.ci_low is not None and latency.ci_low > 0.10  # the interval is past the 10% margin
    assert slow.verdict == "regression" and slow.decided_by == ("latency_p95",)
    line = verdict_line(slow)
    assert line.startswith("REGRESSION (latency_p95): latency p95 +")
    assert "pass rate" not in line.split(" · ")[0]  # the headline names what decided, not the pass rate
    same = compare(_stable("n", runs=(run_summary("n", 0.101),)), before, BLOCK_LATENCY)
    assert same.metric("latency_p95").verdict in ("pass", "inconclusive")
    assert same.verdict == "pass" or same.decided_by == ("latency_p95",)


def test_a_noisy_history_makes_the_same_slowdown_inconclusive() -> None:
    before = _stable(runs=_history([0.08, 0.13, 0.10, 0.16]))
    result = compare(_stable("n", runs=(run_summary("n", 0.150),)), before, BLOCK_LATENCY)
    assert result.metric("latency_p95").verdict == "inconclusive"


@pytest.mark.parametrize(("change", "reason"), [
    ({"load": 2.4}, "load average per CPU 0.20 → 1.20"),
    ({"cpus": 8}, "host CPUs 2 → 8"),
    ({"in_flight": 9.0}, "calls in flight (mean at call start) 3.00 → 9.00"),
    ({"concurrency": 16}, "concurrency 4 → 16"),
    ({"hour": 3}, "hour band morning → night"),
    ({"model": "m-2"}, "model served ['m-1'] → ['m-2']"),
    ({"pressure": 0.6}, "CPU pressure 0.05 → 0.60"),
])
def test_conditions_that_move_latency_make_it_not_comparable(change: dict[str, Any], reason: str) -> None:
    before = _stable(runs=_history([0.100, 0.104, 0.097]))
    result = compare(_stable("n", runs=(run_summary("n", 0.300, **change),)), before, BLOCK_LATENCY)
    latency = result.metric("latency_p95")
    assert latency.verdict == "not_comparable" and reason in latency.notes
    assert result.verdict == "pass"
    assert any(note.startswith("latency conditions differ: ") and reason in note for note in result.comparability)


def test_error_rate_is_judged_per_run() -> None:
    one = compare(_stable("n", runs=(run_summary("n", 0.1, errors=30),)), _stable(runs=(run_summary("b", 0.1),)),
                  GateConfig())
    assert one.metric("error_rate").verdict == "not_comparable"
    history = _history([0.1, 0.1, 0.1, 0.1], errors=1)
    worse = compare(_stable("n", runs=(run_summary("n", 0.1, errors=30),)), _stable(runs=history), GateConfig())
    rate = worse.metric("error_rate")
    assert rate.verdict == "regression" and rate.difference == pytest.approx(0.145)
    assert rate.tests["current_errors"] == 30 and rate.tests["baseline_calls"] == 800


def test_holm_can_withdraw_a_regression_and_says_so() -> None:
    metrics = [Metric("a", "binary", 100, 0.9, 0.8, -0.1, -0.2, -0.05, 0.9, 0.02, "regression", True,
                      p_value=0.03, test="t: worse than margin", p_regression=0.03),
               Metric("b", "binary", 100, 0.9, 0.9, 0.0, -0.02, 0.02, 0.9, 0.02, "pass", True,
                      p_value=0.01, test="t: within margin", p_regression=0.04)]
    from evalkit.compare import _holm

    adjusted = _holm(metrics, ALPHA)
    assert adjusted[0].verdict == "inconclusive" and adjusted[0].p_regression == pytest.approx(0.06)
    assert "but not after Holm over 2 blocking metrics (p=0.06)" in adjusted[0].notes[-1]
    assert adjusted[1].verdict == "pass" and adjusted[1].p_value == 0.01


# --- the policy in force ----------------------------------------------------------------------------


def test_the_baselines_gate_is_in_force_and_the_runs_change_is_pending() -> None:
    ids = [f"c{i}" for i in range(300)]
    before = _baseline(_samples({c: [True] for c in ids}), gate={"margins": {"pass_rate": 0.01}})
    worse = _baseline(_samples({c: [i % 10 != 0] for i, c in enumerate(ids)}),
                      gate={"margins": {"pass_rate": 0.5}, "inconclusive": "warn"}, run_id="n")
    result = compare(worse, before)
    assert result.policy.source == "baseline" and result.config.margin("pass_rate") == 0.01
    assert result.verdict == "regression"  # the PR's 50-point margin would have passed it
    assert [str(c) for c in result.policy.pending] == ["inconclusive block → warn", "margins.pass_rate 0.01 → 0.5"]
    assert "gate change in this run, not in force until it is in a baseline (merged): inconclusive block → warn, " \
           "margins.pass_rate 0.01 → 0.5" in verdict_line(result)
    applied = compare(worse, before, use_run_gate=True)
    assert applied.verdict == "pass" and applied.policy.source == "run" and not applied.policy.pending
    assert [f"{c} ({c.source})" for c in applied.policy.overrides] == [
        "inconclusive block → warn (--use-run-gate)", "margins.pass_rate 0.01 → 0.5 (--use-run-gate)"]
    assert "override in force: inconclusive block → warn (--use-run-gate)" in verdict_line(applied)


def test_command_line_overrides_are_logged() -> None:
    policy = resolve_policy({"alpha": 0.05}, {}, margin=0.05, alpha=0.05, inconclusive_blocks=False)
    assert [(str(c), c.source) for c in policy.overrides] == [
        ("margins.pass_rate 0.02 → 0.05", "--margin"), ("alpha 0.05 → 0.05", "--alpha"),
        ("inconclusive block → warn", "--inconclusive")]
    assert policy.config.margin("pass_rate") == 0.05 and not policy.config.inconclusive_blocks
    assert resolve_policy(None, None).overrides == () and resolve_policy(None, None).pending == ()


def test_gate_config_from_suite_and_overrides() -> None:
    config = GateConfig.from_mapping({"alpha": 0.1, "margins": {"pass_rate": 0.05}, "inconclusive": "warn"},
                                     margin=0.03, alpha=None)
    assert (config.alpha, config.margin("pass_rate"), config.inconclusive_blocks) == (0.1, 0.03, False)
    assert config.margin("error_rate") == 0.01 and config.margin("score:x") == 0.0


def test_a_baseline_of_another_suite_is_refused() -> None:
    with pytest.raises(BaselineError, match=r"suite\.name: expected a baseline of suite 's', got one of 'other'"):
        compare(_stable("n"), replace(_stable(), suite={"name": "other"}))


@pytest.mark.parametrize("verdict", ["regression", "inconclusive", "pass", "improvement", "not_comparable"])
def test_verdicts_are_known(verdict: str) -> None:
    from evalkit.compare import VERDICTS

    assert verdict in VERDICTS
