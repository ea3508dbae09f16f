"""The history view: a suite over time, from the history store (:mod:`evalkit.store`).

Series per metric (pass rate, p95 latency, p95 TTFT, error rate) with their change points marked and what
else changed there (:func:`evalkit.analysis.changepoints.history_series`); time of day (an hour × weekday
heatmap of median latency with the number of calls in every cell, latency percentile bands by hour, and
:func:`evalkit.analysis.diurnal.analyse_diurnal`'s verdict); and the newest load ladder recorded
(``evalkit sweep``): latency against concurrency with its knee, computed as
:func:`evalkit.analysis.ladder.summarise_ladder` does, from the store's rows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from evalkit.report.html import Section, fragment, render_page

if TYPE_CHECKING:
    import pandas as pd

    from evalkit.analysis.changepoints import Series
    from evalkit.analysis.diurnal import DiurnalReport
    from evalkit.analysis.ladder import LadderReport
    from evalkit.report.html_charts import Chart
    from evalkit.store import Store

METRICS = {"pass_rate": ("pass rate", "%", 100.0), "latency_p95": ("p95 latency", "ms", 1000.0),
           "ttft_p95": ("p95 time to first token", "ms", 1000.0), "error_rate": ("error rate", "%", 100.0)}
"""metric → (name, unit, scale from the stored value to the unit)."""
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _fmt(value: float | None, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:,.0f} ms" if unit == "ms" else f"{value:.1f}%"


def series_chart(series: Series) -> Chart:
    """The metric per run; each change point a dashed line labelled with the shift, segment means as steps."""
    from evalkit.report.html_charts import CURRENT, INK, MUTED, _chart, _figure

    name, unit, scale = METRICS[series.metric]
    figure, axes = _figure(7.2, 2.4)
    xs = list(range(len(series.points)))
    ys = [p.value * scale for p in series.points]
    axes.plot(xs, ys, color=CURRENT, marker="o", markersize=3.5, linewidth=1.2, markeredgecolor=INK,
              markeredgewidth=0.5, label=name)
    bounds = [0, *(c.index for c in series.change_points), len(xs)]
    means = [series.change_points[0].before if series.change_points else None,
             *(c.after for c in series.change_points)]
    for k, mean in enumerate(means):
        if mean is not None:
            axes.plot([bounds[k] - 0.4, bounds[k + 1] - 0.6], [mean * scale] * 2, color=INK, linewidth=1.6,
                      linestyle="-", alpha=0.8)
    for number, c in enumerate(series.change_points, 1):
        axes.axvline(c.index - 0.5, color=INK, linestyle="--", linewidth=1)
        axes.annotate(f"▼{number}", (c.index - 0.5, 1.0), xycoords=("data", "axes fraction"), ha="center",
                      va="bottom", fontsize=8)
    ticks = xs[:: max(1, math.ceil(len(xs) / 6))]
    axes.set_xticks(ticks, [series.points[i].started_at[:10] for i in ticks], fontsize=8)
    if unit == "%" and ys:  # a rate stays within 0 to 100%, with a little room around a flat line
        pad = max(2.0, (max(ys) - min(ys)) * 0.1)
        axes.set_ylim(max(-0.5, min(ys) - pad), min(100.5, max(ys) + pad))
    axes.set_xlabel("run (start date)")
    axes.set_ylabel(f"{name} ({unit})")
    axes.grid(axis="y", color=MUTED, linewidth=0.4, alpha=0.5)
    table = [("run", "started", name, "calls", "change point")]
    starts = {c.index: n for n, c in enumerate(series.change_points, 1)}
    table += [(p.run_id, p.started_at[:16], _fmt(p.value * scale, unit), str(p.calls),
               f"▼{starts[i]} starts here" if i in starts else "") for i, p in enumerate(series.points)]
    found = (f"{len(series.change_points)} change point{'s' if len(series.change_points) != 1 else ''} (dashed lines, "
             f"numbered ▼1…; p < {series.alpha:g}); the solid steps are the segment means"
             if series.change_points else f"no change point at p < {series.alpha:g}")
    return _chart(figure, f"{name} per run",
                  f"{name} of each of {len(xs)} runs in start order (one marker per run); {found}.", table)


def heatmap_chart(calls: pd.DataFrame) -> Chart:
    """Hour × weekday: median latency as shade, the number of calls written in every cell."""
    import numpy as np

    from evalkit.report.html_charts import _chart, _figure

    measured = calls[~calls["cached"].astype(bool) & calls["latency_s"].notna()]
    counts = np.zeros((7, 24), dtype=int)
    median = np.full((7, 24), np.nan)
    for (day, hour), group in measured.groupby(["weekday", "hour_local"]):
        counts[int(day), int(hour)] = len(group)
        median[int(day), int(hour)] = float(group["latency_s"].median()) * 1000
    figure, axes = _figure(7.6, 3.0)
    shown = np.ma.masked_invalid(median)
    # pcolormesh, not imshow: vector cells (imshow embeds a PNG, which the page's policy refuses to load).
    image = axes.pcolormesh(np.arange(25) - 0.5, np.arange(8) - 0.5, shown, cmap="viridis", edgecolors="none")
    axes.set_ylim(6.5, -0.5)
    low, high = (np.nanmin(median), np.nanmax(median)) if np.isfinite(median).any() else (0.0, 1.0)
    for day in range(7):
        for hour in range(24):
            if counts[day, hour]:
                value = median[day, hour]
                light = (value - low) / (high - low or 1) > 0.6  # viridis is light at its top end
                axes.text(hour, day, str(counts[day, hour]), ha="center", va="center", fontsize=6,
                          color="#000000" if light else "#ffffff")
            else:
                axes.text(hour, day, "·", ha="center", va="center", fontsize=7, color="#808080")
    axes.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)], fontsize=8)
    axes.set_yticks(range(7), list(WEEKDAYS), fontsize=8)
    axes.set_xlabel("local hour of the call's start")
    for side in ("left", "bottom"):
        axes.spines[side].set_visible(False)
    bar = figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02)
    if bar.solids is not None:
        bar.solids.set_rasterized(False)  # a long colour bar is rasterised by default: keep it vector too
        bar.solids.set_edgecolor("face")  # no seams between its cells
    bar.set_label("median latency (ms)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    table = [("weekday", *(f"{h:02d}" for h in range(24)))]
    table += [(WEEKDAYS[d], *(f"{median[d, h]:,.0f} ms · {counts[d, h]}" if counts[d, h] else "–"
                              for h in range(24))) for d in range(7)]
    return _chart(figure, "Median latency by hour and weekday",
                  f"{int(counts.sum()):,} live calls by local hour (columns) and weekday (rows). The shade is the "
                  "cell's median latency (lighter is slower); the number in each cell is how many calls it holds, "
                  "so a striking shade resting on few calls can be told apart; a dot marks an empty cell. "
                  "The data table gives each cell's median and count.", table)


def bands_chart(calls: pd.DataFrame) -> Chart:
    """Latency percentiles by hour: p10–p90 band, p25–p75 band (hatched), p50 line, p95 dotted."""
    import numpy as np

    from evalkit.report.html_charts import BAND, CURRENT, INK, MUTED, _chart, _figure

    measured = calls[~calls["cached"].astype(bool) & calls["latency_s"].notna()]
    hours = sorted(int(h) for h in measured["hour_local"].unique())
    qs = (10, 25, 50, 75, 90, 95)
    rows = {h: np.percentile(measured.loc[measured["hour_local"] == h, "latency_s"].to_numpy() * 1000, qs)
            for h in hours}
    n = {h: int((measured["hour_local"] == h).sum()) for h in hours}
    figure, axes = _figure(7.2, 2.6)
    xs = np.array(hours)
    p = np.array([rows[h] for h in hours]).reshape(len(hours), len(qs))
    axes.fill_between(xs, p[:, 0], p[:, 4], color=BAND, alpha=0.6, linewidth=0, label="p10–p90", step="mid")
    axes.fill_between(xs, p[:, 1], p[:, 3], facecolor="none", edgecolor=INK, hatch="///", linewidth=0,
                      label="p25–p75", step="mid")
    axes.plot(xs, p[:, 2], color=CURRENT, marker="o", markersize=3, linewidth=1.5, label="median",
              drawstyle="steps-mid")
    axes.plot(xs, p[:, 5], color=INK, linestyle=":", linewidth=1.2, label="p95", drawstyle="steps-mid")
    axes.set_xlim(-0.5, 23.5)
    axes.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)], fontsize=8)
    axes.set_xlabel("local hour")
    axes.set_ylabel("latency (ms)")
    axes.grid(axis="y", color=MUTED, linewidth=0.4, alpha=0.5)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=4, fontsize=8)
    table = [("hour", "calls", *(f"p{q}" for q in qs))]
    table += [(f"{h:02d}", str(n[h]), *(f"{v:,.0f} ms" for v in rows[h])) for h in hours]
    return _chart(figure, "Latency percentiles by hour",
                  "For each local hour with calls: the median (solid line with markers), the middle half "
                  "(hatched), the p10–p90 range (shaded) and the p95 (dotted).", table)


def ladder_from_store(store: Store, suite: str) -> LadderReport | None:
    """The newest load ladder of ``suite`` in the store (``evalkit sweep`` records each step with its sweep id).

    The knee is :func:`evalkit.analysis.ladder.summarise_ladder`'s: the first step whose median latency is more
    than ``TOLERANCE`` above the first step's with a Holm-adjusted one-sided Mann–Whitney p below ``ALPHA``.
    """
    import numpy as np
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    from evalkit.analysis.ladder import ALPHA, TOLERANCE, LadderReport, Step

    runs = store.runs(suite, kinds=("ladder",))
    runs = runs[runs["sweep_id"].notna()]
    if runs.empty:
        return None
    sweep_id = str(runs.iloc[-1]["sweep_id"])
    steps_frame = runs[runs["sweep_id"] == sweep_id].sort_values("concurrency", kind="stable")
    calls = store.calls(suite, kinds=("ladder",), sweep_id=sweep_id)
    live = calls[~calls["cached"].astype(bool) & calls["latency_s"].notna()]
    latencies = {key: group["latency_s"].to_numpy(dtype=float) for key, group in live.groupby("run_key")}
    keys = [str(k) for k in steps_frame["run_key"]]
    first = latencies.get(keys[0], np.zeros(0))
    p_raw: list[float] = []
    ratios: list[float | None] = []
    for key in keys[1:]:
        current = latencies.get(key, np.zeros(0))
        if first.size and current.size:
            p_raw.append(float(stats.mannwhitneyu(current, first, alternative="greater").pvalue))
            ratios.append(float(np.median(current) / np.median(first)))
        else:
            p_raw.append(1.0)
            ratios.append(None)
    adjusted = list(multipletests(p_raw, method="holm")[1]) if p_raw else []

    def number(value: Any) -> float | None:
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)

    steps = []
    for i, row in enumerate(steps_frame.to_dict("records")):
        measured = int(row["calls"] or 0) - int(row["cached_calls"] or 0)
        duration = number(row["duration_s"])
        mine = calls[calls["run_key"] == row["run_key"]]
        ttft = mine["ttft_s"].dropna().to_numpy(dtype=float)
        steps.append(Step(
            concurrency=int(row["concurrency"]), run_id=str(row["run_id"]), calls=measured, duration_s=duration,
            throughput_per_s=measured / duration if duration else None, latency_p50=number(row["latency_p50"]),
            latency_p95=number(row["latency_p95"]),
            latency_p99=float(np.percentile(latencies[keys[i]], 99)) if keys[i] in latencies else None,
            ttft_p50=float(np.median(ttft)) if ttft.size else None, ttft_p95=number(row["ttft_p95"]),
            error_rate_pre_retry=number(row["error_rate_pre_retry"]),
            error_rate_post_retry=number(row["error_rate_post_retry"]), pass_rate=number(row["pass_rate"]),
            in_flight_mean=number(row["in_flight_mean"]),
            in_flight_max=None if number(row["in_flight_max"]) is None else int(row["in_flight_max"]),
            median_ratio=1.0 if i == 0 else ratios[i - 1], p_value=None if i == 0 else float(adjusted[i - 1]),
        ))
    knee = next((s.concurrency for s in steps[1:] if s.median_ratio is not None and s.p_value is not None
                 and s.median_ratio > 1 + TOLERANCE and s.p_value < ALPHA), None)
    rated = [s for s in steps if s.throughput_per_s is not None]
    best = max(rated, key=lambda s: s.throughput_per_s or 0.0).concurrency if rated else None
    return LadderReport(suite, sweep_id, tuple(steps), knee, best, TOLERANCE, ALPHA)


def ladder_chart(report: LadderReport) -> Chart:
    """Latency (p50 solid circles, p95 dashed squares) against concurrency, the knee a labelled dashed line."""
    from evalkit.report.html_charts import BASELINE, CURRENT, INK, MUTED, _chart, _figure

    steps = report.steps
    figure, axes = _figure(7.2, 2.8)
    xs = [s.concurrency for s in steps]
    p50 = [(s.latency_p50 or math.nan) * 1000 for s in steps]
    p95 = [(s.latency_p95 or math.nan) * 1000 for s in steps]
    axes.plot(xs, p50, color=CURRENT, marker="o", linewidth=1.6, markeredgecolor=INK, label="median latency")
    axes.plot(xs, p95, color=BASELINE, marker="s", linestyle="--", linewidth=1.4, markeredgecolor=INK,
              markerfacecolor="none", label="p95 latency")
    if report.knee is not None:
        axes.axvline(report.knee, color=INK, linestyle="-.", linewidth=1.2)
        axes.annotate(f"knee: {report.knee}", (report.knee, 1.0), xycoords=("data", "axes fraction"), ha="center",
                      va="bottom", fontsize=9, fontweight="bold")
    axes.set_xscale("log", base=2)
    axes.set_xticks(xs, [str(x) for x in xs])
    axes.minorticks_off()
    axes.set_xlabel("concurrency (requests in flight, log scale)")
    axes.set_ylabel("latency (ms)")
    axes.set_ylim(bottom=0)
    axes.grid(axis="y", color=MUTED, linewidth=0.4, alpha=0.5)
    axes.legend(loc="upper left", fontsize=8)
    table = [("concurrency", "calls", "p50", "p95", "throughput", "× first median", "Holm p", "errors after retry")]
    table += [(str(s.concurrency), str(s.calls), _fmt((s.latency_p50 or math.nan) * 1000, "ms"),
               _fmt((s.latency_p95 or math.nan) * 1000, "ms"),
               "–" if s.throughput_per_s is None else f"{s.throughput_per_s:.2f}/s",
               "–" if s.median_ratio is None else f"×{s.median_ratio:.2f}",
               "–" if s.p_value is None else f"{s.p_value:.2g}",
               "–" if s.error_rate_post_retry is None else f"{s.error_rate_post_retry * 100:.1f}%") for s in steps]
    knee = f"the knee (dash-dot line) is at concurrency {report.knee}" if report.knee is not None else "no knee"
    return _chart(figure, "Latency against concurrency",
                  f"Median (solid, circles) and p95 (dashed, squares) latency at each step of sweep "
                  f"{report.sweep_id}; {knee}. {report.verdict}.", table)


def history_sections(store: Store, suite: str, *, since: str | None = None, alpha: float | None = None,
                     metrics: Sequence[str] = tuple(METRICS), seed: int = 0) -> list[Section]:
    """The history, time-of-day and load-ladder sections of ``suite`` (a name or a suite file)."""
    from evalkit.analysis.changepoints import ALPHA, history_series
    from evalkit.analysis.diurnal import analyse_diurnal
    from evalkit.cli.history import _calls_since, _suite_name

    name = _suite_name(store, suite)
    calls = _calls_since(store, name, since)
    runs = store.runs(name)
    level = ALPHA if alpha is None else alpha
    series = [history_series(calls, runs, suite=name, metric=m, alpha=level) for m in metrics]
    drawn = [(s, series_chart(s) if len(s.points) else None) for s in series]
    sections = [Section("history", "Runs over time", fragment(
        "history.html.j2", drawn=drawn, metrics=METRICS, runs=len(runs), calls=len(calls), fmt=_fmt))]
    report: DiurnalReport = analyse_diurnal(calls, seed=seed)
    measured = calls[~calls["cached"].astype(bool) & calls["latency_s"].notna()]
    charts = [heatmap_chart(calls), bands_chart(calls)] if len(measured) else []
    sections.append(Section("diurnal", "Time of day", fragment("diurnal.html.j2", r=report, charts=charts)))
    ladder = ladder_from_store(store, name)
    if ladder is not None:
        sections.append(Section("ladder", "Load ladder", fragment(
            "ladder.html.j2", r=ladder, chart=ladder_chart(ladder))))
    return sections


def render_history_html(suite: str, store: str | os.PathLike[str] | None = None, *, since: str | None = None,
                        alpha: float | None = None, seed: int = 0) -> str:
    """``suite``'s history from the store at ``store`` (default ``$EVALKIT_STORE`` or the local SQLite file)."""
    from markupsafe import Markup

    from evalkit.store import open_store, redact

    with open_store(store) as opened:
        sections = history_sections(opened, suite, since=since, alpha=alpha, seed=seed)
        where = redact(opened.display)
    heading = Markup('{} <span class="sub">history{}</span>').format(suite, f" since {since}" if since else "")
    return render_page(sections, title=f"evalkit · {suite} · history", heading=heading,
                       footer=Markup("store <code>{}</code>").format(where))
