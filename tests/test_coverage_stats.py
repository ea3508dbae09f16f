"""The statistics behind coverage and drift: reference checks against statsmodels and scipy, invariants, and
seeded simulations (vectorised with numpy) of interval coverage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from evalkit.analysis import proportions as P

EXAMPLE_MIX = np.array([0.555, 0.102, 0.091, 0.085, 0.052, 0.044, 0.043, 0.028])
"""Route shares of the example traffic (examples/traffic), largest first."""


# --- reference checks ------------------------------------------------------------------------------------


def test_wilson_interval_is_statsmodels_and_handles_no_observations() -> None:
    counts, nobs = np.array([0, 3, 5.5, 40]), np.array([10, 10, 10, 40])
    low, high = P.wilson_interval(counts, nobs, 0.9)
    ref_low, ref_high = proportion_confint(counts, nobs, alpha=0.1, method="wilson")
    np.testing.assert_allclose(low, ref_low, atol=1e-12)
    np.testing.assert_allclose(high, np.minimum(ref_high, 1.0), atol=1e-12)
    low0, high0 = P.wilson_interval(0, 0)
    assert (float(low0), float(high0)) == (0.0, 1.0)


@pytest.mark.parametrize("p", [0.5, 0.8, 0.95])
@pytest.mark.parametrize("half_width", [0.05, 0.1, 0.15])
def test_cases_for_precision_is_the_smallest_n_statsmodels_agrees_with(p: float, half_width: float) -> None:
    n = P.cases_for_precision(half_width, p)

    def reference(cases: int) -> float:
        low, high = proportion_confint(p * cases, cases, alpha=0.05, method="wilson")
        return float(high - low) / 2

    assert reference(n) <= half_width + 1e-12 < reference(n - 1)


def test_cases_for_precision_at_the_default_precision() -> None:
    assert P.cases_for_precision(0.15) == 39  # ± 15 points at the least favourable rate, 95%
    assert P.cases_for_precision(0.10) == 93
    with pytest.raises(ValueError, match="expected a number in"):
        P.cases_for_precision(0.6)


def test_planning_rate_is_the_point_of_the_interval_nearest_half() -> None:
    assert P.planning_rate(None, None) == 0.5
    assert P.planning_rate(0.56, 0.99) == 0.56
    assert P.planning_rate(0.2, 0.7) == 0.5
    assert P.planning_rate(0.01, 0.3) == 0.3


def test_chi2_homogeneity_matches_scipy_contingency() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        a = rng.multinomial(200, EXAMPLE_MIX)
        b = rng.multinomial(150, EXAMPLE_MIX[::-1])
        a[-1] = b[-1] = 0  # a route with no requests in either window is left out, as scipy requires
        statistic, df, p = P.chi2_homogeneity(a, b)
        keep = (a + b) > 0
        reference = sps.chi2_contingency(np.vstack([a[keep], b[keep]]), correction=False)
        assert float(statistic) == pytest.approx(reference.statistic)
        assert int(df) == reference.dof
        assert float(p) == pytest.approx(reference.pvalue)


def test_goodness_of_fit_matches_scipy() -> None:
    p, test = P.goodness_of_fit([70, 30], [0.5, 0.5])
    assert test == "exact binomial" and float(p) == pytest.approx(sps.binomtest(70, 100, 0.5).pvalue)
    p, test = P.goodness_of_fit([50, 30, 20], [1, 1, 1])
    assert test == "χ² goodness of fit" and float(p) == pytest.approx(sps.chisquare([50, 30, 20]).pvalue)
    batch, _ = P.goodness_of_fit([[50, 30, 20], [34, 33, 33], [0, 0, 0]], [1, 1, 1])
    np.testing.assert_allclose(batch, [sps.chisquare([50, 30, 20]).pvalue, sps.chisquare([34, 33, 33]).pvalue, 1.0])
    p, test = P.goodness_of_fit([10, 5], [1, 0])
    assert (float(p), test) == (0.0, "unexpected arm")
    p, test = P.goodness_of_fit([10, 0], [1, 0])
    assert (float(p), test) == (1.0, "none")


@pytest.mark.parametrize("n", [1, 7, 40, 1000, 100_000])
@pytest.mark.parametrize("p", [0.5, 1 / 3, 0.9, 0.01])
def test_batched_two_sided_binomial_is_scipy_binomtest(n: int, p: float) -> None:
    k = np.arange(n + 1) if n <= 40 else np.random.default_rng(n).integers(0, n + 1, size=60)
    reference = [sps.binomtest(int(i), n, p).pvalue for i in k]
    np.testing.assert_allclose(P.binomial_two_sided(k, n, p), reference, rtol=1e-9, atol=1e-12)


def test_tvd_permutation_pvalue_matches_scipy_permutation_test() -> None:
    old = np.array([20, 8, 6, 2])
    new = np.array([12, 12, 6, 6])
    labels = np.concatenate([np.repeat(np.arange(4), old), np.repeat(np.arange(4), new)])

    def tvd(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        counts_x = np.stack([(x == k).sum(axis=axis) for k in range(4)], axis=-1) / x.shape[axis]
        counts_y = np.stack([(y == k).sum(axis=axis) for k in range(4)], axis=-1) / y.shape[axis]
        result: np.ndarray = 0.5 * np.abs(counts_x - counts_y).sum(axis=-1)
        return result

    reference = sps.permutation_test((labels[: old.sum()], labels[old.sum():]), tvd, n_resamples=20000,
                                     alternative="greater", random_state=1, vectorized=True).pvalue
    ours = float(P.total_variation_pvalue(old, new, np.random.default_rng(1), draws=20000))
    assert ours == pytest.approx(reference, abs=0.01)
    # Early stopping gives the same decision as drawing everything.
    same = P.total_variation_pvalue(old, old, np.random.default_rng(2), draws=2000, stop_above=0.01)
    assert float(same) > 0.01


def test_post_stratified_is_wilson_at_kish_effective_size() -> None:
    traffic, passed, cases = np.array([600, 300, 100]), np.array([8.0, 27.0, 10.0]), np.array([10, 30, 10])
    result = P.post_stratified(traffic, passed, cases)
    w = traffic / traffic.sum()
    estimate = float((w * passed / cases).sum())
    effective = 1 / float((w * w / cases).sum())
    assert float(result.estimate) == pytest.approx(estimate)
    assert float(result.effective_n) == pytest.approx(effective)
    low, high = proportion_confint(estimate * effective, effective, alpha=0.05, method="wilson")
    assert (float(result.low), float(result.high)) == pytest.approx((low, high))
    # One route: the plain Wilson interval of its cases.
    single = P.post_stratified([5], [7.0], [10])
    assert (float(single.low), float(single.high)) == pytest.approx(proportion_confint(7, 10, method="wilson"))
    with pytest.raises(ValueError, match="expected at least one case in every route"):
        P.post_stratified([1, 2], [1, 0], [1, 0])


def test_psi_threshold_is_the_chi2_critical_value_scaled_and_floored() -> None:
    assert float(P.psi_threshold(100, 100, 8, 0.01)) == pytest.approx(sps.chi2.ppf(0.99, 7) * 0.02)
    assert float(P.psi_threshold(100_000, 100_000, 8, 0.01)) == 0.1


# --- invariants -------------------------------------------------------------------------------------------


counts = st.lists(st.integers(0, 500), min_size=2, max_size=8)


@settings(max_examples=60, deadline=None)
@given(counts, counts)
def test_distances_are_symmetric_and_bounded(a: list[int], b: list[int]) -> None:
    size = min(len(a), len(b))
    x, y = np.array(a[:size]), np.array(b[:size])
    tvd = float(P.total_variation(P.shares(x), P.shares(y)))
    assert tvd == pytest.approx(float(P.total_variation(P.shares(y), P.shares(x))))
    assert 0.0 <= tvd <= 1.0
    assert float(P.psi(x, y)) >= 0.0
    _, _, p = P.chi2_homogeneity(x, y)
    assert 0.0 <= float(p) <= 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5000), st.integers(1, 60), st.floats(0, 1)), min_size=1, max_size=8))
def test_post_stratified_interval_holds_its_estimate_inside_zero_one(strata: list[tuple[int, int, float]]) -> None:
    traffic = np.array([t for t, _, _ in strata])
    cases = np.array([n for _, n, _ in strata])
    passed = np.array([round(n * f) for _, n, f in strata], dtype=float)
    result = P.post_stratified(traffic, passed, cases)
    assert 0.0 <= float(result.low) <= float(result.estimate) + 1e-12
    assert float(result.estimate) <= float(result.high) + 1e-12 <= 1.0 + 1e-12


# --- simulations -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("requests", [500, 4100])
def test_wilson_intervals_cover_the_true_traffic_share(requests: int) -> None:
    """2,000 seeded draws of a traffic sample: each route's Wilson interval holds its true share 93-97%."""
    rng = np.random.default_rng(20250303)
    draws = rng.multinomial(requests, EXAMPLE_MIX, size=2000)
    low, high = P.wilson_interval(draws, requests)
    covered = ((low <= EXAMPLE_MIX) & (high >= EXAMPLE_MIX)).mean(axis=0)
    assert np.all((covered >= 0.93) & (covered <= 0.97)), covered.round(3)


