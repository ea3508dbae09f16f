"""Exact operating characteristics of the pass-rate decision, by enumeration of every paired outcome.

For n pairs with P(pass→fail) = p_lost and P(fail→pass) = p_gained, an outcome is a table (lost, gained).
The decision under test is evalkit's own (``exact_unconditional_pvalue(...) < alpha``); for each discordant
total D the tables it rejects are those at or beyond one boundary count (checked, not assumed, at sampled
totals), so P(reject) = Σ_D P(D) · P(count >= boundary(D) | D) is exact and cheap. Reference probabilities
come from scipy.stats, not from the module under test.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy import stats as sps

from evalkit import stats
from evalkit.stats import PairedBinary


def _rejects(n: int, total: int, count: int, delta: float, alternative: str, alpha: float) -> bool:
    """Whether evalkit rejects; ``count`` is the lost pairs ('less') or the gained pairs ('greater')."""
    lost, gained = (count, total - count) if alternative == "less" else (total - count, count)
    return stats.exact_unconditional_pvalue(PairedBinary(n, lost, gained), delta, alternative) < alpha


@cache
def boundaries(n: int, delta: float, alternative: str, alpha: float, low: int, high: int) -> tuple[int, ...]:
    """For D in [low, high]: the smallest count evalkit rejects at (D + 1 when it rejects none)."""
    out: list[int] = []
    guess = 0
    for total in range(low, high + 1):
        k = min(max(guess, 0), total + 1)
        if k <= total and _rejects(n, total, k, delta, alternative, alpha):
            while k > 0 and _rejects(n, total, k - 1, delta, alternative, alpha):
                k -= 1
        else:
            while k <= total and not _rejects(n, total, k, delta, alternative, alpha):
                k += 1
        out.append(k)
        guess = k
    return tuple(out)


def support(n: int, discordances: list[float]) -> tuple[int, int]:
    """Discordant totals holding all but ~1e-11 of the probability at each discordance."""
    lows, highs = [], []
    for x in discordances:
        lows.append(int(sps.binom.ppf(1e-12, n, x)))
        highs.append(int(sps.binom.isf(1e-12, n, x)))
    return min(lows), max(highs)


def rejection_rate(n: int, delta: float, alternative: str, alpha: float, p_lost: float, p_gained: float,
                   span: tuple[int, int] | None = None) -> float:
    """P(evalkit rejects) when the truth is (p_lost, p_gained), summed over every outcome."""
    discordance = p_lost + p_gained
    if discordance == 0:
        return float(_rejects(n, 0, 0, delta, alternative, alpha))
    low, high = span or support(n, [discordance])
    bounds = np.array(boundaries(n, delta, alternative, alpha, low, high))
    totals = np.arange(low, high + 1)
    share = (p_lost if alternative == "less" else p_gained) / discordance
    weights = sps.binom.pmf(totals, n, discordance)
    tails = sps.binom.sf(bounds - 1, totals, share)
    return float(weights @ tails)


def check_boundary_shape(n: int, delta: float, alternative: str, alpha: float, low: int, high: int,
                         samples: int = 6) -> None:
    """Rejection really is 'count >= boundary' at sampled totals (every count on both sides of it)."""
    bounds = boundaries(n, delta, alternative, alpha, low, high)
    for total in np.unique(np.linspace(low, high, samples).astype(int)):
        k = bounds[total - low]
        for count in range(total + 1):
            if abs(count - k) <= 3 or count in (0, total):
                assert _rejects(n, int(total), count, delta, alternative, alpha) == (count >= k), (n, total, count, k)


def brute_force_pvalue(n: int, lost: int, gained: int, delta: float, grid: int = 4000) -> float:
    """The exact unconditional 'less' p-value from first principles: every table, a dense nuisance grid.

    Tables ordered by Tango's z; the supremum over discordances in the 99.99% Clopper-Pearson interval
    (Berger-Boos, γ = 0.0001 added); trinomial probabilities from scipy.stats.multinomial.
    """
    b, c = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    keep = b + c <= n
    b, c = b[keep], c[keep]
    z = stats.tango_z_array(n, b, c, delta)
    z_obs = float(stats.tango_z_array(n, lost, gained, delta))
    extreme = z <= z_obs + 1e-9 * (1 + abs(z_obs))
    total = lost + gained
    ci = sps.binomtest(total, n).proportion_ci(confidence_level=0.9999, method="exact")
    low, high = max(delta, ci.low, 1e-12), min(ci.high, 1.0)
    if low > high:
        return 0.0001
    best = 0.0
    for x in np.linspace(low, high, grid):
        # The least favourable null point at this discordance: on the margin, or (below it) all pairs lost.
        p_lost, p_gained = ((x - delta) / 2, (x + delta) / 2) if x >= abs(delta) else (x, 0.0)
        probs = sps.multinomial.pmf(np.stack([b, c, n - b - c], axis=1), n, [p_lost, p_gained, 1 - x])
        best = max(best, float(probs[extreme].sum()))
    return min(1.0, best + 0.0001)


def size_grid(margin: float) -> list[float]:
    """Discordances from the margin (the least a difference at the margin allows) to 30%."""
    points = [0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.10, 0.15, 0.20, 0.25, 0.30]
    return sorted({max(margin, 0.005), *(x for x in points if x >= margin)})


def inner_null_points(margin: float) -> list[tuple[float, float]]:
    """(p_lost, p_gained) inside 'not worse than the margin' with a discordance below it: all lost, or even."""
    return [point for x in (0.002, 0.005, 0.01, 0.015) if x <= margin for point in ((x, 0.0), (x / 2, x / 2))]


def planted(rate: float) -> tuple[float, float]:
    """(p_lost, p_gained) for a 10% discordance and a given true difference."""
    return (0.10 - rate) / 2, (0.10 + rate) / 2
