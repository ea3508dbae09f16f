"""Run vs baseline: paired statistics per metric, non-inferiority decisions, one verdict.

Each metric gets the paired test that fits it (see ``stats.py``) and a decision against a declared
non-inferiority margin, one-sided at alpha:

- ``regression``: evidence the change is worse than the margin allows;
- ``pass``: evidence it is within the margin (non-inferiority shown);
- ``improvement``: evidence it is better than the baseline;
- ``inconclusive``: neither — the suite is too small to tell (the minimum detectable effect and the cases
  needed are reported);
- ``not_comparable``: latency measured under different conditions (hour band, concurrency) is not judged.

Holm adjusts the regression tests of the blocking metrics; Benjamini-Hochberg adjusts the per-tag slices.
The case is the unit: repeats are averaged per case before any paired test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from evalkit.baseline import Baseline, Sample, baseline_of
from evalkit.errors import ExitCode
from evalkit.results import Run

VERDICTS = ("regression", "inconclusive", "pass", "improvement", "not_comparable")
HOUR_BANDS = ((0, 6, "night"), (6, 12, "morning"), (12, 18, "afternoon"), (18, 24, "evening"))
BOOTSTRAP_BUDGET = 1e8
"""Resamples × cases drawn at most for one BCa interval."""
MIN_POINTS_FOR_P95 = 100
"""Below this many latencies per side, the p95 rests on five or fewer points and a warning is given."""


@dataclass(frozen=True)
class GateConfig:
    """How the gate decides; from the suite's ``gate:`` section, overridden on the command line."""

    alpha: float = 0.05
    margins: Mapping[str, float] = field(default_factory=lambda: {"pass_rate": 0.02}, hash=False)
    """Absolute margins per metric (pass_rate 0.02 = 2 points); latency margins are relative to the baseline."""
    latency_margin: float = 0.10
    """How much the p95 may grow, as a fraction of the baseline p95."""
    block_on: tuple[str, ...] = ("pass_rate",)
    """Metrics whose regression (or inconclusiveness) fails the gate."""
    inconclusive_blocks: bool = True
    slices_block: bool = False
    """Whether a per-tag slice's regression (BH-adjusted) fails the gate."""
    seed: int = 0
    resamples: int = 2000

    def margin(self, metric: str) -> float:
        return float(self.margins.get(metric, self.margins.get("default", 0.02 if metric == "pass_rate" else 0.0)))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, **overrides: Any) -> GateConfig:
        """From a suite's ``gate:`` mapping (already schema-checked), then non-None overrides."""
        data = dict(data or {})
        margins = {"pass_rate": 0.02, **data.get("margins", {})}
        margin = overrides.pop("margin", None)
        if margin is not None:
            margins["pass_rate"] = float(margin)
        config = cls(
            alpha=float(data.get("alpha", 0.05)),
            margins=margins,
            latency_margin=float(data.get("latency_margin", 0.10)),
            block_on=tuple(data.get("block_on", ("pass_rate",))),
            inconclusive_blocks=data.get("inconclusive", "block") == "block",
            slices_block=data.get("slices", "report") == "block",
            seed=int(data.get("seed", 0)),
        )
        return replace(config, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class Metric:
    """The comparison of one metric."""

    name: str
    kind: str
    """``binary``, ``ordinal``, ``continuous`` or ``latency``."""
    n: int
    """Paired cases (for latency: the smaller of the two sample sizes)."""
    baseline: float | None
    current: float | None
    difference: float | None
    """Current minus baseline (for latency: of the p95, in seconds)."""
    ci_low: float | None
    ci_high: float | None
    ci_level: float
    margin: float
    verdict: str
    blocking: bool
    p_value: float | None = None
    """The metric's own two-sided test (exact McNemar, Wilcoxon, Mann-Whitney …)."""
    p_regression: float | None = None
    """One-sided p for 'worse than the margin', after Holm (blocking metrics) or BH (slices)."""
    p_noninferiority: float | None = None
    """One-sided p for 'within the margin'."""
    mde: float | None = None
    """Minimum detectable effect at 80% power, beyond the margin."""
    cases_needed: int | None = None
    """Cases needed to show non-inferiority at this margin if nothing truly changed."""
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
    config: GateConfig
    baseline_run: str = ""
    current_run: str = ""

    @property
    def exit_code(self) -> ExitCode:
        if self.verdict == "regression":
            return ExitCode.REGRESSION
        if self.verdict == "inconclusive" and self.config.inconclusive_blocks:
            return ExitCode.INCONCLUSIVE
        return ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "evalkit.comparison/1", "suite": self.suite, "verdict": self.verdict,
            "exit_code": int(self.exit_code), "baseline_run": self.baseline_run, "current_run": self.current_run,
            "metrics": [m.to_dict() for m in self.metrics], "slices": [m.to_dict() for m in self.slices],
            "flips": [f.__dict__ for f in self.flips], "unpaired_baseline": list(self.unpaired_baseline),
            "unpaired_current": list(self.unpaired_current), "comparability": list(self.comparability),
            "flaky": [list(f) for f in self.flaky],
            "config": {"alpha": self.config.alpha, "margins": dict(self.config.margins),
                       "latency_margin": self.config.latency_margin, "block_on": list(self.config.block_on),
                       "inconclusive_blocks": self.config.inconclusive_blocks,
                       "slices_block": self.config.slices_block, "seed": self.config.seed},
        }


