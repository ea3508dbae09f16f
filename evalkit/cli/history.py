"""``evalkit history``, ``diurnal`` and ``sweep``: the run history store and what it says over time."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from evalkit.cli.app import cli, console
from evalkit.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from evalkit.analysis.changepoints import Series
    from evalkit.analysis.diurnal import DiurnalReport, GroupStats
    from evalkit.analysis.ladder import LadderReport
    from evalkit.store import Store

UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def store_option(command: Any) -> Any:
    return click.option("--store", "store_url", envvar="EVALKIT_STORE", metavar="PATH|URL",
                        help="History store: a SQLite file or a postgresql:// URL "
                             "(default: $EVALKIT_STORE, else .evalkit/history.sqlite).")(command)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``14d``, ``36h``, ``2w``, ``90m`` before now, or an ISO date/time (UTC unless it says otherwise)."""
    now = now or datetime.now(UTC)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*", text)
    if match:
        amount = float(match.group(1))
        if amount <= 0:
            raise ConfigError(f"--since: expected a positive duration like 14d, got {text!r}")
        return now - timedelta(**{UNITS[match.group(2)]: amount})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"--since: expected a duration like 14d, 36h, 2w, 90m or an ISO date like 2025-01-31, "
                          f"got {text!r}") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment > now:
        raise ConfigError(f"--since: expected a time in the past, got {text!r} (after now, {now:%Y-%m-%d %H:%M} UTC)")
    return moment


def _suite_name(store: Store, suite: str) -> str:
    """A suite named by file (its ``name:``) or by name; one line when the store has no runs of it."""
    name = suite
    path = Path(suite)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        from evalkit.suite import load_suite

        name = load_suite(path).name
    known = store.suites()
    if name not in known:
        has = f"it has: {', '.join(known[:8])}" if known else "it is empty"
        raise ConfigError(f"{store.display}: expected runs of suite {name!r} in the history store, got none ({has}); "
                          "record runs with evalkit run or evalkit history ingest RUN_DIR")
    return name


def _calls_since(store: Store, name: str, since: str | None, route: str | None = None) -> Any:
    cutoff = parse_since(since) if since else None
    calls = store.calls(name, since=cutoff, route=route)
    if calls.empty:
        where = f" on route {route!r}" if route else ""
        window = f" since {cutoff:%Y-%m-%d %H:%M} UTC (--since {since})" if cutoff else ""
        newest = store.calls(name, route=route)
        last = f"; its newest call is from {newest['started_at'].max():%Y-%m-%d %H:%M} UTC" if not newest.empty else ""
        raise ConfigError(f"{store.display}: expected calls of suite {name!r}{where}{window}, got none{last}")
    return calls


