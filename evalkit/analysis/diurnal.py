"""Does time of day matter? Hour bands and weekdays, Kruskal–Wallis, cosinor and p95 quantile regressions.

Every test runs on the per-call table of the history store (one row per provider call, cached calls left
out). Latency is modelled on the log scale, so effects read as ratios, and the hour of day is adjusted for
what else moves latency: **our own** in-flight concurrency when the call started (one level each, so no
shape is assumed), output tokens (``log1p``) and the model the provider served. Calls of one run share its
conditions, so standard errors are cluster-robust by run (statsmodels), and the joint test of the hour
terms has ``runs − 1`` denominator degrees of freedom. Below :data:`MIN_RUNS` runs over :data:`MIN_HOURS`
hours the tests are not run: the report says what sample it needs instead of guessing.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalkit.core.seeds import numpy_draws

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MIN_RUNS = 20
"""Runs (clusters) below which the hour tests are not run: cluster-robust errors need this many."""
MIN_HOURS = 4
"""Distinct hours of the day (each with enough calls and runs) the hour tests need."""
MIN_CALLS_PER_HOUR = 20
MIN_RUNS_PER_HOUR = 2
IN_FLIGHT_CAP = 32
"""In-flight levels above this share one level (so a huge ladder step does not add a column each)."""
QUANTILE = 0.95
QUANTILE_ROWS = 20_000
"""The p95 quantile regression runs on at most this many calls (a seeded sample beyond it)."""
BOOTSTRAP_RESAMPLES = 999
ALPHA = 0.01
"""Level of the joint hour test. Not 0.05: cluster-robust tests over ~100 runs run slightly hot (4.8% at a
nominal 5% over 600 simulated null fortnights), and a monitor asked every week should rarely cry wolf."""


@dataclass(frozen=True)
class GroupStats:
    """Calls of one hour band or weekday: counts, percentiles, error and pass rates."""

    label: str
    calls: int
    runs: int
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    ttft_p50: float | None
    ttft_p95: float | None
    error_rate_pre_retry: float | None
    """Failed attempts / attempts."""
    error_rate_post_retry: float | None
    """Failed calls / calls."""
    pass_rate: float | None


@dataclass(frozen=True)
class KruskalWallis:
    """Kruskal–Wallis H across hours (unadjusted; calls counted as independent, so descriptive)."""

    h: float
    p_value: float
    groups: int
    n: int
    epsilon_squared: float
    """H / (n − 1): the share of rank variance between hours."""
    eta_squared: float
    """(H − k + 1) / (n − k)."""


@dataclass(frozen=True)
class Cosinor:
    """log latency ~ sin + cos of the hour + covariates, cluster-robust by run."""

    sin: float
    cos: float
    amplitude: float
    """On the log scale; exp(2·amplitude) is the fitted peak/trough ratio."""
    peak_hour: float
    """Local hour (fractional) where the fitted curve peaks."""
    ratio: float
    f_stat: float
    p_value: float
    df_num: int
    df_denom: int
    n: int
    clusters: int
    covariates: tuple[str, ...]
    detectable_ratio: float
    """The peak/trough ratio this sample would detect about 80% of the time (2.8 standard errors)."""
    coefficients: Mapping[str, float] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class QuantileCosinor:
    """The same model for the 95th percentile of log latency (statsmodels QuantReg)."""

    q: float
    sin: float
    cos: float
    amplitude: float
    peak_hour: float
    ratio: float
    p_value: float
    n: int
    sampled: bool
    """True when it ran on a seeded sample of :data:`QUANTILE_ROWS` calls."""
    converged: bool


@dataclass(frozen=True)
class PeakTrough:
    """The slowest and fastest hours (adjusted hour-bin model), and the ratio of their raw p95s."""

    peak_hour: int
    trough_hour: int
    peak_p95: float
    trough_p95: float
    ratio: float
    """Raw p95 at the peak hour / raw p95 at the trough hour: what users saw."""
    ci_low: float
    ci_high: float
    """Percentile bootstrap over runs (scipy), at :attr:`level`."""
    adjusted_ratio: float
    """Geometric-mean latency ratio peak/trough adjusted for concurrency, tokens and model."""
    adjusted_low: float
    adjusted_high: float
    level: float
    effects: Mapping[int, float] = field(default_factory=dict, hash=False)
    """Hour → adjusted latency ratio to the trough hour."""


@dataclass(frozen=True)
class DiurnalReport:
    """Everything ``evalkit diurnal`` says."""

    calls: int
    runs: int
    hours: tuple[int, ...]
    """Local hours of the day with enough calls and runs to compare."""
    bands: tuple[GroupStats, ...]
    weekdays: tuple[GroupStats, ...]
    band_hours: int
    alpha: float
    not_enough: str | None = None
    """Why the hour tests were not run (and what sample they need); None when they were."""
    kruskal: KruskalWallis | None = None
    cosinor: Cosinor | None = None
    quantile: QuantileCosinor | None = None
    peak: PeakTrough | None = None

    @property
    def hour_matters(self) -> bool | None:
        """True when the joint test of the hour terms rejects at alpha; None when not tested."""
        return None if self.cosinor is None else self.cosinor.p_value < self.alpha

    @property
    def verdict(self) -> str:
        """One line: does time of day matter."""
        if self.not_enough is not None or self.cosinor is None:
            return f"not enough data: {self.not_enough}"
        c = self.cosinor
        test = f"cosinor F({c.df_num}, {c.df_denom}) = {c.f_stat:.2f}, p = {_p(c.p_value)}"
        if self.hour_matters:
            where = f"; slowest hour {self.peak.peak_hour:02d}:00, fastest {self.peak.trough_hour:02d}:00" \
                if self.peak else ""
            return (f"time of day matters: latency peaks near {_clock(c.peak_hour)} local, fitted peak/trough "
                    f"×{c.ratio:.2f} after adjusting for {', '.join(c.covariates) or 'nothing'} ({test}){where}")
        return (f"no evidence that time of day matters ({test}); this sample would detect a peak/trough ratio "
                f"of about ×{c.detectable_ratio:.2f}")


def _p(value: float) -> str:
    return f"{value:.2g}" if value >= 1e-4 else "<0.0001"


def _clock(hour: float) -> str:
    minutes = round(hour * 60) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _percentile(values: np.ndarray, q: float) -> float | None:
    import numpy as np

    return float(np.percentile(values, q)) if values.size else None


def _pass_rate(group: pd.DataFrame) -> float | None:
    """Per case, not per call: an agent's case has a row per call with its pass on each."""
    import numpy as np

    cases = group[group["call_index"] == 0] if "call_index" in group else group
    return float(np.mean(cases["passed"].to_numpy(bool))) if len(cases) else None


