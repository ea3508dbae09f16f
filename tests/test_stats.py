"""Statistics against their references (scipy, statsmodels, brute force), and the exact size of the decision."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.descriptivestats import sign_test as sm_sign_test
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from evalkit import stats
from evalkit.stats import PairedBinary

from .exact_enumeration import (
    brute_force_pvalue,
    check_boundary_shape,
    inner_null_points,
    rejection_rate,
    size_grid,
    support,
)

ALPHA = 0.05


def test_paired_counts() -> None:
    counts = stats.paired_counts([1, 1, 0, 0, 1], [1, 0, 1, 0, 0])
    assert (counts.n, counts.lost, counts.gained) == (5, 2, 1)
    assert counts.difference == pytest.approx(-0.2)


@pytest.mark.parametrize(("lost", "gained"), [(30, 10), (3, 0), (7, 7), (1, 12)])
def test_mcnemar_matches_statsmodels_and_binomial(lost: int, gained: int) -> None:
    counts = PairedBinary(400, lost, gained)
    expected = mcnemar([[100, lost], [gained, 100]], exact=True).pvalue
    assert stats.mcnemar_exact(counts) == pytest.approx(expected)
    assert stats.mcnemar_exact(counts) == pytest.approx(
        sps.binomtest(min(lost, gained), lost + gained, 0.5).pvalue)


def _restricted_mle_reference(counts: PairedBinary, delta: float) -> float:
    """Numerically maximises the multinomial likelihood under the null (scipy), as a reference."""
    n, b, c = counts.n, counts.lost, counts.gained
    r = n - b - c

    def negative_log_likelihood(p: float) -> float:
        total = 0.0
        for count, prob in ((b, p), (c, p + delta), (r, 1 - 2 * p - delta)):
            if count:
                total += count * math.log(prob)
        return -total

    low = max(0.0, -delta) + 1e-12
    high = (1 - delta) / 2 - 1e-12
    return float(optimize.minimize_scalar(negative_log_likelihood, bounds=(low, high), method="bounded",
                                          options={"xatol": 1e-12}).x)


@pytest.mark.parametrize(("n", "lost", "gained", "delta"),
                         [(400, 30, 10, -0.01), (400, 30, 10, 0.0), (30, 0, 0, -0.01), (100, 5, 9, -0.05),
                          (250, 12, 3, 0.02)])
def test_tango_score_matches_a_numerical_restricted_mle(n: int, lost: int, gained: int, delta: float) -> None:
    counts = PairedBinary(n, lost, gained)
    p = _restricted_mle_reference(counts, delta)
    expected = ((gained - lost) - n * delta) / math.sqrt(n * (2 * p + delta - delta * delta))
    assert stats.tango_z(counts, delta) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_tango_at_zero_is_mcnemars_z() -> None:
    counts = PairedBinary(400, 30, 10)
    assert stats.tango_z(counts, 0.0) == pytest.approx((10 - 30) / math.sqrt(40))


def test_tango_interval_inverts_the_test() -> None:
    counts = PairedBinary(400, 30, 10)
    interval = stats.tango_interval(counts, 0.90)
    z = sps.norm.ppf(0.95)
    assert stats.tango_z(counts, interval.low) == pytest.approx(z, abs=1e-6)
    assert stats.tango_z(counts, interval.high) == pytest.approx(-z, abs=1e-6)
    assert interval.low < counts.difference < interval.high


def test_zero_discordant_pairs_still_give_a_real_interval() -> None:
    interval = stats.tango_interval(PairedBinary(30, 0, 0), 0.90)
    assert interval.low < -0.05 and interval.high > 0.05  # 30 quiet pairs exclude almost nothing


@given(st.integers(20, 500), st.data())
@settings(max_examples=60, deadline=None)
def test_tango_pvalues_are_probabilities_and_complementary(n: int, data: st.DataObject) -> None:
    lost = data.draw(st.integers(0, n // 2))
    gained = data.draw(st.integers(0, n - lost))
    margin = data.draw(st.sampled_from([0.0, 0.01, 0.05]))
    low, high = stats.tango_pvalues(PairedBinary(n, lost, gained), -margin)
    assert 0 <= low <= 1 and 0 <= high <= 1
    assert low + high == pytest.approx(1.0)


def test_wilcoxon_and_sign_test_match_their_references() -> None:
    d = np.array([1, 0, -1, 2, 1, 0, 1, 1, -2, 1, 0, 3, 1])
    assert stats.wilcoxon_pratt(d) == pytest.approx(sps.wilcoxon(d, zero_method="pratt").pvalue)
    assert stats.wilcoxon_pratt(d, "less") == pytest.approx(
        sps.wilcoxon(d, zero_method="pratt", alternative="less").pvalue)
    assert stats.sign_test(d) == pytest.approx(sm_sign_test(d, mu0=0)[1])
    assert stats.wilcoxon_pratt(np.zeros(5)) == 1.0


def test_bca_matches_scipy_within_monte_carlo_error() -> None:
    rng = np.random.default_rng(7)
    x = rng.gamma(2.0, 1.0, size=300) - 2.0  # skewed, so BCa's corrections matter
    ours = stats.bootstrap_mean_bca(x, 0.90, np.random.default_rng(1), resamples=20000)
    reference = sps.bootstrap((x,), np.mean, confidence_level=0.90, method="BCa", n_resamples=20000,
                              random_state=np.random.default_rng(1)).confidence_interval
    assert ours.low == pytest.approx(reference.low, abs=0.01)
    assert ours.high == pytest.approx(reference.high, abs=0.01)


def test_bca_of_constant_data_is_zero_width() -> None:
    interval = stats.bootstrap_mean_bca(np.ones(10), 0.9, np.random.default_rng(0))
    assert (interval.low, interval.high) == (1.0, 1.0)


def test_multiplicity_matches_statsmodels() -> None:
    p = [0.01, 0.04, 0.03, 0.2]
    assert list(stats.holm(p)) == pytest.approx(list(multipletests(p, method="holm")[1]))
    assert list(stats.benjamini_hochberg(p)) == pytest.approx(list(multipletests(p, method="fdr_bh")[1]))
    assert stats.holm([]).size == 0


def test_power_and_mde_are_consistent() -> None:
    n = stats.paired_binary_power_n(0.10, 0.04, 0.05)
    assert stats.paired_binary_mde(n, 0.10, 0.05) <= 0.04
    assert stats.paired_binary_mde(n - 5, 0.10, 0.05) > 0.04


def test_t_interval_matches_scipy() -> None:
    d = [0.1, -0.2, 0.0, 0.3, 0.05, -0.1]
    mean, interval, _ = stats.t_interval(d, 0.9)
    reference = sps.ttest_1samp(d, 0).confidence_interval(0.9)
    assert mean == pytest.approx(np.mean(d))
    assert (interval.low, interval.high) == pytest.approx((reference.low, reference.high))


def test_tango_vectorised_matches_the_scalar_statistic() -> None:
    lost, gained = np.array([0, 3, 30, 7, 0]), np.array([0, 0, 10, 7, 12])
    for delta in (-0.02, 0.0, 0.03):
        expected = [stats.tango_z(PairedBinary(400, int(b), int(c)), delta) for b, c in zip(lost, gained, strict=True)]
        assert list(stats.tango_z_array(400, lost, gained, delta)) == pytest.approx(expected)


# --- the exact unconditional test against the margin -------------------------------------------------


@pytest.mark.parametrize(("n", "lost", "gained", "delta"),
                         [(20, 3, 0, -0.05), (20, 0, 2, 0.0), (24, 5, 1, -0.02), (24, 1, 1, -0.10), (18, 0, 0, 0.05),
                          (24, 0, 0, -0.10), (24, 1, 0, -0.20)])
def test_exact_pvalue_matches_a_brute_force_enumeration(n: int, lost: int, gained: int, delta: float) -> None:
    reference = brute_force_pvalue(n, lost, gained, delta)
    # A supremum found on a grid can only fall short of the true one, and by little.
    ours = stats.exact_unconditional_pvalue(PairedBinary(n, lost, gained), delta, "less")
    assert reference - 5e-4 <= ours <= reference + 1e-5  # (the reference grid falls short a little too)
    # 'greater' is 'less' on the mirrored table (lost and gained swapped, delta negated).
    assert stats.exact_unconditional_pvalue(PairedBinary(n, gained, lost), -delta, "greater") == pytest.approx(ours)


def test_thirteen_lost_none_gained_is_not_a_regression_at_a_two_point_margin() -> None:
    """Tango's asymptotic test says p = 0.037 here; the exact binomial tail at the margin is 0.062."""
    counts = PairedBinary(400, 13, 0)
    assert stats.tango_pvalues(counts, -0.02)[0] < ALPHA
    exact_tail = sps.binom.sf(12, 400, 0.02)
    assert exact_tail == pytest.approx(0.0618, abs=1e-4)
    assert stats.exact_unconditional_pvalue(counts, -0.02, "less") >= exact_tail


