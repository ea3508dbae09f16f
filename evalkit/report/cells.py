"""How a comparison's numbers are written, shared by every renderer: values, the verdict line, the policy lines.

Pass rates and error rates are in % (differences in points), latency p95s in milliseconds (their change and
margin in % of the baseline p95), scores as they are. Nothing is ever shortened to fit a width: a value
is written whole or not at all.
"""

from __future__ import annotations

import math

from evalkit.compare import Comparison, Metric

LABELS = {"pass_rate": "pass rate", "latency_p95": "latency p95", "ttft_p95": "TTFT p95", "error_rate": "error rate"}


def _percent_kind(metric: Metric) -> bool:
    return metric.kind == "rate" or metric.name.startswith("pass_rate")


def _milliseconds(seconds: float, compact: bool) -> str:
    ms = seconds * 1000
    digits = 2 if abs(ms) < 10 else 1 if abs(ms) < 100 else 0
    return f"{ms:,.{digits}f}" + ("ms" if compact else " ms")


def format_value(metric: Metric, value: float | None, signed: bool = False, compact: bool = False) -> str:
    """A value of this metric (``signed``: a difference, or an interval end, on the difference's scale).

    ``compact`` drops the units' spaces and the ``pts`` for a terminal table: ``+11.1`` (points), ``41.7``
    (%), ``6.12ms``, ``+12.3%``.
    """
    if value is None or math.isnan(value):
        return "–"
    if metric.kind == "latency":
        return f"{value * 100:+.1f}%" if signed else _milliseconds(value, compact)
    if _percent_kind(metric):
        if compact:
            return f"{value * 100:+.1f}" if signed else f"{value * 100:.1f}"
        return f"{value * 100:+.1f} pts" if signed else f"{value * 100:.1f}%"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def format_margin(metric: Metric) -> str:
    """The margin as the metric's difference is written: ``2.0 pts``, ``10.0%``, ``0.050``."""
    if metric.kind == "latency":
        return f"{metric.margin * 100:.1f}%"
    if _percent_kind(metric):
        return f"{metric.margin * 100:.1f} pts"
    return f"{metric.margin:.3f}"


def format_p(p: float | None) -> str:
    """A p-value to two significant digits, never cut: ``0.031``, ``7.5e-05``, ``1``."""
    return "–" if p is None or math.isnan(p) else f"{p:.2g}"


def format_n(metric: Metric) -> str:
    if metric.n_unit == "runs":
        return f"{metric.n} run" + ("" if metric.n == 1 else "s")
    return str(metric.n)


def format_interval(metric: Metric, compact: bool = False) -> str:
    if metric.ci_low is None or metric.ci_high is None or math.isnan(metric.ci_low) or math.isnan(metric.ci_high):
        return "–"
    joint = "…" if compact else " … "
    return (f"{format_value(metric, metric.ci_low, True, compact)}{joint}"
            f"{format_value(metric, metric.ci_high, True, compact)}")


def metric_cells(metric: Metric) -> list[str]:
    """metric, verdict, n, baseline, current, Δ, CI, margin, p, test, blocks."""
    return [metric.name, metric.verdict, format_n(metric), format_value(metric, metric.baseline),
            format_value(metric, metric.current), format_value(metric, metric.difference, True),
            format_interval(metric), format_margin(metric), format_p(metric.p_value), metric.test or "–",
            "yes" if metric.blocking else "no"]


def describe(metric: Metric) -> str:
    """One metric in a sentence: ``pass rate -20.0 pts (90% CI -24.1 to -16.3 pts, margin 2.0 pts, p … test)``."""
    label = LABELS.get(metric.name, metric.name)
    change = format_value(metric, metric.difference, True)
    if metric.verdict == "not_comparable":
        why = metric.notes[0] if metric.notes else "conditions differ"
        return f"{label} {change} not judged ({why})"
    parts = []
    if metric.ci_low is not None and metric.ci_high is not None:
        parts.append(f"{round(metric.ci_level * 100)}% CI {format_value(metric, metric.ci_low, True)} to "
                     f"{format_value(metric, metric.ci_high, True)}")
    parts.append(f"margin {format_margin(metric)}")
    if metric.p_value is not None:
        parts.append(f"p {format_p(metric.p_value)} {metric.test}")
    elif metric.test:
        parts.append(metric.test)
    return f"{label} {change} ({', '.join(parts)})"


def deciding_metrics(comparison: Comparison) -> list[Metric]:
    """The metrics named by the verdict (the primary metric when nothing blocks)."""
    named = [comparison.metric(name) for name in comparison.decided_by]
    return named or list(comparison.metrics[:1])


def policy_lines(comparison: Comparison) -> list[str]:
    """What the gate's policy was asked and did not do, and what was overridden (empty when neither)."""
    policy = comparison.policy
    lines = []
    if policy.pending:
        lines.append("gate change in this run, not in force until it is in a baseline (merged): "
                     + ", ".join(str(c) for c in policy.pending))
    if policy.overrides:
        lines.append("override in force: " + ", ".join(f"{c} ({c.source})" for c in policy.overrides))
    return lines


def too_small(metric: Metric) -> str:
    """Why an inconclusive pass rate is inconclusive: the effect it can detect and the cases it would need."""
    mde = "–" if metric.mde is None else f"{metric.mde * 100:.1f} pts"
    text = f"too small to tell: at 80% power this suite detects a change of {mde} beyond the margin"
    if metric.cases_needed is not None:
        text += (f"; showing non-inferiority at this margin would take about {metric.cases_needed:,} cases if "
                 "nothing changed")
        if metric.cases_needed_range is not None:
            low, high = metric.cases_needed_range
            discordance = metric.tests.get("discordance")
            where = "" if discordance is None else f", from the discordant-pair rate {discordance * 100:.1f}%"
            text += f" ({low:,}–{high:,} across its 90% interval{where})"
    return text


def verdict_line(comparison: Comparison) -> str:
    """One line a person reads first: the verdict, the metrics that made it, and what the gate was asked."""
    deciding = deciding_metrics(comparison)
    names = ", ".join(comparison.decided_by) or "nothing blocks"
    primary = comparison.metrics[0] if comparison.metrics else None
    line = (f"{comparison.verdict.upper()} ({names}): " + "; ".join(describe(m) for m in deciding)
            + f" · alpha {comparison.config.alpha:g}")
    if primary is not None:
        line += f" · {primary.n} paired cases"
    unjudged = [m for m in comparison.metrics if m.blocking and m.verdict == "not_comparable"]
    if unjudged:
        line += " · blocking but not judged: " + ", ".join(m.name for m in unjudged)
    for text in policy_lines(comparison):
        line += f" · {text}"
    return line
