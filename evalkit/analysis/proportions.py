"""Pure statistics over counts for traffic coverage and router drift. No I/O, no decisions.

Intervals and tests come from statsmodels and scipy where they have them (Wilson intervals, χ² tests,
the exact binomial test). What they lack is written here on numpy and checked against them in the tests:

- the post-stratified pass rate (routes as strata, traffic shares as weights) with a Wilson interval at
  Kish's effective sample size;
- the permutation test of the total variation distance between two windows (exact: it draws the first
  window from the multivariate hypergeometric given both windows' route totals);
- PSI with a threshold that grows with sampling noise (PSI · nm/(n+m) is asymptotically χ² with k − 1
  degrees of freedom when nothing changed, so the usual fixed 0.1 cut-off fires on small samples).

Functions take numpy arrays and broadcast over leading axes, so a simulation over thousands of seeds is one
call. Every random draw takes a seeded ``numpy.random.Generator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

FloatArray = NDArray[np.float64]


def _z(level: float) -> float:
    return float(sps.norm.ppf(0.5 + level / 2))


# --- one proportion ----------------------------------------------------------------------------------


def wilson_interval(count: ArrayLike, nobs: ArrayLike, level: float = 0.95) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval (statsmodels ``proportion_confint``); (0, 1) where there are no observations.

    ``count`` may be fractional (the sum of per-case pass fractions when cases are repeated).
    """
    from statsmodels.stats.proportion import proportion_confint

    c = np.asarray(count, dtype=float)
    n = np.asarray(nobs, dtype=float)
    c, n = np.broadcast_arrays(c, n)
    low = np.zeros(c.shape)
    high = np.ones(c.shape)
    some = n > 0
    if np.any(some):
        lo, hi = proportion_confint(c[some], n[some], alpha=1 - level, method="wilson")
        low[some] = np.clip(lo, 0.0, 1.0)
        high[some] = np.clip(hi, 0.0, 1.0)
    return low, high


def wilson_half_width(p: ArrayLike, n: ArrayLike, level: float = 0.95) -> FloatArray:
    """Half the width of the Wilson interval at observed proportion ``p`` with ``n`` observations."""
    z = _z(level)
    pp = np.asarray(p, dtype=float)
    nn = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        width = z * np.sqrt(pp * (1 - pp) / nn + z * z / (4 * nn * nn)) / (1 + z * z / nn)
    result: FloatArray = np.where(nn > 0, width, 0.5)
    return result


def cases_for_precision(half_width: float, p: float = 0.5, level: float = 0.95) -> int:
    """The fewest cases whose Wilson interval at pass rate ``p`` is at most ± ``half_width`` wide."""
    if not 0 < half_width < 0.5:
        raise ValueError(f"half_width: expected a number in (0, 0.5), got {half_width}")
    high = 1
    while float(wilson_half_width(p, high, level)) > half_width:
        high *= 2
    low = high // 2
    while high - low > 1:  # the half width falls as n grows, so bisect on n
        middle = (low + high) // 2
        if float(wilson_half_width(p, middle, level)) > half_width:
            low = middle
        else:
            high = middle
    return max(high, 1)


def planning_rate(low: float | None, high: float | None) -> float:
    """The pass rate to plan a sample size for: the point of an interval nearest 0.5 (0.5 with no data).

    Planning at the observed rate would promise a narrow interval after three lucky passes; the point of
    the interval nearest 0.5 is the least favourable rate the data still allow.
    """
    if low is None or high is None:
        return 0.5
    return min(max(0.5, low), high)


# --- post-stratification -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostStratified:
    """A traffic-weighted pass rate over routes (strata) with its interval; arrays when inputs are batched."""

    estimate: Any
    low: Any
    high: Any
    variance: Any
    effective_n: Any
    """Kish's effective sample size: the number of independent cases the estimate is worth."""


def post_stratified(traffic: ArrayLike, passed: ArrayLike, cases: ArrayLike, level: float = 0.95) -> PostStratified:
    """Post-stratified pass rate Σ w_h p_h with w_h the traffic share of route h among the given routes.

    The last axis holds the routes; every route must have at least one case. The interval is Wilson's at
    Kish's effective sample size 1 / Σ (w_h² / n_h): the cases a simple random sample would need for the same
    precision under these weights. It stays inside [0, 1], carries variance when a route's few cases all
    passed, and holds its level when the heaviest route has only a handful of cases; it is conservative when
    routes' pass rates differ widely (the spread between routes is not sampling noise). Checked by
    simulation in the tests.
    """
    t = np.asarray(traffic, dtype=float)
    x = np.asarray(passed, dtype=float)
    n = np.asarray(cases, dtype=float)
    if np.any(n <= 0):
        raise ValueError("cases: expected at least one case in every route, got a route with none")
    z = _z(level)
    w = t / t.sum(axis=-1, keepdims=True)
    estimate = (w * x / n).sum(axis=-1)
    effective = 1.0 / (w * w / n).sum(axis=-1)
    spread = estimate * (1 - estimate)
    half = z * np.sqrt(spread / effective + z * z / (4 * effective**2)) / (1 + z * z / effective)
    centre = (estimate + z * z / (2 * effective)) / (1 + z * z / effective)
    return PostStratified(estimate, np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0),
                          spread / effective, effective)


