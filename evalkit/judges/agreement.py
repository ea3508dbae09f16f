"""Agreement statistics between a judge and human labels: pure functions over label codes, no I/O.

Kappa and Krippendorff's alpha are computed from confusion (coincidence) matrices, in batches, so a
bootstrap of 2,000 resamples is a few matrix products rather than 2,000 library calls; the tests pin
every value to scikit-learn's ``cohen_kappa_score`` and the ``krippendorff`` package to 1e-9. Wilson
intervals come from statsmodels; McNemar, Wilcoxon and the BCa mean interval from :mod:`evalkit.stats`.
Every random draw takes a seeded ``numpy.random.Generator``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from evalkit.stats import Interval

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Rate:
    """A proportion with its Wilson interval."""

    count: int
    n: int
    interval: Interval

    @property
    def estimate(self) -> float:
        return self.count / self.n if self.n else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "n": self.n, "estimate": _num(self.estimate),
                "low": _num(self.interval.low), "high": _num(self.interval.high), "level": self.interval.level}


def _num(value: float) -> float | None:
    """A float for JSON: NaN (undefined) becomes null."""
    return None if value is None or math.isnan(value) else float(value)


def wilson(count: ArrayLike, n: ArrayLike, level: float) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval(s) (statsmodels ``proportion_confint(method="wilson")``); NaN where n is 0."""
    from statsmodels.stats.proportion import proportion_confint

    k = np.asarray(count, dtype=float)
    total = np.asarray(n, dtype=float)
    safe = np.where(total > 0, total, 1.0)
    low, high = proportion_confint(k, safe, alpha=1 - level, method="wilson")
    return (np.where(total > 0, low, np.nan).astype(float), np.where(total > 0, high, np.nan).astype(float))


def rate(count: int, n: int, level: float) -> Rate:
    """``count`` of ``n`` with its Wilson interval."""
    low, high = wilson(count, n, level)
    return Rate(int(count), int(n), Interval(float(low), float(high), level))


# --- kappa and alpha from confusion matrices -----------------------------------------------------------


def confusion(rows: ArrayLike, cols: ArrayLike, k: int) -> IntArray:
    """k×k counts of (row code, column code) pairs: rows are the human labels, columns the judge's."""
    r = np.asarray(rows, dtype=np.int64)
    c = np.asarray(cols, dtype=np.int64)
    return np.bincount(r * k + c, minlength=k * k).reshape(k, k).astype(np.int64)


def _weights(k: int, quadratic: bool) -> FloatArray:
    i, j = np.indices((k, k))
    return ((i - j) ** 2).astype(float) if quadratic else (i != j).astype(float)


def kappa(matrices: ArrayLike, *, quadratic: bool = False) -> FloatArray:
    """Cohen's kappa (or quadratic-weighted kappa) of one k×k confusion matrix or a batch (..., k, k).

    Equals ``sklearn.metrics.cohen_kappa_score(rows, cols, labels=range(k), weights=...)``; NaN where the
    expected disagreement is zero (every label the same), as scikit-learn's is.
    """
    m = np.asarray(matrices, dtype=float)
    k = m.shape[-1]
    n = m.sum(axis=(-2, -1), keepdims=True)
    expected = m.sum(axis=-1, keepdims=True) * m.sum(axis=-2, keepdims=True) / np.where(n > 0, n, 1.0)
    w = _weights(k, quadratic)
    observed = (w * m).sum(axis=(-2, -1))
    chance = (w * expected).sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        result: FloatArray = np.where(chance > 0, 1.0 - observed / np.where(chance > 0, chance, 1.0), np.nan)
    return result


def _distances(o: FloatArray, values: FloatArray, level: str) -> FloatArray:
    """Krippendorff's squared distances δ² for a batch of coincidence matrices (..., V, V)."""
    v = values.size
    if level == "nominal":
        return np.broadcast_to((~np.eye(v, dtype=bool)).astype(float), o.shape)
    if level == "interval":
        return np.broadcast_to((values[:, None] - values[None, :]) ** 2, o.shape)
    if level != "ordinal":
        raise ValueError(f"level: expected nominal, ordinal or interval, got {level!r}")
    n_v = o.sum(axis=-2)  # (..., V)
    cumulative = np.concatenate([np.zeros((*n_v.shape[:-1], 1)), np.cumsum(n_v, axis=-1)], axis=-1)
    i, j = np.indices((v, v))
    low, high = np.minimum(i, j), np.maximum(i, j)
    between = cumulative[..., high + 1] - cumulative[..., low]  # Σ n_g for g in [low, high]
    result: FloatArray = (between - (n_v[..., i] + n_v[..., j]) / 2.0) ** 2
    return result