def test_exact_interval_inverts_the_tests_and_agrees_with_them_at_the_anchors() -> None:
    for counts in (PairedBinary(400, 30, 10), PairedBinary(400, 13, 0), PairedBinary(60, 0, 0), PairedBinary(90, 2, 9)):
        interval = stats.exact_interval(counts, 0.90, anchors=(-0.02, 0.0))
        assert interval.low <= counts.difference <= interval.high
        for anchor in (-0.02, 0.0):
            assert (interval.high < anchor) == (stats.exact_unconditional_pvalue(counts, anchor, "less") < ALPHA)
            assert (interval.low > anchor) == (stats.exact_unconditional_pvalue(counts, anchor, "greater") < ALPHA)
        if -0.999 < interval.high < 0.999:
            assert stats.exact_unconditional_pvalue(counts, interval.high + 1e-3, "less") < ALPHA + 0.01


def _size(n: int, margin: float, alternative: str) -> tuple[float, list[float]]:
    grid = size_grid(margin)
    span = support(n, grid)
    check_boundary_shape(n, -margin, alternative, ALPHA, *span)
    # On the margin: 'less' (regression) at P(lost) - P(gained) = margin, 'greater' (pass) the same point.
    rates = [rejection_rate(n, -margin, alternative, ALPHA, (x + margin) / 2, (x - margin) / 2, span) for x in grid]
    if alternative == "less":  # inside the null, below the margin's discordance (no worse than the margin)
        rates += [rejection_rate(n, -margin, alternative, ALPHA, lost, gained, span)
                  for lost, gained in inner_null_points(margin)]
    return max(rates), rates


