"""``evalkit compare`` and ``evalkit baseline``: the regression gate and the baselines it reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from evalkit.cli.app import cli, console

REPORT_OPTIONS = {"markdown_path": "--markdown", "junit_path": "--junit", "json_path": "--json",
                  "html_path": "--html"}
"""Report paths are checked by :func:`check_output_path` (not click), so every bad path reads the same way."""


def gate_options(command: Any) -> Any:
    """The options shared by ``compare`` and ``run --baseline``."""
    for option in reversed([
        click.option("--margin", type=click.FloatRange(0, 1),
                     help="Override the pass-rate non-inferiority margin (0.02 = 2 pts); logged in every report."),
        click.option("--alpha", type=click.FloatRange(0, 0.5, min_open=True),
                     help="Override the one-sided significance level; logged in every report."),
        click.option("--inconclusive", type=click.Choice(["block", "warn"]),
                     help="Override whether inconclusive fails; logged in every report."),
        click.option("--rescore-baseline", is_flag=True,
                     help="Re-judge the baseline's stored outputs with the judges this run used (one currency)."),
        click.option("--use-run-gate", is_flag=True,
                     help="Apply the run's own gate: section instead of the baseline's (logged in every report)."),
        click.option("--markdown", "markdown_path", type=click.Path(path_type=Path),
                     help="Write the Markdown report here."),
        click.option("--junit", "junit_path", type=click.Path(path_type=Path),
                     help="Write JUnit XML here."),
        click.option("--json", "json_path", type=click.Path(path_type=Path),
                     help="Write the JSON report here."),
        click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Write the HTML report here (one self-contained file)."),
        click.option("--github", "github", is_flag=True,
                     help="Print GitHub annotations and append the report to $GITHUB_STEP_SUMMARY."),
    ]):
        command = option(command)
    return command


def check_output_path(path: Path, option: str, *, create_folders: bool = False) -> None:
    """A file evalkit will write: not a directory, in a folder that exists (or can be made), writable.

    Checked before any work, so a bad path costs one line instead of a finished run's report.
    """
    import os

    from evalkit.errors import ConfigError

    if path.is_dir():
        raise ConfigError(f"{option}: {path}: expected a file path, got a directory")
    parent = path.parent if str(path.parent) else Path(".")
    for folder in (parent, *parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ConfigError(f"{option}: {path}: expected a folder at {folder}, got a file")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise ConfigError(f"{option}: {path}: expected a writable folder, got {folder} (not writable)")
            break
        if not create_folders:
            raise ConfigError(f"{option}: {path}: expected an existing folder, got none at {parent}")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{option}: {path}: expected a writable file, got a read-only one")


def preflight(baseline_path: Path | None, suite_name: str | None = None, **reports: Any) -> None:
    """What ``run --baseline`` and ``compare`` check before any work: the baseline and every output path.

    ``suite_name`` (when known before the run) must be the baseline's suite; gate options that are not
    report paths are ignored, so a command can pass all of its gate options.
    """
    from evalkit.baseline import check_same_suite, load_baseline

    for key, option in REPORT_OPTIONS.items():
        if reports.get(key) is not None:
            check_output_path(Path(reports[key]), option)
    if baseline_path is not None:
        baseline = load_baseline(baseline_path)
        if suite_name is not None:
            check_same_suite(baseline, suite_name)


def suite_name_of(suite: Path | None, resume: Path | None) -> str | None:
    """The suite's ``name``, read cheaply before a run (None when it cannot be: the run itself will say why).

    For a suite file only the YAML events up to the top-level ``name`` are parsed; for a run directory to
    resume, its manifest.
    """
    import json

    import yaml

    try:
        if resume is not None:
            return str(json.loads((resume / "manifest.json").read_text("utf-8"))["suite"]["name"])
        if suite is None:
            return None
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        depth, expecting_key, key = 0, True, None
        with suite.open("rb") as stream:
            for event in yaml.parse(stream, Loader=loader):
                if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                    depth += 1
                elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                    depth -= 1
                    expecting_key = expecting_key or depth == 1  # a top-level key's nested value just ended
                elif depth == 1 and isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
                    scalar = event.value if isinstance(event, yaml.ScalarEvent) else None
                    if not expecting_key and key == "name" and scalar is not None:
                        return str(scalar)
                    key = scalar if expecting_key else None
                    expecting_key = not expecting_key
    except Exception:  # an unreadable suite or run is reported by the run itself, in full
        return None
    return None


def preflight_run(suite: Path | None, resume: Path | None, baseline_path: Path | None, **gate: Any) -> None:
    """``evalkit run``'s checks before the suite runs: report paths, the baseline, and that it is this suite's."""
    preflight(baseline_path, suite_name_of(suite, resume) if baseline_path is not None else None, **gate)


def run_gate(run_result: Any, baseline_path: Path, margin: float | None, alpha: float | None,
             inconclusive: str | None, use_run_gate: bool, markdown_path: Path | None, junit_path: Path | None,
             json_path: Path | None, github: bool, html_path: Path | None = None,
             rescore_baseline: bool = False) -> int:
    """Compares, renders every requested report, writes them all, and returns the gate's exit code.

    Every report is rendered before any is written, and each is written atomically: a failure mid-way
    leaves no half-written file.
    """
    import json

    from evalkit.artifact import write_atomic
    from evalkit.baseline import load_baseline
    from evalkit.compare import compare
    from evalkit.github import append_step_summary
    from evalkit.report import render_annotations, render_comparison, render_junit, render_markdown
    from evalkit.report.coverage import gate_coverage

    preflight(None, markdown_path=markdown_path, junit_path=junit_path, json_path=json_path, html_path=html_path)
    baseline = load_baseline(baseline_path)
    rescored_line = ""
    if rescore_baseline:
        from evalkit.judges.rescore import rescore_baseline as rescore

        rescored = rescore(baseline, run_result)
        baseline, rescored_line = rescored.baseline, rescored.line()
        console().print(rescored_line, markup=False, highlight=False, soft_wrap=True)
    overrides: dict[str, Any] = {"margin": margin, "alpha": alpha}
    if inconclusive is not None:
        overrides["inconclusive_blocks"] = inconclusive == "block"
    comparison = compare(run_result, baseline, use_run_gate=use_run_gate, overrides=overrides)
    coverage = gate_coverage(run_result)  # None unless the suite has a coverage: section
    markdown = render_markdown(comparison) + (f"\n{rescored_line}\n" if rescored_line else "") + \
        (coverage.markdown if coverage else "")
    report = {**comparison.to_dict(), **({"coverage": coverage.data} if coverage else {})}
    rendered = {markdown_path: markdown if markdown_path else "",
                junit_path: render_junit(comparison) if junit_path else "",
                json_path: json.dumps(report, indent=2, ensure_ascii=False) + "\n" if json_path else ""}
    if html_path is not None:
        from evalkit.report.html import render_html
        from evalkit.report.html_coverage import FoundCoverage, coverage_sections

        found = FoundCoverage(coverage.coverage, coverage.note) if coverage else None  # the same block, as a view
        rendered[html_path] = render_html(run_result, comparison, baseline=baseline,
                                          sections=coverage_sections(found))
    annotations = render_annotations(comparison, file=str(baseline_path)) if github else ""
    render_comparison(comparison, console())
    if coverage:
        coverage.print(console())
    for path, text in rendered.items():
        if path is not None:
            write_atomic(path, text)
    if github:
        click.echo(annotations, nl=False)
        click.echo(coverage.annotations() if coverage else "", nl=False)
        append_step_summary(markdown)
    return coverage.exit_code(int(comparison.exit_code)) if coverage else int(comparison.exit_code)


@cli.command(name="compare")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--baseline", "baseline_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The baseline file (see: evalkit baseline save).")
@gate_options
def compare_command(run_dir: Path, baseline_path: Path, **gate: Any) -> None:
    """Compare a run with a baseline: pass, regression, inconclusive or improvement."""
    from evalkit.results import load_run

    preflight(None, **gate)
    raise click.exceptions.Exit(run_gate(load_run(run_dir), baseline_path, **gate))


@cli.group()
def baseline() -> None:
    """Store runs as committed baselines."""


@baseline.command(name="save")
@click.argument("run_dirs", metavar="RUN_DIR [RUN_DIR...]", nargs=-1, required=True,
                type=click.Path(path_type=Path))
@click.option("--to", "target", type=click.Path(path_type=Path),
              help="Baseline file (default: baselines/<suite file stem>.json, where the prompt-PR workflow looks).")
def baseline_save(run_dirs: tuple[Path, ...], target: Path | None) -> None:
    """Save complete runs of one suite as a baseline file.

    The first run's cases are what comparisons pair with; every run adds its latency, TTFT and error
    summary, and with three or more runs latency is judged against their run-to-run spread.
    """
    from evalkit.baseline import save_baseline
    from evalkit.results import load_run

    if target is not None:
        check_output_path(target, "--to", create_folders=True)
    runs = [load_run(run_dir) for run_dir in run_dirs]
    path = target or Path("baselines") / f"{Path(runs[0].suite.path).stem}.json"
    check_output_path(path, "--to", create_folders=True)
    saved = save_baseline(runs, path)
    extra = f", latency summaries of {len(saved.runs)} runs" if len(saved.runs) > 1 else ""
    click.echo(f"saved baseline {path} ({len(saved.samples)} samples from run {saved.run_id}{extra})")
