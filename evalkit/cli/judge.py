"""``evalkit judge``: calibrate a judge against its human-labelled anchors, and check it for drift."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from evalkit.cli.app import cli, console

if TYPE_CHECKING:
    from rich.console import Console


class _Bar:
    """A progress bar on stderr over the judge's calls."""

    def __init__(self, out: Console, what: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn(f"[bold]{what}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                  console=out, transient=False)
        self._task: object = None

    def start(self, total: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task("judge", total=total)

    def advance(self) -> None:
        self._progress.update(self._task, advance=1)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self._task is not None:
            self._progress.stop()


@cli.group()
def judge() -> None:
    """LLM judges: calibrate against human-labelled anchors, check for drift.

    \b
    check exit codes: 0 stable · 6 changed · 7 drifted · 8 inconclusive.
    """


_judges_dir = click.option("--judges-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("judges"),
                           show_default=True, help="Folder holding <name>/judge.yaml.")


@judge.command(name="calibrate")
@click.argument("name")
@_judges_dir
@click.option("--passes", type=click.IntRange(2, 10), help="Times each anchor is judged (default: the spec's, 2).")
@click.option("--cache/--no-cache", default=False, show_default=True,
              help="Reuse judge answers from earlier calibrations (each pass keeps its own answers).")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report as Markdown here.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def calibrate_command(name: str, judges_dir: Path, passes: int | None, cache: bool, markdown_path: Path | None,
                      quiet: bool) -> None:
    """Judge every anchor (K ≥ 2 passes) and write judges/NAME/calibration.json with the judge's status."""
    from evalkit.judges import calibrate
    from evalkit.report.judge import calibration_markdown, render_calibration

    bar = None if quiet else _Bar(console(stderr=True), "calibrating")
    try:
        result = calibrate(name, judges_dir, passes=passes, cache=cache, progress=bar)
    finally:
        if bar is not None:
            bar.stop()
    render_calibration(result, console())
    if markdown_path is not None:
        markdown_path.write_text(calibration_markdown(result), "utf-8")
    click.echo(f"wrote {result.path}")


@judge.command(name="check")
@click.argument("name")
@_judges_dir
@click.option("--split", type=click.Choice(["dev", "test", "canary"]), help="Re-judge only this split's anchors.")
@click.option("--full", is_flag=True, help="Re-judge the anchors even when the identity already differs.")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report as Markdown here.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def check_command(name: str, judges_dir: Path, split: str | None, full: bool, markdown_path: Path | None,
                  quiet: bool) -> None:
    """Re-check a judge against its calibration: stable, changed, drifted or inconclusive."""
    from evalkit.judges import check
    from evalkit.report.judge import check_markdown, render_check

    bar = None if quiet else _Bar(console(stderr=True), "checking")
    try:
        result = check(name, judges_dir, split=split, full=full, progress=bar)
    finally:
        if bar is not None:
            bar.stop()
    render_check(result, console())
    if markdown_path is not None:
        markdown_path.write_text(check_markdown(result), "utf-8")
    raise click.exceptions.Exit(int(result.exit_code))
