"""Diurnal analysis: reference checks against scipy/statsmodels, and simulated fortnights of sweeps."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evalkit.analysis import diurnal
from evalkit.cli import main
from evalkit.store import open_store

from .history_runs import make_run, start


@pytest.fixture(autouse=True)
def _one_blas_thread() -> Iterator[None]:
    """Tall, thin least squares run faster on one BLAS thread (and do not fight other processes)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def fortnight(seed: int, *, peak: tuple[int, ...] = (), effect: float = 1.4, days: int = 14, every: int = 3,
              calls: int = 100, models: int = 1) -> pd.DataFrame:
    """Sweeps every ``every`` hours at :17 (started up to 50 minutes late), ``calls`` calls each, as the store's
    per-call table. Our own concurrency is higher in the afternoon and slows calls down (the confounder); calls
    in ``peak`` hours are ``effect`` times slower (the provider's busy hours)."""
    rng = np.random.default_rng(seed)
    scheduled = np.arange(days * 24 // every) * every + 1 + 17 / 60
    started = scheduled + np.minimum(rng.exponential(10, scheduled.size), 50) / 60
    run = np.repeat(np.arange(scheduled.size), calls)
    moment = started[run] + rng.uniform(0, 0.1, run.size)
    hour_frac = moment % 24
    hour = np.floor(hour_frac).astype(int)
    concurrency = 1 + rng.poisson(2 + 2 * np.cos(2 * np.pi * (started % 24 - 15) / 24))
    in_flight = 1 + np.floor(rng.uniform(0, 1, run.size) * concurrency[run]).astype(int)
    tokens = np.maximum(1, np.round(np.exp(rng.normal(np.log(60), 0.5, run.size))))
    model = np.where(rng.uniform(size=run.size) < 0.3, "model-b", "model-a") if models > 1 else "model-a"
    latency = ((0.3 + 0.01 * tokens) * (1 + 0.15 * (in_flight - 1)) * np.where(model == "model-b", 1.2, 1.0)
               * np.exp(rng.normal(0, 0.1, scheduled.size))[run] * np.exp(rng.normal(0, 0.25, run.size)))
    latency = latency * np.where(np.isin(hour, peak), effect, 1.0)
    return pd.DataFrame({
        "run_key": [f"run-{r:03d}" for r in run], "hour_local": hour, "hour_frac": hour_frac,
        "weekday": (moment // 24).astype(int) % 7, "latency_s": latency, "ttft_s": latency * 0.2,
        "completion_tokens": tokens, "completion_tokens_est": tokens, "in_flight_at_start": in_flight,
        "model_returned": model, "cached": False, "error_class": None, "attempts": 1, "failed_attempts": 0,
        "passed": rng.uniform(size=run.size) < 0.8,
    })


# --- reference checks on fixed data ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixed() -> pd.DataFrame:
    calls = fortnight(7, peak=(13, 14, 15, 16), days=4, calls=40, models=2)
    calls.loc[calls.index[::97], "error_class"] = "timeout"  # failed calls count in error rates, not latency
    calls.loc[calls.index[::97], "latency_s"] = np.nan
    calls.loc[calls.index[5::211], "cached"] = True
    return calls


def test_kruskal_wallis_matches_scipy(fixed: pd.DataFrame) -> None:
    from scipy import stats

    report = diurnal.analyse_diurnal(fixed, resamples=99)
    usable = fixed[~fixed["cached"] & fixed["error_class"].isna()]
    groups = [g["latency_s"].to_numpy() for _, g in usable.groupby("hour_local")]
    expected = stats.kruskal(*groups)
    n, k = sum(len(g) for g in groups), len(groups)
    kw = report.kruskal
    assert kw is not None and (kw.n, kw.groups) == (n, k) == (len(usable), 8)
    assert kw.h == pytest.approx(expected.statistic, rel=1e-9)
    assert kw.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert kw.epsilon_squared == pytest.approx(expected.statistic / (n - 1), rel=1e-12)
    assert kw.eta_squared == pytest.approx((expected.statistic - k + 1) / (n - k), rel=1e-12)


def reference_formula(hour_terms: str) -> str:
    return (f"np.log(latency_s) ~ {hour_terms} + C(in_flight) + np.log1p(completion_tokens) + C(model_returned)")


def test_cosinor_matches_statsmodels_formula(fixed: pd.DataFrame) -> None:
    import statsmodels.formula.api as smf

    report = diurnal.analyse_diurnal(fixed, resamples=99)
    data = fixed[~fixed["cached"] & fixed["error_class"].isna()].assign(
        in_flight=lambda d: d["in_flight_at_start"], s=lambda d: np.sin(2 * np.pi * d["hour_frac"] / 24),
        c=lambda d: np.cos(2 * np.pi * d["hour_frac"] / 24))
    groups = pd.factorize(data["run_key"])[0]
    fit = smf.ols(reference_formula("s + c"), data).fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
    test = fit.f_test("s = 0, c = 0")
    c = report.cosinor
    assert c is not None
    assert (c.sin, c.cos) == (pytest.approx(fit.params["s"], rel=1e-9), pytest.approx(fit.params["c"], rel=1e-9))
    assert c.coefficients["log_tokens"] == pytest.approx(fit.params["np.log1p(completion_tokens)"], rel=1e-9)
    assert c.f_stat == pytest.approx(float(np.squeeze(test.fvalue)), rel=1e-9)
    assert c.p_value == pytest.approx(float(test.pvalue), rel=1e-9)
    assert (c.df_num, c.df_denom, c.clusters) == (2, data["run_key"].nunique() - 1, data["run_key"].nunique())
    assert c.peak_hour == pytest.approx(math.degrees(math.atan2(c.sin, c.cos)) / 15 % 24, rel=1e-12)
    assert c.covariates == ("our in-flight concurrency", "output tokens", "served model")
    quantile = smf.quantreg(reference_formula("s + c"), data).fit(q=0.95, max_iter=2000)
    q = report.quantile
    assert q is not None and not q.sampled
    assert (q.sin, q.cos) == (pytest.approx(quantile.params["s"], rel=1e-6, abs=1e-9),
                              pytest.approx(quantile.params["c"], rel=1e-6, abs=1e-9))


def test_peak_and_trough_match_statsmodels_and_numpy(fixed: pd.DataFrame) -> None:
    import statsmodels.formula.api as smf

    report = diurnal.analyse_diurnal(fixed, resamples=199)
    p = report.peak
    assert p is not None
    data = fixed[~fixed["cached"] & fixed["error_class"].isna()].assign(in_flight=lambda d: d["in_flight_at_start"])
    fit = smf.ols(reference_formula("C(hour_local)"), data).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(data["run_key"])[0]}, use_t=True)
    effects = dict.fromkeys(sorted(data["hour_local"].unique()), 0.0)
    effects.update({int(name.split("[T.")[1].rstrip("]")): value for name, value in fit.params.items()
                    if name.startswith("C(hour_local)")})
    assert p.peak_hour == max(effects, key=effects.__getitem__) and p.peak_hour in (13, 14, 15, 16)
    assert p.trough_hour == min(effects, key=effects.__getitem__)
    assert math.log(p.adjusted_ratio) == pytest.approx(effects[p.peak_hour] - effects[p.trough_hour], rel=1e-9)
    peak_p95 = np.percentile(data.loc[data["hour_local"] == p.peak_hour, "latency_s"], 95)
    trough_p95 = np.percentile(data.loc[data["hour_local"] == p.trough_hour, "latency_s"], 95)
    assert p.ratio == pytest.approx(peak_p95 / trough_p95, rel=1e-12)
    assert p.ci_low < p.ratio < p.ci_high
    assert p.adjusted_low < p.adjusted_ratio < p.adjusted_high


