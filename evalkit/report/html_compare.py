"""The comparison's views: the verdict and why, and each metric's interval against its margin."""

from __future__ import annotations

import math
from collections.abc import Sequence

from evalkit.compare import Metric
from evalkit.report.cells import format_value, metric_cells, verdict_line
from evalkit.report.html import ICONS, ReportData, Section, fragment
from evalkit.report.html_charts import Chart


def why(metric: Metric, alpha: float) -> str:
    """One sentence: why this metric got its verdict."""
    ci = "no interval" if metric.ci_low is None or metric.ci_high is None or math.isnan(metric.ci_low) else (
        f"{round(metric.ci_level * 100)}% interval {format_value(metric, metric.ci_low, True)} to "
        f"{format_value(metric, metric.ci_high, True)}")
    bound = format_value(metric, metric.margin if metric.kind == "latency" else -metric.margin, True)
    if metric.name.startswith("pass_rate"):
        bound = f"{-metric.margin * 100:+.1f} pts"
    if metric.verdict == "not_comparable":
        return "not judged: " + ("; ".join(metric.notes) or "measured under different conditions")
    if metric.verdict == "regression":
        test = f"; one-sided p = {metric.p_regression:.3g} < alpha {alpha:g}" if metric.p_regression is not None else ""
        return f"worse than the margin allows: {ci}, margin {bound}{test}"
    if metric.verdict == "improvement":
        return f"better than the baseline: {ci}, entirely on the better side of 0"
    if metric.verdict == "pass":
        test = (f"; non-inferiority p = {metric.p_noninferiority:.3g} < alpha {alpha:g}"
                if metric.p_noninferiority is not None else "")
        return f"within the margin: {ci} stays inside {bound}{test}"
    sentence = f"too uncertain to tell: {ci} crosses the margin {bound}"
    if metric.mde is not None and metric.cases_needed is not None:
        sentence += (f"; at 80% power this suite detects {metric.mde * 100:.1f} pts beyond the margin, and about "
                     f"{metric.cases_needed} cases would show non-inferiority")
    return sentence


def verdict_section(data: ReportData) -> Section | None:
    comparison = data.comparison
    if comparison is None:
        return None
    from evalkit.report.html_run import _status

    deciding = [m for m in (*comparison.metrics, *comparison.slices) if m.blocking]
    lost = sum(1 for f in comparison.flips if f.direction == "pass→fail")
    return Section("verdict", "Verdict", fragment(
        "verdict.html.j2", c=comparison, line=verdict_line(comparison),
        reasons=[(m, why(m, comparison.config.alpha)) for m in deciding], lost=lost,
        gained=len(comparison.flips) - lost, exit_code=comparison.exit_code, notes=_status(data.run),
        metric_notes=[(m.name, note) for m in comparison.metrics for note in m.notes],
    ))


def _group(metrics: Sequence[Metric]) -> list[tuple[str, list[Metric]]]:
    groups: dict[str, list[Metric]] = {}
    for metric in metrics:
        key = "pass" if metric.name.startswith("pass_rate") else "latency" if metric.kind == "latency" else "score"
        groups.setdefault(key, []).append(metric)
    return list(groups.items())


def metric_chart(kind: str, metrics: Sequence[Metric], alpha: float) -> Chart:
    """The differences (current − baseline) with their intervals, against each metric's margin."""
    from evalkit.report.html_charts import Interval, interval_chart

    scale, unit = {"pass": (100.0, "points"), "latency": (1000.0, "ms")}.get(kind, (1.0, "score units"))
    rows = []
    for m in metrics:
        def scaled(value: float | None) -> float | None:
            return None if value is None else value * scale

        margin = m.margin if kind == "latency" else -m.margin
        label = m.name.replace("pass_rate[", "tag: ").removesuffix("]") if m.name != "pass_rate" else "pass rate"
        note = ICONS.get(m.verdict, "") + " " + m.verdict.replace("_", " ") + (" · blocks" if m.blocking else "")
        rows.append(Interval(label, scaled(m.difference), scaled(m.ci_low), scaled(m.ci_high), m.verdict, note,
                             scaled(margin)))
    level = round((1 - 2 * alpha) * 100)
    worse = "right" if kind == "latency" else "left"
    headline = "; ".join(f"{r.label} {r.note.split(' ', 1)[1]}: {_signed(r.estimate)} "
                         f"[{_signed(r.low)}, {_signed(r.high)}] vs margin {_signed(r.margin)}" for r in rows)
    title = {"pass": "Pass-rate change", "latency": "p95 latency change", "score": "Score change"}[kind]
    return interval_chart(
        rows, title=f"{title} (current − baseline) with {level}% intervals against the margin",
        description=(f"Differences in {unit}, {'higher' if worse == 'right' else 'lower'} is worse; the hatched "
                     f"side of each dashed margin is worse than allowed. {headline}."),
        axis_label=f"current − baseline ({unit})", reference=0.0, reference_label="no change", worse=worse,
        header=("metric", f"difference ({unit})", "low", "high", "verdict"), value_format="{:+.2f}",
    )


def _signed(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value + 0.0:+.2f}"  # + 0.0: no "-0.00"


def metrics_section(data: ReportData) -> Section | None:
    comparison = data.comparison
    if comparison is None:
        return None
    alpha = comparison.config.alpha
    charts = [metric_chart(kind, metrics, alpha) for kind, metrics in _group(comparison.metrics)]
    slice_chart = metric_chart("pass", comparison.slices, alpha) if comparison.slices else None
    return Section("metrics", "Metrics", fragment(
        "metrics.html.j2", c=comparison, charts=charts, slice_chart=slice_chart,
        rows=[metric_cells(m) for m in comparison.metrics], slice_rows=[metric_cells(m) for m in comparison.slices],
        level=round((1 - 2 * alpha) * 100),
    ))
