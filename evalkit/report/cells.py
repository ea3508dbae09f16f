"""How a metric's numbers are written, shared by every renderer (points, milliseconds, plain values)."""

from __future__ import annotations

from evalkit.compare import Metric


def format_value(metric: Metric, value: float | None, signed: bool = False, compact: bool = False) -> str:
    """A value of this metric: pass rates in % (differences in points), latencies in ms, scores as is.

    ``compact`` is for an 80-column terminal: ``+11.1`` (points), ``41.7`` (%), ``4.68s``.
    """
    if value is None:
        return "–"
    if metric.kind == "latency":
        if compact:
            return f"{value:+.2f}s" if signed else f"{value:.2f}s"
        return f"{value * 1000:+,.0f} ms" if signed else f"{value * 1000:,.0f} ms"
    if metric.name.startswith("pass_rate"):
        if compact:
            return f"{value * 100:+.1f}" if signed else f"{value * 100:.1f}"
        return f"{value * 100:+.1f} pts" if signed else f"{value * 100:.1f}%"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def metric_cells(metric: Metric) -> list[str]:
    """metric, verdict, n, baseline, current, Δ, CI, margin, p, blocks."""
    ci = "–" if metric.ci_low is None or metric.ci_high is None else \
        f"{format_value(metric, metric.ci_low, True)} … {format_value(metric, metric.ci_high, True)}"
    if metric.name.startswith("pass_rate"):
        margin = f"{metric.margin * 100:.1f} pts"
    else:
        margin = format_value(metric, metric.margin)
    p = "–" if metric.p_value is None else f"{metric.p_value:.3g}"
    return [metric.name, metric.verdict, str(metric.n), format_value(metric, metric.baseline),
            format_value(metric, metric.current), format_value(metric, metric.difference, True), ci, margin, p,
            "yes" if metric.blocking else "no"]
