"""``evalkit compare`` and ``evalkit baseline``: the regression gate and the baselines it reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from evalkit.cli.app import cli, console


def gate_options(command: Any) -> Any:
    """The options shared by ``compare`` and ``run --baseline``."""
    for option in reversed([
        click.option("--margin", type=click.FloatRange(0, 1), help="Pass-rate non-inferiority margin (0.02 = 2 pts)."),
        click.option("--alpha", type=click.FloatRange(0, 0.5, min_open=True), help="One-sided significance level."),
        click.option("--inconclusive", type=click.Choice(["block", "warn"]), help="Whether inconclusive fails."),
        click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Write the Markdown report here."),
        click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Write JUnit XML here."),
        click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Write the JSON report here."),
        click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Write the HTML report here (one self-contained file)."),
        click.option("--github", "github", is_flag=True,
                     help="Print GitHub annotations and append the report to $GITHUB_STEP_SUMMARY."),
    ]):
        command = option(command)
    return command


def run_gate(run_result: Any, baseline_path: Path, margin: float | None, alpha: float | None,
             inconclusive: str | None, markdown_path: Path | None, junit_path: Path | None, json_path: Path | None,
             github: bool, html_path: Path | None = None) -> int:
    """Compares, renders every requested report, and returns the gate's exit code."""
    import json

    from evalkit.baseline import load_baseline
    from evalkit.compare import GateConfig, compare
    from evalkit.github import append_step_summary
    from evalkit.report import render_annotations, render_comparison, render_junit, render_markdown
    from evalkit.report.coverage import gate_coverage

    baseline = load_baseline(baseline_path)
    overrides: dict[str, Any] = {"margin": margin, "alpha": alpha}
    if inconclusive is not None:
        overrides["inconclusive_blocks"] = inconclusive == "block"
    config = GateConfig.from_mapping(run_result.suite.gate, **overrides)
    comparison = compare(run_result, baseline, config)
    render_comparison(comparison, console())
    coverage = gate_coverage(run_result)  # None unless the suite has a coverage: section
    if coverage:
        coverage.print(console())
    markdown = render_markdown(comparison) + (coverage.markdown if coverage else "")
    if markdown_path:
        markdown_path.write_text(markdown, "utf-8")
    if junit_path:
        junit_path.write_text(render_junit(comparison), "utf-8")
    if json_path:
        report = {**comparison.to_dict(), **({"coverage": coverage.data} if coverage else {})}
        json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
    if html_path:
        from evalkit.report.html import render_html

        html_path.write_text(render_html(run_result, comparison, baseline=baseline), "utf-8")
    if github:
        click.echo(render_annotations(comparison, file=str(baseline_path)), nl=False)
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

    raise click.exceptions.Exit(run_gate(load_run(run_dir), baseline_path, **gate))


@cli.group()
def baseline() -> None:
    """Store runs as committed baselines."""


@baseline.command(name="save")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--to", "target", type=click.Path(dir_okay=False, path_type=Path),
              help="Baseline file (default: baselines/<suite file stem>.json, where the prompt-PR workflow looks).")
def baseline_save(run_dir: Path, target: Path | None) -> None:
    """Save a complete run as a baseline file."""
    from evalkit.baseline import save_baseline
    from evalkit.results import load_run

    loaded = load_run(run_dir)
    path = target or Path("baselines") / f"{Path(loaded.suite.path).stem}.json"
    saved = save_baseline(loaded, path)
    click.echo(f"saved baseline {path} ({len(saved.samples)} samples from run {saved.run_id})")
