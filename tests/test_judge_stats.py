"""Agreement statistics against their references: scikit-learn, krippendorff, statsmodels, brute force."""

from __future__ import annotations

import itertools

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.proportion import proportion_confint

from evalkit.judges import agreement as ag

TOL = 1e-9


def _pairs(seed: int, n: int, k: int, agree: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    human = rng.integers(0, k, n)
    judge = np.where(rng.random(n) < agree, human, rng.integers(0, k, n))
    return human, judge


@pytest.mark.parametrize(("seed", "n", "k", "quadratic"), [
    (1, 200, 2, False), (2, 37, 2, False), (3, 150, 5, True), (4, 60, 5, False), (5, 90, 3, True), (6, 12, 4, True),
])
def test_kappa_matches_scikit_learn(seed: int, n: int, k: int, quadratic: bool) -> None:
    human, judge = _pairs(seed, n, k, 0.6)
    ours = float(ag.kappa(ag.confusion(human, judge, k), quadratic=quadratic))
    reference = cohen_kappa_score(human, judge, labels=list(range(k)), weights="quadratic" if quadratic else None)
    assert ours == pytest.approx(reference, abs=TOL)


def test_kappa_batch_equals_one_by_one_on_bootstrap_resamples() -> None:
    human, judge = _pairs(7, 80, 5, 0.5)
    rng = np.random.default_rng(0)
    weights = ag.resample_counts(human.size, 50, rng)
    batch = ag.kappa(ag.batch_confusion(weights, human, judge, 5), quadratic=True)
    for b in range(50):
        index = np.repeat(np.arange(human.size), weights[b].astype(int))
        reference = cohen_kappa_score(human[index], judge[index], labels=list(range(5)), weights="quadratic")
        assert batch[b] == pytest.approx(reference, abs=TOL)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
@pytest.mark.parametrize(("seed", "k"), [(11, 2), (12, 5), (13, 3)])
def test_two_coder_alpha_matches_krippendorff(level: str, seed: int, k: int) -> None:
    human, judge = _pairs(seed, 120, k, 0.7)
    values = list(range(1, k + 1))
    ours = float(ag.alpha_from_coincidences(ag.pair_coincidences(ag.confusion(human, judge, k)), values, level))
    reference = krippendorff.alpha(reliability_data=np.vstack([human + 1, judge + 1]).astype(float),
                                   value_domain=values, level_of_measurement=level)
    assert ours == pytest.approx(reference, abs=TOL)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_many_raters_with_missing_values_match_krippendorff(level: str) -> None:
    rng = np.random.default_rng(21)
    codes = rng.integers(0, 5, (4, 60))
    codes[rng.random((4, 60)) < 0.35] = -1
    values = [1, 2, 3, 4, 5]
    data = np.where(codes >= 0, codes + 1, np.nan).astype(float)
    reference = krippendorff.alpha(reliability_data=data, value_domain=values, level_of_measurement=level)
    assert ag.krippendorff_alpha(codes, values, level) == pytest.approx(reference, abs=TOL)


def test_agreement_statistics_point_estimates_are_the_references() -> None:
    human, judge = _pairs(31, 140, 5, 0.55)
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    out = ag.agreement_statistics(human, judge, 5, ordinal=True, values=values, level=0.95, resamples=500,
                                  rng=np.random.default_rng(0))
    assert out["kappa"].value == pytest.approx(
        cohen_kappa_score(human, judge, labels=list(range(5)), weights="quadratic"), abs=TOL)
    assert out["alpha"].value == pytest.approx(krippendorff.alpha(
        reliability_data=np.vstack([human + 1, judge + 1]).astype(float), value_domain=values,
        level_of_measurement="ordinal"), abs=TOL)
    assert out["kappa"].interval.low < out["kappa"].value < out["kappa"].interval.high
    again = ag.agreement_statistics(human, judge, 5, ordinal=True, values=values, level=0.95, resamples=500,
                                    rng=np.random.default_rng(0))
    assert again == out  # seeded: the same draws, the same intervals


@pytest.mark.parametrize(("count", "n"), [(0, 10), (3, 10), (10, 10), (41, 200), (199, 200), (1, 1)])
def test_wilson_matches_statsmodels(count: int, n: int) -> None:
    low, high = proportion_confint(count, n, alpha=0.05, method="wilson")
    r = ag.rate(count, n, 0.95)
    assert (r.interval.low, r.interval.high) == (pytest.approx(low, abs=TOL), pytest.approx(high, abs=TOL))
    assert r.estimate == count / n


def test_wilson_of_nothing_is_undefined_not_an_error() -> None:
    r = ag.rate(0, 0, 0.95)
    assert np.isnan(r.interval.low) and r.to_dict()["low"] is None


def _brute_force_pvalue(cal: np.ndarray, cur: np.ndarray) -> float:
    """Enumerates every placement of the check among the P + 1 verdicts of every item."""
    everything = np.concatenate([cal, cur[:, None]], axis=1)
    observed = int((cal != cur[:, None]).sum())
    passes = cal.shape[1]
    hits = total = 0
    for choice in itertools.product(range(passes + 1), repeat=everything.shape[0]):
        s = 0
        for row, j in zip(everything, choice, strict=True):
            s += int(np.count_nonzero(np.delete(row, j) != row[j]))
        total += 1
        hits += s >= observed
    return hits / total


@pytest.mark.parametrize("seed", range(6))
def test_exchangeable_flip_test_is_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    passes = 2 + seed % 2
    cal = rng.integers(0, 3, (6, passes))
    cur = rng.integers(0, 3, 6)
    statistic, _, p = ag.exchangeable_flip_test(cal, cur)
    assert statistic == int((cal != cur[:, None]).sum())
    assert p == pytest.approx(_brute_force_pvalue(cal, cur), abs=1e-12)


def test_flip_test_with_two_passes_is_a_binomial_third() -> None:
    # Every item: calibration passes agree; the check alone flips 4 of them → p = (1/3)^4.
    cal = np.zeros((30, 2), dtype=int)
    cur = np.zeros(30, dtype=int)
    cur[:4] = 1
    assert ag.exchangeable_flip_test(cal, cur)[2] == pytest.approx(binomtest(4, 4, 1 / 3, "greater").pvalue)


def test_paired_excess_is_a_one_sided_binomial_on_discordant_items() -> None:
    placebo = [True] * 3 + [False] * 17 + [True] * 2
    treated = [False] * 3 + [True] * 11 + [False] * 6 + [True] * 2
    b, c, p = ag.paired_excess(placebo, treated)
    assert (b, c) == (11, 3)
    assert p == pytest.approx(binomtest(11, 14, 0.5, "greater").pvalue)
    assert ag.paired_excess([False] * 5, [False] * 5) == (0, 0, 1.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=25))
def test_flip_test_pvalue_is_a_probability(rows: list[tuple[int, int, int]]) -> None:
    data = np.array(rows)
    statistic, mean, p = ag.exchangeable_flip_test(data[:, :2], data[:, 2])
    assert 0.0 <= p <= 1.0 and statistic >= 0 and mean >= 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=2, max_size=40))
def test_kappa_is_at_most_one_and_symmetric(pairs: list[tuple[int, int]]) -> None:
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    for quadratic in (False, True):
        x = float(ag.kappa(ag.confusion(a, b, 5), quadratic=quadratic))
        y = float(ag.kappa(ag.confusion(b, a, 5), quadratic=quadratic))
        assert (np.isnan(x) and np.isnan(y)) or (x <= 1 + 1e-12 and x == pytest.approx(y, abs=1e-12))