def test_bands_and_weekdays_are_plain_percentiles(fixed: pd.DataFrame) -> None:
    bands, weekdays = diurnal.describe(fixed, band_hours=6)
    measured = fixed[~fixed["cached"]]
    afternoon = measured[(measured["hour_local"] >= 12) & (measured["hour_local"] < 18)]
    band = next(b for b in bands if b.label == "12–18")
    assert band.calls == len(afternoon) and band.runs == afternoon["run_key"].nunique()
    assert band.latency_p95 == pytest.approx(np.percentile(afternoon["latency_s"].dropna(), 95), rel=1e-12)
    assert band.error_rate_post_retry == pytest.approx(afternoon["error_class"].notna().mean(), rel=1e-12)
    assert band.pass_rate == pytest.approx(afternoon["passed"].mean(), rel=1e-12)
    assert [w.label for w in weekdays] == ["Mon", "Tue", "Wed", "Thu"]
    assert sum(w.calls for w in weekdays) == len(measured)


def test_too_little_data_says_what_it_needs() -> None:
    calls = fortnight(1, days=1, calls=20)
    report = diurnal.analyse_diurnal(calls)
    assert report.cosinor is None and report.hour_matters is None
    assert report.verdict == (
        "not enough data: 160 calls from 8 runs cover 0 comparable hours of the day; the hour tests need ≥ 20 runs "
        "over ≥ 4 hours, each hour with ≥ 20 calls from ≥ 2 runs (one week of the 3-hourly sweep gives 56 runs "
        "over 8 hours)")