def alpha_from_coincidences(o: ArrayLike, values: Sequence[float], level: str) -> FloatArray:
    """Krippendorff's alpha of one coincidence matrix or a batch (..., V, V); NaN when undefined."""
    coincidences = np.asarray(o, dtype=float)
    domain = np.asarray(values, dtype=float)
    n_v = coincidences.sum(axis=-2)
    total = n_v.sum(axis=-1)
    expected = (n_v[..., :, None] * n_v[..., None, :] - np.eye(domain.size) * n_v[..., None, :]) \
        / np.where(total > 1, total - 1, 1.0)[..., None, None]
    d = _distances(coincidences, domain, level)
    observed = (coincidences * d).sum(axis=(-2, -1))
    chance = (expected * d).sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        result: FloatArray = np.where(chance > 0, 1.0 - observed / np.where(chance > 0, chance, 1.0), np.nan)
    return result


def pair_coincidences(matrices: ArrayLike) -> FloatArray:
    """The coincidence matrix of two coders from their confusion matrix: C + Cᵀ (every unit is one pair)."""
    m = np.asarray(matrices, dtype=float)
    result: FloatArray = m + np.swapaxes(m, -1, -2)
    return result


def krippendorff_alpha(codes: ArrayLike, values: Sequence[float], level: str) -> float:
    """Krippendorff's alpha of a coders × units matrix of codes (index into ``values``; -1 = missing).

    Equals ``krippendorff.alpha(reliability_data, value_domain=values, level_of_measurement=level)``.
    """
    data = np.asarray(codes, dtype=np.int64)
    v = len(values)
    present = data >= 0
    counts = np.zeros((data.shape[1], v))
    for row, mask in zip(data, present, strict=True):
        np.add.at(counts, (np.nonzero(mask)[0], row[mask]), 1.0)
    m_u = counts.sum(axis=1)
    pairable = m_u >= 2
    counts = counts[pairable]
    products = counts[:, :, None] * counts[:, None, :] - counts[:, None, :] * np.eye(v)
    o = (products / (m_u[pairable] - 1)[:, None, None]).sum(axis=0)
    return float(alpha_from_coincidences(o, values, level))


# --- bootstrap -----------------------------------------------------------------------------------------


def resample_counts(n: int, resamples: int, rng: np.random.Generator) -> FloatArray:
    """How often each of n items appears in each of ``resamples`` bootstrap resamples (B × n).

    One ``bincount`` over offset uniform indices: the same multinomial counts as B separate resamples.
    """
    index = rng.integers(0, n, size=(resamples, n)) + (np.arange(resamples) * n)[:, None]
    counts: FloatArray = np.bincount(index.ravel(), minlength=resamples * n).reshape(resamples, n).astype(float)
    return counts


def batch_confusion(weights: FloatArray, rows: ArrayLike, cols: ArrayLike, k: int) -> FloatArray:
    """Confusion matrices of many weighted resamples at once: (B × n) weights → (B × k × k)."""
    cells = np.asarray(rows, dtype=np.int64) * k + np.asarray(cols, dtype=np.int64)
    onehot = np.zeros((cells.size, k * k))
    onehot[np.arange(cells.size), cells] = 1.0
    result: FloatArray = (weights @ onehot).reshape(-1, k, k)
    return result