# --- distances between distributions --------------------------------------------------------------------


def shares(counts: ArrayLike) -> FloatArray:
    """Counts → proportions along the last axis (all zeros stay zeros)."""
    c = np.asarray(counts, dtype=float)
    total = c.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        result: FloatArray = np.where(total > 0, c / np.where(total > 0, total, 1.0), 0.0)
    return result


def total_variation(p: ArrayLike, q: ArrayLike) -> FloatArray:
    """Total variation distance ½ Σ |p − q| between two distributions (last axis)."""
    result: FloatArray = 0.5 * np.abs(np.asarray(p, dtype=float) - np.asarray(q, dtype=float)).sum(axis=-1)
    return result


def total_variation_upper(old: ArrayLike, new: ArrayLike, level: float = 0.95) -> FloatArray:
    """One-sided upper confidence bound of the TVD between two windows' counts (delta method).

    TVD is ½ Σ s_i (q_i − p_i) with s_i the sign of each route's change; the variance of that contrast under
    two independent multinomials is Σ s_i² (p_i/n + q_i/m) − (Σ s_i p_i)²/n − (Σ s_i q_i)²/m, over 4.
    """
    a = np.asarray(old, dtype=float)
    b = np.asarray(new, dtype=float)
    n = a.sum(axis=-1)
    m = b.sum(axis=-1)
    pa, pb = shares(a), shares(b)
    sign = np.sign(pb - pa)
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = 0.25 * ((sign * sign * (pa / n[..., None] + pb / m[..., None])).sum(axis=-1)
                           - (sign * pa).sum(axis=-1) ** 2 / n - (sign * pb).sum(axis=-1) ** 2 / m)
    z = float(sps.norm.ppf(level))
    result: FloatArray = total_variation(pa, pb) + z * np.sqrt(np.maximum(np.nan_to_num(variance), 0.0))
    return result


def total_variation_pvalue(old: ArrayLike, new: ArrayLike, rng: np.random.Generator, draws: int = 2000,
                           stop_above: float | None = None) -> FloatArray:
    """Permutation p-value of the TVD between two windows (H0: both drew from one route distribution).

    Conditional on each route's total over both windows, the first window's counts are multivariate
    hypergeometric under H0; the draws are exact permutations of the requests, so the test holds its
    level at any sample size (a χ² test is liberal when some routes expect only a few requests).
    p = (1 + #{TVD* ≥ TVD}) / (1 + draws).

    With ``stop_above`` (a level α), drawing stops as soon as enough replicates reach the observed TVD that
    p cannot fall below α (Besag and Clifford's sequential p-value, count / draws so far, is returned then):
    the decision at α is the one all ``draws`` would give, at a fraction of the cost when nothing changed.
    """
    a, b = np.broadcast_arrays(np.asarray(old, dtype=np.int64), np.asarray(new, dtype=np.int64))
    flat_a = a.reshape(-1, a.shape[-1])
    flat_b = b.reshape(-1, b.shape[-1])
    out = np.empty(flat_a.shape[0])
    enough = math.inf if stop_above is None else max(math.ceil(stop_above * (draws + 1) - 1), 1)
    for row, (x, y) in enumerate(zip(flat_a, flat_b, strict=True)):
        n, m = int(x.sum()), int(y.sum())
        if n == 0 or m == 0:
            out[row] = 1.0
            continue
        pooled = x + y
        # A tolerance so that ties (common with few requests) count as at least as extreme.
        observed = 0.5 * float(np.abs(y / m - x / n).sum()) - 1e-12
        done = exceeding = 0
        for batch in ((min(100, draws), draws - min(100, draws)) if stop_above is not None else (draws,)):
            if batch == 0:
                continue
            drawn = rng.multivariate_hypergeometric(pooled, n, size=batch)
            replicate = 0.5 * np.abs((pooled - drawn) / m - drawn / n).sum(axis=-1)
            exceeding += int(np.count_nonzero(replicate >= observed))
            done += batch
            if exceeding >= enough:
                break
        out[row] = exceeding / done if done < draws else (1 + exceeding) / (1 + draws)
    result: FloatArray = out.reshape(a.shape[:-1])
    return result


def psi(old: ArrayLike, new: ArrayLike, pseudo: float = 0.5) -> FloatArray:
    """Population stability index Σ (q − p) ln(q / p), with ``pseudo`` counts added to every route.

    The pseudo count keeps a route seen in only one window finite (a route that appears from nowhere has an
    infinite PSI otherwise).
    """
    a = np.asarray(old, dtype=float) + pseudo
    b = np.asarray(new, dtype=float) + pseudo
    p = a / a.sum(axis=-1, keepdims=True)
    q = b / b.sum(axis=-1, keepdims=True)
    result: FloatArray = ((q - p) * np.log(q / p)).sum(axis=-1)
    return result


