"""Statistics against their references (scipy, statsmodels, brute force) on fixed fixtures."""

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

from evalkit import stats
from evalkit.stats import PairedBinary


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


def test_exact_quantile_bootstrap_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    x = rng.lognormal(size=200)
    exact = stats.bootstrap_quantiles(x, 0.95, 40000, np.random.default_rng(4))
    brute = np.sort(x[rng.integers(0, 200, size=(20000, 200))], axis=1)[:, math.ceil(0.95 * 200) - 1]
    for q in (0.05, 0.5, 0.95):
        assert np.quantile(exact, q) == pytest.approx(np.quantile(brute, q), rel=0.05)


def test_mann_whitney_matches_scipy() -> None:
    a, b = [0.1, 0.2, 0.25, 0.3, 0.5], [0.2, 0.4, 0.45, 0.6, 0.7, 0.8]
    assert stats.mann_whitney(a, b) == pytest.approx(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)


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
