"""The gate's truthfulness (simulated replays) and the assembly of a comparison."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from evalkit import ExitCode
from evalkit.baseline import Baseline, Sample
from evalkit.compare import GateConfig, compare, pass_rate_metric, verdict_line

ALPHA = 0.05
REPLAYS = 1000
SAMPLING_ERROR = 3 * math.sqrt(ALPHA * (1 - ALPHA) / REPLAYS)  # three standard errors of a rate near alpha


def _replay(rng: np.random.Generator, n: int, lost: float, gained: float) -> tuple[np.ndarray, np.ndarray]:
    """Paired outcomes with the given rates of pass→fail and fail→pass."""
    base = rng.random(n) < 0.7
    u = rng.random(n)
    current = base.copy()
    current[base & (u < lost / 0.7)] = False
    current[~base & (u < gained / 0.3)] = True
    return base.astype(float), current.astype(float)


def _verdicts(n: int, lost: float, gained: float, margin: float, seed: int) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    for _ in range(REPLAYS):
        a, b = _replay(rng, n, lost, gained)
        verdict = pass_rate_metric(a, b, margin=margin, alpha=ALPHA).verdict
        counts[verdict] = counts.get(verdict, 0) + 1
    return counts


def test_a_a_false_alarm_rate_is_at_most_alpha() -> None:
    rng = np.random.default_rng(11)
    alarms = 0
    for _ in range(REPLAYS):
        p = rng.beta(2, 1, size=400)  # each case has its own pass probability; both runs sample it
        a, b = (rng.random(400) < p).astype(float), (rng.random(400) < p).astype(float)
        alarms += pass_rate_metric(a, b, margin=0.0, alpha=ALPHA).verdict == "regression"
    assert alarms / REPLAYS <= ALPHA + SAMPLING_ERROR


def test_planted_five_point_drop_is_caught_with_a_one_point_margin() -> None:
    counts = _verdicts(400, lost=0.075, gained=0.025, margin=0.01, seed=1)
    assert counts.get("regression", 0) / REPLAYS >= 0.75  # theory: about 0.80


def test_planted_five_point_drop_is_caught_with_a_zero_margin() -> None:
    counts = _verdicts(400, lost=0.075, gained=0.025, margin=0.0, seed=2)
    assert counts.get("regression", 0) / REPLAYS >= 0.90


def test_same_replays_without_a_drop_rarely_alarm() -> None:
    counts = _verdicts(400, lost=0.05, gained=0.05, margin=0.01, seed=3)
    assert counts.get("regression", 0) / REPLAYS <= ALPHA + SAMPLING_ERROR


def test_thirty_unchanged_cases_are_inconclusive_never_pass() -> None:
    same = np.array([1.0] * 20 + [0.0] * 10)
    metric = pass_rate_metric(same, same, margin=0.01, alpha=ALPHA)
    assert metric.verdict == "inconclusive"
    assert metric.difference == 0.0
    assert metric.ci_low is not None and metric.ci_low < -0.05  # a zero-width interval would claim too much
    assert metric.mde is not None and metric.mde > 0.05
    assert metric.cases_needed is not None and metric.cases_needed > 30


def test_thirty_cases_with_noise_are_inconclusive_too() -> None:
    assert _verdicts(30, lost=0.05, gained=0.05, margin=0.01, seed=4).get("pass", 0) / REPLAYS <= ALPHA


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


def _baseline(samples: tuple[Sample, ...], *, repeats: int = 1, hour: int = 10, concurrency: int = 4,
              model: str = "m-1", gate: dict[str, Any] | None = None, run_id: str = "b") -> Baseline:
    return Baseline(
        suite={"name": "s", "gate": gate or {}},
        fingerprints={"suite_sha256": "x", "models_returned": [model], "model_requested": "m",
                      "system_fingerprints": [], "evalkit_version": "0.1.0"},
        conditions={"hour_local": hour, "concurrency_configured": concurrency, "endpoint": "h", "provider": "p"},
        repeats=repeats, samples=samples, run_id=run_id,
    )


def test_flips_unpaired_and_comparability_are_reported() -> None:
    before = _baseline(_samples({"a": [True], "b": [False], "c": [True], "gone": [True]}))
    now = _baseline(_samples({"a": [False], "b": [True], "c": [True], "new": [True]}), hour=23, model="m-2",
                    run_id="n")
    result = compare(now, before, GateConfig())
    assert [(f.case_id, f.direction, f.before, f.after) for f in result.flips] == [
        ("a", "pass→fail", "a:True", "a:False"), ("b", "fail→pass", "b:False", "b:True")]
    assert result.unpaired_baseline == ("gone",) and result.unpaired_current == ("new",)
    assert "model returned differs: ['m-1'] → ['m-2']" in result.comparability
    latency = next(m for m in result.metrics if m.name == "latency_p95")
    assert latency.verdict == "not_comparable"
    assert "latency not comparable: hour band morning → evening" in latency.notes
    assert any("too few points for a stable p95" in n for n in latency.notes)


def test_a_large_clear_regression_fails_the_gate() -> None:
    ids = [f"c{i}" for i in range(400)]
    before = _baseline(_samples({c: [True] for c in ids}, tags={c: ("r1" if i % 2 else "r2",)
                                                                for i, c in enumerate(ids)}))
    now = _baseline(_samples({c: [i % 5 != 0] for i, c in enumerate(ids)},
                             tags={c: ("r1" if i % 2 else "r2",) for i, c in enumerate(ids)}))
    result = compare(now, before, GateConfig())
    assert result.verdict == "regression" and result.exit_code == ExitCode.REGRESSION
    assert [s.name for s in result.slices] == ["pass_rate[r1]", "pass_rate[r2]"]
    assert all(s.verdict == "regression" and not s.blocking for s in result.slices)
    assert verdict_line(result).startswith("REGRESSION: pass rate -20.0 pts (90% CI")


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
    assert "t_test_p" in primary.tests
    assert ("c0", "2/3", "3/3") in result.flaky and ("c1", "3/3", "2/3") in result.flaky


def test_continuous_scores_use_bca_and_latency_regressions_are_found() -> None:
    rng = np.random.default_rng(5)
    ids = [f"c{i}" for i in range(300)]
    base_scores = {c: float(rng.uniform(0.5, 1.0)) for c in ids}
    worse = {c: v - 0.2 + float(rng.normal(0, 0.05)) for c, v in base_scores.items()}
    before = _baseline(_samples({c: [True] for c in ids}, score=base_scores, latency=0.5, rng=rng))
    now = _baseline(_samples({c: [True] for c in ids}, score=worse, latency=1.0, rng=rng))
    result = compare(now, before, GateConfig(margins={"pass_rate": 0.02, "score:graded": 0.05}))
    score = next(m for m in result.metrics if m.name == "score:graded")
    assert score.kind == "continuous" and score.verdict == "regression"
    assert score.ci_high is not None and score.ci_high < -0.05
    latency = next(m for m in result.metrics if m.name == "latency_p95")
    assert latency.verdict == "regression" and latency.tests["mann_whitney_p"] < 0.001
    assert result.verdict == "pass"  # neither blocks unless configured
    blocked = compare(now, before, GateConfig(margins={"score:graded": 0.05}, block_on=("pass_rate", "score:graded")))
    assert blocked.verdict == "regression"


def test_ordinal_scores_use_wilcoxon_and_sign_test() -> None:
    ids = [f"c{i}" for i in range(80)]
    before = _baseline(_samples({c: [True] for c in ids}, score={c: float(1 + i % 5) for i, c in enumerate(ids)}))
    now = _baseline(_samples({c: [True] for c in ids}, score={c: float(1 + i % 5) for i, c in enumerate(ids)}))
    metric = next(m for m in compare(now, before, GateConfig()).metrics if m.name == "score:graded")
    assert metric.kind == "ordinal"
    assert set(metric.tests) == {"wilcoxon_pratt_p", "sign_test_p", "bootstrap_resamples"}


def test_gate_config_from_suite_and_overrides() -> None:
    config = GateConfig.from_mapping({"alpha": 0.1, "margins": {"pass_rate": 0.05}, "inconclusive": "warn"},
                                     margin=0.03, alpha=None)
    assert (config.alpha, config.margin("pass_rate"), config.inconclusive_blocks) == (0.1, 0.03, False)


@pytest.mark.parametrize("verdict", ["regression", "inconclusive", "pass", "improvement"])
def test_verdicts_are_known(verdict: str) -> None:
    from evalkit.compare import VERDICTS

    assert verdict in VERDICTS