def _group_stats(label: str, group: pd.DataFrame) -> GroupStats:

    latency = group["latency_s"].dropna().to_numpy(float)
    ttft = group["ttft_s"].dropna().to_numpy(float)
    attempts = int(group["attempts"].sum())
    return GroupStats(
        label=label, calls=len(group), runs=int(group["run_key"].nunique()),
        latency_p50=_percentile(latency, 50), latency_p95=_percentile(latency, 95),
        latency_p99=_percentile(latency, 99), ttft_p50=_percentile(ttft, 50), ttft_p95=_percentile(ttft, 95),
        error_rate_pre_retry=float(group["failed_attempts"].sum()) / attempts if attempts else None,
        error_rate_post_retry=float(group["error_class"].notna().mean()) if len(group) else None,
        pass_rate=_pass_rate(group),
    )


def describe(calls: pd.DataFrame, band_hours: int = 3) -> tuple[tuple[GroupStats, ...], tuple[GroupStats, ...]]:
    """Per hour band (``band_hours`` wide, local time) and per weekday: counts, percentiles, rates."""
    if band_hours < 1 or 24 % band_hours:
        raise ValueError(f"band_hours: expected a divisor of 24, got {band_hours}")
    measured = calls[~calls["cached"].astype(bool)]
    band = measured["hour_local"].astype(int) // band_hours
    bands = tuple(
        _group_stats(f"{b * band_hours:02d}–{(b + 1) * band_hours:02d}", group)
        for b, group in measured.groupby(band, sort=True)
    )
    weekdays = tuple(_group_stats(WEEKDAYS[int(d)], group)
                     for d, group in measured.groupby(measured["weekday"].astype(int), sort=True))
    return bands, weekdays