@pytest.mark.parametrize("n", [30, 100])
@pytest.mark.parametrize(("margin", "alternative"), [(0.02, "less"), (0.02, "greater"), (0.0, "less")])
def test_decision_size_is_at_most_alpha_by_enumeration(n: int, margin: float, alternative: str) -> None:
    """True difference exactly at the margin, discordance from the margin to 30%: every outcome is summed.

    ``less`` is the regression decision (worse than the margin); ``greater`` the non-inferiority ('pass')
    decision, which at the margin must be as rare as a false regression.
    """
    worst, _ = _size(n, margin, alternative)
    assert worst <= ALPHA


@pytest.mark.integration
@pytest.mark.parametrize("n", [400, 1000])
@pytest.mark.parametrize(("margin", "alternative"), [(0.02, "less"), (0.02, "greater"), (0.0, "less")])
def test_decision_size_is_at_most_alpha_by_enumeration_large(n: int, margin: float, alternative: str) -> None:
    worst, _ = _size(n, margin, alternative)
    assert worst <= ALPHA


def test_tango_alone_would_exceed_alpha_where_the_exact_test_does_not() -> None:
    """The failure the exact test fixes: 2% lost, 0% gained, N = 400, margin 2 points."""
    n, margin = 400, 0.02
    lost = np.arange(0, 60)
    tango_rejects = sps.norm.cdf(stats.tango_z_array(n, lost, 0, -margin)) < ALPHA
    tango_size = float(sps.binom.pmf(lost, n, margin)[tango_rejects].sum())
    assert tango_size > ALPHA  # 6.2% in the issue that asked for the exact test
    assert rejection_rate(n, -margin, "less", ALPHA, margin, 0.0) <= ALPHA


def test_cases_needed_from_the_discordance_with_an_honest_range() -> None:
    quiet = stats.cases_needed(PairedBinary(30, 0, 0), 0.02, ALPHA)
    assert quiet.estimate == stats.zero_discordance_cases(0.02, ALPHA) == 149
    # 149 quiet pairs do show non-inferiority at 2 points; 148 do not.
    assert stats.exact_unconditional_pvalue(PairedBinary(149, 0, 0), -0.02, "greater") < ALPHA
    assert stats.exact_unconditional_pvalue(PairedBinary(148, 0, 0), -0.02, "greater") >= ALPHA
    assert quiet.low == 149 and quiet.high > 1000  # 0 of 30 flips still allows ~10% discordance
    noisy = stats.cases_needed(PairedBinary(400, 20, 20), 0.02, ALPHA)
    assert noisy.low < noisy.estimate < noisy.high
    assert noisy.discordance_interval.low < 0.10 < noisy.discordance_interval.high


# --- proportions, rank tests, latency ----------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(0, 30), (3, 30), (30, 30), (13, 400), (199, 200)])
@pytest.mark.parametrize("level", [0.90, 0.95])
def test_proportion_intervals_match_statsmodels(k: int, n: int, level: float) -> None:
    for ours, theirs in (("wilson", "wilson"), ("exact", "beta")):
        interval = stats.proportion_interval(k, n, level, method=ours)
        low, high = proportion_confint(k, n, alpha=1 - level, method=theirs)
        assert (interval.low, interval.high) == pytest.approx((low, high), abs=1e-10)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_mann_whitney_returns_the_statistic_and_matches_scipy(alternative: str) -> None:
    baseline, current = [0.1, 0.2, 0.25, 0.3, 0.5], [0.2, 0.4, 0.45, 0.6, 0.7, 0.8]
    result = stats.mann_whitney(baseline, current, alternative)
    reference = sps.mannwhitneyu(current, baseline, alternative=alternative)
    assert (result.statistic, result.pvalue) == pytest.approx((reference.statistic, reference.pvalue))
    assert result.statistic == sum(c > b for c in current for b in baseline) + 0.5 * sum(
        c == b for c in current for b in baseline)