# --- simulations -------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_planted_peak_is_found_with_its_hours_and_a_null_is_not_flagged() -> None:
    """Two weeks of 3-hourly sweeps of 100 calls; +40% in 4 consecutive hours (anywhere in the day), under a
    concurrency confounder that also peaks in the afternoon. Detected: the joint hour test rejects at alpha
    and the adjusted slowest hour is one of the planted four."""
    found = 0
    seeds = 60
    for seed in range(seeds):
        first = int(np.random.default_rng(10_000 + seed).integers(0, 24))
        planted = tuple((first + i) % 24 for i in range(4))
        frame = diurnal.model_frame(fortnight(seed, peak=planted))
        hours = diurnal.comparable_hours(frame)
        hit = diurnal.fit_cosinor(frame).p_value < diurnal.ALPHA
        found += hit and diurnal.peak_and_trough(frame, hours, resamples=0).peak_hour in planted
    assert found / seeds >= 0.90
    flagged = unadjusted = 0
    nulls = 100
    for seed in range(nulls):
        frame = diurnal.model_frame(fortnight(50_000 + seed))
        flagged += diurnal.fit_cosinor(frame).p_value < diurnal.ALPHA
        unadjusted += diurnal.kruskal_hours(frame, diurnal.comparable_hours(frame)).p_value < diurnal.ALPHA
    print(f"planted peak found with its hours in {found}/{seeds} fortnights; null flagged in {flagged}/{nulls}; "
          f"unadjusted Kruskal–Wallis flagged the null in {unadjusted}/{nulls}")
    assert flagged / nulls <= 0.05
    # What the adjustment is for: the unadjusted test mistakes our busy afternoons for a busy provider.
    assert unadjusted / nulls >= 0.9


def test_diurnal_command_on_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with open_store(tmp_path / "h.sqlite") as store:
        for day in range(4):
            for slot in range(8):
                rng = np.random.default_rng(day * 8 + slot)
                hour = 1 + 3 * slot + 17 / 60
                slow = {3: 1.3, 4: 1.6, 5: 1.3}.get(slot, 1.0)  # a bump around 14:17 local
                store.ingest(make_run(f"d{day}s{slot}", start(day, hour),
                                      list(np.exp(rng.normal(0, 0.2, 30)) * slow), offset_hours=1))
    code = main(["diurnal", "svc", "--since", "2025-03-01", "--store", str(tmp_path / "h.sqlite"),
                 "--json", str(tmp_path / "d.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert "time of day matters: latency peaks near 14:" in out or "time of day matters: latency peaks near 13:" in out
    assert "slowest hour 14:00" in out
    import json

    saved = json.loads((tmp_path / "d.json").read_text())
    assert saved["format"] == "evalkit.diurnal/1" and saved["peak"]["peak_hour"] == 14
