"""``evalkit run``, ``show`` and ``merge``: execute a suite, re-render a run, join shards."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from evalkit.cli.app import cli, console
from evalkit.cli.gate import gate_options, preflight_run, run_gate

if TYPE_CHECKING:
    from rich.console import Console

    from evalkit.results import CaseResult


def parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    index, _, count = value.partition("/")
    if not (index.isdigit() and count.isdigit()) or not 1 <= int(index) <= int(count):
        raise click.BadParameter(f"expected i/n with 1 <= i <= n, got {value!r}", param_hint="--shard")
    return int(index), int(count)


class BarProgress:
    """A rich progress bar on stderr; shows passes as it goes."""

    def __init__(self, out: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]running"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[passed]}"),
            TimeElapsedColumn(), console=out, transient=False, refresh_per_second=8,
        )
        self._task: Any = None
        self._passed = 0

    def start(self, total: int, done: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task("run", total=total, completed=done, passed="")

    def advance(self, result: CaseResult) -> None:
        self._passed += result.passed
        self._progress.update(self._task, advance=1, passed=f"{self._passed} passed")

    def stop(self) -> None:
        if self._task is not None:  # stopping a bar that never started would print a stray newline
            self._progress.stop()


@cli.command()
@click.argument("suite", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--resume", "resume", type=click.Path(path_type=Path), help="Finish an interrupted run directory.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path(".evalkit/runs"),
              show_default=True, help="Folder that receives the run directory.")
@click.option("--run-id", help="Name of the run directory (default: suite-timestamp-random).")
@click.option("--concurrency", type=click.IntRange(1, 10000), help="Calls in flight at once.")
@click.option("--repeats", type=click.IntRange(1, 1000), help="Independent samples per case.")
@click.option("--shard", help="Run shard i of n (1-based), e.g. 2/4.")
@click.option("--cache/--no-cache", default=False, show_default=True, help="Reuse responses from earlier runs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the retry jitter.")
@click.option("--rpm", type=click.FloatRange(min=0, min_open=True), help="Requests per minute limit.")
@click.option("--tpm", type=click.FloatRange(min=0, min_open=True), help="Estimated tokens per minute limit.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Compare the finished run with this baseline and exit with the gate's code.")
@gate_options
def run(suite: Path | None, resume: Path | None, out: Path, run_id: str | None, concurrency: int | None,
        repeats: int | None, shard: str | None, cache: bool, seed: int, rpm: float | None, tpm: float | None,
        quiet: bool, baseline_path: Path | None, **gate: Any) -> None:
    """Run SUITE (a YAML file) and write its results."""
    from evalkit.report import render_run
    from evalkit.runner import RunOptions, resume_run, run_suite

    if (suite is None) == (resume is None):
        raise click.UsageError("expected a SUITE file or --resume RUN_DIR (one of them)")
    preflight_run(suite, resume, baseline_path, **gate)
    progress = None if quiet else BarProgress(console(stderr=True))
    try:
        if resume is not None:
            result = resume_run(resume, progress=progress)
        else:
            assert suite is not None
            options = RunOptions(out=out, run_id=run_id, concurrency=concurrency, repeats=repeats,
                                 shard=parse_shard(shard), cache=cache, seed=seed, requests_per_minute=rpm,
                                 tokens_per_minute=tpm)
            result = run_suite(suite, options, progress=progress)
    finally:
        if progress is not None:
            progress.stop()
    from evalkit.store import record_quietly

    if note := record_quietly(result):  # the history store follows the journal; a failure only warns
        click.echo(note, err=True)
    render_run(result, console())
    if result.status == "failed":
        from evalkit.errors import ProviderError

        raise ProviderError(f"{result.directory}: run failed: {result.failure}")
    if baseline_path is not None:
        raise click.exceptions.Exit(run_gate(result, baseline_path, **gate))


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--failures", type=click.IntRange(0), default=10, show_default=True, help="Failing cases to list.")
def show(run_dir: Path, failures: int) -> None:
    """Re-render the summary of a run directory."""
    from evalkit.report import render_run
    from evalkit.results import load_run

    render_run(load_run(run_dir), console(), failures=failures)


@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="New run directory for the merged run.")
def merge(runs: tuple[Path, ...], out: Path) -> None:
    """Join shard runs of one suite into one run."""
    from evalkit.report import render_run
    from evalkit.results import merge_runs

    render_run(merge_runs(runs, out), console())