SCENARIOS = {
    # cases per route (0: missing, left out of the strata) and true pass rates, routes as in EXAMPLE_MIX
    "example-like suite, general thin": ([25, 45, 45, 45, 40, 40, 0, 35], [0.62, 0.8, 0.7, 0.85, 0.9, 0.6, 0.5, 0.75]),
    "eight cases on the heaviest route": ([8, 45, 45, 45, 40, 40, 40, 35], [0.7] * 8),
    "forty cases each": ([40] * 8, [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.3, 0.75]),
    "high pass rates": ([30, 30, 30, 30, 30, 30, 30, 30], [0.9, 0.95, 0.9, 0.85, 0.9, 0.92, 0.88, 0.93]),
    "uneven sizes": ([20, 60, 15, 35, 25, 50, 10, 30], [0.7, 0.85, 0.6, 0.9, 0.75, 0.5, 0.8, 0.65]),
    "near-perfect routes": ([30] * 8, [0.97] * 8),
    "mostly failing": ([30] * 8, [0.1] * 8),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_post_stratified_interval_covers_the_true_traffic_weighted_pass_rate(scenario: str) -> None:
    """2,000 seeded replays (suite results and a traffic sample of 4,100): the interval holds the true
    traffic-weighted pass rate over the evaluated routes 93-97% of the time."""
    cases, rates = (np.array(v) for v in SCENARIOS[scenario])
    evaluated = cases > 0
    rng = np.random.default_rng(7)
    passed = rng.binomial(cases[evaluated], rates[evaluated], size=(2000, int(evaluated.sum()))).astype(float)
    traffic = rng.multinomial(4100, EXAMPLE_MIX, size=2000)[:, evaluated]
    weights = EXAMPLE_MIX[evaluated] / EXAMPLE_MIX[evaluated].sum()
    truth = float((weights * rates[evaluated]).sum())
    result = P.post_stratified(traffic, passed, cases[evaluated])
    covered = float(((result.low <= truth) & (truth <= result.high)).mean())
    assert 0.93 <= covered <= 0.97, covered


def test_psi_threshold_holds_its_level_and_the_fixed_rule_does_not() -> None:
    """On unchanged traffic (2,000 pairs of windows, example mix): PSI beyond χ²·(1/n + 1/m) about alpha of
    the time at n = 5,000; the fixed PSI > 0.1 rule fires on most windows of 100 requests."""
    rng = np.random.default_rng(11)
    a, b = rng.multinomial(5000, EXAMPLE_MIX, size=(2, 2000))
    critical = sps.chi2.ppf(0.95, len(EXAMPLE_MIX) - 1) * (2 / 5000)
    assert 0.03 <= float((P.psi(a, b) >= critical).mean()) <= 0.07
    small_a, small_b = rng.multinomial(100, EXAMPLE_MIX, size=(2, 2000))
    naive = float((P.psi(small_a, small_b) >= 0.1).mean())
    aware = float((P.psi(small_a, small_b) >= P.psi_threshold(100, 100, len(EXAMPLE_MIX), 0.01)).mean())
    assert naive > 0.5 and aware < 0.02, (naive, aware)
