"""``evalkit report``: one self-contained HTML file of a run (compared with a baseline when one is given), of
a judge (``--judge NAME``), or of a suite's history (``--history SUITE``)."""

from __future__ import annotations

from pathlib import Path

import click

from evalkit.cli.app import cli


def _write(out: Path, page: str) -> None:
    if out.parent.exists() and not out.parent.is_dir():
        raise click.BadParameter(f"{out}: cannot write: {out.parent} is a file, not a folder", param_hint="--out")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, "utf-8")
    except OSError as exc:
        raise click.BadParameter(f"{out}: cannot write ({exc.strerror})", param_hint="--out") from None


@cli.command(name="report")
@click.argument("run_dir", required=False, type=click.Path(path_type=Path))
@click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Compare with this baseline: the verdict, each metric against its margin, flipped cases.")
@click.option("--traffic", "traffic_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Add the coverage view against this traffic profile (default: the suite's coverage.traffic).")
@click.option("--judge", "judge_name", metavar="NAME",
              help="Instead of a run: judge NAME's calibration and its newest drift check.")
@click.option("--judges-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("judges"),
              show_default=True, help="With --judge: the folder holding <name>/judge.yaml.")
@click.option("--check", "check_path", type=click.Path(dir_okay=False, path_type=Path),
              help="With --judge: this check.json (default: the newest under .evalkit/judges/NAME).")
@click.option("--history", "history_suite", metavar="SUITE",
              help="Instead of a run: SUITE's history from the store (series, diurnal, load ladder).")
@click.option("--since", default="90d", show_default=True, help="With --history: runs since 30d, 12w or a date.")
@click.option("--store", "store_url", metavar="URL", help="With --history: the store (default: $EVALKIT_STORE or "
                                                          ".evalkit/history.db).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
              show_default=True, help="The HTML file to write.")
@click.option("--margin", type=click.FloatRange(0, 1), help="Pass-rate non-inferiority margin (0.02 = 2 pts).")
@click.option("--alpha", type=click.FloatRange(0, 0.5, min_open=True), help="One-sided significance level.")
def report_command(run_dir: Path | None, baseline_path: Path | None, traffic_path: Path | None,
                   judge_name: str | None, judges_dir: Path, check_path: Path | None, history_suite: str | None,
                   since: str, store_url: str | None, out: Path, margin: float | None, alpha: float | None) -> None:
    """Write the HTML report of RUN_DIR, of a judge (--judge) or of a suite's history (--history).

    No network is needed to open it, from disk or a CI artifact. It exits 0 whatever the verdict; the gate's
    exit code is `evalkit compare`'s (which takes --html too).
    """
    chosen = [name for name, given in (("RUN_DIR", run_dir), ("--judge", judge_name), ("--history", history_suite))
              if given is not None]
    if len(chosen) != 1:
        raise click.UsageError(f"expected one of RUN_DIR, --judge NAME or --history SUITE, got "
                               f"{' and '.join(chosen) if chosen else 'none'}")
    if judge_name is not None:
        from evalkit.judges import load_calibration, load_judge
        from evalkit.report.html_judge import latest_check, load_check, render_judge_html

        calibration = load_calibration(load_judge(judge_name, judges_dir))
        found = check_path or latest_check(judge_name)
        check = load_check(found) if found is not None else None
        page = render_judge_html(calibration, check)
        _write(out, page)
        shown = f", check {check['status']}" if check else ""
        click.echo(f"wrote {out} ({len(page.encode()) / 1e6:.1f} MB, judge {judge_name} {calibration.status}{shown})")
        return
    if history_suite is not None:
        from evalkit.report.html_history import render_history_html

        page = render_history_html(history_suite, store_url, since=since)
        _write(out, page)
        click.echo(f"wrote {out} ({len(page.encode()) / 1e6:.1f} MB, history of {history_suite})")
        return
    assert run_dir is not None
    from evalkit.report.html import render_html
    from evalkit.report.html_coverage import coverage_sections, run_coverage
    from evalkit.results import load_run

    run = load_run(run_dir)
    comparison = baseline = None
    if baseline_path is not None:
        from evalkit.baseline import load_baseline
        from evalkit.compare import GateConfig, compare

        baseline = load_baseline(baseline_path)
        comparison = compare(run, baseline, GateConfig.from_mapping(run.suite.gate, margin=margin, alpha=alpha))
    found_coverage = run_coverage(run, traffic_path)
    page = render_html(run, comparison, baseline=baseline, sections=coverage_sections(found_coverage))
    _write(out, page)
    verdict = f", verdict {comparison.verdict}" if comparison is not None else ""
    click.echo(f"wrote {out} ({len(page.encode()) / 1e6:.1f} MB, {len(run.results)} results{verdict})")