def percentile_interval(replicates: ArrayLike, level: float) -> Interval:
    """Percentile bootstrap interval, ignoring undefined (NaN) replicates."""
    values = np.asarray(replicates, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return Interval(math.nan, math.nan, level)
    tail = (1 - level) / 2
    return Interval(float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail)), level)


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap interval."""

    value: float
    interval: Interval

    def to_dict(self) -> dict[str, Any]:
        return {"estimate": _num(self.value), "low": _num(self.interval.low), "high": _num(self.interval.high),
                "level": self.interval.level}


def bootstrap_statistic(statistic: Callable[[FloatArray], FloatArray], n: int, level: float, resamples: int,
                        rng: np.random.Generator) -> Estimate:
    """``statistic`` maps (B × n) item weights to B values; the all-ones row is the point estimate."""
    point = float(statistic(np.ones((1, n)))[0])
    replicates = statistic(resample_counts(n, resamples, rng))
    return Estimate(point, percentile_interval(replicates, level))


# --- judge versus humans -------------------------------------------------------------------------------


def agreement_statistics(human: ArrayLike, judge: ArrayLike, k: int, *, ordinal: bool, values: Sequence[float],
                         level: float, resamples: int, rng: np.random.Generator) -> dict[str, Estimate]:
    """Kappa (quadratic-weighted when ordinal) and Krippendorff's alpha, each with a bootstrap interval.

    Both come from the same resamples of items (one multinomial draw), so their intervals are comparable.
    """
    rows = np.asarray(human, dtype=np.int64)
    cols = np.asarray(judge, dtype=np.int64)
    n = rows.size
    level_name = "ordinal" if ordinal else "nominal"
    weights = np.vstack([np.ones((1, n)), resample_counts(n, resamples, rng)]) if n else np.ones((1, 0))
    matrices = batch_confusion(weights, rows, cols, k)
    kappas = kappa(matrices, quadratic=ordinal)
    alphas = alpha_from_coincidences(pair_coincidences(matrices), values, level_name)
    return {
        "kappa": Estimate(float(kappas[0]), percentile_interval(kappas[1:], level)),
        "alpha": Estimate(float(alphas[0]), percentile_interval(alphas[1:], level)),
    }


def mean_difference(judge_values: ArrayLike, human_values: ArrayLike, level: float, resamples: int,
                    rng: np.random.Generator) -> Estimate:
    """Mean signed bias (judge − human; positive = lenient) with a percentile bootstrap interval."""
    d = np.asarray(judge_values, dtype=float) - np.asarray(human_values, dtype=float)
    if d.size == 0:
        return Estimate(math.nan, Interval(math.nan, math.nan, level))
    return bootstrap_statistic(lambda w: (w @ d) / w.sum(axis=1), d.size, level, resamples, rng)


# --- drift ---------------------------------------------------------------------------------------------


def exchangeable_flip_test(calibration: ArrayLike, current: ArrayLike) -> tuple[int, float, float]:
    """Exact one-sided test that current verdicts flip against calibration more than calibration re-tests do.

    ``calibration`` is (n × P) verdict codes from P ≥ 2 passes, ``current`` the n codes of this check.
    Under "no drift" the P + 1 verdicts of an item are exchangeable (the check is one more re-test), so the
    check is equally likely to sit in any of the P + 1 positions. The statistic counts disagreements
    between the check and each calibration pass; its exact null distribution is the convolution of the
    per-item distributions. Returns (statistic, its null mean, one-sided p-value P(S ≥ observed)).
    With P = 2 this reduces to "the check is the odd one out" with probability 1/3 per discordant item.
    """
    cal = np.asarray(calibration, dtype=np.int64)
    cur = np.asarray(current, dtype=np.int64)
    passes = cal.shape[1]
    observed = int((cal != cur[:, None]).sum())
    everything = np.concatenate([cal, cur[:, None]], axis=1)
    mixed = everything[(everything != everything[:, :1]).any(axis=1)]  # items whose verdicts all agree add 0
    # For each item and each position j the check might occupy: how many of the other P verdicts differ.
    same = (mixed[:, :, None] == mixed[:, None, :]).sum(axis=2)
    contributions = passes + 1 - same
    pmfs = (contributions[:, :, None] == np.arange(passes + 1)).sum(axis=1) / (passes + 1)
    mean = float(contributions.sum() / (passes + 1))
    distribution = np.ones(1)
    for pmf in pmfs:
        distribution = np.convolve(distribution, pmf)
    tail = float(distribution[observed:].sum()) if observed < distribution.size else 0.0
    return observed, mean, min(1.0, max(0.0, tail))


def exchangeable_flip_pvalues(calibration: ArrayLike, current: ArrayLike) -> FloatArray:
    """:func:`exchangeable_flip_test` over a batch: (S × n × P) calibration, (S × n) current → S p-values."""
    cal = np.asarray(calibration)
    cur = np.asarray(current)
    return np.array([exchangeable_flip_test(cal[s], cur[s])[2] for s in range(cal.shape[0])])


def paired_excess(placebo: ArrayLike, treated: ArrayLike) -> tuple[int, int, float]:
    """Exact one-sided McNemar: does ``treated`` change verdicts more often than the placebo repeat does?

    Both are booleans per item (the verdict changed against pass 1). Returns (treated-only changes,
    placebo-only changes, P(Binomial(b + c, ½) ≥ b)).
    """
    from scipy.stats import binomtest

    p = np.asarray(placebo, dtype=bool)
    t = np.asarray(treated, dtype=bool)
    b = int(np.count_nonzero(t & ~p))
    c = int(np.count_nonzero(p & ~t))
    if b + c == 0:
        return b, c, 1.0
    return b, c, float(binomtest(b, b + c, 0.5, alternative="greater").pvalue)
