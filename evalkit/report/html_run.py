"""The run's views: its headline, pass rate per route and tag (Wilson intervals), latency and TTFT
distributions, errors before and after retries by class, and the conditions it ran under."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evalkit.conditions import percentile
from evalkit.report.html import ReportData, Section, _ms, fragment
from evalkit.results import CaseResult, Run, all_calls

if TYPE_CHECKING:
    from evalkit.report.html_charts import Chart

CONFIDENCE = 0.95
"""Level of the Wilson intervals around pass rates."""
CHART_ROWS = 40
"""At most this many groups are drawn (the largest); the table below the chart lists every one."""


@dataclass(frozen=True)
class Rate:
    """The pass rate of one group of results, with its Wilson interval."""

    kind: str
    """``all``, ``route`` or ``tag``."""
    name: str
    passed: int
    total: int
    low: float
    high: float

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0

    @property
    def label(self) -> str:
        return "all results" if self.kind == "all" else f"{self.kind}: {self.name}"


def pass_rates(results: Sequence[CaseResult], confidence: float = CONFIDENCE) -> list[Rate]:
    """Pass rate overall, per route and per tag, each with statsmodels' Wilson score interval."""
    import numpy as np
    from statsmodels.stats.proportion import proportion_confint

    groups: dict[tuple[str, str], list[int]] = {("all", ""): [0, 0]}
    for result in results:
        if result.unscored:  # no verdict (an unparseable judge answer): out of the denominator, as in the gate
            continue
        keys = [("all", "")] + ([("route", result.route)] if result.route else [])
        keys += [("tag", tag) for tag in result.tags]
        for key in keys:
            counts = groups.setdefault(key, [0, 0])
            counts[0] += result.passed
            counts[1] += 1
    order = sorted(groups, key=lambda k: ({"all": 0, "route": 1, "tag": 2}[k[0]], k[1]))
    passed = np.array([groups[k][0] for k in order])
    total = np.array([groups[k][1] for k in order])
    safe = np.maximum(total, 1)  # an empty run: one row of 0/0, shown with no interval
    low, high = proportion_confint(passed, safe, alpha=1 - confidence, method="wilson")
    return [Rate(kind, name, int(p), int(n), float(lo), float(hi))
            for (kind, name), p, n, lo, hi in zip(order, passed, total, low, high, strict=True)]


def _status(run: Run) -> list[str]:
    """What a reader must know before trusting the numbers: an unfinished run, unreadable journal lines."""
    notes = []
    if run.status != "complete":
        notes.append(f"status {run.status}: {len(run.results)} of {run.expected} results"
                     + (f" ({run.failure})" if run.failure else ""))
    notes += [f"journal: {problem}" for problem in run.problems]
    return notes


def summary_section(data: ReportData) -> Section | None:
    """The run's headline numbers (a comparison report leads with its verdict instead)."""
    if data.comparison is not None:
        return None
    run = data.run
    overall = pass_rates(run.results)[0]
    calls = [c for c in all_calls(run.results) if not c.cached]
    failed = sum(1 for c in calls if not c.ok)
    cases = len({r.case_id for r in run.results})
    return Section("summary", "Run", fragment(
        "summary.html.j2", run=run, overall=overall, cases=cases, calls=len(calls), failed=failed,
        confidence=CONFIDENCE, notes=_status(run), conditions=run.conditions,
    ))


def pass_rate_section(data: ReportData) -> Section | None:
    from evalkit.report.html_charts import Interval, interval_chart

    results = data.run.results
    if not results:
        return None
    rates = pass_rates(results)
    overall = rates[0]
    largest = {id(r) for r in sorted(rates[1:], key=lambda r: -r.total)[:CHART_ROWS - 1]}
    shown = [rates[0], *(r for r in rates[1:] if id(r) in largest)]
    rows = [Interval(r.label, r.rate * 100, r.low * 100, r.high * 100,
                     note=f"{r.rate * 100:.0f}% · {r.passed}/{r.total}") for r in shown]
    level = round(CONFIDENCE * 100)
    worst = min(rates[1:], key=lambda r: r.high, default=None)
    description = (f"Pass rate of {overall.total} results: {overall.rate * 100:.1f}% "
                   f"({level}% Wilson interval {overall.low * 100:.1f}–{overall.high * 100:.1f}%)")
    if worst is not None:
        description += (f"; the lowest group is {worst.label} at {worst.rate * 100:.1f}% "
                        f"({worst.low * 100:.1f}–{worst.high * 100:.1f}%, {worst.total} results)")
    chart = interval_chart(
        rows, title=f"Pass rate per route and tag, with {level}% Wilson intervals", description=description + ".",
        axis_label="pass rate (%)", reference=overall.rate * 100, reference_label="overall", limits=(0, 100),
        header=("group", "pass rate %", "low %", "high %", "passed/results"),
    )
    return Section("pass-rates", "Pass rates", fragment(
        "pass_rates.html.j2", rates=rates, chart=chart, level=level, repeats=data.run.repeats,
        truncated=len(rates) > CHART_ROWS,
    ))


def _spread(values: Sequence[float]) -> dict[str, float | None]:
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
            "p99": percentile(values, 99), "max": max(values) if values else None}


