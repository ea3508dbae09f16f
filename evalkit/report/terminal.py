"""The terminal summary of a run (rich)."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from evalkit.compare import Comparison, Metric
from evalkit.conditions import percentile
from evalkit.report.cells import (
    format_interval,
    format_margin,
    format_n,
    format_p,
    format_value,
    policy_lines,
    too_small,
    verdict_line,
)
from evalkit.results import CaseResult, Run, per_case

if TYPE_CHECKING:
    from rich.console import Console, RenderableType


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1000:,.0f} ms"


def _rate(part: int, whole: int) -> str:
    return "–" if whole == 0 else f"{100 * part / whole:.1f}%"


def _reason(result: CaseResult) -> str:
    if result.error:
        return result.error
    failed = [s for s in result.scores if not s.passed]
    return "; ".join(f"{s.name}: {s.reason}" for s in failed[:2]) or "failed"


def render_run(run: Run, console: Console, *, failures: int = 10) -> None:
    """Prints the summary table, the conditions line and the first failing cases."""
    from rich.table import Table

    results = run.results
    groups: dict[str, list[CaseResult]] = defaultdict(list)
    for result in results:
        for tag in result.tags or ("(untagged)",):
            groups[tag].append(result)
    table = Table(title=f"{run.suite.name} · {run.run_id}", title_justify="left")
    for column, justify in (("tag", "left"), ("results", "right"), ("passed", "right"), ("pass rate", "right"),
                            ("errors", "right"), ("latency p50", "right"), ("latency p95", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]

    def row(name: str, items: list[CaseResult], style: str | None = None) -> None:
        latencies = [r.call.latency_s for r in items if r.call.latency_s is not None and not r.call.cached]
        passed = sum(r.passed for r in items)
        errors = sum(1 for r in items if r.error)
        decided = sum(1 for r in items if not r.unscored)  # an unscored result is out of the denominator
        table.add_row(name, str(len(items)), str(passed), _rate(passed, decided), str(errors),
                      _ms(percentile(latencies, 50)), _ms(percentile(latencies, 95)), style=style)

    for tag in sorted(groups):
        row(tag, groups[tag])
    table.add_section()
    row("total", list(results), style="bold")
    console.print(table)
    unscored = [r for r in results if r.unscored]
    if unscored:
        console.print(f"unscored: {len(unscored)} of {len(results)} results (a judge answer that could not be parsed: "
                      "neither pass nor fail, left out of the pass rate)", markup=False, highlight=False)
    from evalkit.judges.pool import instrument_failed, read_trust

    trust = read_trust(run.directory)
    for t in trust.values():
        why = f" ({'; '.join(t.reasons)})" if t.reasons and not t.trusted else ""
        console.print(f"judge {t.name}: {t.status}{why} · {t.verdicts} verdicts, {t.unscored} unscored",
                      markup=False, highlight=False, soft_wrap=True)
    for line in instrument_failed(list(trust.values())):
        console.print(line, markup=False, highlight=False, style="bold red")

    c = run.conditions
    if c is not None:
        endpoint = f" at {c.endpoint}" if c.endpoint else ""
        returned = ", ".join(c.models_returned) or "–"
        console.print(f"model: {c.model_requested} via {c.provider}{endpoint} (returned: {returned})")
        console.print(
            f"calls: {c.calls} ({c.cached_calls} cached) · attempts {c.attempts} · errors before retries "
            f"{c.errors_pre_retry} ({_rate(c.errors_pre_retry, c.attempts)}) · after retries "
            f"{c.errors_post_retry} ({_rate(c.errors_post_retry, c.calls - c.cached_calls)})"
        )
        console.print(
            f"TTFT p50/p95/p99: {_ms(c.ttft_p50)} / {_ms(c.ttft_p95)} / {_ms(c.ttft_p99)} · latency "
            f"p50/p95/p99: {_ms(c.latency_p50)} / {_ms(c.latency_p95)} / {_ms(c.latency_p99)}"
        )
        mean = f"{c.in_flight_mean:.1f}" if c.in_flight_mean is not None else "–"
        load = f"{c.loadavg_start[0]:.2f}" if c.loadavg_start else "–"
        console.print(
            f"concurrency: {c.concurrency_configured} configured, {mean} mean / {c.in_flight_max or 0} max in flight"
            f" · throughput {c.throughput_per_s or 0:.2f} calls/s · {c.weekday} {c.hour_local:02d}h {c.timezone}"
            f" · load {load}"
        )
    if run.repeats > 1:
        summaries = per_case(results)
        flaky = [s for s in summaries if s.flaky]
        console.print(f"repeats: {run.repeats} · cases passing every repeat: "
                      f"{sum(s.passed == s.total for s in summaries)}/{len(summaries)} · flaky: {len(flaky)}")
        for summary in flaky[:failures]:
            console.print(f"  flaky {summary.case_id}: {summary.passed}/{summary.total} passed")
    failing = [r for r in results if not r.passed]
    if failing:
        console.print(f"failing ({len(failing)}; first {min(failures, len(failing))}):")
        for result in failing[:failures]:
            suffix = f" #{result.repeat}" if run.repeats > 1 else ""
            console.print(f"  {result.case_id}{suffix}: {_reason(result)}", markup=False, highlight=False)
    render_agent_metrics(run, console)
    for problem in run.problems:
        console.print(f"journal: {problem}", style="yellow", markup=False, highlight=False)
    if run.status != "complete":
        console.print(f"status: {run.status} ({len(results)} of {run.expected} results)"
                      + (f": {run.failure}" if run.failure else "")
                      + (f"; finish with: evalkit run --resume {run.directory}" if run.missing and run.directory
                         else ""), style="yellow", markup=False, highlight=False)
    if run.directory is not None:
        console.print(f"results: {run.directory}", markup=False, highlight=False)


def print_whole(renderable: RenderableType, console: Console) -> None:
    """Prints a table at the width it needs, even past the console's: a value is never cut to "7.5e-…".

    In a narrow terminal the long lines wrap on screen; in a CI log (no terminal) the console is wide anyway.
    """
    from rich.measure import Measurement
    from rich.segment import Segment, Segments

    needed = Measurement.get(console, console.options.update(width=10_000), renderable).maximum
    options = console.options.update(width=max(console.width, needed))
    out: list[Segment] = []
    for line in console.render_lines(renderable, options, pad=False):
        while line and not line[-1].text.strip():
            line.pop()  # no trailing padding in a log
        if line:
            last = line[-1]
            line[-1] = Segment(last.text.rstrip(), last.style, last.control)
        out += [*line, Segment.line()]
    console.print(Segments(out), crop=False, end="")


# --- live tools and agents (evalkit.tools.metrics) ------------------------------------------------------


def render_agent_metrics(run: Run, console: Console) -> None:
    """The live-tools block of a run summary; prints nothing for a run that called no tool."""
    from evalkit.tools.metrics import agent_metrics

    m = agent_metrics(run.results)
    if m is None:
        return
    state = "–" if m.state_pass_rate is None else f"{m.state_checks_passed}/{m.state_checks} ({m.state_pass_rate:.0%})"
    pass_k = "–" if m.pass_k is None else f"{m.pass_k:.0%} (k={m.k})"
    console.print(f"agent: state checks {state} · pass^k {pass_k} · calls per case: {m.model_calls_per_case:.1f} "
                  f"model, {m.tool_calls_per_case:.1f} tool · redundant calls {m.redundant_calls}",
                  markup=False, highlight=False)
    console.print(f"  silent successes {m.silent_successes} · unverified claims {m.unverified_claims} · unclaimed "
                  f"writes {m.unclaimed_writes} · duplicate writes {m.duplicate_writes} · retry amplification "
                  f"{m.amplification:.2f} ({m.attempts} attempts / {m.intents} intents)", markup=False,
                  highlight=False)
    for tool in m.tools:
        console.print(f"  tool {tool.tool}: {tool.intents} calls, {tool.attempts} attempts · errors before retries "
                      f"{tool.error_rate_before:.0%}, after {tool.error_rate_after:.0%} · amplification "
                      f"{tool.amplification:.2f}", markup=False, highlight=False)
    if m.recovery:
        shown = ", ".join(f"{name} {ok}/{total}" for name, (ok, total) in m.recovery.items())
        console.print(f"  recovered under faults (cases that met a fault and passed): {shown}", markup=False,
                      highlight=False)
    endings = ", ".join(f"{k} {v}" for k, v in sorted(m.terminations.items()))
    console.print(f"  endings: {endings}", markup=False, highlight=False)


def render_comparison(comparison: Comparison, console: Console, *, flips: int = 10) -> None:
    """Prints the verdict, the metric table, policy and comparability notes, and the flipped cases."""
    from rich import box
    from rich.table import Table

    style = {"regression": "bold red", "inconclusive": "bold yellow", "pass": "bold green",
             "improvement": "bold green", "not_comparable": "dim"}
    console.print(verdict_line(comparison), style=style.get(comparison.verdict), markup=False, soft_wrap=True)

    def table_of(title: str, metrics: tuple[Metric, ...], first: str) -> Table:
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for column, justify in ((first, "left"), ("verdict", "left"), ("n", "right"), ("base", "right"),
                                ("now", "right"), ("Δ", "right"), ("CI", "right"), ("margin", "right"),
                                ("p", "right"), ("decided by", "left")):
            table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        for m in metrics:
            def v(value: float | None, signed: bool = False, m: Metric = m) -> str:
                return format_value(m, value, signed, compact=True)

            label = m.name.removeprefix("pass_rate[").removesuffix("]") if first == "tag" else m.name
            table.add_row(label + (" *" if m.blocking else ""), m.verdict.replace("_", " "), format_n(m),
                          v(m.baseline), v(m.current), v(m.difference, True), format_interval(m, compact=True),
                          format_margin(m), format_p(m.p_value), m.test or "–",
                          style=style.get(m.verdict) if m.blocking else None)
        return table

    level = round((1 - 2 * comparison.config.alpha) * 100)
    print_whole(table_of(f"{comparison.suite}: {comparison.baseline_run} → {comparison.current_run} · pass rates "
                         f"in %, Δ in points · latency in ms, Δ in % · {level}% CI · * can block",
                         comparison.metrics, "metric"), console)
    if comparison.slices:
        print_whole(table_of("pass rate per tag (Benjamini-Hochberg)", comparison.slices, "tag"), console)
    for line in policy_lines(comparison):
        console.print(f"gate: {line}", markup=False, soft_wrap=True, style="yellow")
    primary = comparison.metrics[0] if comparison.metrics else None
    if primary is not None and primary.verdict == "inconclusive" and primary.mde is not None:
        console.print(too_small(primary), markup=False, soft_wrap=True)
    for note in comparison.comparability:
        console.print(f"note: {note}", markup=False, soft_wrap=True)
    for metric in (*comparison.metrics, *comparison.slices):
        for note in metric.notes:
            console.print(f"note: {metric.name}: {note}", markup=False, soft_wrap=True)
    if comparison.unpaired_baseline or comparison.unpaired_current:
        console.print(f"unpaired: {len(comparison.unpaired_baseline)} only in the baseline "
                      f"({', '.join(comparison.unpaired_baseline[:10])}), {len(comparison.unpaired_current)} only in "
                      f"this run ({', '.join(comparison.unpaired_current[:10])})", markup=False, soft_wrap=True)
    for flip in comparison.flips[:flips]:
        console.print(f"{flip.direction} {flip.case_id} ({flip.before_passed} → {flip.after_passed})", markup=False,
                      soft_wrap=True)
        console.print(f"  before: {flip.before[:160]!r}", markup=False, highlight=False, soft_wrap=True)
        console.print(f"  after:  {flip.after[:160]!r}", markup=False, highlight=False, soft_wrap=True)
    if len(comparison.flips) > flips:
        console.print(f"... and {len(comparison.flips) - flips} more flipped cases")
