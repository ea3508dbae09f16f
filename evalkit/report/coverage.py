"""Renders traffic coverage and router drift: terminal (rich), Markdown, and the gate's coverage block."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.analysis.coverage import Coverage, RouteCoverage
from evalkit.analysis.drift import ArmSkew, Drift
from evalkit.analysis.drift import format_p as _p

if TYPE_CHECKING:
    from rich.console import Console

    from evalkit.results import Run

ICONS = {"missing": "🔴", "stale": "🟠", "thin": "🟡", "covered": "🟢", "unreached": "⚪"}
STYLES = {"missing": "bold red", "stale": "yellow", "thin": "yellow", "covered": "green", "unreached": "dim"}


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def _range(low: float | None, high: float | None, digits: int = 1) -> str:
    if low is None or high is None:
        return "–"
    return f"{low * 100:.{digits}f}–{high * 100:.{digits}f}"


def action(route: RouteCoverage) -> str:
    """What to do about a route, in a few words."""
    if route.status == "unreached":
        return "no traffic reaches it"
    if route.status == "stale":
        when = (route.last_change or "")[:10]
        more = f"; add {route.add}" if route.add else ""
        return f"re-run: {route.change} since {when}{more}"
    if route.add:
        return f"add {route.add} case{'s' if route.add != 1 else ''}"
    return ""


def _pass(route: RouteCoverage) -> str:
    if route.pass_rate is None:
        return "–"
    done = f"{route.passed:g}/{route.evaluated}"
    return f"{done} {_pct(route.pass_rate, 0)} ({_range(route.pass_low, route.pass_high, 0)})"


def summary_lines(c: Coverage) -> list[str]:
    """The lines under the table, shared by the terminal and Markdown renderers (Markdown adds emphasis)."""
    head = c.head
    covered = [r for r in head if r.status == "covered"]
    lines = [f"head: {len(head)} route{'s' if len(head) != 1 else ''} ({', '.join(r.route for r in head)}) carry "
             f"{sum(r.share for r in head):.0%} of traffic (the fewest reaching {c.config.head_share:.0%}, plus any "
             f"≥ {c.config.min_share:.0%}); head coverage {c.head_coverage:.0%} of head traffic "
             f"({len(covered)} of {len(head)} head routes covered)"]
    w = c.weighted
    if w is not None:
        level = round(c.config.level * 100)
        if w.estimate is not None:
            lines.append(f"traffic-weighted pass rate {_pct(w.estimate)} ({level}% CI {_range(w.low, w.high)}, "
                         f"≈{w.effective_cases or 0:.0f} effective cases) over the routes with results "
                         f"({w.evaluated_share:.0%} of traffic) · unweighted {_pct(w.unweighted)} "
                         f"({_range(w.unweighted_low, w.unweighted_high)}) over {w.cases} cases")
        else:
            lines.append(f"traffic-weighted pass rate: no route with traffic has results · unweighted "
                         f"{_pct(w.unweighted)} ({_range(w.unweighted_low, w.unweighted_high)}) over {w.cases} cases")
        lines.append(f"over all traffic, with the {1 - w.evaluated_share:.0%} no result reaches passing anywhere "
                     f"from 0% to 100%: {_pct(w.bound_low)} to {_pct(w.bound_high)}")
    d = c.distance
    verdict = ("far from the traffic's" if d.flagged else
               "not distinguishable from the traffic's on this many cases" if d.chi2_p is not None
               and d.chi2_p >= c.config.alpha else "close to the traffic's")
    rough = " (rough: some routes expect < 5 cases)" if d.small_expected else ""
    lines.append(f"case mix vs traffic: TVD {d.tvd:.2f}, χ² p {_p(d.chi2_p)}{rough} — the suite's route mix is "
                 f"{verdict} (flagged at TVD ≥ {c.config.max_distance:g} with p < {c.config.alpha:g})")
    if c.arms is not None:
        lines.append(arm_line(c.arms))
    unreached = c.unreached
    if unreached:
        lines.append(f"no traffic reaches {len(unreached)} suite route{'s' if len(unreached) != 1 else ''}: "
                     + ", ".join(f"{r.route} ({r.cases} case{'s' if r.cases != 1 else ''})" for r in unreached))
    if c.unrouted_cases:
        lines.append(f"{c.unrouted_cases} case{'s' if c.unrouted_cases != 1 else ''} without a route "
                     "(not counted on any route)")
    return lines


def arm_line(arms: ArmSkew) -> str:
    split = " · ".join(f"{a} {s:.0%}" for a, s in zip(arms.arms, arms.observed_shares, strict=True))
    against = "the configured weights" if arms.configured else "an equal split (no weights configured)"
    state = "SKEWED" if arms.flagged else "within expectation"
    return (f"arms: {split} against {against}: {state} ({arms.test} p {_p(arms.p_value)}, "
            f"TVD {arms.tvd:.2f})")


def _title(c: Coverage) -> str:
    window = f"{(c.window[0] or '?')[:10]} → {(c.window[1] or '?')[:10]}"
    run = f" · run {c.run_id}" if c.run_id else ""
    return f"traffic coverage · {c.suite} · {c.profile} ({c.requests:,} requests, {window}){run}"


def render_coverage(c: Coverage, console: Console) -> None:
    """Prints the per-route table and the summary lines."""
    from rich import box
    from rich.table import Table

    table = Table(title=_title(c), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    level = round(c.config.level * 100)
    for column, justify in (("route", "left"), ("requests", "right"), (f"share ({level}% CI)", "right"),
                            ("cases", "right"), ("case %", "right"), ("pass rate (CI)", "right"),
                            ("status", "left"), ("action", "left")):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for r in c.routes:
        table.add_row(("● " if r.head else "  ") + r.route, f"{r.requests:,}",
                      f"{_pct(r.share)} ({_range(r.share_low, r.share_high)})", str(r.cases), _pct(r.case_share),
                      _pass(r), r.status, action(r), style=STYLES.get(r.status))
    console.print(table)
    console.print(f"● head route · thin: fewer cases than a ± {c.config.min_precision * 100:g}-point pass-rate "
                  f"interval needs", markup=False)
    for line in summary_lines(c):
        console.print(line, markup=False, highlight=False)
    for r in c.blocking:
        console.print(f"blocks: {r.route} is {r.status}", style="bold red", markup=False)


def coverage_markdown(c: Coverage, *, heading: str = "##") -> str:
    """The coverage report as Markdown (a PR comment section, the step summary, ``--markdown``)."""
    level = round(c.config.level * 100)
    lines = [f"{heading} Traffic coverage: `{c.suite}`", "",
             f"{c.requests:,} requests in `{c.profile}` ({(c.window[0] or '?')[:16]} → {(c.window[1] or '?')[:16]})"
             + (f" · run `{c.run_id}`" if c.run_id else ""), "",
             f"| route | requests | share ({level}% CI) | cases | case % | pass rate (CI) | status | action |",
             "|---|---:|---:|---:|---:|---:|---|---|"]
    for r in c.routes:
        name = f"**{r.route}**" if r.head else r.route
        lines.append(f"| {name} | {r.requests:,} | {_pct(r.share)} ({_range(r.share_low, r.share_high)}) | {r.cases} "
                     f"| {_pct(r.case_share)} | {_pass(r)} | {ICONS[r.status]} {r.status} | {action(r)} |")
    lines += ["", f"**Bold**: head route. *thin*: fewer cases than a ± {c.config.min_precision * 100:g}-point "
                  "pass-rate interval needs.", ""]
    lines += [f"- {line}" for line in summary_lines(c)]
    if c.blocking:
        lines += ["", "**Blocking:** " + ", ".join(f"`{r.route}` is {r.status}" for r in c.blocking)]
    return "\n".join(lines) + "\n"


# --- drift ---------------------------------------------------------------------------------------------


def drift_lines(d: Drift) -> list[str]:
    """The drift verdict and its statistics as lines."""
    verdict = "ROUTE DRIFT" if d.route_drift else "no route drift"
    if d.arms_new is not None:
        verdict += " · ARM SKEW" if d.arm_skew else " · arms as configured"
    lines = [f"{verdict}: {d.old} ({d.old_requests:,} requests, "
             f"{(d.old_window[0] or '?')[:10]} → {(d.old_window[1] or '?')[:10]}) → {d.new} ({d.new_requests:,}, "
             f"{(d.new_window[0] or '?')[:10]} → {(d.new_window[1] or '?')[:10]})"]
    lines += [f"  {reason}" for reason in d.reasons]
    c = d.config
    lines.append(f"TVD {d.tvd:.3f} (upper {round(c.level * 100)}% bound {d.tvd_upper:.3f}; flag ≥ {c.tvd:g}) · "
                 f"permutation p {_p(d.p_value)} (α {c.alpha:g}) · χ² p {_p(d.chi2_p)} · "
                 f"PSI {d.psi:.3f} (threshold {d.psi_threshold:.3f} at these sizes)")
    for label, arms in (("old", d.arms_old), ("new", d.arms_new)):
        if arms is not None:
            lines.append(f"{label} window {arm_line(arms)}")
    return lines


def render_drift(d: Drift, console: Console) -> None:
    """Prints the drift verdict, the per-route shift table and the arm splits."""
    from rich import box
    from rich.table import Table

    lines = drift_lines(d)
    console.print(lines[0], style="bold red" if d.flagged else "bold green", markup=False)
    for line in lines[1:]:
        console.print(line, markup=False, highlight=False)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column, justify in (("route", "left"), ("old", "right"), ("old %", "right"), ("new", "right"),
                            ("new %", "right"), ("Δ pts", "right"), ("", "left")):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for r in d.routes:
        table.add_row(r.route, f"{r.old:,}", _pct(r.old_share), f"{r.new:,}", _pct(r.new_share),
                      f"{r.change * 100:+.1f}", (r.status + (" (flagged)" if r.flagged else "")).strip(),
                      style="bold red" if r.flagged else None)
    console.print(table)


def drift_markdown(d: Drift) -> str:
    """The drift report as Markdown."""
    lines = drift_lines(d)
    out = [f"## Router drift: {'🔴' if d.flagged else '🟢'} {lines[0].partition(':')[0]}", "", lines[0], ""]
    out += [f"- {line.strip()}" for line in lines[1:]]
    out += ["", "| route | old | old % | new | new % | Δ pts | |", "|---|---:|---:|---:|---:|---:|---|"]
    out += [f"| {r.route} | {r.old:,} | {_pct(r.old_share)} | {r.new:,} | {_pct(r.new_share)} | "
            f"{r.change * 100:+.1f} | {r.status}{' (flagged)' if r.flagged else ''} |" for r in d.routes]
    return "\n".join(out) + "\n"


# --- the gate's coverage block --------------------------------------------------------------------------


@dataclass(frozen=True)
class GateCoverage:
    """The coverage block the regression gate adds to its reports (or why there is none)."""

    coverage: Coverage | None
    note: str | None = None
    """Why no block could be computed (e.g. the profile is missing); shown instead of the block."""

    @property
    def markdown(self) -> str:
        if self.coverage is None:
            return f"\n> Traffic coverage: {self.note}\n"
        return "\n" + coverage_markdown(self.coverage, heading="###")

    @property
    def data(self) -> dict[str, Any]:
        return self.coverage.to_dict() if self.coverage is not None else {"note": self.note}

    def print(self, console: Console) -> None:
        if self.coverage is None:
            console.print(f"traffic coverage: {self.note}", markup=False)
        else:
            render_coverage(self.coverage, console)

    def annotations(self) -> str:
        """GitHub ``::error``/``::warning`` lines for the head routes whose status blocks or warns."""
        from evalkit.report.github import annotation

        if self.coverage is None:
            return annotation("warning", f"traffic coverage: {self.note}", title="evalkit coverage") + "\n"
        c = self.coverage
        lines = [annotation("error" if r in c.blocking else "warning",
                            f"route {r.route} carries {r.share:.0%} of traffic and is {r.status} ({r.cases} cases"
                            + (f"; {action(r)})" if action(r) else ")"),
                            title=f"coverage {r.route}", file=c.suite_path)
                 for r in (*c.blocking, *c.warnings)]
        return "".join(line + "\n" for line in lines)

    def exit_code(self, gate_code: int) -> int:
        """The gate's code, or ``COVERAGE_FAILED`` when only coverage blocks (a regression is reported first)."""
        from evalkit.errors import ExitCode

        if gate_code == ExitCode.OK and self.coverage is not None and self.coverage.blocking:
            return int(ExitCode.COVERAGE_FAILED)
        return gate_code