# --- decisions ----------------------------------------------------------------------------------------


def _decide(p_regression: float, p_noninferiority: float, low: float | None, alpha: float) -> str:
    if p_regression < alpha:
        return "regression"
    if low is not None and low > 0 and p_noninferiority < alpha:
        return "improvement"
    if p_noninferiority < alpha:
        return "pass"
    return "inconclusive"


def pass_rate_metric(baseline: Sequence[float], current: Sequence[float], *, margin: float, alpha: float,
                     name: str = "pass_rate", blocking: bool = True, binary: bool = True) -> Metric:
    """Paired pass rates, case by case (values are 0/1, or k/n fractions when there are repeats).

    Binary pairs: Tango's score test against the margin, its inverted interval, exact McNemar.
    Fractions (repeats): a one-sample t-test of the per-case differences against the margin.
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
    if binary or not np.any(d != d[0]):
        if not binary:
            notes.append("per-case differences are all equal: tested on 'passed every repeat' instead")
            a, b = (a == 1).astype(float), (b == 1).astype(float)
        counts = stats.paired_counts(a, b)
        p_reg, p_ni = stats.tango_pvalues(counts, -margin)
        exact_worse, exact_better = stats.mcnemar_exact_one_sided(counts)
        # Tango's test is asymptotic and can be liberal with a handful of discordant pairs; a claim that the
        # change is worse (or better) must also hold under the exact conditional test (both must reject).
        p_reg = max(p_reg, exact_worse)
        interval = stats.tango_interval(counts, level)
        discordance = stats.discordance_upper(counts)
        tests = {"mcnemar_exact_p": stats.mcnemar_exact(counts), "mcnemar_exact_worse_p": exact_worse,
                 "mcnemar_exact_better_p": exact_better, "tango_noninferiority_p": p_ni,
                 "lost": counts.lost, "gained": counts.gained}
        p_value = tests["mcnemar_exact_p"]
        difference = counts.difference
        if exact_better >= alpha and interval.low > 0:
            notes.append(f"the score interval excludes 0 but the exact test does not (p={exact_better:.3g}): "
                         "not called an improvement")
            interval_low_for_decision: float | None = min(interval.low, 0.0)
        else:
            interval_low_for_decision = interval.low
    else:
        difference, interval, se = stats.t_interval(d, level)
        shifted = d + margin
        p_reg = float(sps.ttest_1samp(shifted, 0.0, alternative="less").pvalue)
        p_ni = float(sps.ttest_1samp(shifted, 0.0, alternative="greater").pvalue)
        p_value = float(sps.ttest_1samp(d, 0.0).pvalue)
        discordance = float(np.var(d, ddof=1))
        tests = {"t_test_p": p_value, "standard_error": se}
        interval_low_for_decision = interval.low
    effect = margin if margin > 0 else 0.02
    mde = stats.paired_binary_mde(n, discordance, alpha)
    needed = stats.paired_binary_power_n(discordance, effect, alpha)
    if margin <= 0:
        notes.append("with a zero margin, non-inferiority cannot be shown; cases needed is for a 2-point change")
    verdict = _decide(p_reg, p_ni, interval_low_for_decision, alpha)
    return Metric(name, "binary", n, float(a.mean()), float(b.mean()), difference, interval.low, interval.high,
                  level, margin, verdict, blocking, p_value=p_value, p_regression=p_reg, p_noninferiority=p_ni,
                  mde=mde, cases_needed=needed, tests=tests, notes=tuple(notes))


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
    if ordinal:
        tests = {"wilcoxon_pratt_p": stats.wilcoxon_pratt(d), "sign_test_p": stats.sign_test(d),
                 "bootstrap_resamples": resamples}
        p_reg = stats.wilcoxon_pratt(d + margin, "less")
        p_ni = stats.wilcoxon_pratt(d + margin, "greater")
        if not np.any(d + margin != 0):
            p_reg = p_ni = 1.0
        p_value = tests["wilcoxon_pratt_p"]
        verdict = _decide(p_reg, p_ni, interval.low, alpha)
    else:
        tests = {"bootstrap_resamples": resamples}
        p_value = None
        p_reg = p_ni = None  # type: ignore[assignment]
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
                  interval.high, level, margin, verdict, blocking, p_value=p_value, p_regression=p_reg,
                  p_noninferiority=p_ni, tests=tests, notes=tuple(notes))


def latency_metric(name: str, baseline: Sequence[float], current: Sequence[float], *, relative_margin: float,
                   alpha: float, blocking: bool, comparable: bool, why_not: str, seed: int) -> Metric:
    """p95 difference with a bootstrap interval, plus Mann-Whitney U; higher is worse."""
    import numpy as np

    from evalkit import stats

    a = np.asarray(baseline, dtype=float)
    b = np.asarray(current, dtype=float)
    level = 1 - 2 * alpha
    notes: list[str] = []
    if a.size == 0 or b.size == 0:
        return Metric(name, "latency", 0, None, None, None, None, None, level, 0.0, "inconclusive", blocking,
                      notes=("no latencies on one side",))
    base_p95 = float(np.quantile(a, 0.95, method="inverted_cdf"))
    margin = relative_margin * base_p95
    difference, interval = stats.quantile_difference_interval(a, b, 0.95, level, np.random.default_rng(seed))
    p_value = stats.mann_whitney(a, b)
    if min(a.size, b.size) < MIN_POINTS_FOR_P95:
        notes.append(f"too few points for a stable p95 ({min(a.size, b.size)} < {MIN_POINTS_FOR_P95} per side)")
    if not comparable:
        verdict = "not_comparable"
        notes.append(why_not)
    elif interval.low > margin:
        verdict = "regression"
    elif interval.high < 0:
        verdict = "improvement"
    elif interval.high < margin:
        verdict = "pass"
    else:
        verdict = "inconclusive"
    return Metric(name, "latency", int(min(a.size, b.size)), base_p95, base_p95 + difference, difference,
                  interval.low, interval.high, level, margin, verdict, blocking and comparable, p_value=p_value,
                  tests={"mann_whitney_p": p_value, "baseline_n": int(a.size), "current_n": int(b.size)},
                  notes=tuple(notes))


# --- assembling a comparison --------------------------------------------------------------------------


def hour_band(hour: int | None) -> str:
    """Night, morning, afternoon or evening."""
    if hour is None:
        return "unknown"
    return next(name for start, stop, name in HOUR_BANDS if start <= hour < stop)


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


def _comparability(current: Baseline, baseline: Baseline) -> tuple[list[str], bool, str]:
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
    cc, cb = current.conditions, baseline.conditions
    band_c, band_b = hour_band(cc.get("hour_local")), hour_band(cb.get("hour_local"))
    reasons = []
    if band_c != band_b:
        reasons.append(f"hour band {band_b} → {band_c}")
    if cc.get("concurrency_configured") != cb.get("concurrency_configured"):
        reasons.append(f"concurrency {cb.get('concurrency_configured')} → {cc.get('concurrency_configured')}")
    if cc.get("endpoint") != cb.get("endpoint") and cc.get("provider") != "local":
        reasons.append(f"endpoint {cb.get('endpoint')} → {cc.get('endpoint')}")
    why = "latency not comparable: " + ", ".join(reasons) if reasons else ""
    if reasons:
        notes.append(why)
    return notes, not reasons, why


def compare(current: Run | Baseline, baseline: Baseline, config: GateConfig | None = None) -> Comparison:
    """Compares a run (or a baseline-shaped record) with a baseline."""
    import numpy as np

    from evalkit import stats

    if isinstance(current, Run):
        current = baseline_of(current)
    if config is None:
        config = GateConfig.from_mapping(current.suite.get("gate"))
    now, before = _fold(current.samples), _fold(baseline.samples)
    now_index = {c: i for i, c in enumerate(now.ids)}
    before_set = set(before.ids)
    pairs = [(i, now_index[c]) for i, c in enumerate(before.ids) if c in now_index]
    ib = np.array([p[0] for p in pairs], dtype=int)
    ic = np.array([p[1] for p in pairs], dtype=int)
    unpaired_baseline = tuple(c for c in before.ids if c not in now_index)
    unpaired_current = tuple(c for c in now.ids if c not in before_set)
    notes, comparable, why_not = _comparability(current, baseline)
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
    for field_name, metric_name in (("latency_s", "latency_p95"), ("ttft_s", "ttft_p95")):
        la = [float(v) for s in baseline.samples if (v := getattr(s, field_name)) is not None]
        lb = [float(v) for s in current.samples if (v := getattr(s, field_name)) is not None]
        if la or lb:
            metrics.append(latency_metric(
                metric_name, la, lb, relative_margin=config.latency_margin, alpha=config.alpha,
                blocking=metric_name in config.block_on, comparable=comparable, why_not=why_not, seed=config.seed,
            ))

    # Holm over the regression tests of the metrics that can block.
    blocking = [i for i, m in enumerate(metrics) if m.blocking and m.p_regression is not None]
    adjusted = stats.holm([metrics[i].p_regression or 1.0 for i in blocking])
    for i, p in zip(blocking, adjusted, strict=True):
        m = metrics[i]
        verdict = m.verdict
        if verdict == "regression" and p >= config.alpha:
            verdict = "inconclusive"
        metrics[i] = replace(m, p_regression=float(p), verdict=verdict)

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
    return Comparison(
        suite=str(current.suite.get("name", "")), verdict=_overall(metrics, slices), metrics=tuple(metrics),
        slices=slices, flips=tuple(flips), unpaired_baseline=unpaired_baseline, unpaired_current=unpaired_current,
        comparability=tuple(notes), flaky=flaky, config=config, baseline_run=baseline.run_id,
        current_run=current.run_id,
    )


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
    adjusted = stats.benjamini_hochberg([s.p_regression if s.p_regression is not None else 1.0 for s in slices])
    out = []
    for s, p in zip(slices, adjusted, strict=True):
        verdict = s.verdict
        if verdict == "regression" and p >= config.alpha:
            verdict = "inconclusive"
        out.append(replace(s, p_regression=float(p), verdict=verdict))
    return tuple(out)


def _overall(metrics: Sequence[Metric], slices: Sequence[Metric]) -> str:
    deciding = [m for m in (*metrics, *slices) if m.blocking]
    if not deciding:
        return "pass"
    verdicts = {m.verdict for m in deciding}
    if "regression" in verdicts:
        return "regression"
    if "inconclusive" in verdicts:
        return "inconclusive"
    if verdicts <= {"improvement", "not_comparable"} and "improvement" in verdicts:
        return "improvement"
    return "pass"


def verdict_line(comparison: Comparison) -> str:
    """One line a person reads first."""
    primary = comparison.metrics[0]
    diff = "–" if primary.difference is None else f"{primary.difference * 100:+.1f} pts"
    ci = "" if primary.ci_low is None or primary.ci_high is None else (
        f" ({round(primary.ci_level * 100)}% CI {primary.ci_low * 100:+.1f} to {primary.ci_high * 100:+.1f})")
    if math.isnan(primary.ci_low or 0.0):
        ci = ""
    return (f"{comparison.verdict.upper()}: pass rate {diff}{ci}, margin {primary.margin * 100:.1f} pts, "
            f"alpha {comparison.config.alpha:g}, {primary.n} paired cases")