def model_frame(calls: pd.DataFrame) -> pd.DataFrame:
    """The calls a latency model can use (measured, succeeded, positive latency) with its variables."""
    import numpy as np
    import pandas as pd

    usable = calls[~calls["cached"].astype(bool) & calls["error_class"].isna() & (calls["latency_s"] > 0)]
    tokens = usable["completion_tokens"].astype(float).fillna(usable["completion_tokens_est"].astype(float))
    in_flight = usable["in_flight_at_start"].astype(float).fillna(0).clip(upper=IN_FLIGHT_CAP).astype(int)
    return pd.DataFrame({
        "y": np.log(usable["latency_s"].to_numpy(float)),
        "latency_s": usable["latency_s"].to_numpy(float),
        "hour_frac": usable["hour_frac"].to_numpy(float),
        "hour": usable["hour_local"].to_numpy(int),
        "run": usable["run_key"].astype(str).to_numpy(),
        "in_flight": in_flight.to_numpy(),
        "log_tokens": np.log1p(tokens.fillna(0).to_numpy(float)),
        "model": usable["model_returned"].astype(object).fillna("unknown").astype(str).to_numpy(),
    })


def _dummies(values: np.ndarray, prefix: str) -> tuple[list[np.ndarray], list[str]]:
    """Indicator columns for every level but the first (the reference)."""

    levels = sorted(set(values.tolist()))
    return [(values == level).astype(float) for level in levels[1:]], [f"{prefix}[{level}]" for level in levels[1:]]


def covariates(frame: pd.DataFrame) -> tuple[list[np.ndarray], list[str], tuple[str, ...]]:
    """Covariate columns (in-flight levels, log1p output tokens, served model) and what they adjust for."""
    import numpy as np

    columns: list[np.ndarray] = []
    names: list[str] = []
    adjusted: list[str] = []
    flight, flight_names = _dummies(frame["in_flight"].to_numpy(), "in_flight")
    if flight:
        columns += flight
        names += flight_names
        adjusted.append("our in-flight concurrency")
    tokens = frame["log_tokens"].to_numpy(float)
    if np.ptp(tokens) > 0:
        columns.append(tokens)
        names.append("log_tokens")
        adjusted.append("output tokens")
    model, model_names = _dummies(frame["model"].to_numpy(), "model")
    if model:
        columns += model
        names += model_names
        adjusted.append("served model")
    return columns, names, tuple(adjusted)


def cosinor_design(frame: pd.DataFrame) -> tuple[np.ndarray, list[str], tuple[str, ...]]:
    """The cosinor design matrix: constant, sin and cos of the hour, then the covariates."""
    import numpy as np

    angle = 2 * np.pi * frame["hour_frac"].to_numpy(float) / 24
    extra, names, adjusted = covariates(frame)
    matrix = np.column_stack([np.ones(len(frame)), np.sin(angle), np.cos(angle), *extra])
    return matrix, ["const", "sin", "cos", *names], adjusted


def _clusters(frame: pd.DataFrame) -> np.ndarray:
    """Run of each call as 0..G−1 (the clusters of the robust covariance)."""
    import numpy as np
    import pandas as pd

    codes, _ = pd.factorize(frame["run"])
    return np.asarray(codes)


def _acrophase(sin: float, cos: float) -> tuple[float, float]:
    """Amplitude and the hour where ``sin·sin(ωh) + cos·cos(ωh)`` peaks."""
    return math.hypot(sin, cos), (math.atan2(sin, cos) * 24 / (2 * math.pi)) % 24


def fit_cosinor(frame: pd.DataFrame) -> Cosinor:
    """OLS of log latency on the hour's sine and cosine plus covariates; cluster-robust joint F test."""
    import numpy as np
    import statsmodels.api as sm

    matrix, names, adjusted = cosinor_design(frame)
    groups = _clusters(frame)
    result = sm.OLS(frame["y"].to_numpy(float), matrix).fit(cov_type="cluster", cov_kwds={"groups": groups},
                                                             use_t=True)
    restriction = np.zeros((2, matrix.shape[1]))
    restriction[0, 1] = restriction[1, 2] = 1
    test = result.f_test(restriction)
    sin, cos = float(result.params[1]), float(result.params[2])
    amplitude, peak = _acrophase(sin, cos)
    se = float(np.mean(result.bse[1:3]))
    return Cosinor(
        sin=sin, cos=cos, amplitude=amplitude, peak_hour=peak, ratio=math.exp(2 * amplitude),
        f_stat=float(np.squeeze(test.fvalue)), p_value=float(test.pvalue), df_num=int(test.df_num),
        df_denom=int(test.df_denom), n=len(frame), clusters=int(groups.max()) + 1, covariates=adjusted,
        detectable_ratio=math.exp(2 * 2.8 * se),
        coefficients={name: float(value) for name, value in zip(names, result.params, strict=True)},
    )


