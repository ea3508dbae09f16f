"""The terminal summary of a run (rich)."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from evalkit.compare import Comparison, Metric, verdict_line
from evalkit.conditions import percentile
from evalkit.report.cells import format_value
from evalkit.results import CaseResult, Run, per_case

if TYPE_CHECKING:
    from rich.console import Console


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
        table.add_row(name, str(len(items)), str(passed), _rate(passed, len(items)), str(errors),
                      _ms(percentile(latencies, 50)), _ms(percentile(latencies, 95)), style=style)

    for tag in sorted(groups):
        row(tag, groups[tag])
    table.add_section()
    row("total", list(results), style="bold")
    console.print(table)

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
    """Prints the verdict, the metric table, comparability notes and the flipped cases."""
    from rich.table import Table

    style = {"regression": "bold red", "inconclusive": "bold yellow", "pass": "bold green",
             "improvement": "bold green", "not_comparable": "dim"}
    console.print(verdict_line(comparison), style=style.get(comparison.verdict), markup=False)
    from rich import box

    def table_of(title: str, metrics: tuple[Metric, ...], first: str) -> Table:
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for column, justify in ((first, "left"), ("verdict", "left"), ("n", "right"), ("base", "right"),
                                ("now", "right"), ("Δ", "right"), ("CI", "right"), ("p", "right")):
            table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        for m in metrics:
            def v(value: float | None, signed: bool = False, m: Metric = m) -> str:
                return format_value(m, value, signed, compact=True)

            ci = "–" if m.ci_low is None or m.ci_high is None else f"{v(m.ci_low, True)}…{v(m.ci_high, True)}"
            p = "–" if m.p_value is None else f"{m.p_value:.2g}"
            label = m.name.removeprefix("pass_rate[").removesuffix("]") if first == "tag" else m.name
            table.add_row(label + (" *" if m.blocking else ""), m.verdict.replace("_", " "), str(m.n), v(m.baseline),
                          v(m.current), v(m.difference, True), ci, p,
                          style=style.get(m.verdict) if m.blocking else None)
        return table

    level = round((1 - 2 * comparison.config.alpha) * 100)
    console.print(table_of(f"{comparison.suite}: {comparison.baseline_run} → {comparison.current_run} · pass rates "
                           f"in %, Δ in points · {level}% CI · * can block", comparison.metrics, "metric"))
    if comparison.slices:
        console.print(table_of("pass rate per tag (Benjamini-Hochberg)", comparison.slices, "tag"))
    primary = comparison.metrics[0] if comparison.metrics else None
    if primary is not None and primary.verdict == "inconclusive" and primary.mde is not None:
        console.print(f"too small to tell: detects {primary.mde * 100:.1f} pts beyond the margin at 80% power; "
                      f"about {primary.cases_needed} cases would show non-inferiority at this margin")
    for note in comparison.comparability:
        console.print(f"note: {note}", markup=False)
    for metric in comparison.metrics:
        for note in metric.notes:
            console.print(f"note: {metric.name}: {note}", markup=False)
    if comparison.unpaired_baseline or comparison.unpaired_current:
        console.print(f"unpaired: {len(comparison.unpaired_baseline)} only in the baseline "
                      f"({', '.join(comparison.unpaired_baseline[:10])}), {len(comparison.unpaired_current)} only in "
                      f"this run ({', '.join(comparison.unpaired_current[:10])})", markup=False)
    for flip in comparison.flips[:flips]:
        console.print(f"{flip.direction} {flip.case_id} ({flip.before_passed} → {flip.after_passed})", markup=False)
        console.print(f"  before: {flip.before[:160]!r}", markup=False, highlight=False)
        console.print(f"  after:  {flip.after[:160]!r}", markup=False, highlight=False)
    if len(comparison.flips) > flips:
        console.print(f"... and {len(comparison.flips) - flips} more flipped cases")
