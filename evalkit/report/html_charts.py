"""Charts for the HTML report: matplotlib's SVG backend, inlined, themed by CSS, each with a text alternative.

matplotlib is imported inside :func:`_figure` only (``evalkit --help`` never loads it). Colours are drawn
as sentinel values that :func:`_to_svg` rewrites into CSS custom properties (``var(--ink)`` …), so one SVG
reads in light and dark mode; meaning never rests on colour alone (marker shapes, line styles, hatches and
text labels carry it too). Every chart carries ``<title>``/``<desc>`` and the data it plots as a table.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import escape

from evalkit.errors import PrerequisiteError, install_hint

INK, MUTED, CURRENT, BASELINE, BAD, GOOD, WARN, BAND = (
    "#010101", "#020202", "#030303", "#040404", "#050505", "#060606", "#070707", "#080808")
"""Sentinel colours; :data:`CSS_VARIABLES` maps each onto a custom property of the page's stylesheet."""
CSS_VARIABLES = {INK: "--ink", MUTED: "--muted", CURRENT: "--series-current", BASELINE: "--series-baseline",
                 BAD: "--bad", GOOD: "--good", WARN: "--warn", BAND: "--band"}

MARKS: dict[str, tuple[str, str, bool]] = {
    # verdict or status → (matplotlib marker, colour, filled); each row's note states it in words as well
    "regression": ("X", BAD, True),
    "pass": ("o", GOOD, True),
    "improvement": ("^", GOOD, True),
    "inconclusive": ("D", WARN, False),
    "not_comparable": ("s", MUTED, False),
    "neutral": ("o", CURRENT, True),
}


@dataclass(frozen=True)
class Chart:
    """One chart: inline SVG plus what a screen reader (or a reader without colour) gets instead."""

    title: str
    description: str
    """The text alternative: what is plotted and what it shows."""
    svg: str
    """An ``<svg>`` element (text escaped by matplotlib), with ``role="img"``, ``<title>`` and ``<desc>``."""
    table: tuple[tuple[str, ...], ...]
    """The plotted data; the first row is the header."""


@dataclass(frozen=True)
class Interval:
    """One row of an interval chart: an estimate with its interval."""

    label: str
    estimate: float | None
    low: float | None
    high: float | None
    mark: str = "neutral"
    """A key of :data:`MARKS`."""
    note: str = ""
    """Written at the right of the row (the verdict, the value with its interval …)."""
    margin: float | None = None
    """A non-inferiority bound for this row: a dashed tick, the side beyond it hatched."""


def _figure(width: float, height: float) -> tuple[Any, Any]:
    try:
        import matplotlib
    except ImportError:
        raise PrerequisiteError(install_hint("html", "matplotlib (the HTML report's charts)")) from None
    matplotlib.rcParams.update({
        "svg.fonttype": "none",       # text stays text: selectable, searchable, set in the page's font
        "svg.hashsalt": "evalkit",    # stable ids: the same data gives the same SVG
        "text.parse_math": False,     # a '$' in a tag or case name is text, never mathtext
        "font.size": 10, "axes.edgecolor": INK, "axes.labelcolor": INK, "text.color": INK,
        "xtick.color": INK, "ytick.color": INK, "hatch.color": INK, "hatch.linewidth": 0.6,
        "axes.titlesize": 10, "legend.frameon": False,
    })
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), facecolor="none")
    axes = figure.add_subplot()
    axes.set_facecolor("none")
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return figure, axes