def _write_json(path: Path | None, kind: str, report: Any) -> None:
    if path is not None:
        from evalkit.artifact import write_atomic

        payload = {"format": f"evalkit.{kind}/1", **asdict(report)}
        write_atomic(path, json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")


class HistoryGroup(click.Group):
    """``evalkit history SUITE …`` is ``evalkit history series SUITE …``; ``ingest`` and ``export`` are commands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["series", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=HistoryGroup)
def history() -> None:
    """The run history: `evalkit history SUITE` shows a metric per run with its change points.

    \b
    evalkit history SUITE [--metric pass_rate|latency_p95|ttft_p95|error_rate] [--route R]
    evalkit history ingest RUN_DIR...
    evalkit history export --parquet FILE
    """


@history.command(name="series")
@click.argument("suite")
@click.option("--metric", type=click.Choice(["pass_rate", "latency_p95", "ttft_p95", "error_rate"]),
              default="pass_rate", show_default=True, help="What to follow over time.")
@click.option("--route", help="Only the calls of this route.")
@click.option("--since", help="Only runs since: 30d, 12w, or an ISO date.")
@click.option("--alpha", type=click.FloatRange(0, 0.5, min_open=True), default=0.001, show_default=True,
              help="p-value a change point must reach.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write JSON here.")
@store_option
def history_series(suite: str, metric: str, route: str | None, since: str | None, alpha: float,
                   json_path: Path | None, store_url: str | None) -> None:
    """SUITE's METRIC per run, with its change points and what else changed there."""
    from evalkit.analysis.changepoints import history_series as analyse
    from evalkit.store import open_store

    with open_store(store_url) as store:
        name = _suite_name(store, suite)
        calls = _calls_since(store, name, since, route)
        runs = store.runs(name)
    series = analyse(calls, runs, suite=name, metric=metric, route=route, alpha=alpha)
    render_series(series, console())
    _write_json(json_path, "history", series)


@history.command(name="ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@store_option
def history_ingest(paths: tuple[Path, ...], store_url: str | None) -> None:
    """Record run directories (or folders of them, e.g. downloaded artifacts) in the store."""
    from evalkit.store import ingest_paths, open_store

    failed = 0
    total = 0
    with open_store(store_url) as store:
        for outcome in ingest_paths(store, paths):
            total += 1
            if outcome.ingested is not None:
                done = outcome.ingested
                click.echo(f"{done.outcome:9} {done.run_id} ({done.calls} calls) from {outcome.path}")
            else:
                failed += 1
                click.echo(f"evalkit: error: {outcome.error}", err=True)
        where = store.display
    if failed:
        raise ConfigError(f"{failed} of {total} run directories not recorded in {where} (see above)")


@history.command(name="export")
@click.option("--parquet", "parquet_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Write the per-call table to this Parquet file.")
@click.option("--suite", help="Only this suite (name or file).")
@click.option("--since", help="Only calls since: 30d, 12w, or an ISO date.")
@store_option
def history_export(parquet_path: Path, suite: str | None, since: str | None, store_url: str | None) -> None:
    """Write the per-call table (one row per provider call, with its run) to Parquet for a warehouse."""
    from evalkit.store import open_store

    with open_store(store_url) as store:
        name = _suite_name(store, suite) if suite else None
        rows = store.export_parquet(parquet_path, name, since=parse_since(since) if since else None)
        click.echo(f"wrote {rows} calls to {parquet_path}")


@cli.command(name="diurnal")
@click.argument("suite")
@click.option("--since", default="14d", show_default=True, help="Calls since: 14d, 36h, 2w, or an ISO date.")
@click.option("--route", help="Only the calls of this route.")
@click.option("--band", "band_hours", type=click.Choice(["1", "2", "3", "4", "6", "8", "12"]), default="3",
              show_default=True, help="Width of the hour bands in the table (hours).")
@click.option("--alpha", type=click.FloatRange(0, 0.5, min_open=True), default=0.01, show_default=True,
              help="Level of the joint hour test.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap and the sample.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write JSON here.")
@store_option
def diurnal(suite: str, since: str, route: str | None, band_hours: str, alpha: float, seed: int,
            json_path: Path | None, store_url: str | None) -> None:
    """Does time of day matter for SUITE? Hour bands, weekdays, and tests adjusted for our own load."""
    from evalkit.analysis.diurnal import analyse_diurnal
    from evalkit.store import open_store

    with open_store(store_url) as store:
        name = _suite_name(store, suite)
        calls = _calls_since(store, name, since, route)
    report = analyse_diurnal(calls, band_hours=int(band_hours), alpha=alpha, seed=seed)
    render_diurnal(report, name, console())
    _write_json(json_path, "diurnal", report)


@cli.command(name="sweep")
@click.argument("suite", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--ladder", "ladder_text", default="1,2,4,8,16", show_default=True,
              help="Concurrencies to run the suite at, comma-separated.")
@click.option("--sample", type=click.IntRange(1), help="Run a seeded sample of this many cases at each step.")
@click.option("--repeats", type=click.IntRange(1, 1000), help="Samples per case at each step.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample and the retry jitter.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path(".evalkit/runs"),
              show_default=True, help="Folder that receives the sweep folder (one run directory per step).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write JSON here.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@store_option
def sweep(suite: Path, ladder_text: str, sample: int | None, repeats: int | None, seed: int, out: Path,
          json_path: Path | None, quiet: bool, store_url: str | None) -> None:
    """Run SUITE at each concurrency of a load ladder; per-step latency, throughput, errors and the knee."""
    from evalkit.analysis.ladder import parse_ladder, run_ladder
    from evalkit.cli.run import BarProgress
    from evalkit.runner import RunOptions

    steps = parse_ladder(ladder_text)
    bars: list[BarProgress] = []

    def progress(k: int) -> BarProgress | None:
        if quiet:
            return None
        for bar in bars:
            bar.stop()
        bars.append(BarProgress(console(stderr=True)))
        return bars[-1]

    try:
        report = run_ladder(suite, steps, RunOptions(out=out, repeats=repeats, seed=seed), sample=sample, seed=seed,
                            store=store_url, progress=progress)
    finally:
        for bar in bars:
            bar.stop()
    for note in report.warnings:
        click.echo(note, err=True)
    render_ladder(report, console())
    _write_json(json_path, "ladder", report)


# --- rendering ----------------------------------------------------------------------------------------------


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _group_table(title: str, rows: tuple[GroupStats, ...]) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for header in ("", "calls", "runs", "lat p50", "lat p95", "lat p99", "ttft p50", "ttft p95", "err pre",
                   "err post", "pass"):
        table.add_column(header, justify="left" if not header else "right")
    for g in rows:
        table.add_row(g.label, str(g.calls), str(g.runs), _s(g.latency_p50), _s(g.latency_p95), _s(g.latency_p99),
                      _s(g.ttft_p50), _s(g.ttft_p95), _pct(g.error_rate_pre_retry), _pct(g.error_rate_post_retry),
                      _pct(g.pass_rate))
    return table


def render_diurnal(report: DiurnalReport, suite: str, out: Console) -> None:
    """The diurnal report: tables, tests, verdict."""
    out.print(f"[bold]{suite}[/]: {report.calls} calls from {report.runs} runs; local hours compared: "
              f"{', '.join(f'{h:02d}' for h in report.hours) or 'none'} (latency in seconds)")
    out.print(_group_table(f"by hour band ({report.band_hours} h, local time)", report.bands))
    out.print(_group_table("by weekday", report.weekdays))
    if report.kruskal is not None:
        k = report.kruskal
        out.print(f"Kruskal–Wallis across {k.groups} hours (unadjusted, calls as independent): H = {k.h:.2f}, "
                  f"p = {k.p_value:.3g}, ε² = {k.epsilon_squared:.4f}, η²H = {k.eta_squared:.4f}")
    if report.cosinor is not None:
        c = report.cosinor
        out.print(f"cosinor (log latency, cluster-robust by run, {c.clusters} runs, {c.n} calls; adjusted for "
                  f"{', '.join(c.covariates) or 'nothing'}): peak {c.peak_hour:.1f} h, peak/trough ×{c.ratio:.3f}, "
                  f"joint hour test F({c.df_num}, {c.df_denom}) = {c.f_stat:.2f}, p = {c.p_value:.3g}")
    if report.quantile is not None:
        q = report.quantile
        sampled = f", a seeded sample of {q.n} calls" if q.sampled else ""
        note = "" if q.converged else " (did not converge: read with care)"
        out.print(f"p95 quantile regression{sampled}: peak {q.peak_hour:.1f} h, peak/trough ×{q.ratio:.3f}, "
                  f"hour terms p = {q.p_value:.3g}{note}")
    if report.peak is not None:
        p = report.peak
        out.print(f"slowest hour {p.peak_hour:02d}:00, fastest {p.trough_hour:02d}:00: p95 {p.peak_p95:.3f} s vs "
                  f"{p.trough_p95:.3f} s, ratio {p.ratio:.2f} [{p.level:.0%} CI {p.ci_low:.2f}–{p.ci_high:.2f}, "
                  f"bootstrap over runs]; adjusted ×{p.adjusted_ratio:.2f} [{p.adjusted_low:.2f}–"
                  f"{p.adjusted_high:.2f}]")
    out.print(f"[bold]{report.verdict}[/]")


def render_series(series: Series, out: Console) -> None:
    """The metric per run, then the change points."""
    from rich.table import Table

    route = f" (route {series.route})" if series.route else ""
    table = Table(title=f"{series.suite}: {series.metric}{route} per run", title_justify="left")
    for header in ("run", "started (UTC)", "calls", series.metric, ""):
        table.add_column(header, justify="right" if header in ("calls", series.metric) else "left")
    starts = {cp.index for cp in series.change_points}
    for i, point in enumerate(series.points):
        value = _pct(point.value) if series.metric in ("pass_rate", "error_rate") else _s(point.value)
        table.add_row(point.run_id, point.started_at[:19], str(point.calls), value,
                      "◀ change point" if i in starts else "")
    out.print(table)
    if series.not_enough:
        out.print(f"[bold]not enough data:[/] {series.not_enough}")
        return
    if not series.change_points:
        out.print(f"no change points (none reached p ≤ {series.alpha:g})")
    for cp in series.change_points:
        fmt = _pct if series.metric in ("pass_rate", "error_rate") else _s
        relative = f" ({cp.relative:+.0%})" if cp.relative is not None else ""
        changed = "; ".join(f"{c.attribute} {c.before or '–'} → {c.after or '–'} at {c.run_id}" for c in cp.changes)
        out.print(f"[bold]change point[/] at {cp.run_id} ({cp.started_at[:19]}): {fmt(cp.before)} → "
                  f"{fmt(cp.after)}{relative}, p = {cp.p_value:.2g}; "
                  f"{'also changed: ' + changed if changed else 'nothing else recorded changed'}")


def render_ladder(report: LadderReport, out: Console) -> None:
    """The ladder table and its knee."""
    from rich.table import Table

    table = Table(title=f"{report.suite}: load ladder {report.sweep_id}", title_justify="left")
    for header in ("concurrency", "calls", "in flight", "calls/s", "lat p50", "lat p95", "lat p99", "ttft p50",
                   "ttft p95", "err pre", "err post", "pass", "p50 ×", "p"):
        table.add_column(header, justify="right")
    for s in report.steps:
        flight = f"{s.in_flight_mean:.1f}/{s.in_flight_max}" if s.in_flight_mean is not None else "–"
        table.add_row(str(s.concurrency), str(s.calls), flight, _s(s.throughput_per_s), _s(s.latency_p50),
                      _s(s.latency_p95), _s(s.latency_p99), _s(s.ttft_p50), _s(s.ttft_p95),
                      _pct(s.error_rate_pre_retry), _pct(s.error_rate_post_retry), _pct(s.pass_rate),
                      "–" if s.median_ratio is None else f"{s.median_ratio:.2f}",
                      "–" if s.p_value is None else f"{s.p_value:.2g}")
    out.print(table)
    out.print(f"[bold]{report.verdict}[/]")
