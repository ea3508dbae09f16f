"""Run vs baseline: paired statistics per metric, non-inferiority decisions, one verdict.

Each metric gets the test that fits it (see ``stats.py``) and a decision against a declared
non-inferiority margin, one-sided at alpha:

- ``regression``: evidence the change is worse than the margin allows;
- ``pass``: evidence it is within the margin (non-inferiority shown);
- ``improvement``: evidence it is better than the baseline;
- ``inconclusive``: neither — the suite is too small to tell (the minimum detectable effect and the cases
  needed are reported);
- ``not_comparable``: not judged, with the reason (latency, TTFT and error rate need several baseline runs
  and comparable conditions).

The case is the unit of pass rates and scores (repeats are averaged per case before any paired test); the
**run** is the unit of latency, TTFT and error rate, because a run's conditions (load, the provider, the
hour) move all of its calls together. Holm adjusts the regression tests of the blocking metrics;
Benjamini-Hochberg adjusts the per-tag slices. The policy in force is the baseline's (see ``policy.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from evalkit.baseline import Baseline, Percentiles, RunSummary, Sample, baseline_of, check_same_suite
from evalkit.errors import ExitCode
from evalkit.policy import GateConfig, GatePolicy, PolicyChange, resolve_policy
from evalkit.results import Run

__all__ = ["GateConfig", "GatePolicy", "PolicyChange", "compare"]

VERDICTS = ("regression", "inconclusive", "pass", "improvement", "not_comparable")
HOUR_BANDS = ((0, 6, "night"), (6, 12, "morning"), (12, 18, "afternoon"), (18, 24, "evening"))
BOOTSTRAP_BUDGET = 1e8
"""Resamples × cases drawn at most for one BCa interval."""
MIN_POINTS_FOR_P95 = 100
"""Below this many latencies in a run, its p95 rests on five or fewer points and a note says so."""
MIN_BASELINE_RUNS = 3
"""Latency, TTFT and error rate are judged only against at least this many baseline runs."""
LOAD_PER_CPU_TOLERANCE = 0.5
"""How far (load average per CPU) a run may sit outside its baseline runs' range and still be compared."""
IN_FLIGHT_TOLERANCE = 1.25
"""How far (a factor) the mean calls in flight may sit outside the baseline runs' range."""
CPU_PRESSURE_TOLERANCE = 0.2
"""How far the run's CPU pressure (share of its time some task waited for a CPU) may sit outside the range."""
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


@dataclass(frozen=True)
class Metric:
    """The comparison of one metric."""

    name: str
    kind: str
    """``binary``, ``ordinal``, ``continuous``, ``latency`` (difference as a ratio − 1) or ``rate``."""
    n: int
    """Paired cases (``n_unit`` ``cases``), or baseline runs (``runs``) for run-level metrics."""
    baseline: float | None
    current: float | None
    difference: float | None
    """Current minus baseline (for latency: current p95 / baseline p95 − 1)."""
    ci_low: float | None
    ci_high: float | None
    ci_level: float
    margin: float
    """The non-inferiority margin, on the scale of ``difference``."""
    verdict: str
    blocking: bool
    p_value: float | None = None
    """The p-value of the test that decided the verdict (see ``test``), after Holm (blocking) or BH (slices)."""
    test: str = ""
    """The test that decided, and the claim it tested: ``exact-unconditional: worse than margin`` …"""
    p_regression: float | None = None
    """One-sided p for 'worse than the margin', after Holm (blocking metrics) or BH (slices)."""
    p_noninferiority: float | None = None
    """One-sided p for 'within the margin'."""
    p_improvement: float | None = None
    """One-sided p for 'better than the baseline'."""
    mde: float | None = None
    """Minimum detectable effect at 80% power, beyond the margin."""
    cases_needed: int | None = None
    """Cases needed to show non-inferiority at this margin if nothing truly changed (at the observed discordance)."""
    cases_needed_range: tuple[int, int] | None = None
    """The same at both ends of the discordance's 90% exact interval."""
    n_unit: str = "cases"
    tests: Mapping[str, float] = field(default_factory=dict, hash=False)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, Mapping) else list(v) if isinstance(v, tuple) else v)
                for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Flip:
    """A case whose outcome changed between baseline and current."""

    case_id: str
    direction: str
    """``pass→fail`` or ``fail→pass``."""
    before: str
    after: str
    before_passed: str
    """k/n in the baseline."""
    after_passed: str