def psi_threshold(n: ArrayLike, m: ArrayLike, routes: int, alpha: float, floor: float = 0.1) -> FloatArray:
    """A PSI cut-off that accounts for sample size: max(floor, χ²_{k−1, 1−α} · (1/n + 1/m)).

    With nothing changed, PSI · nm/(n + m) is asymptotically χ² with k − 1 degrees of freedom, so the second
    term is the PSI that noise alone exceeds with probability α; ``floor`` keeps the usual 0.1 as the
    smallest shift worth a flag when the samples are large.
    """
    nn = np.asarray(n, dtype=float)
    mm = np.asarray(m, dtype=float)
    critical = float(sps.chi2.ppf(1 - alpha, max(routes - 1, 1)))
    result: FloatArray = np.maximum(floor, critical * (1 / nn + 1 / mm))
    return result


def chi2_homogeneity(old: ArrayLike, new: ArrayLike) -> tuple[FloatArray, NDArray[np.int64], FloatArray]:
    """Pearson's χ² test that two windows share one route distribution (statistic, df, p), batched.

    Routes with no requests in either window are left out (as ``scipy.stats.chi2_contingency`` requires).
    """
    a = np.asarray(old, dtype=float)
    b = np.asarray(new, dtype=float)
    n = a.sum(axis=-1, keepdims=True)
    m = b.sum(axis=-1, keepdims=True)
    pooled = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        ea = pooled * n / (n + m)
        eb = pooled * m / (n + m)
        cells = np.where(pooled > 0, (a - ea) ** 2 / ea + (b - eb) ** 2 / eb, 0.0)
    statistic = np.nan_to_num(cells.sum(axis=-1))
    df = np.maximum((pooled > 0).sum(axis=-1) - 1, 0).astype(np.int64)
    p = np.where(df > 0, sps.chi2.sf(statistic, np.maximum(df, 1)), 1.0)
    return statistic, df, p


def goodness_of_fit(counts: ArrayLike, weights: ArrayLike) -> tuple[FloatArray, str]:
    """p-values that ``counts`` (last axis: arms; batched) follow ``weights``, and the test used.

    Exact binomial (scipy ``binomtest``) with two weighted arms, Pearson's χ² (scipy ``chisquare``) with more.
    A count on an arm of zero weight is an arm that should not exist: p = 0 (``unexpected arm``).
    """
    c = np.asarray(counts, dtype=float)
    w = np.asarray(weights, dtype=float)
    unexpected = (c[..., w == 0] > 0).any(axis=-1)
    c = c[..., w > 0]
    w = w[w > 0] / w[w > 0].sum()
    total = c.sum(axis=-1)
    p = np.ones(total.shape)
    test = "none"
    live = total > 0
    if w.size == 2:
        test = "exact binomial"
        p = np.where(live, binomial_two_sided(c[..., 0], total, float(w[0])), 1.0)
    elif w.size > 2:
        test = "χ² goodness of fit"
        if np.any(live):
            p[live] = sps.chisquare(c[live], w * total[live][..., None], axis=-1).pvalue
    if np.any(unexpected):
        p = np.where(unexpected, 0.0, p)
        test = "unexpected arm" if p.ndim == 0 or np.all(unexpected) else test
    return p, test


def binomial_two_sided(k: ArrayLike, n: ArrayLike, p: float) -> FloatArray:
    """Exact two-sided binomial p-values, batched: the probability of outcomes no likelier than ``k``.

    ``scipy.stats.binomtest`` takes one count at a time; this is its algorithm (the same relative tolerance
    of 1e-7, the same bisection for where the other tail starts) run on all counts at once.
    """
    kk, nn = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(n, dtype=float))
    d = sps.binom.pmf(kk, nn, p) * (1 + 1e-7)
    below = kk < p * nn
    sign = np.where(below, -1.0, 1.0)  # a(x) = -pmf(x) right of the mode, pmf(x) left of it: both increasing

    def a(x: FloatArray) -> FloatArray:
        values: FloatArray = sign * sps.binom.pmf(x, nn, p)
        return values

    target = sign * d
    lo = np.where(below, np.ceil(p * nn), 0.0)
    hi = np.where(below, nn, np.floor(p * nn))
    found = np.full(kk.shape, np.nan)
    while True:
        active = (lo < hi) & np.isnan(found)
        if not np.any(active):
            break
        mid = lo + np.floor((hi - lo) / 2)
        value = a(mid)
        found = np.where(active & (value == target), mid, found)
        lo = np.where(active & (value < target), mid + 1, lo)
        hi = np.where(active & (value > target), mid - 1, hi)
    ix = np.where(np.isnan(found), np.where(a(lo) <= target, lo, lo - 1), found)
    y_right = nn - ix + (d == sps.binom.pmf(ix, nn, p))
    right_tail = sps.binom.cdf(kk, nn, p) + sps.binom.sf(nn - y_right, nn, p)
    left_tail = sps.binom.cdf(ix, nn, p) + sps.binom.sf(kk - 1, nn, p)
    result: FloatArray = np.where(kk == p * nn, 1.0, np.minimum(1.0, np.where(below, right_tail, left_tail)))
    return result
