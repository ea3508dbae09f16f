"""``evalkit coverage``: which routes carry traffic and how well the suite covers them; router drift."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import click

from evalkit.cli.app import cli, console


class _DefaultReport(click.Group):
    """``evalkit coverage SUITE …`` means ``evalkit coverage report SUITE …``; ``drift`` is a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["report", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=_DefaultReport)
def coverage() -> None:
    """Traffic coverage of a suite (evalkit coverage SUITE --traffic PROFILE) and router drift."""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")


def _committed_at(paths: tuple[str, ...]) -> str | None:
    """The last commit time of the suite's files (git), when they are committed and clean; else None."""
    try:
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *paths], capture_output=True, text=True,
                               timeout=10, check=True).stdout.strip()
        when = subprocess.run(["git", "log", "-1", "--format=%cI", "--", *paths], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return when if when and not dirty else None


@coverage.command(name="report")
@click.argument("suite_path", metavar="SUITE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--traffic", "traffic_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Traffic profile (default: the suite's coverage.traffic).")
@click.option("--run", "run_dir", type=click.Path(path_type=Path),
              help="A run of the suite: adds pass rates and the traffic-weighted pass rate.")
@click.option("--min-precision", type=click.FloatRange(0, 0.5, min_open=True, max_open=True),
              help="Pass-rate interval half-width a route's cases should reach (default 0.15).")
@click.option("--as-of", help="When the cases were last evaluated, for 'stale' (default: the run's start, else "
                              "the suite's last commit).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="JSON report (default: .evalkit/coverage/<suite>.json).")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Markdown report (default: .evalkit/coverage/<suite>.md).")
def report(suite_path: Path, traffic_path: Path | None, run_dir: Path | None, min_precision: float | None,
           as_of: str | None, json_path: Path | None, markdown_path: Path | None) -> None:
    """Per route: traffic share, cases, pass rate and status (covered, thin, missing, stale)."""
    from evalkit.analysis.coverage import CoverageConfig, resolve_traffic
    from evalkit.analysis.coverage import coverage as coverage_of
    from evalkit.analysis.traffic import load_profile
    from evalkit.errors import ConfigError, ExitCode
    from evalkit.report.coverage import coverage_markdown, render_coverage
    from evalkit.results import load_run
    from evalkit.suite import load_suite

    suite = load_suite(suite_path)
    config = CoverageConfig.from_mapping(suite.coverage, min_precision=min_precision)
    path = traffic_path or resolve_traffic(suite, config)
    if path is None:
        raise ConfigError(f"{suite.path}: coverage.traffic: expected a traffic profile (--traffic PROFILE or "
                          "coverage.traffic in the suite), got none")
    run = load_run(run_dir) if run_dir is not None else None
    if as_of is None and run is None:
        as_of = _committed_at(suite.files)
    result = coverage_of(suite, load_profile(path), run, config, cases_as_of=as_of)
    render_coverage(result, console())
    stem = Path(suite.path).stem
    json_path = json_path or Path(".evalkit/coverage") / f"{stem}.json"
    markdown_path = markdown_path or Path(".evalkit/coverage") / f"{stem}.md"
    _write(json_path, json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")
    _write(markdown_path, coverage_markdown(result))
    click.echo(f"reports: {json_path} · {markdown_path}")
    if result.blocking:
        raise click.exceptions.Exit(int(ExitCode.COVERAGE_FAILED))


@coverage.command(name="drift")
@click.option("--traffic", "profiles", nargs=2, required=True, type=click.Path(dir_okay=False, path_type=Path),
              metavar="OLD NEW", help="Two traffic profiles, the older window first.")
@click.option("--tvd", type=click.FloatRange(0, 1, min_open=True), default=0.05, show_default=True,
              help="Flag a route-mix shift whose TVD may reach this.")
@click.option("--alpha", type=click.FloatRange(0, 0.5, min_open=True), default=0.01, show_default=True,
              help="Level of the permutation test every flag needs (false alarms on unchanged traffic).")
@click.option("--arm-weights", metavar="ARM=W,…", help="Configured arm split, e.g. warm=1,concise=1,formal=1 "
                                                      "(default: equal over the arms seen).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the permutation draws.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON report.")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the Markdown report.")
@click.option("--check", is_flag=True, help="Exit 9 when drift is flagged.")
def drift_command(profiles: tuple[Path, Path], tvd: float, alpha: float, arm_weights: str | None, seed: int,
                  json_path: Path | None, markdown_path: Path | None, check: bool) -> None:
    """Router drift between two windows: route mix (TVD, PSI), new and vanished routes, arm skew."""
    from evalkit.analysis.drift import DriftConfig, drift, parse_weights
    from evalkit.analysis.traffic import load_profile
    from evalkit.errors import ExitCode
    from evalkit.report.coverage import drift_markdown, render_drift

    try:
        weights = parse_weights(arm_weights)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--arm-weights") from None
    old, new = (load_profile(p) for p in profiles)
    result = drift(old, new, DriftConfig(tvd=tvd, alpha=alpha, arm_weights=weights, seed=seed))
    render_drift(result, console())
    outputs: list[tuple[Path | None, Any]] = [
        (json_path, lambda: json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"),
        (markdown_path, lambda: drift_markdown(result)),
    ]
    for path, text in outputs:
        if path is not None:
            _write(path, text())
    if check and result.flagged:
        raise click.exceptions.Exit(int(ExitCode.COVERAGE_FAILED))