def fit_quantile(frame: pd.DataFrame, *, q: float = QUANTILE, max_rows: int = QUANTILE_ROWS,
                 seed: int = 0) -> QuantileCosinor:
    """The cosinor model for the q-th quantile of log latency (statsmodels QuantReg), with its Wald test."""
    import numpy as np
    from statsmodels.regression.quantile_regression import QuantReg
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, IterationLimitWarning

    sampled = len(frame) > max_rows
    if sampled:
        rows = numpy_draws(seed, "diurnal", "quantile-sample").choice(len(frame), size=max_rows, replace=False)
        frame = frame.iloc[np.sort(rows)]
    matrix, _, _ = cosinor_design(frame)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", IterationLimitWarning)
        warnings.simplefilter("always", ConvergenceWarning)
        result = QuantReg(frame["y"].to_numpy(float), matrix).fit(q=q, max_iter=2000)
    converged = not any(issubclass(w.category, IterationLimitWarning | ConvergenceWarning) for w in caught)
    restriction = np.zeros((2, matrix.shape[1]))
    restriction[0, 1] = restriction[1, 2] = 1
    sin, cos = float(result.params[1]), float(result.params[2])
    amplitude, peak = _acrophase(sin, cos)
    return QuantileCosinor(q=q, sin=sin, cos=cos, amplitude=amplitude, peak_hour=peak,
                           ratio=math.exp(2 * amplitude), p_value=float(result.f_test(restriction).pvalue),
                           n=len(frame), sampled=sampled, converged=converged)


def kruskal_hours(frame: pd.DataFrame, hours: tuple[int, ...]) -> KruskalWallis:
    """Kruskal–Wallis on latency across the given hours, with epsilon² and eta² effect sizes."""
    from scipy import stats

    groups = [frame.loc[frame["hour"] == hour, "latency_s"].to_numpy(float) for hour in hours]
    result = stats.kruskal(*groups)
    n = sum(g.size for g in groups)
    h, k = float(result.statistic), len(groups)
    return KruskalWallis(h=h, p_value=float(result.pvalue), groups=k, n=n, epsilon_squared=h / (n - 1),
                         eta_squared=(h - k + 1) / (n - k))


