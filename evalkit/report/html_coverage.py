"""The coverage view: does the suite test what users send? Traffic share against case share per route,
head coverage, and the traffic-weighted pass rate, from :func:`evalkit.analysis.coverage.coverage`.

It is added to a run's report when the suite configures ``coverage:`` (or ``$EVALKIT_TRAFFIC_PROFILE`` is
set) or a profile is given (``evalkit report RUN_DIR --traffic PROFILE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.report.html import Section, fragment

if TYPE_CHECKING:
    from evalkit.analysis.coverage import Coverage
    from evalkit.report.html_charts import Chart
    from evalkit.results import Run

CHART_ROUTES = 30
"""At most this many routes are drawn (by traffic); the table lists every one."""
STATUS_MARK = {"covered": "✔", "thin": "◐", "stale": "↻", "missing": "✖", "unreached": "–"}
"""A symbol beside every status word."""


@dataclass(frozen=True)
class FoundCoverage:
    """A coverage result for the report, or why there is none (a note shown instead)."""

    coverage: Coverage | None
    note: str | None = None


def run_coverage(run: Run, traffic: Path | None = None) -> FoundCoverage | None:
    """Coverage of ``run``'s suite: against ``traffic`` when given, else as the gate computes it (the suite's
    ``coverage:`` section or ``$EVALKIT_TRAFFIC_PROFILE``). None when neither asks for it."""
    if traffic is None:
        from evalkit.report.coverage import gate_coverage

        found = gate_coverage(run)
        return None if found is None else FoundCoverage(found.coverage, found.note)
    from evalkit.analysis.coverage import CoverageConfig, coverage
    from evalkit.analysis.traffic import load_profile
    from evalkit.errors import ConfigError
    from evalkit.suite import load_suite

    path = Path(run.suite.path)
    if not path.is_file():
        raise ConfigError(f"--traffic: expected the run's suite at {path} (to know its cases' routes), got no file")
    suite = load_suite(path)
    return FoundCoverage(coverage(suite, load_profile(traffic), run, CoverageConfig.from_mapping(suite.coverage)))


def share_chart(c: Coverage) -> Chart:
    """Per route: traffic share (filled bar, Wilson whisker) beside case share (hatched bar), status in words."""
    import numpy as np

    from evalkit.report.html_charts import CURRENT, INK, MUTED, _chart, _figure

    routes = list(c.routes[:CHART_ROUTES])
    figure, axes = _figure(7.2, 0.9 + 0.42 * max(len(routes), 1))
    ys = np.arange(len(routes))[::-1]
    height = 0.38
    traffic = np.array([r.share * 100 for r in routes])
    cases = np.array([r.case_share * 100 for r in routes])
    axes.barh(ys + height / 2, traffic, height=height, color=CURRENT, edgecolor=INK, linewidth=1,
              label="traffic share")
    errors = np.array([[max(r.share - r.share_low, 0) * 100 for r in routes],
                       [max(r.share_high - r.share, 0) * 100 for r in routes]])
    axes.errorbar(traffic, ys + height / 2, xerr=errors, fmt="none", ecolor=INK, elinewidth=1, capsize=2)
    axes.barh(ys - height / 2, cases, height=height, color="none", edgecolor=INK, hatch="///", linewidth=1,
              label="case share")
    top = float(max([*traffic, *cases, 1.0]))
    for y, r in zip(ys, routes, strict=True):
        axes.annotate(f"{STATUS_MARK.get(r.status, '')} {r.status}" + (" · head" if r.head else ""),
                      (1.01, y), xycoords=("axes fraction", "data"), va="center", fontsize=9)
    axes.set_yticks(ys, [("★ " if r.head else "") + r.route for r in routes])
    axes.set_xlim(0, top * 1.12)
    axes.set_xlabel("share (%)")
    axes.grid(axis="x", color=MUTED, linewidth=0.4, alpha=0.5)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize=8)
    table = [("route", "traffic share", "95% interval", "case share", "cases", "status", "head")]
    table += [(r.route, f"{r.share * 100:.1f}%", f"{r.share_low * 100:.1f}–{r.share_high * 100:.1f}%",
               f"{r.case_share * 100:.1f}%", str(r.cases), r.status, "yes" if r.head else "no") for r in c.routes]
    more = f" The {CHART_ROUTES} busiest routes are drawn; the table lists all." if len(c.routes) > CHART_ROUTES else ""
    return _chart(figure, "Traffic share against case share per route",
                  "Per route, the share of production requests (filled bar, with its Wilson interval) and the share "
                  "of the suite's cases (hatched bar). Head routes carry a star; each row's status is written at "
                  f"the right.{more}", table)


def coverage_sections(found: FoundCoverage | None) -> list[Section]:
    """The coverage section (or a note saying why there is none); empty when coverage was not asked for."""
    if found is None:
        return []
    if found.coverage is None:
        return [Section("coverage", "Traffic coverage", fragment("coverage.html.j2", c=None, note=found.note))]
    from evalkit.report.coverage import action, summary_lines

    c = found.coverage
    return [Section("coverage", "Traffic coverage", fragment(
        "coverage.html.j2", c=c, note=None, chart=share_chart(c), lines=summary_lines(c), marks=STATUS_MARK,
        actions={r.route: action(r) for r in c.routes}))]