@dataclass(frozen=True)
class Comparison:
    """A run compared with a baseline."""

    suite: str
    verdict: str
    metrics: tuple[Metric, ...]
    slices: tuple[Metric, ...]
    flips: tuple[Flip, ...]
    unpaired_baseline: tuple[str, ...]
    unpaired_current: tuple[str, ...]
    comparability: tuple[str, ...]
    flaky: tuple[tuple[str, str, str], ...]
    """(case id, baseline k/n, current k/n) for cases that are neither always nor never passing."""
    policy: GatePolicy
    baseline_run: str = ""
    current_run: str = ""
    decided_by: tuple[str, ...] = ()
    """The metrics whose verdicts made the overall verdict (empty when nothing blocks)."""
    baseline_runs: int = 1

    @property
    def config(self) -> GateConfig:
        """The gate settings in force."""
        return self.policy.config

    @property
    def exit_code(self) -> ExitCode:
        if self.verdict == "regression":
            return ExitCode.REGRESSION
        if self.verdict == "inconclusive" and self.config.inconclusive_blocks:
            return ExitCode.INCONCLUSIVE
        return ExitCode.OK

    def metric(self, name: str) -> Metric:
        """The metric (or slice) called ``name``."""
        return next(m for m in (*self.metrics, *self.slices) if m.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "evalkit.comparison/2", "suite": self.suite, "verdict": self.verdict,
            "exit_code": int(self.exit_code), "decided_by": list(self.decided_by),
            "baseline_run": self.baseline_run, "baseline_runs": self.baseline_runs, "current_run": self.current_run,
            "metrics": [m.to_dict() for m in self.metrics], "slices": [m.to_dict() for m in self.slices],
            "flips": [f.__dict__ for f in self.flips], "unpaired_baseline": list(self.unpaired_baseline),
            "unpaired_current": list(self.unpaired_current), "comparability": list(self.comparability),
            "flaky": [list(f) for f in self.flaky], "policy": self.policy.to_dict(),
            "config": self.config.to_dict(),
        }


# --- decisions ----------------------------------------------------------------------------------------


def _decide(p_regression: float, p_improvement: float, p_noninferiority: float, alpha: float) -> str:
    if p_regression < alpha:
        return "regression"
    if p_improvement < alpha:
        return "improvement"
    if p_noninferiority < alpha:
        return "pass"
    return "inconclusive"


def _deciding(verdict: str, test: str, p_reg: float | None, p_imp: float | None,
              p_ni: float | None) -> tuple[float | None, str]:
    """The p-value and test (with the claim it tested) behind a verdict."""
    if verdict == "regression":
        return p_reg, f"{test}: worse than margin"
    if verdict == "improvement":
        return p_imp, f"{test}: better"
    return p_ni, f"{test}: within margin"


def pass_rate_metric(baseline: Sequence[float], current: Sequence[float], *, margin: float, alpha: float,
                     name: str = "pass_rate", blocking: bool = True, binary: bool = True) -> Metric:
    """Paired pass rates, case by case (values are 0/1, or k/n fractions when there are repeats).

    Binary pairs: the exact unconditional test against the margin (tables ordered by Tango's score) and the
    interval that inverts it, up to :data:`evalkit.stats.EXACT_MAX_DISCORDANT` discordant pairs; Tango's
    asymptotic score test and interval beyond. Fractions (repeats): a one-sample t-test of the per-case
    differences against the margin, and its interval. Either way the verdict and the interval agree.
    """
    import numpy as np
    from scipy import stats as sps

    from evalkit import stats

    a = np.asarray(baseline, dtype=float)
    b = np.asarray(current, dtype=float)
    level = 1 - 2 * alpha
    n = int(a.size)
    if n == 0:
        return Metric(name, "binary", 0, None, None, None, None, None, level, margin, "inconclusive", blocking,
                      notes=("no paired cases",))
    notes: list[str] = []
    d = b - a
    needed_range: tuple[int, int] | None = None
    cases: int | None = None
    if binary or not np.any(d != d[0]):
        if not binary:
            notes.append("per-case differences are all equal: tested on 'passed every repeat' instead")
            a, b = (a == 1).astype(float), (b == 1).astype(float)
        counts = stats.paired_counts(a, b)
        if counts.discordant <= stats.EXACT_MAX_DISCORDANT:
            test = "exact-unconditional"
            p_reg = stats.exact_unconditional_pvalue(counts, -margin, "less")
            p_ni = stats.exact_unconditional_pvalue(counts, -margin, "greater")
            p_imp = stats.exact_unconditional_pvalue(counts, 0.0, "greater")
            interval = stats.exact_interval(counts, level, anchors=(-margin, 0.0))
        else:
            test = "tango-score"
            p_reg, p_ni = stats.tango_pvalues(counts, -margin)
            p_imp = stats.tango_pvalues(counts, 0.0)[1]
            interval = stats.tango_interval(counts, level)
        needed = stats.cases_needed(counts, margin, alpha)
        tests = {"p_worse_than_margin": p_reg, "p_within_margin": p_ni, "p_better": p_imp,
                 "mcnemar_exact_p": stats.mcnemar_exact(counts), "lost": counts.lost, "gained": counts.gained,
                 "discordance": needed.discordance}
        difference = counts.difference
        cases, needed_range = needed.estimate, (needed.low, needed.high)
        mde = stats.paired_binary_mde(n, stats.discordance_upper(counts), alpha)
    else:
        test = "t-test"
        difference, interval, se = stats.t_interval(d, level)
        shifted = d + margin
        p_reg = float(sps.ttest_1samp(shifted, 0.0, alternative="less").pvalue)
        p_ni = float(sps.ttest_1samp(shifted, 0.0, alternative="greater").pvalue)
        p_imp = float(sps.ttest_1samp(d, 0.0, alternative="greater").pvalue)
        variance = float(np.var(d, ddof=1))
        tests = {"p_worse_than_margin": p_reg, "p_within_margin": p_ni, "p_better": p_imp,
                 "t_test_p": float(sps.ttest_1samp(d, 0.0).pvalue), "standard_error": se}
        z = float(sps.norm.ppf(1 - alpha) + sps.norm.ppf(0.8))
        mde = z * math.sqrt(variance / n)
        if margin > 0:
            low_var, high_var = ((n - 1) * variance / float(sps.chi2.ppf(q, n - 1)) for q in (0.95, 0.05))
            cases = math.ceil(z * z * variance / margin**2)
            needed_range = (math.ceil(z * z * low_var / margin**2), math.ceil(z * z * high_var / margin**2))
    if margin <= 0:
        notes.append("with a zero margin, non-inferiority cannot be shown (only improvement or regression)")
        cases, needed_range = None, None
    verdict = _decide(p_reg, p_imp, p_ni, alpha)
    p_value, named = _deciding(verdict, test, p_reg, p_imp, p_ni)
    return Metric(name, "binary", n, float(a.mean()), float(b.mean()), difference, interval.low, interval.high,
                  level, margin, verdict, blocking, p_value=p_value, test=named, p_regression=p_reg,
                  p_noninferiority=p_ni, p_improvement=p_imp, mde=mde, cases_needed=cases,
                  cases_needed_range=needed_range, tests=tests, notes=tuple(notes))


