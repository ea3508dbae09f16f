"""Pure statistical functions over arrays: paired tests, bootstrap intervals, power. No I/O, no decisions.

Tests and p-values come from scipy and statsmodels where they have them; what they lack (Tango's score
test for a paired difference against a non-zero margin, a vectorised BCa for the mean, the exact
bootstrap of a quantile) is written here on top of scipy and checked against references in the tests.
Every random draw takes a seeded ``numpy.random.Generator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize
from scipy import stats as sps

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Interval:
    """A confidence interval with its level."""

    low: float
    high: float
    level: float


# --- paired pass/fail ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairedBinary:
    """Counts of a paired pass/fail comparison (baseline → current)."""

    n: int
    lost: int
    """Pairs that passed in the baseline and fail now (b)."""
    gained: int
    """Pairs that failed in the baseline and pass now (c)."""

    @property
    def difference(self) -> float:
        """Current minus baseline pass rate."""
        return (self.gained - self.lost) / self.n if self.n else 0.0

    @property
    def discordant(self) -> int:
        return self.lost + self.gained


def paired_counts(baseline: ArrayLike, current: ArrayLike) -> PairedBinary:
    """Counts of lost and gained passes between two aligned boolean arrays."""
    a = np.asarray(baseline, dtype=bool)
    b = np.asarray(current, dtype=bool)
    return PairedBinary(int(a.size), int(np.count_nonzero(a & ~b)), int(np.count_nonzero(~a & b)))


def mcnemar_exact(counts: PairedBinary) -> float:
    """Two-sided exact McNemar p-value (statsmodels), 1.0 when there are no discordant pairs."""
    if counts.discordant == 0:
        return 1.0
    from statsmodels.stats.contingency_tables import mcnemar

    table = [[0, counts.lost], [counts.gained, 0]]
    return float(mcnemar(table, exact=True).pvalue)


def mcnemar_exact_one_sided(counts: PairedBinary) -> tuple[float, float]:
    """Exact one-sided p-values (worse: more lost than gained; better: the reverse), binomial on discordant pairs."""
    if counts.discordant == 0:
        return 1.0, 1.0
    worse = sps.binomtest(counts.lost, counts.discordant, 0.5, alternative="greater").pvalue
    better = sps.binomtest(counts.gained, counts.discordant, 0.5, alternative="greater").pvalue
    return float(worse), float(better)


def _restricted_lost_rate(counts: PairedBinary, delta: float) -> float:
    """Restricted MLE of P(pass → fail) under H0: P(fail → pass) − P(pass → fail) == delta.

    Maximises b·log p + c·log(p + δ) + r·log(1 − 2p − δ); the stationary point solves
    2n·p² + (−b − c + (2n + b − c)·δ)·p − b·δ·(1 − δ) = 0 (Tango 1998, in this module's orientation).
    """
    n, b, c = counts.n, counts.lost, counts.gained
    a_coef = 2.0 * n
    b_coef = -b - c + (2.0 * n + b - c) * delta
    c_coef = -b * delta * (1.0 - delta)
    disc = max(b_coef * b_coef - 4.0 * a_coef * c_coef, 0.0)
    return (math.sqrt(disc) - b_coef) / (2.0 * a_coef)


def tango_z(counts: PairedBinary, delta: float) -> float:
    """Tango's score statistic for H0: (current − baseline) pass rate == delta.

    Unlike a Wald interval it stays informative with few or no discordant pairs: zero discordant pairs
    out of 30 is not evidence that a difference of −1 point is excluded.
    """
    n, b, c = counts.n, counts.lost, counts.gained
    p = _restricted_lost_rate(counts, delta)
    variance = n * (2.0 * p + delta - delta * delta)
    observed = (c - b) - n * delta
    if variance <= 0:
        return 0.0 if observed == 0 else math.copysign(math.inf, observed)
    return observed / math.sqrt(variance)


def tango_pvalues(counts: PairedBinary, delta: float) -> tuple[float, float]:
    """One-sided p-values (H1: difference < delta, H1: difference > delta) from Tango's score test."""
    z = tango_z(counts, delta)
    return float(sps.norm.cdf(z)), float(sps.norm.sf(z))


def tango_interval(counts: PairedBinary, level: float) -> Interval:
    """Two-sided score interval for the paired difference, by inverting Tango's test (scipy brentq)."""
    z = float(sps.norm.ppf(0.5 + level / 2))
    estimate = counts.difference
    eps = 1e-9

    def root(target: float, lo: float, hi: float) -> float:
        def f(d: float) -> float:
            return tango_z(counts, d) - target

        if f(lo) * f(hi) > 0:
            return lo if abs(f(lo)) < abs(f(hi)) else hi
        return float(optimize.brentq(f, lo, hi, xtol=1e-10))

    low = root(z, -1 + eps, min(estimate, 1 - eps)) if estimate > -1 + eps else -1.0
    high = root(-z, max(estimate, -1 + eps), 1 - eps) if estimate < 1 - eps else 1.0
    return Interval(low, high, level)


def paired_binary_power_n(discordance: float, effect: float, alpha: float, power: float = 0.8) -> int:
    """Pairs needed to detect ``effect`` (distance from the margin) with a one-sided test (normal approx.)."""
    if effect <= 0:
        return 0
    z = float(sps.norm.ppf(1 - alpha) + sps.norm.ppf(power))
    return math.ceil(z * z * max(discordance, 1e-12) / (effect * effect))


def paired_binary_mde(n: int, discordance: float, alpha: float, power: float = 0.8) -> float:
    """Smallest shift from the margin a one-sided paired test detects with ``power`` (normal approx.)."""
    if n == 0:
        return math.inf
    z = float(sps.norm.ppf(1 - alpha) + sps.norm.ppf(power))
    return z * math.sqrt(max(discordance, 1e-12) / n)


def discordance_upper(counts: PairedBinary, level: float = 0.95) -> float:
    """Upper bound of the discordant-pair rate (Clopper-Pearson): never zero, even with none observed."""
    result = sps.binomtest(counts.discordant, counts.n).proportion_ci(confidence_level=level, method="exact")
    return float(result.high)


# --- paired scores -----------------------------------------------------------------------------------


def wilcoxon_pratt(differences: ArrayLike, alternative: str = "two-sided") -> float:
    """Wilcoxon signed-rank p-value with Pratt's treatment of zeros (scipy); 1.0 when all are zero."""
    d = np.asarray(differences, dtype=float)
    if not np.any(d != 0):
        return 1.0
    return float(sps.wilcoxon(d, zero_method="pratt", alternative=alternative).pvalue)


def sign_test(differences: ArrayLike) -> float:
    """Two-sided sign test p-value (statsmodels); 1.0 when all differences are zero."""
    from statsmodels.stats.descriptivestats import sign_test as sm_sign_test

    d = np.asarray(differences, dtype=float)
    if not np.any(d != 0):
        return 1.0
    return float(sm_sign_test(d, mu0=0)[1])


def bootstrap_mean_bca(values: ArrayLike, level: float, rng: np.random.Generator, resamples: int = 2000) -> Interval:
    """BCa interval of the mean (the jackknife of a mean is closed-form, so this is O(n·B), not O(n²)).

    Each resample is drawn as multinomial counts (``bincount`` of uniform indices) and its mean is one dot
    product, which is cheaper than gathering n values per resample.

    Matches ``scipy.stats.bootstrap(method="BCa")`` for the mean up to Monte Carlo error.
    """
    x = np.asarray(values, dtype=float)
    n = x.size
    mean = float(x.mean())
    if n < 2 or np.all(x == x[0]):
        return Interval(mean, mean, level)
    means = np.empty(resamples)
    index_type = np.int32 if n < 2**31 else np.int64
    for b in range(resamples):
        counts = np.bincount(rng.integers(0, n, size=n, dtype=index_type), minlength=n)
        means[b] = counts @ x / n
    below = (np.count_nonzero(means < mean) + 0.5 * np.count_nonzero(means == mean)) / resamples
    z0 = float(sps.norm.ppf(min(max(below, 1e-12), 1 - 1e-12)))
    jack = (x.sum() - x) / (n - 1)
    dev = jack.mean() - jack
    denominator = 6.0 * float((dev**2).sum()) ** 1.5
    acceleration = float((dev**3).sum()) / denominator if denominator > 0 else 0.0
    alpha = (1 - level) / 2
    out = []
    for tail in (alpha, 1 - alpha):
        z = float(sps.norm.ppf(tail))
        adjusted = float(sps.norm.cdf(z0 + (z0 + z) / (1 - acceleration * (z0 + z))))
        out.append(float(np.quantile(means, adjusted)))
    return Interval(out[0], out[1], level)


def t_interval(differences: ArrayLike, level: float) -> tuple[float, Interval, float]:
    """Mean difference, its two-sided t interval and standard error (scipy); used for per-case means."""
    d = np.asarray(differences, dtype=float)
    mean = float(d.mean())
    if d.size < 2 or np.all(d == d[0]):
        return mean, Interval(mean, mean, level), 0.0
    result = sps.ttest_1samp(d, 0.0)
    ci = result.confidence_interval(confidence_level=level)
    return mean, Interval(float(ci.low), float(ci.high), level), float(d.std(ddof=1) / math.sqrt(d.size))


# --- latency -----------------------------------------------------------------------------------------


def mann_whitney(a: ArrayLike, b: ArrayLike) -> float:
    """Two-sided Mann-Whitney U p-value (scipy)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size == 0 or y.size == 0:
        return math.nan
    return float(sps.mannwhitneyu(x, y, alternative="two-sided").pvalue)


def bootstrap_quantiles(values: ArrayLike, q: float, resamples: int, rng: np.random.Generator) -> FloatArray:
    """Bootstrap replicates of the q-quantile (order statistic ``ceil(q·n)``), drawn exactly.

    The k-th order statistic of a resample is the j-th of the sample with P(J <= j) = P(Bin(n, j/n) >= k),
    so replicates are drawn by inverting that CDF: O(n + B) instead of B sorts of n values.
    """
    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    k = max(1, math.ceil(q * n))
    j = np.arange(1, n + 1)
    cdf = sps.binom.sf(k - 1, n, j / n)
    picks = np.searchsorted(cdf, rng.random(resamples), side="left")
    result: FloatArray = x[np.minimum(picks, n - 1)]
    return result


def quantile_difference_interval(baseline: ArrayLike, current: ArrayLike, q: float, level: float,
                                 rng: np.random.Generator, resamples: int = 4000) -> tuple[float, Interval]:
    """Current minus baseline q-quantile, with a percentile bootstrap interval (independent samples)."""
    a, b = np.asarray(baseline, dtype=float), np.asarray(current, dtype=float)
    point = float(np.quantile(b, q, method="inverted_cdf") - np.quantile(a, q, method="inverted_cdf"))
    diffs = bootstrap_quantiles(b, q, resamples, rng) - bootstrap_quantiles(a, q, resamples, rng)
    tail = (1 - level) / 2
    return point, Interval(float(np.quantile(diffs, tail)), float(np.quantile(diffs, 1 - tail)), level)


# --- multiplicity -----------------------------------------------------------------------------------


def holm(pvalues: ArrayLike) -> FloatArray:
    """Holm-adjusted p-values (statsmodels)."""
    return _adjust(pvalues, "holm")


def benjamini_hochberg(pvalues: ArrayLike) -> FloatArray:
    """Benjamini-Hochberg adjusted p-values (statsmodels)."""
    return _adjust(pvalues, "fdr_bh")


def _adjust(pvalues: ArrayLike, method: str) -> FloatArray:
    p = np.asarray(pvalues, dtype=float)
    if p.size == 0:
        return p
    from statsmodels.stats.multitest import multipletests

    adjusted: Any = multipletests(p, method=method)[1]
    return np.asarray(adjusted, dtype=float)