def peak_and_trough(frame: pd.DataFrame, hours: tuple[int, ...], *, level: float = 0.95, seed: int = 0,
                    resamples: int = BOOTSTRAP_RESAMPLES) -> PeakTrough:
    """Slowest and fastest hour by an adjusted hour-bin model; their raw p95 ratio with a run bootstrap CI."""
    import numpy as np
    import statsmodels.api as sm
    from scipy import stats

    frame = frame[frame["hour"].isin(hours)]
    hour_columns, _ = _dummies(frame["hour"].to_numpy(), "hour")
    extra, _, _ = covariates(frame)
    matrix = np.column_stack([np.ones(len(frame)), *hour_columns, *extra])
    result = sm.OLS(frame["y"].to_numpy(float), matrix).fit(
        cov_type="cluster", cov_kwds={"groups": _clusters(frame)}, use_t=True)
    ordered = sorted(hours)
    effects = {hour: 0.0 if i == 0 else float(result.params[i]) for i, hour in enumerate(ordered)}
    peak = max(effects, key=lambda h: effects[h])
    trough = min(effects, key=lambda h: effects[h])
    contrast = np.zeros(matrix.shape[1])
    for hour, sign in ((peak, 1.0), (trough, -1.0)):
        index = ordered.index(hour)
        if index:
            contrast[index] += sign
    adjusted = result.t_test(contrast)
    low, high = (float(v) for v in np.asarray(adjusted.conf_int(alpha=1 - level)).ravel())

    def per_run(hour: int) -> list[np.ndarray]:
        rows = frame[frame["hour"] == hour]
        return [g.to_numpy(float) for _, g in rows.groupby("run", sort=True)["latency_s"]]

    peak_runs, trough_runs = per_run(peak), per_run(trough)

    def ratio(peak_index: np.ndarray, trough_index: np.ndarray) -> float:
        top = np.percentile(np.concatenate([peak_runs[int(i)] for i in peak_index]), 95)
        bottom = np.percentile(np.concatenate([trough_runs[int(i)] for i in trough_index]), 95)
        return float(top / bottom)

    low_ci = high_ci = math.nan  # resamples=0: no interval (simulations that only need the hours)
    if resamples:
        indices = (np.arange(len(peak_runs)), np.arange(len(trough_runs)))
        interval = stats.bootstrap(indices, ratio, vectorized=False, paired=False, n_resamples=resamples,
                                   confidence_level=level, method="percentile",
                                   random_state=numpy_draws(seed, "diurnal", "peak-trough")).confidence_interval
        low_ci, high_ci = float(interval.low), float(interval.high)
    peak_p95 = float(np.percentile(np.concatenate(peak_runs), 95))
    trough_p95 = float(np.percentile(np.concatenate(trough_runs), 95))
    base = effects[trough]
    return PeakTrough(
        peak_hour=peak, trough_hour=trough, peak_p95=peak_p95, trough_p95=trough_p95, ratio=peak_p95 / trough_p95,
        ci_low=low_ci, ci_high=high_ci,
        adjusted_ratio=math.exp(float(np.squeeze(adjusted.effect))), adjusted_low=math.exp(low),
        adjusted_high=math.exp(high), level=level,
        effects={hour: math.exp(value - base) for hour, value in effects.items()},
    )


def comparable_hours(frame: pd.DataFrame) -> tuple[int, ...]:
    """Hours of the day with at least :data:`MIN_CALLS_PER_HOUR` calls from :data:`MIN_RUNS_PER_HOUR` runs."""
    counts = frame.groupby("hour").agg(calls=("y", "size"), runs=("run", "nunique"))
    keep = counts[(counts["calls"] >= MIN_CALLS_PER_HOUR) & (counts["runs"] >= MIN_RUNS_PER_HOUR)]
    return tuple(int(h) for h in keep.index)


def _needs(frame: pd.DataFrame, hours: tuple[int, ...]) -> str | None:
    runs = int(frame["run"].nunique()) if len(frame) else 0
    if runs >= MIN_RUNS and len(hours) >= MIN_HOURS:
        return None
    return (f"{len(frame)} calls from {runs} runs cover {len(hours)} comparable hours of the day; the hour tests "
            f"need ≥ {MIN_RUNS} runs over ≥ {MIN_HOURS} hours, each hour with ≥ {MIN_CALLS_PER_HOUR} calls from "
            f"≥ {MIN_RUNS_PER_HOUR} runs (one week of the 3-hourly sweep gives 56 runs over 8 hours)")


def analyse_diurnal(calls: pd.DataFrame, *, band_hours: int = 3, alpha: float = ALPHA, level: float = 0.95,
                    seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES,
                    quantile_rows: int = QUANTILE_ROWS) -> DiurnalReport:
    """The time-of-day report over a per-call table (as :meth:`evalkit.store.Store.calls` returns it)."""
    bands, weekdays = describe(calls, band_hours)
    frame = model_frame(calls)
    hours = comparable_hours(frame) if len(frame) else ()
    measured = calls[~calls["cached"].astype(bool)]
    base: dict[str, Any] = {"calls": len(measured), "runs": int(measured["run_key"].nunique()), "hours": hours,
                            "bands": bands, "weekdays": weekdays, "band_hours": band_hours, "alpha": alpha}
    reason = _needs(frame, hours)
    if reason is not None:
        return DiurnalReport(**base, not_enough=reason)
    frame = frame[frame["hour"].isin(hours)]
    return DiurnalReport(
        **base, kruskal=kruskal_hours(frame, hours), cosinor=fit_cosinor(frame),
        quantile=fit_quantile(frame, max_rows=quantile_rows, seed=seed),
        peak=peak_and_trough(frame, hours, level=level, seed=seed, resamples=resamples),
    )