def score_metric(name: str, baseline: Sequence[float], current: Sequence[float], *, margin: float, alpha: float,
                 blocking: bool, seed: int, resamples: int) -> Metric:
    """Paired graded scores: Wilcoxon (Pratt) + sign test when ordinal, BCa bootstrap when continuous."""
    import numpy as np

    from evalkit import stats

    a = np.asarray(baseline, dtype=float)
    b = np.asarray(current, dtype=float)
    d = b - a
    level = 1 - 2 * alpha
    values = np.concatenate([a, b])
    ordinal = bool(np.all(values == np.round(values))) and np.unique(values).size <= 10
    rng = np.random.default_rng(seed)
    # Monte Carlo error of an interval end depends on the resamples, not on n; past 100,000 draws per
    # resample the budget keeps a 100k-case comparison within seconds (never fewer than 1,000 resamples).
    resamples = min(resamples, max(1000, int(BOOTSTRAP_BUDGET // max(d.size, 1))))
    interval = stats.bootstrap_mean_bca(d, level, rng, resamples)
    notes: list[str] = []
    p_reg: float | None
    p_ni: float | None
    p_imp: float | None
    if ordinal:
        tests = {"wilcoxon_pratt_p": stats.wilcoxon_pratt(d), "sign_test_p": stats.sign_test(d),
                 "bootstrap_resamples": resamples}
        if np.any(d + margin != 0):
            p_reg = stats.wilcoxon_pratt(d + margin, "less")
            p_ni = stats.wilcoxon_pratt(d + margin, "greater")
        else:
            p_reg = p_ni = 1.0
        p_imp = stats.wilcoxon_pratt(d, "greater")
        verdict = _decide(p_reg, p_imp, p_ni, alpha)
        p_value, test = _deciding(verdict, "wilcoxon-pratt", p_reg, p_imp, p_ni)
        by_interval = "regression" if interval.high < -margin else "pass" if interval.low > -margin else None
        if by_interval is not None and by_interval != verdict and verdict in ("regression", "pass"):
            notes.append(f"the mean's BCa interval points to {by_interval}, the rank test to {verdict}: the "
                         "shift is not the same across the scale")
    else:
        tests = {"bootstrap_resamples": resamples}
        p_value, test = None, "bca-bootstrap: interval vs margin"
        p_reg = p_ni = p_imp = None
        if interval.low == interval.high:
            verdict = "inconclusive"
            notes.append("no variation in the paired differences: a zero-width interval is not evidence")
        elif interval.high < -margin:
            verdict = "regression"
        elif interval.low > 0:
            verdict = "improvement"
        elif interval.low > -margin:
            verdict = "pass"
        else:
            verdict = "inconclusive"
    return Metric(name, "ordinal" if ordinal else "continuous", int(a.size), float(a.mean()) if a.size else None,
                  float(b.mean()) if b.size else None, float(d.mean()) if d.size else None, interval.low,
                  interval.high, level, margin, verdict, blocking, p_value=p_value, test=test, p_regression=p_reg,
                  p_noninferiority=p_ni, p_improvement=p_imp, tests=tests, notes=tuple(notes))


def run_level_metric(name: str, kind: str, baseline: Sequence[float], current: Sequence[float], *,
                     margin: float, alpha: float, blocking: bool, why_not: Sequence[str],
                     baseline_variance: Sequence[float] | None = None, current_variance: float = 0.0,
                     counts: Mapping[str, float] | None = None) -> Metric:
    """A per-run value (latency: log p95; error rate) judged with the run as the unit; higher is worse.

    ``kind == "latency"``: values are log p95s, the margin is relative (0.10 = the p95 may grow 10%), and
    what is reported is the ratio − 1. With fewer than :data:`MIN_BASELINE_RUNS` baseline runs, or with any
    reason in ``why_not``, the verdict is ``not_comparable``: a single run each side cannot separate a
    change from that run's conditions.
    """
    import numpy as np

    from evalkit import stats

    level = 1 - 2 * alpha
    xb, xc = np.asarray(baseline, dtype=float), np.asarray(current, dtype=float)
    latency = kind == "latency"

    def shown(value: float) -> float:
        return math.expm1(value) if latency else value

    base_value = float(np.exp(xb.mean())) if latency else float(xb.mean())
    current_value = float(np.exp(xc.mean())) if latency else float(xc.mean())
    difference = shown(float(xc.mean() - xb.mean()))
    tests: dict[str, float] = {"baseline_runs": int(xb.size), **(counts or {})}
    reasons = list(why_not)
    if xb.size < MIN_BASELINE_RUNS:
        reasons.insert(0, f"{xb.size} baseline run{'s' if xb.size != 1 else ''}: judging this needs the spread of "
                          f"at least {MIN_BASELINE_RUNS} (save the baseline from several runs: evalkit baseline "
                          "save RUN RUN RUN)")
    if reasons:
        return Metric(name, kind, int(xb.size), base_value, current_value, difference, None, None, level, margin,
                      "not_comparable", blocking, test="not judged", n_unit="runs", tests=tests,
                      notes=tuple(reasons))
    scale_margin = math.log1p(margin) if latency else margin
    result = stats.run_level_test(xb, xc, margin=scale_margin, level=level, baseline_variance=baseline_variance,
                                  current_variance=current_variance)
    tests.update({"run_to_run_sd": result.spread, "standard_error": result.standard_error, "df": result.df,
                  "p_worse_than_margin": result.p_worse, "p_within_margin": result.p_within,
                  "p_better": result.p_better})
    verdict = _decide(result.p_worse, result.p_better, result.p_within, alpha)
    p_value, test = _deciding(verdict, f"run-level-t({result.df} df)", result.p_worse, result.p_better,
                              result.p_within)
    return Metric(name, kind, int(xb.size), base_value, current_value, difference, shown(result.interval.low),
                  shown(result.interval.high), level, margin, verdict, blocking, p_value=p_value, test=test,
                  p_regression=result.p_worse, p_noninferiority=result.p_within, p_improvement=result.p_better,
                  n_unit="runs", tests=tests)


# --- conditions ---------------------------------------------------------------------------------------


def hour_band(hour: int | None) -> str:
    """Night, morning, afternoon or evening."""
    if hour is None:
        return "unknown"
    return next(name for start, stop, name in HOUR_BANDS if start <= hour < stop)


def _load_per_cpu(conditions: Mapping[str, Any]) -> float | None:
    loads = [v[0] for v in (conditions.get("loadavg_start"), conditions.get("loadavg_end")) if v]
    cpus = conditions.get("host_cpus") or 1
    return max(loads) / cpus if loads else None


def _in_flight(run: RunSummary) -> float | None:
    value = run.in_flight_at_start if run.in_flight_at_start is not None else run.conditions.get("in_flight_mean")
    return None if value is None else float(value)


def _loopback(endpoint: Any) -> bool:
    return isinstance(endpoint, str) and endpoint.rsplit(":", 1)[0] in LOOPBACK


def _span(values: Sequence[float], unit: str = "") -> str:
    low, high = min(values), max(values)
    return f"{low:.2f}{unit}" if low == high else f"{low:.2f}–{high:.2f}{unit}"


def latency_conditions(current: Sequence[RunSummary], baseline: Sequence[RunSummary]) -> list[str]:
    """What differs between the current run and the baseline runs among the conditions that move latency.

    Each entry is a reason not to judge latency, TTFT or error rate: the served model or its fingerprint,
    the host's CPU count, configured concurrency, the endpoint (loopback ports aside), the hour band, a load
    average per CPU more than :data:`LOAD_PER_CPU_TOLERANCE` outside the baseline runs' range, CPU pressure
    (``cpu_pressure``, when the run recorded it) more than :data:`CPU_PRESSURE_TOLERANCE` outside theirs, and
    calls in flight more than :data:`IN_FLIGHT_TOLERANCE` times outside theirs. The 1-minute load average
    lags: a neighbour that starts during a short run barely moves it, which CPU pressure does not miss.
    """
    if not current or not baseline:
        return []
    now = current[0].conditions
    before = [r.conditions for r in baseline]
    reasons: list[str] = []

    def differs(key: str, label: str) -> None:
        seen = [c.get(key) for c in before]
        if now.get(key) not in seen:
            shown = seen[0] if len({repr(s) for s in seen}) == 1 else seen
            reasons.append(f"{label} {shown} → {now.get(key)}")

    differs("provider", "provider")
    differs("model_requested", "model requested")
    if not (_loopback(now.get("endpoint")) and all(_loopback(c.get("endpoint")) for c in before)):
        differs("endpoint", "endpoint")
    returned = set(now.get("models_returned") or ())
    if returned and not returned <= {m for c in before for m in c.get("models_returned") or ()}:
        reasons.append(f"model served {sorted({m for c in before for m in c.get('models_returned') or ()})} → "
                       f"{sorted(returned)}")
    prints = set(now.get("system_fingerprints") or ())
    known_prints = {m for c in before for m in c.get("system_fingerprints") or ()}
    if prints and not prints <= known_prints:
        reasons.append(f"provider fingerprint {sorted(known_prints)} → {sorted(prints)}")
    differs("host_cpus", "host CPUs")
    differs("concurrency_configured", "concurrency")
    bands = [hour_band(c.get("hour_local")) for c in before]
    band = hour_band(now.get("hour_local"))
    if band not in bands:
        reasons.append(f"hour band {'/'.join(sorted(set(bands)))} → {band}")
    loads = [v for c in before if (v := _load_per_cpu(c)) is not None]
    load = _load_per_cpu(now)
    if loads and load is not None and not (min(loads) - LOAD_PER_CPU_TOLERANCE <= load
                                           <= max(loads) + LOAD_PER_CPU_TOLERANCE):
        reasons.append(f"load average per CPU {_span(loads)} → {load:.2f}")
    pressures = [float(v) for c in before if (v := c.get("cpu_pressure")) is not None]
    pressure = now.get("cpu_pressure")
    if pressures and pressure is not None and not (min(pressures) - CPU_PRESSURE_TOLERANCE <= pressure
                                                   <= max(pressures) + CPU_PRESSURE_TOLERANCE):
        reasons.append(f"CPU pressure {_span(pressures)} → {pressure:.2f}")
    flights = [v for r in baseline if (v := _in_flight(r)) is not None]
    flight = _in_flight(current[0])
    if flights and flight is not None and not (min(flights) / IN_FLIGHT_TOLERANCE <= flight
                                               <= max(flights) * IN_FLIGHT_TOLERANCE):
        reasons.append(f"calls in flight (mean at call start) {_span(flights)} → {flight:.2f}")
    return reasons


def _fingerprint_notes(current: Baseline, baseline: Baseline) -> list[str]:
    notes: list[str] = []
    fc, fb = current.fingerprints, baseline.fingerprints
    if fc.get("models_returned") != fb.get("models_returned"):
        notes.append(f"model returned differs: {fb.get('models_returned')} → {fc.get('models_returned')}")
    if fc.get("model_requested") != fb.get("model_requested"):
        notes.append(f"model requested differs: {fb.get('model_requested')} → {fc.get('model_requested')}")
    if fc.get("system_fingerprints") != fb.get("system_fingerprints"):
        notes.append(f"provider fingerprint differs: {fb.get('system_fingerprints')} → "
                     f"{fc.get('system_fingerprints')}")
    if fc.get("suite_sha256") != fb.get("suite_sha256"):
        notes.append("suite or prompts changed since the baseline (expected in a prompt change)")
    if fc.get("evalkit_version") != fb.get("evalkit_version"):
        notes.append(f"evalkit version differs: {fb.get('evalkit_version')} → {fc.get('evalkit_version')}")
    return notes


# --- assembling a comparison --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cases:
    """Samples folded per case (the unit of every paired test), as arrays indexed like ``ids``."""

    ids: list[str]
    passed: Any
    """Passes per case (numpy array)."""
    total: Any
    """Samples per case."""
    scores: dict[str, tuple[Any, Any]]
    """Score name → (sum, count) per case."""
    tags: list[tuple[str, ...]]
    first_output: list[str]

    @property
    def fraction(self) -> Any:
        return self.passed / self.total

    def kn(self, i: int) -> str:
        return f"{int(self.passed[i])}/{int(self.total[i])}"


def _fold(samples: Sequence[Sample]) -> _Cases:
    """One pass over the samples collects flat columns; numpy's bincount does the per-case sums."""
    import numpy as np

    index: dict[str, int] = {}
    ids: list[str] = []
    tags: list[tuple[str, ...]] = []
    outputs: list[str] = []
    case_of: list[int] = []
    passed: list[bool] = []
    score_columns: dict[str, tuple[list[int], list[float]]] = {}
    for sample in samples:
        i = index.get(sample.case_id)
        if i is None:
            i = index[sample.case_id] = len(ids)
            ids.append(sample.case_id)
            tags.append(sample.tags)
            outputs.append(sample.output)
        case_of.append(i)
        passed.append(sample.passed)
        for name, value in sample.scores.items():
            if value is not None:
                where, values = score_columns.setdefault(name, ([], []))
                where.append(i)
                values.append(value)
    n = len(ids)
    cases = np.array(case_of, dtype=np.int64)
    scores = {
        name: (np.bincount(where, weights=values, minlength=n), np.bincount(where, minlength=n).astype(float))
        for name, (where, values) in score_columns.items()
    }
    return _Cases(ids, np.bincount(cases, weights=np.array(passed, dtype=float), minlength=n),
                  np.bincount(cases, minlength=n).astype(float), scores, tags, outputs)


def _run_level_metrics(current: Sequence[RunSummary], baseline: Sequence[RunSummary], config: GateConfig,
                       why_not: Sequence[str]) -> list[Metric]:
    """Latency p95, TTFT p95 and error rate, each judged with the run as the unit."""
    metrics: list[Metric] = []
    for name, attribute in (("latency_p95", "latency"), ("ttft_p95", "ttft")):
        before: list[Percentiles] = [p for r in baseline if (p := getattr(r, attribute)) is not None]
        now: list[Percentiles] = [p for r in current if (p := getattr(r, attribute)) is not None]
        if not before or not now:
            continue
        notes = [f"{r.run_id}: {p.n} {attribute} values, too few for a stable p95 (< {MIN_POINTS_FOR_P95})"
                 for r, p in ((r, getattr(r, attribute)) for r in (*current, *baseline))
                 if p is not None and p.n < MIN_POINTS_FOR_P95]
        metric = run_level_metric(
            name, "latency", [math.log(p.p95) for p in before], [math.log(p.p95) for p in now],
            margin=config.latency_margin, alpha=config.alpha, blocking=name in config.block_on, why_not=why_not,
            baseline_variance=[p.log_p95_se**2 for p in before if math.isfinite(p.log_p95_se)] or None,
            current_variance=max((p.log_p95_se**2 for p in now if math.isfinite(p.log_p95_se)), default=0.0),
            counts={"baseline_calls": sum(p.n for p in before), "current_calls": sum(p.n for p in now)},
        )
        metrics.append(replace(metric, notes=(*metric.notes, *notes)))
    if any(r.errors for r in (*current, *baseline)) or "error_rate" in config.block_on:
        def smoothed(run: RunSummary) -> float:
            rate = (run.errors + 0.5) / (run.calls + 1)
            return rate * (1 - rate) / max(run.calls, 1)

        before_runs = [r for r in baseline if r.calls]
        now_runs = [r for r in current if r.calls]
        if before_runs and now_runs:
            metrics.append(run_level_metric(
                "error_rate", "rate", [r.errors / r.calls for r in before_runs], [r.errors / r.calls for r in now_runs],
                margin=config.margin("error_rate"), alpha=config.alpha, blocking="error_rate" in config.block_on,
                why_not=why_not, baseline_variance=[smoothed(r) for r in before_runs],
                current_variance=max(smoothed(r) for r in now_runs),
                counts={"baseline_errors": sum(r.errors for r in before_runs),
                        "baseline_calls": sum(r.calls for r in before_runs),
                        "current_errors": sum(r.errors for r in now_runs),
                        "current_calls": sum(r.calls for r in now_runs)},
            ))
    return metrics


def _holm(metrics: list[Metric], alpha: float) -> list[Metric]:
    """Holm over the regression tests of the metrics that can block; the deciding p follows."""
    from evalkit import stats

    blocking = [i for i, m in enumerate(metrics) if m.blocking and m.p_regression is not None]
    if len(blocking) < 2:
        return metrics
    adjusted = stats.holm([metrics[i].p_regression or 1.0 for i in blocking])
    out = list(metrics)
    for i, p in zip(blocking, adjusted, strict=True):
        out[i] = _adjusted(metrics[i], float(p), alpha, f"Holm over {len(blocking)} blocking metrics")
    return out


def _adjusted(metric: Metric, p: float, alpha: float, how: str) -> Metric:
    """A metric with its regression p adjusted for multiplicity (a regression that no longer holds is not one)."""
    notes = metric.notes
    verdict, p_value, test = metric.verdict, metric.p_value, metric.test
    if verdict == "regression":
        p_value, test = p, f"{test}, {how.split(' over')[0]}"
        if p >= alpha:
            verdict = "inconclusive"
            notes = (*notes, f"worse than the margin at p={metric.p_regression:.2g}, but not after {how} "
                             f"(p={p:.2g})")
    return replace(metric, p_regression=p, verdict=verdict, p_value=p_value, test=test, notes=notes)


def compare(current: Run | Baseline, baseline: Baseline, config: GateConfig | None = None, *,
            use_run_gate: bool = False, overrides: Mapping[str, Any] | None = None,
            judges: Mapping[str, Any] | None = None) -> Comparison:
    """Compares a run (or a baseline-shaped record) with a baseline of the same suite.

    The policy in force is the baseline's ``gate:`` section; the run's own ``gate:``, when different, is
    reported as pending. ``use_run_gate`` applies the run's instead, and ``overrides`` (``margin``,
    ``alpha``, ``inconclusive_blocks``) change single settings; both are logged in the comparison. A
    ``config`` given here is used as is.
    """
    import numpy as np

    from evalkit.judges.pool import read_trust

    if judges is None:  # the trust of the run's judges, recorded in its directory (evalkit.judges.pool)
        judges = read_trust(current.directory) if isinstance(current, Run) else {}
    if isinstance(current, Run):
        current = baseline_of(current)
    check_same_suite(baseline, str(current.suite.get("name", "")))
    if config is not None:
        policy = GatePolicy(config, "caller")
    else:
        policy = resolve_policy(baseline.suite.get("gate"), current.suite.get("gate"), use_run_gate=use_run_gate,
                                **dict(overrides or {}))
        config = policy.config
    now, before = _fold(current.samples), _fold(baseline.samples)
    now_index = {c: i for i, c in enumerate(now.ids)}
    before_set = set(before.ids)
    pairs = [(i, now_index[c]) for i, c in enumerate(before.ids) if c in now_index]
    ib = np.array([p[0] for p in pairs], dtype=int)
    ic = np.array([p[1] for p in pairs], dtype=int)
    unpaired_baseline = tuple(c for c in before.ids if c not in now_index)
    unpaired_current = tuple(c for c in now.ids if c not in before_set)
    current_runs, baseline_runs = current.run_summaries, baseline.run_summaries
    why_not = latency_conditions(current_runs, baseline_runs)
    notes = _fingerprint_notes(current, baseline)
    if why_not:
        notes.append("latency conditions differ: " + "; ".join(why_not))
    binary = current.repeats == 1 and baseline.repeats == 1
    fb, fc = before.fraction[ib], now.fraction[ic]

    metrics: list[Metric] = [pass_rate_metric(
        fb, fc, margin=config.margin("pass_rate"), alpha=config.alpha, blocking="pass_rate" in config.block_on,
        binary=binary,
    )]
    for score in sorted(set(now.scores) & set(before.scores)):
        (sum_b, count_b), (sum_c, count_c) = before.scores[score], now.scores[score]
        both = (count_b[ib] > 0) & (count_c[ic] > 0)
        a = sum_b[ib][both] / count_b[ib][both]
        b = sum_c[ic][both] / count_c[ic][both]
        if a.size == 0 or np.all(np.isin(np.concatenate([a, b]), (0.0, 1.0))):
            continue  # a 0/1 grade duplicates its check's pass/fail, which pass_rate already covers
        metrics.append(score_metric(
            f"score:{score}", a, b, margin=config.margin(f"score:{score}"), alpha=config.alpha,
            blocking=f"score:{score}" in config.block_on, seed=config.seed, resamples=config.resamples,
        ))
    pass_k = pass_k_metric(before, now, ib, ic, current.repeats, baseline.repeats, config)
    if pass_k is not None:
        metrics.append(pass_k)
    metrics = judge_metrics(metrics, baseline.samples, current.samples, judges, config)
    metrics += _run_level_metrics(current_runs, baseline_runs, config, why_not)
    metrics = _holm(metrics, config.alpha)

    tags = [now.tags[i] for i in ic]
    slices = _slices(fb, fc, tags, config, binary)
    flipped = np.flatnonzero((fb >= 0.5) != (fc >= 0.5))
    flips = sorted(
        (Flip(before.ids[ib[k]], "pass→fail" if fb[k] >= 0.5 else "fail→pass", before.first_output[ib[k]],
              now.first_output[ic[k]], before.kn(ib[k]), now.kn(ic[k])) for k in flipped),
        key=lambda f: (f.direction != "pass→fail", f.case_id),
    )
    flaky_mask = ((fc > 0) & (fc < 1)) | ((fb > 0) & (fb < 1))
    flaky = tuple((before.ids[ib[k]], before.kn(ib[k]), now.kn(ic[k])) for k in np.flatnonzero(flaky_mask))
    verdict, decided_by = _overall(metrics, slices)
    return Comparison(
        suite=str(current.suite.get("name", "")), verdict=verdict, metrics=tuple(metrics), slices=slices,
        flips=tuple(flips), unpaired_baseline=unpaired_baseline, unpaired_current=unpaired_current,
        comparability=tuple(notes), flaky=flaky, policy=policy, baseline_run=baseline.run_id,
        current_run=current.run_id, decided_by=decided_by, baseline_runs=len(baseline_runs),
    )


# --- judges (a judge-scored metric decides only when its judge is trusted: evalkit.judges.pool) ----------


def judge_metrics(metrics: list[Metric], before: Sequence[Sample], now: Sequence[Sample], trust: Mapping[str, Any],
                  config: GateConfig) -> list[Metric]:
    """Adds ``judge:NAME`` (the judge's paired pass/fail per case) for every judge the run used; when a judge is
    not ``trusted`` its metric — and the pass rate, which its verdicts are part of — is inconclusive with the
    reason, never pass nor regression."""
    out = list(metrics)

    def per_case(samples: Sequence[Sample], key: str) -> dict[str, float]:
        found: dict[str, float] = {}
        for sample in samples:
            if key in sample.checks and sample.case_id not in found:
                found[sample.case_id] = float(sample.checks[key])
        return found

    untrusted = []
    for name, t in sorted(trust.items()):
        key = f"judge:{name}"
        b, c = per_case(before, key), per_case(now, key)
        ids = [i for i in b if i in c]
        metric = pass_rate_metric([b[i] for i in ids], [c[i] for i in ids],
                                  margin=float(config.margins.get(key, config.margin("pass_rate"))),
                                  alpha=config.alpha, name=key, blocking=key in config.block_on)
        if not ids:
            metric = replace(metric, notes=(*metric.notes, "the baseline holds no verdict of this judge"))
        if not t.trusted:
            why = f"{t.status}: " + ("; ".join(t.reasons) or "see judges.json")
            untrusted.append(f"judge {name} is {t.status}")
            metric = replace(metric, verdict="inconclusive", p_value=None, p_regression=None, test=t.status,
                             notes=(*metric.notes, why))
        out.append(metric)
    if untrusted and out and out[0].name == "pass_rate":
        first = out[0]
        out[0] = replace(first, verdict="inconclusive", p_value=None, p_regression=None,
                         test="; ".join(untrusted),
                         notes=(*first.notes, "the pass rate includes the verdicts of an untrusted judge: "
                                + "; ".join(untrusted)))
    return out


# --- pass^k (agent reliability: a case counts only when every one of its k repeats passed) -----------


def pass_k_metric(before: _Cases, now: _Cases, ib: Any, ic: Any, current_repeats: int, baseline_repeats: int,
                  config: GateConfig) -> Metric | None:
    """Paired pass^k: per case, 1 when all its repeats passed; tested like a binary pass rate.

    Added when either side has repeats (with k = 1 it is the pass rate) or when ``pass_k`` may block.
    """
    if max(current_repeats, baseline_repeats) <= 1 and "pass_k" not in config.block_on:
        return None
    all_before = (before.passed[ib] == before.total[ib]).astype(float)
    all_now = (now.passed[ic] == now.total[ic]).astype(float)
    margin = float(config.margins.get("pass_k", config.margin("pass_rate")))
    metric = pass_rate_metric(all_before, all_now, margin=margin, alpha=config.alpha,
                              name="pass_k", blocking="pass_k" in config.block_on, binary=True)
    return replace(metric, notes=(*metric.notes, f"k = {baseline_repeats} (baseline), {current_repeats} (now)"))


def _slices(before: Any, current: Any, tags: Sequence[tuple[str, ...]], config: GateConfig,
            binary: bool) -> tuple[Metric, ...]:
    import numpy as np

    from evalkit import stats

    names = sorted({t for case_tags in tags for t in case_tags})
    slices = []
    for tag in names:
        mask = np.fromiter((tag in case_tags for case_tags in tags), dtype=bool, count=len(tags))
        slices.append(pass_rate_metric(
            before[mask], current[mask], margin=config.margin("pass_rate"), alpha=config.alpha,
            name=f"pass_rate[{tag}]", blocking=config.slices_block, binary=binary,
        ))
    if not slices:
        return ()
    adjusted = stats.benjamini_hochberg([s.p_regression if s.p_regression is not None else 1.0 for s in slices])
    how = f"Benjamini-Hochberg over {len(slices)} slices"
    return tuple(_adjusted(s, float(p), config.alpha, how) for s, p in zip(slices, adjusted, strict=True))


def _overall(metrics: Sequence[Metric], slices: Sequence[Metric]) -> tuple[str, tuple[str, ...]]:
    """The overall verdict and the blocking metrics that made it."""
    deciding = [m for m in (*metrics, *slices) if m.blocking and m.verdict != "not_comparable"]
    if not deciding:
        return "pass", ()
    for verdict in ("regression", "inconclusive"):
        named = tuple(m.name for m in deciding if m.verdict == verdict)
        if named:
            return verdict, named
    if all(m.verdict == "improvement" for m in deciding):
        return "improvement", tuple(m.name for m in deciding)
    return "pass", tuple(m.name for m in deciding)