def _to_svg(figure: Any, title: str, description: str) -> str:
    """The figure as an inline ``<svg>``: no XML prologue or metadata, themed colours, ids unique on the page."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
                   bbox_inches="tight", pad_inches=0.05)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r"\s*<defs>\s*<style.*?</style>\s*</defs>", "", svg, count=1, flags=re.S)  # global CSS: in ours
    svg = re.sub(r"font-family:[^;\"]*;?\s*", "", svg)  # the page's font (see .chart text in the stylesheet)
    for sentinel, variable in CSS_VARIABLES.items():
        svg = svg.replace(sentinel, f"var({variable})")
    # Ids must be unique on the page and stable across renders: derived from what the chart shows.
    prefix = "chart-" + hashlib.sha256(f"{title}\n{description}\n{svg}".encode()).hexdigest()[:10] + "-"
    svg = svg.replace(' id="', f' id="{prefix}').replace('href="#', f'href="#{prefix}').replace(
        "url(#", f"url(#{prefix}")
    end = svg.index(">") + 1
    opening = re.sub(r'\s(width|height)="[\d.]+pt"', "", svg[:end])  # sized by CSS from its viewBox
    opening = opening.replace("<svg", f'<svg role="img" class="chart-svg" '
                                      f'aria-labelledby="{prefix}title {prefix}desc"', 1)
    return (f'{opening}<title id="{prefix}title">{escape(title)}</title>'
            f'<desc id="{prefix}desc">{escape(description)}</desc>{svg[end:]}')


def _chart(figure: Any, title: str, description: str, table: Sequence[Sequence[str]]) -> Chart:
    return Chart(title, description, _to_svg(figure, title, description), tuple(tuple(r) for r in table))


def interval_chart(rows: Sequence[Interval], *, title: str, description: str, axis_label: str,
                   reference: float | None = None, reference_label: str = "", worse: str = "left",
                   limits: tuple[float, float] | None = None,
                   header: tuple[str, ...] = ("row", "estimate", "low", "high", "note"),
                   value_format: str = "{:.1f}") -> Chart:
    """Estimates with interval whiskers, one row each; optional per-row margins with the worse side hatched.

    ``worse`` says which side of a margin is the bad one (``left`` for pass rates, ``right`` for latency).
    """
    figure, axes = _figure(7.2, 0.75 + 0.34 * max(len(rows), 1))
    ys = list(range(len(rows)))[::-1]
    finite = [v for r in rows for v in (r.estimate, r.low, r.high, r.margin) if v is not None and math.isfinite(v)]
    if reference is not None:
        finite.append(reference)
    lo, hi = limits if limits else ((min(finite), max(finite)) if finite else (0.0, 1.0))
    pad = (hi - lo) * 0.06 or 1.0
    left, right = (lo, hi) if limits else (lo - pad, hi + pad)
    for y, row in zip(ys, rows, strict=True):
        if row.margin is not None and math.isfinite(row.margin):
            span = (left, row.margin) if worse == "left" else (row.margin, right)
            axes.fill_betweenx([y - 0.4, y + 0.4], *span, facecolor="none", edgecolor=MUTED, hatch="///",
                               linewidth=0)
            axes.plot([row.margin, row.margin], [y - 0.42, y + 0.42], color=INK, linestyle="--", linewidth=1)
        marker, colour, filled = MARKS.get(row.mark, MARKS["neutral"])
        if row.estimate is None or not math.isfinite(row.estimate):
            continue
        if row.low is not None and row.high is not None and math.isfinite(row.low) and math.isfinite(row.high):
            axes.plot([row.low, row.high], [y, y], color=INK, linewidth=1.4, solid_capstyle="butt")
            axes.plot([row.low, row.low], [y - 0.15, y + 0.15], color=INK, linewidth=1.4)
            axes.plot([row.high, row.high], [y - 0.15, y + 0.15], color=INK, linewidth=1.4)
        axes.plot([row.estimate], [y], marker=marker, markersize=8, color=colour, markeredgecolor=INK,
                  markerfacecolor=colour if filled else "none", markeredgewidth=1.2, linestyle="none")
    if reference is not None:
        axes.axvline(reference, color=MUTED, linewidth=1, linestyle=":")
        if reference_label:
            axes.annotate(reference_label, (reference, 1.0), xycoords=("data", "axes fraction"), fontsize=8,
                          ha="center", va="bottom", color=INK)
    margins = any(r.margin is not None for r in rows)
    if margins or reference is not None:  # a key below the axis, so the chart reads without its caption
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        handles: list[Any] = [Line2D([], [], color=INK, linewidth=1.4, marker="|", markersize=8, label="interval")]
        if reference is not None and reference_label:
            handles.append(Line2D([], [], color=MUTED, linewidth=1, linestyle=":", label=reference_label))
        if margins:
            handles += [Line2D([], [], color=INK, linestyle="--", linewidth=1, label="margin"),
                        Patch(facecolor="none", edgecolor=MUTED, hatch="///", label="worse than the margin allows")]
        # Anchored at the axes' bottom edge and pushed below the tick labels and the axis label (in font sizes).
        axes.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), borderaxespad=4.6,
                    ncol=len(handles), fontsize=8)
    axes.set_yticks(ys, [r.label for r in rows])
    axes.set_ylim(-0.6, len(rows) - 0.4)
    axes.set_xlim(left, right)
    axes.set_xlabel(axis_label)
    axes.grid(axis="x", color=MUTED, linewidth=0.4, alpha=0.5)
    for y, row in zip(ys, rows, strict=True):
        if row.note:
            axes.annotate(row.note, (1.01, y), xycoords=("axes fraction", "data"), va="center", fontsize=9)

    def cell(value: float | None) -> str:
        return "–" if value is None or not math.isfinite(value) else value_format.format(value)

    table = [header, *((r.label, cell(r.estimate), cell(r.low), cell(r.high), r.note) for r in rows)]
    return _chart(figure, title, description, table)


def distribution_chart(series: Sequence[tuple[str, Sequence[float]]], *, title: str, description: str,
                       axis_label: str, markers: Sequence[tuple[str, float]] = (), bins: int = 40,
                       table: Sequence[Sequence[str]] = ()) -> Chart:
    """Histograms of one quantity: the first series filled with a solid outline, a second dashed, unfilled.

    ``markers`` are labelled vertical lines (p50, p95 …), each in its own line style. The x range stops a
    little past the 99th percentile, so one slow outlier does not squash the rest; the description says so.
    """
    import numpy as np

    figure, axes = _figure(7.2, 2.6)
    values = [np.asarray(v, dtype=float) for _, v in series if len(v)]
    everything = np.concatenate(values) if values else np.zeros(1)
    top = float(np.quantile(everything, 0.99)) * 1.15 if everything.size > 1 else float(everything.max()) + 1.0
    top = min(top, float(everything.max())) if everything.max() > 0 else 1.0
    edges = np.linspace(0.0, max(top, 1e-9), bins + 1)
    styles: list[dict[str, Any]] = [
        {"histtype": "stepfilled", "facecolor": CURRENT, "alpha": 0.35, "edgecolor": INK, "linewidth": 1.2},
        {"histtype": "step", "edgecolor": BASELINE, "linewidth": 1.6, "linestyle": "--"},
    ]
    for (label, data), style in zip(series, styles, strict=False):
        if len(data):
            clipped = np.clip(np.asarray(data, dtype=float), 0.0, edges[-1])
            axes.hist(clipped, bins=edges, label=label, **style)
    for (label, x), linestyle in zip(markers, ("--", "-.", ":", (0, (1, 3))), strict=False):
        axes.axvline(x, color=INK, linestyle=linestyle, linewidth=1)
        axes.annotate(label, (x, 1.0), xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=8)
    axes.set_xlim(0, edges[-1])
    axes.set_xlabel(axis_label)
    axes.set_ylabel("calls")
    if len(series) > 1:  # below the axis: the percentile labels own the top edge
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=len(series), fontsize=8)
    return _chart(figure, title, description, table)


def bar_chart(categories: Sequence[str], series: Sequence[tuple[str, Sequence[int]]], *, title: str,
              description: str, axis_label: str) -> Chart:
    """Horizontal grouped bars with their counts written at the end; the second series is hatched."""
    import numpy as np

    figure, axes = _figure(7.2, 0.8 + 0.45 * max(len(categories), 1) * max(len(series), 1) / 1.6)
    height = 0.8 / max(len(series), 1)
    ys = np.arange(len(categories))[::-1]
    looks: list[dict[str, Any]] = [{"color": CURRENT, "edgecolor": INK},
                                   {"color": "none", "edgecolor": INK, "hatch": "///"}]
    for k, ((label, counts), look) in enumerate(zip(series, looks, strict=False)):
        bars = axes.barh(ys + (len(series) - 1 - 2 * k) * height / 2, counts, height=height, label=label,
                         linewidth=1, **look)
        axes.bar_label(bars, fontsize=8, padding=2)
    axes.set_yticks(ys, list(categories))
    axes.set_xlabel(axis_label)
    axes.margins(x=0.12)
    axes.legend(loc="lower right", fontsize=8)
    header = ("class", *(label for label, _ in series))
    rows = [(c, *(str(counts[i]) for _, counts in series)) for i, c in enumerate(categories)]
    return _chart(figure, title, description, [header, *rows])