def gate_coverage(run: Run) -> GateCoverage | None:
    """The coverage block for a run whose suite has a ``coverage:`` section; None when it has none.

    The suite is read again from the path the run recorded (the run stores no coverage settings); the
    profile comes from ``EVALKIT_TRAFFIC_PROFILE`` when set, else from the suite's ``coverage.traffic``.
    A missing suite or profile becomes a note in the report, never a failed gate.
    """
    from evalkit.analysis.coverage import CoverageConfig, coverage, resolve_traffic
    from evalkit.analysis.traffic import load_profile
    from evalkit.errors import EvalkitError
    from evalkit.suite import load_suite

    path = Path(run.suite.path)
    if not path.is_file():
        return None
    try:
        suite = load_suite(path)
    except EvalkitError:
        return None  # whether it asks for coverage cannot be known; the gate has reported on the run itself
    if not suite.coverage and not os.environ.get("EVALKIT_TRAFFIC_PROFILE"):
        return None
    config = CoverageConfig.from_mapping(suite.coverage)
    profile_path = resolve_traffic(suite, config)
    if profile_path is None:
        return GateCoverage(None, "no traffic profile configured (coverage.traffic in the suite, or "
                                  "EVALKIT_TRAFFIC_PROFILE)")
    try:
        return GateCoverage(coverage(suite, load_profile(profile_path), run, config))
    except EvalkitError as exc:
        return GateCoverage(None, str(exc))


