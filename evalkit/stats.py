"""Pure statistical functions over arrays: paired tests, bootstrap intervals, power. No I/O, no decisions.

Tests and p-values come from scipy and statsmodels where they have them; what they lack (Tango's score
test for a paired difference against a non-zero margin, a vectorised BCa for the mean, the exact
bootstrap of a quantile) is written here on top of scipy and checked against references in the tests.
Every random draw takes a seeded ``numpy.random.Generator``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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


def _restricted_lost_rate(n: Any, lost: Any, gained: Any, delta: float) -> Any:
    """Restricted MLE of P(pass → fail) under H0: P(fail → pass) − P(pass → fail) == delta (arrays welcome).

    Maximises b·log p + c·log(p + δ) + r·log(1 − 2p − δ); the stationary point solves
    2n·p² + (−b − c + (2n + b − c)·δ)·p − b·δ·(1 − δ) = 0 (Tango 1998, in this module's orientation).
    """
    a_coef = 2.0 * n
    b_coef = -lost - gained + (2.0 * n + lost - gained) * delta
    c_coef = -lost * delta * (1.0 - delta)
    disc = np.maximum(b_coef * b_coef - 4.0 * a_coef * c_coef, 0.0)
    return (np.sqrt(disc) - b_coef) / (2.0 * a_coef)


def tango_z_array(n: int, lost: ArrayLike, gained: ArrayLike, delta: float) -> FloatArray:
    """Tango's score statistic for every (lost, gained) table of ``n`` pairs at once (see :func:`tango_z`)."""
    b = np.asarray(lost, dtype=float)
    c = np.asarray(gained, dtype=float)
    p = _restricted_lost_rate(float(n), b, c, delta)
    variance = n * (2.0 * p + delta - delta * delta)
    observed = (c - b) - n * delta
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(variance > 0, observed / np.sqrt(np.maximum(variance, 1e-300)), np.sign(observed) * np.inf)
    z = np.where((variance <= 0) & (observed == 0), 0.0, z)
    result: FloatArray = np.asarray(z, dtype=float)
    return result


def tango_z(counts: PairedBinary, delta: float) -> float:
    """Tango's score statistic for H0: (current − baseline) pass rate == delta.

    Unlike a Wald interval it stays informative with few or no discordant pairs: zero discordant pairs
    out of 30 is not evidence that a difference of −1 point is excluded.
    """
    return float(tango_z_array(counts.n, counts.lost, counts.gained, delta))


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


# --- the exact unconditional test against a margin ---------------------------------------------------

EXACT_MAX_DISCORDANT = 1000
"""Up to this many discordant pairs the pass-rate decision uses the exact unconditional test; beyond (where
the asymptotics hold), Tango's score test."""
NUISANCE_GAMMA = 1e-4
"""Berger-Boos γ: the nuisance supremum is taken over a 99.99% interval of the discordance, and γ is added."""
_NUISANCE_GRID = 48
_NUISANCE_FINE = 9


def _first_at_or_below(n: int, totals: NDArray[np.int64], z_limit: float, delta: float) -> NDArray[np.int64]:
    """For each discordant total D, the smallest lost count b whose table (b, D − b) has Tango z <= z_limit.

    Tango's z falls as b grows with D fixed (more losses, fewer gains), so a vectorised bisection finds the
    boundary for every D at once; D + 1 means no such table.
    """
    lo = np.zeros_like(totals)
    hi = totals + 1
    while True:
        open_ = lo < hi
        if not open_.any():
            return lo
        mid = (lo + hi) // 2
        z = tango_z_array(n, np.minimum(mid, totals), totals - np.minimum(mid, totals), delta)
        below = (z <= z_limit) & (mid <= totals)
        hi = np.where(open_ & below, mid, hi)
        lo = np.where(open_ & ~below, mid + 1, lo)


def _windows(n: int, discordance: FloatArray) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The discordant totals worth summing at each discordance: ±8 standard deviations (beyond: < 1e-14)."""
    sd = np.sqrt(n * discordance * (1 - discordance))
    lo = np.clip(np.floor(n * discordance - 8 * sd - 2), 0, n).astype(np.int64)
    hi = np.clip(np.ceil(n * discordance + 8 * sd + 2), 0, n).astype(np.int64)
    return lo, hi


def _tail_probabilities(n: int, delta: float, lost_from: NDArray[np.int64], offset: int,
                        discordance: FloatArray) -> FloatArray:
    """P(lost >= lost_from[D − offset]) for tables of n pairs at null points (difference delta, each discordance).

    The discordant total D is Binomial(n, discordance); given D, the lost count is Binomial(D, π) with
    π = P(pass → fail | discordant) = (discordance − delta) / (2 · discordance), at most 1 (a discordance
    below −delta: every discordant pair lost). D is summed over :func:`_windows`, all null points in one
    vectorised pass.
    """
    from scipy import special

    x = np.asarray(discordance, dtype=float)
    lo, hi = _windows(n, x)
    widths = hi - lo + 1
    point = np.repeat(np.arange(x.size), widths)
    totals = np.arange(widths.sum()) - np.repeat(np.cumsum(widths) - widths, widths) + np.repeat(lo, widths)
    p = x[point]
    log_pmf = (special.gammaln(n + 1) - special.gammaln(totals + 1) - special.gammaln(n - totals + 1)
               + special.xlogy(totals, p) + special.xlog1py(n - totals, -p))
    with np.errstate(divide="ignore", invalid="ignore"):
        pi = np.clip(np.where(p > 0, (p - delta) / (2 * p), 0.5), 0.0, 1.0)
    first = lost_from[totals - offset]
    # P(Bin(D, π) >= first): 1 when first <= 0, 0 when first > D, else bdtrc(first - 1, D, π).
    # Where the boundary is more than 10 standard deviations from D·π the tail is 0 or 1 to double precision.
    centre = totals * pi
    spread = 10 * np.sqrt(totals * pi * (1 - pi)) + 1
    tails = ((first <= 0) | (first < centre - spread)).astype(float)
    inner = np.flatnonzero((first > 0) & (first <= totals) & (np.abs(first - centre) <= spread))
    tails[inner] = special.bdtrc(first[inner] - 1, totals[inner], pi[inner])
    result: FloatArray = np.asarray(np.bincount(point, weights=np.exp(log_pmf) * tails, minlength=x.size), dtype=float)
    return result


def exact_unconditional_pvalue(counts: PairedBinary, delta: float, alternative: str) -> float:
    """Exact unconditional p-value of the paired difference against ``delta``, tables ordered by Tango's z.

    ``alternative="less"``: H1 difference < delta (the change is worse than delta allows);
    ``"greater"``: H1 difference > delta. The p-value is the largest probability, over every point of the
    null (each discordance, the nuisance parameter, at its least favourable difference), of a table at least
    as extreme as the one observed,
    so the test's size never exceeds alpha whatever the discordance (Chan et al. 2003 for the paired case).
    The supremum is restricted to discordances in a 1 − γ exact interval of the observed one, with γ added
    to the p-value (Berger & Boos 1994): still exact, less conservative, and a narrow range the grid covers
    finely (then a finer grid around the maximum).
    """
    if alternative not in ("less", "greater"):
        raise ValueError(f"alternative: expected 'less' or 'greater', got {alternative!r}")
    n = counts.n
    if n == 0:
        return 1.0
    # Mirror "greater" onto "less": swapping lost and gained negates the difference and Tango's z.
    b, d = (counts.lost, delta) if alternative == "less" else (counts.gained, -delta)
    if d <= -1.0:
        return 1.0
    if d >= 1.0:
        return 0.0
    c = counts.discordant - b
    z_obs = float(tango_z_array(n, b, c, d))
    # Ties within floating error count as "at least as extreme" (the conservative side).
    z_limit = z_obs + 1e-9 * (1.0 + abs(z_obs)) if math.isfinite(z_obs) else z_obs
    if d == 0.0 and float(tango_z_array(n, 0, 0, d)) <= z_limit:
        return 1.0  # the all-concordant table is as extreme as the one observed: nothing is evidence
    # Berger & Boos (1994): the supremum over a 1 - gamma confidence interval of the discordance, plus gamma.
    # The null (difference >= d) holds discordances below |d| too when d < 0: there the worst case has every
    # discordant pair lost (π = 1, a difference of -discordance >= d), which the clip in the tail sum gives.
    plausible = proportion_interval(counts.discordant, n, 1 - NUISANCE_GAMMA, method="exact")
    low, high = max(d, plausible.low, 1e-12), min(plausible.high, 1.0)
    if low > high:
        return NUISANCE_GAMMA  # no discordance the null allows is plausible
    grid = np.linspace(low, high, _NUISANCE_GRID)
    if low < -d < high:  # the least favourable difference changes at a discordance of -d: a kink to include
        grid = np.sort(np.append(grid, -d))
    starts, ends = _windows(n, grid)
    offset = int(starts.min())
    lost_from = _first_at_or_below(n, np.arange(offset, int(ends.max()) + 1), z_limit, d)
    values = _tail_probabilities(n, d, lost_from, offset, grid)
    best = int(np.argmax(values))
    left, right = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    finer = _tail_probabilities(n, d, lost_from, offset, np.linspace(left, right, _NUISANCE_FINE))
    return float(min(1.0, max(values.max(), finer.max()) + NUISANCE_GAMMA))


def exact_interval(counts: PairedBinary, level: float, anchors: Sequence[float] = ()) -> Interval:
    """Two-sided interval for the paired difference, inverting the exact unconditional one-sided tests.

    The upper end is where the 'less' test's p-value crosses (1 − level)/2, the lower end where the
    'greater' test's does. At each of ``anchors`` (the margin, zero) the p-value is computed first and the
    root is searched only on the side it implies, so a verdict read from the interval and one read from the
    p-values at those points always agree.
    """
    tail = (1 - level) / 2
    estimate = counts.difference
    eps = 1e-9

    def end(alternative: str, direction: int) -> float:
        def f(d: float) -> float:
            return exact_unconditional_pvalue(counts, d, alternative) - tail

        far = direction * (1 - eps)
        points = sorted({estimate, far, *(a for a in anchors if direction * (a - estimate) > 0)},
                        key=lambda x: direction * x)
        inside = points[0]
        if f(inside) < 0:
            return inside
        for outside in points[1:]:
            if f(outside) < 0:
                return float(optimize.brentq(f, inside, outside, xtol=min(2e-4, 0.1 / max(counts.n, 1))))
            inside = outside
        return far

    return Interval(end("greater", -1), end("less", 1), level)


def zero_discordance_cases(margin: float, alpha: float) -> int:
    """Pairs needed to show non-inferiority when no pair flips: (1 − margin)^n + γ < alpha (the exact test's floor)."""
    if margin <= 0 or alpha <= NUISANCE_GAMMA:
        return 0
    return math.floor(math.log(alpha - NUISANCE_GAMMA) / math.log1p(-margin)) + 1


def noninferiority_cases(discordance: float, margin: float, alpha: float, power: float = 0.8) -> int:
    """Pairs needed to show non-inferiority at ``margin`` with ``power`` if nothing truly changed.

    Normal approximation of Tango's test (variance p_d − m² under the null boundary, p_d when nothing
    changed), never fewer than :func:`zero_discordance_cases` (the exact test's floor with no flips).
    """
    if margin <= 0:
        return 0
    za, zb = float(sps.norm.ppf(1 - alpha)), float(sps.norm.ppf(power))
    null_variance = max(discordance - margin * margin, 0.0)
    n = ((za * math.sqrt(null_variance) + zb * math.sqrt(max(discordance, 0.0))) / margin) ** 2
    return max(math.ceil(n), zero_discordance_cases(margin, alpha))


@dataclass(frozen=True)
class CasesNeeded:
    """Cases needed to show non-inferiority if nothing changed, from the observed discordance, with a range."""

    estimate: int
    low: int
    high: int
    discordance: float
    discordance_interval: Interval


def cases_needed(counts: PairedBinary, margin: float, alpha: float, power: float = 0.8,
                 level: float = 0.90) -> CasesNeeded:
    """:func:`noninferiority_cases` at the observed discordance and at both ends of its exact interval."""
    interval = proportion_interval(counts.discordant, counts.n, level, method="exact")
    rate = counts.discordant / counts.n if counts.n else 0.0
    return CasesNeeded(noninferiority_cases(rate, margin, alpha, power),
                       noninferiority_cases(interval.low, margin, alpha, power),
                       noninferiority_cases(interval.high, margin, alpha, power), rate, interval)


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
    return proportion_interval(counts.discordant, counts.n, level, method="exact").high


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


# --- proportions ------------------------------------------------------------------------------------


def proportion_interval(successes: int, n: int, level: float = 0.95, method: str = "wilson") -> Interval:
    """Two-sided interval for a proportion: ``wilson`` (score) or ``exact`` (Clopper-Pearson).

    Both stay inside [0, 1] and are informative at 0 or n successes, where a Wald interval collapses.
    """
    if n <= 0:
        return Interval(0.0, 1.0, level)
    if method == "exact":
        from scipy import special

        tail = (1 - level) / 2
        low = float(special.betaincinv(successes, n - successes + 1, tail)) if successes > 0 else 0.0
        high = float(special.betaincinv(successes + 1, n - successes, 1 - tail)) if successes < n else 1.0
        return Interval(low, high, level)
    if method != "wilson":
        raise ValueError(f"method: expected 'wilson' or 'exact', got {method!r}")
    z = float(sps.norm.ppf(0.5 + level / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return Interval(max(0.0, centre - half), min(1.0, centre + half), level)


# --- latency -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RankTest:
    """A rank test's statistic and p-value, with the alternative it tested."""

    statistic: float
    pvalue: float
    alternative: str


def mann_whitney(baseline: ArrayLike, current: ArrayLike, alternative: str = "two-sided") -> RankTest:
    """Mann-Whitney U of ``current`` against ``baseline`` (scipy); ``greater``: current tends to be larger.

    The statistic is U of ``current`` (the number of (current, baseline) pairs where current is larger,
    ties counting one half). Independent samples only: calls of one run are not independent draws of a
    run's conditions, so the gate does not use this for latency against a stored baseline.
    """
    x, y = np.asarray(current, dtype=float), np.asarray(baseline, dtype=float)
    if x.size == 0 or y.size == 0:
        return RankTest(math.nan, math.nan, alternative)
    result = sps.mannwhitneyu(x, y, alternative=alternative)
    return RankTest(float(result.statistic), float(result.pvalue), alternative)


def latency_ratio_test(baseline: ArrayLike, current: ArrayLike, alternative: str = "greater") -> RankTest:
    """Wilcoxon signed-rank test (Pratt's zeros) on paired log latency ratios, log(current / baseline).

    For latencies measured in pairs (the same case, both arms, in the same window): ``greater`` tests
    whether the current arm is slower. The statistic is scipy's (the sum of the ranks of positive ratios
    for a one-sided test).
    """
    a, b = np.asarray(baseline, dtype=float), np.asarray(current, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"expected paired latencies of equal length, got {a.size} and {b.size}")
    d = np.log(np.maximum(b, 1e-12)) - np.log(np.maximum(a, 1e-12))
    if not np.any(d != 0):
        return RankTest(0.0, 1.0, alternative)
    result = sps.wilcoxon(d, zero_method="pratt", alternative=alternative)
    return RankTest(float(result.statistic), float(result.pvalue), alternative)


def quantile_ratio_interval(baseline: ArrayLike, current: ArrayLike, q: float, level: float,
                            rng: np.random.Generator, resamples: int = 4000) -> tuple[float, Interval]:
    """Ratio of the q-quantiles of paired latencies (current / baseline), with a paired bootstrap interval.

    Pairs are resampled together, so what the pairing cancels (the case, the moment) stays cancelled.
    Quantiles are order statistics (``inverted_cdf``); each resample's is found with a partial sort.
    """
    a, b = np.asarray(baseline, dtype=float), np.asarray(current, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"expected paired latencies of equal, non-zero length, got {a.size} and {b.size}")
    n = a.size
    k = max(1, math.ceil(q * n)) - 1
    point = float(np.quantile(b, q, method="inverted_cdf") / np.quantile(a, q, method="inverted_cdf"))
    ratios = np.empty(resamples)
    chunk = max(1, int(2_000_000 // n))
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        index = rng.integers(0, n, size=(rows, n))
        top_a = np.partition(a[index], k, axis=1)[:, k]
        top_b = np.partition(b[index], k, axis=1)[:, k]
        ratios[start: start + rows] = top_b / top_a
    tail = (1 - level) / 2
    return point, Interval(float(np.quantile(ratios, tail)), float(np.quantile(ratios, 1 - tail)), level)


def quantile_log_se(values: ArrayLike, q: float) -> float:
    """Standard error of log(q-quantile), distribution-free: half the log-width of its ±1 sd order-statistic band.

    The j-th order statistic lies below the true quantile with probability P(Bin(n, q) >= j), so the
    order statistics at the 16th and 84th percentiles of Bin(n, q) bracket it like ±1 standard error.
    """
    x = np.sort(np.maximum(np.asarray(values, dtype=float), 1e-12))
    n = x.size
    if n < 2:
        return math.inf
    lo = int(min(max(sps.binom.ppf(0.1587, n, q), 1), n))
    hi = int(min(max(sps.binom.ppf(0.8413, n, q) + 1, 1), n))
    return float((math.log(x[hi - 1]) - math.log(x[lo - 1])) / 2)


@dataclass(frozen=True)
class RunLevelTest:
    """A run-level statistic of the current run(s) against the spread of several baseline runs.

    Oriented so that higher is worse (latency, error rate): ``difference`` is current − baseline mean.
    """

    difference: float
    standard_error: float
    spread: float
    """The run-to-run standard deviation used (never below the runs' own sampling error)."""
    df: int
    interval: Interval
    p_worse: float
    """H1: difference > margin."""
    p_within: float
    """H1: difference < margin."""
    p_better: float
    """H1: difference < 0."""


def run_level_test(baseline: ArrayLike, current: ArrayLike, *, margin: float, level: float,
                   baseline_variance: ArrayLike | None = None, current_variance: float = 0.0) -> RunLevelTest:
    """Compares per-run values (one per run: a log p95, an error rate …), the run being the unit.

    The baseline runs' sample variance s² (k − 1 degrees of freedom) is the run-to-run variance: it holds
    both each run's own sampling error and what changes between runs (load, the provider, the hour). A new
    run differs from the baseline mean by a t-distributed amount with standard error
    sqrt(s²/k + s²/k_c) — a prediction interval, not a confidence interval of one run's calls. ``s²`` is
    never taken below the runs' mean within-run variance (``baseline_variance``), and the current side's
    own sampling variance, when larger than the baseline runs', widens it.
    """
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(current, dtype=float)
    k, kc = b.size, max(c.size, 1)
    if k < 2:
        raise ValueError(f"expected at least 2 baseline runs for a run-level variance, got {k}")
    within = float(np.mean(np.asarray(baseline_variance, dtype=float))) if baseline_variance is not None else 0.0
    s2 = max(float(np.var(b, ddof=1)), within)
    current_s2 = max(s2 - within, 0.0) + max(current_variance, within)
    se = math.sqrt(s2 / k + current_s2 / kc)
    difference = float(c.mean() - b.mean())
    df = k - 1
    t = float(sps.t.ppf(0.5 + level / 2, df))
    interval = Interval(difference - t * se, difference + t * se, level)
    if se == 0:  # identical runs and no within-run variance given: only the sign of the difference is known
        return RunLevelTest(difference, 0.0, 0.0, df, interval, 0.0 if difference > margin else 1.0,
                            0.0 if difference < margin else 1.0, 0.0 if difference < 0 else 1.0)
    return RunLevelTest(difference, se, math.sqrt(s2), df, interval, float(sps.t.sf((difference - margin) / se, df)),
                        float(sps.t.cdf((difference - margin) / se, df)), float(sps.t.cdf(difference / se, df)))


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