def _distribution(name: str, current: Sequence[float], baseline: Sequence[float]) -> Chart:
    from evalkit.report.html_charts import distribution_chart

    now, before = _spread(current), _spread(baseline)
    markers = [(label, value) for label in ("p50", "p95", "p99") if (value := now[label]) is not None]
    description = (f"{name} of {len(current)} live calls of this run: p50 {_ms(now['p50'])}, p95 {_ms(now['p95'])}, "
                   f"p99 {_ms(now['p99'])}, max {_ms(now['max'])}")
    if baseline:
        description += f"; the baseline's {len(baseline)} calls: p50 {_ms(before['p50'])}, p95 {_ms(before['p95'])}"
    description += ". Values past the right edge (a little beyond the p99) are counted in the last bin."
    header = ("series", "calls", "p50 ms", "p95 ms", "p99 ms", "max ms")
    rows = [("this run", *_spread_cells(now))] + ([("baseline", *_spread_cells(before))] if baseline else [])
    series = [("this run", current)] + ([("baseline", baseline)] if baseline else [])
    return distribution_chart(series, title=f"{name} distribution", description=description,
                              axis_label=f"{name.lower()} (s)", markers=markers, table=[header, *rows])


def _spread_cells(spread: Mapping[str, float | None]) -> tuple[str, ...]:
    return (str(spread["n"]), *(_ms(spread[k]).removesuffix(" ms") for k in ("p50", "p95", "p99", "max")))


def latency_section(data: ReportData) -> Section | None:
    calls = [c for c in all_calls(data.run.results) if not c.cached]
    latency = [c.latency_s for c in calls if c.latency_s is not None]
    ttft = [c.ttft_s for c in calls if c.ttft_s is not None]
    if not latency:
        return None
    samples = data.baseline.samples if data.baseline is not None else ()
    charts = [_distribution("Latency", latency, [s.latency_s for s in samples if s.latency_s is not None])]
    if ttft:
        charts.append(_distribution("TTFT", ttft, [s.ttft_s for s in samples if s.ttft_s is not None]))
    by_route: dict[str, list[float]] = defaultdict(list)
    for result in data.run.results:
        for call in result.calls:
            if not call.cached and call.latency_s is not None:
                by_route[result.route or "(no route)"].append(call.latency_s)
    routes = [(name, _spread(values)) for name, values in sorted(by_route.items())]
    cached = sum(1 for c in all_calls(data.run.results) if c.cached)
    return Section("latency", "Latency and TTFT", fragment(
        "latency.html.j2", charts=charts, routes=routes if len(routes) > 1 else [], cached=cached,
    ))


@dataclass(frozen=True)
class ErrorCounts:
    """Errors of the run's live calls, by class, before and after retries."""

    attempts: int
    failed_attempts: int
    calls: int
    failed_calls: int
    before: Mapping[str, int]
    """Failed attempts per error class (what the provider really did)."""
    after: Mapping[str, int]
    """Calls still failed after their retries, per error class (what the retries left)."""
    case_errors: int
    """Cases whose own machinery failed (a tool runtime or a state check), beside any call error."""
    messages: tuple[tuple[str, int], ...]
    """The most frequent error messages, with their counts."""


def error_counts(results: Iterable[CaseResult], top: int = 10) -> ErrorCounts:
    results = list(results)
    calls = [c for c in all_calls(results) if not c.cached]
    attempts = [a for c in calls for a in c.attempts]
    before = Counter(a.error_class for a in attempts if a.error_class)
    after = Counter(c.error_class for c in calls if c.error_class)
    messages = Counter(m for m in [*(c.error for c in calls), *(r.case_error for r in results)] if m)
    return ErrorCounts(len(attempts), sum(before.values()), len(calls), sum(after.values()),
                       dict(before.most_common()), dict(after.most_common()),
                       sum(1 for r in results if r.case_error), tuple(messages.most_common(top)))


def errors_section(data: ReportData) -> Section | None:
    from evalkit.report.html_charts import bar_chart

    counts = error_counts(data.run.results)
    if counts.calls == 0 and counts.case_errors == 0:
        return None
    classes = sorted({*counts.before, *counts.after}, key=lambda k: (-counts.before.get(k, 0), k))
    chart = None
    if classes:
        description = (f"{counts.failed_attempts} of {counts.attempts} attempts failed before retries; "
                       f"{counts.failed_calls} of {counts.calls} calls were still failed after them. By class: "
                       + "; ".join(f"{k} {counts.before.get(k, 0)} before, {counts.after.get(k, 0)} after"
                                   for k in classes) + ".")
        chart = bar_chart(classes, [("failed attempts (before retries)", [counts.before.get(k, 0) for k in classes]),
                                    ("failed calls (after retries)", [counts.after.get(k, 0) for k in classes])],
                          title="Errors by class, before and after retries", description=description,
                          axis_label="count")
    return Section("errors", "Errors", fragment("errors.html.j2", counts=counts, classes=classes, chart=chart))


_COMPARED = ("hour_local", "weekday", "concurrency_configured", "provider", "endpoint", "model_requested",
             "models_returned", "system_fingerprints", "evalkit_version", "host_cpus", "latency_p95", "ttft_p95")
"""Conditions shown beside the baseline's (those that decide whether latency is comparable, and why)."""


def _condition(key: str, value: Any) -> str:
    if value is None:
        return "–"
    if key.endswith("_p95"):
        return _ms(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "–"
    return str(value)


def conditions_section(data: ReportData) -> Section | None:
    conditions = data.run.conditions
    if conditions is None:
        return None
    beside: list[tuple[str, str, str]] = []
    if data.baseline is not None and data.baseline.conditions:
        mine = conditions.to_dict()
        beside = [(key.replace("_", " "), _condition(key, data.baseline.conditions.get(key)),
                   _condition(key, mine.get(key))) for key in _COMPARED]
    return Section("conditions", "Conditions", fragment(
        "conditions.html.j2", c=conditions, run=data.run, beside=beside,
    ))
