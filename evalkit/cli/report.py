"""``evalkit report``: one self-contained HTML file of a run, compared with a baseline when one is given."""

from __future__ import annotations

from pathlib import Path

import click

from evalkit.cli.app import cli


@cli.command(name="report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Compare with this baseline: the verdict, each metric against its margin, flipped cases.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
              show_default=True, help="The HTML file to write.")
@click.option("--margin", type=click.FloatRange(0, 1), help="Pass-rate non-inferiority margin (0.02 = 2 pts).")
@click.option("--alpha", type=click.FloatRange(0, 0.5, min_open=True), help="One-sided significance level.")
def report_command(run_dir: Path, baseline_path: Path | None, out: Path, margin: float | None,
                   alpha: float | None) -> None:
    """Write the HTML report of RUN_DIR: no network needed to open it, from disk or a CI artifact.

    It exits 0 whatever the verdict; the gate's exit code is `evalkit compare`'s (which takes --html too).
    """
    from evalkit.report.html import render_html
    from evalkit.results import load_run

    run = load_run(run_dir)
    comparison = baseline = None
    if baseline_path is not None:
        from evalkit.baseline import load_baseline
        from evalkit.compare import GateConfig, compare

        baseline = load_baseline(baseline_path)
        comparison = compare(run, baseline, GateConfig.from_mapping(run.suite.gate, margin=margin, alpha=alpha))
    page = render_html(run, comparison, baseline=baseline)
    if out.parent.exists() and not out.parent.is_dir():
        raise click.BadParameter(f"{out}: cannot write: {out.parent} is a file, not a folder", param_hint="--out")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, "utf-8")
    except OSError as exc:
        raise click.BadParameter(f"{out}: cannot write ({exc.strerror})", param_hint="--out") from None
    verdict = f", verdict {comparison.verdict}" if comparison is not None else ""
    click.echo(f"wrote {out} ({len(page.encode()) / 1e6:.1f} MB, {len(run.results)} results{verdict})")