# --- an imported profile -----------------------------------------------------------------------------------


def render_profile(profile: Any, out: Path, console: Console, errors: Console) -> None:
    """What ``evalkit traffic import`` wrote: totals, the route table, and the problems (on ``errors``)."""
    from rich import box
    from rich.table import Table

    from evalkit.analysis.traffic import TrafficProfile

    assert isinstance(profile, TrafficProfile)
    formats = sorted({s.format for s in profile.sources})
    lines = sum(s.lines for s in profile.sources)
    console.print(f"imported {profile.requests:,} requests on {len(profile.routes)} routes from "
                  f"{len(profile.sources)} file{'s' if len(profile.sources) != 1 else ''} ({', '.join(formats)}, "
                  f"{lines:,} lines) into {out}", markup=False, highlight=False)
    window = f"{profile.first or '?'} → {profile.last or '?'}"
    extra = [f"{profile.untimed:,} without a timestamp"] if profile.untimed else []
    if profile.outside_window:
        extra.append(f"{profile.outside_window:,} outside --since/--until")
    skipped = sum(s.skipped for s in profile.sources)
    if skipped:
        extra.append(f"{skipped:,} spans that are not model calls skipped")
    console.print(f"window: {window}" + (f" · {' · '.join(extra)}" if extra else ""), markup=False, highlight=False)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column, justify in (("route", "left"), ("requests", "right"), ("share", "right"), ("arms", "left"),
                            ("models", "left"), ("errors", "right")):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    total = profile.requests or 1
    for name, route in profile.routes.items():
        arms = " ".join(f"{a} {c / route.requests:.0%}" for a, c in list(route.arms.items())[:3])
        models = ", ".join(list(route.models)[:2]) + (" …" if len(route.models) > 2 else "")
        table.add_row(name, f"{route.requests:,}", f"{route.requests / total:.1%}", arms, models,
                      f"{sum(route.errors.values()):,}")
    console.print(table)
    if profile.problems:
        kinds = ", ".join(f"{count:,} {kind}" for kind, count in sorted(profile.problem_kinds.items(),
                                                                         key=lambda kv: -kv[1]))
        errors.print(f"evalkit: warning: {profile.problems:,} problem line{'s' if profile.problems != 1 else ''} "
                     f"({profile.uncounted:,} not counted; {kinds}); the first {len(profile.problem_samples)}:",
                     markup=False, highlight=False)
        for sample in profile.problem_samples:
            errors.print(f"  {sample}", markup=False, highlight=False)