def _paired_latencies(rng: np.random.Generator, n: int, ratio: float, replays: int) -> tuple[np.ndarray, np.ndarray]:
    """Each case has its own typical latency; each call adds its own noise; the current arm is ``ratio`` slower."""
    case = rng.lognormal(np.log(0.5), 0.6, size=(replays, n))
    base = case * rng.lognormal(0, 0.25, size=(replays, n))
    now = case * ratio * rng.lognormal(0, 0.25, size=(replays, n))
    return base, now


def test_latency_ratio_test_matches_scipy_and_detects_a_planted_slowdown() -> None:
    rng = np.random.default_rng(8)
    base, now = _paired_latencies(rng, 200, 1.3, 200)
    first = stats.latency_ratio_test(base[0], now[0])
    reference = sps.wilcoxon(np.log(now[0]) - np.log(base[0]), zero_method="pratt", alternative="greater")
    assert (first.statistic, first.pvalue) == pytest.approx((reference.statistic, reference.pvalue))
    detected = np.mean([stats.latency_ratio_test(b, c).pvalue < ALPHA for b, c in zip(base, now, strict=True)])
    assert detected >= 0.90  # +30% at 200 cases
    same_base, same_now = _paired_latencies(np.random.default_rng(9), 200, 1.0, 1000)
    flagged = np.mean([stats.latency_ratio_test(b, c).pvalue < ALPHA for b, c in zip(same_base, same_now,
                                                                                         strict=True)])
    assert flagged <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / 1000)


def test_p95_ratio_interval_matches_scipys_paired_bootstrap() -> None:
    rng = np.random.default_rng(4)
    base, now = _paired_latencies(rng, 300, 1.2, 1)
    point, ours = stats.quantile_ratio_interval(base[0], now[0], 0.95, 0.90, np.random.default_rng(1), 20000)

    def ratio(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.quantile(b, 0.95, method="inverted_cdf", axis=axis) / np.quantile(
            a, 0.95, method="inverted_cdf", axis=axis)

    reference = sps.bootstrap((base[0], now[0]), ratio, paired=True, vectorized=True, confidence_level=0.90,
                              method="percentile", n_resamples=20000, random_state=np.random.default_rng(2))
    assert point == pytest.approx(float(ratio(base[0], now[0])))
    assert ours.low == pytest.approx(reference.confidence_interval.low, rel=0.02)
    assert ours.high == pytest.approx(reference.confidence_interval.high, rel=0.02)


def test_quantile_log_se_agrees_with_the_bootstrap() -> None:
    x = np.random.default_rng(5).lognormal(np.log(0.2), 0.5, size=400)
    draws = np.random.default_rng(6).integers(0, x.size, size=(4000, x.size))
    bootstrap_sd = float(np.std(np.log(np.quantile(x[draws], 0.95, method="inverted_cdf", axis=1))))
    assert stats.quantile_log_se(x, 0.95) == pytest.approx(bootstrap_sd, rel=0.35)


def test_run_level_test_is_a_t_prediction_interval() -> None:
    baseline, current = np.log([0.101, 0.097, 0.105, 0.099]), np.log([0.112])
    result = stats.run_level_test(baseline, current, margin=math.log1p(0.10), level=0.90)
    s = float(np.std(baseline, ddof=1))
    se = s * math.sqrt(1 / 4 + 1)
    t = (current[0] - baseline.mean() - math.log1p(0.10)) / se
    assert result.standard_error == pytest.approx(se)
    assert result.p_worse == pytest.approx(sps.t.sf(t, 3)) and result.p_within == pytest.approx(sps.t.cdf(t, 3))
    assert result.interval.high - result.difference == pytest.approx(sps.t.ppf(0.95, 3) * se)


@pytest.mark.parametrize("runs", [3, 6])
def test_run_level_false_alarms_at_most_alpha_when_runs_are_exchangeable(runs: int) -> None:
    """Run-to-run noise far larger than within-run noise (the loopback A/A finding): a t-test over runs
    stays at alpha where a test over calls would alarm almost always."""
    rng = np.random.default_rng(runs)
    replays = 2000
    values = rng.normal(0.0, 0.15, size=(replays, runs + 1))  # log p95 of each run
    alarms = 0
    for row in values:
        result = stats.run_level_test(row[:runs], row[runs:], margin=0.0, level=0.90,
                                      baseline_variance=np.full(runs, 0.02**2), current_variance=0.02**2)
        alarms += result.p_worse < ALPHA
    assert alarms / replays <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / replays)
