"""The ``evalkit`` command: a thin layer over the library; each command calls one public function."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from evalkit.errors import EvalkitError, ExitCode

if TYPE_CHECKING:
    from rich.console import Console

    from evalkit.results import CaseResult


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    index, _, count = value.partition("/")
    if not (index.isdigit() and count.isdigit()) or not 1 <= int(index) <= int(count):
        raise click.BadParameter(f"expected i/n with 1 <= i <= n, got {value!r}", param_hint="--shard")
    return int(index), int(count)


class BarProgress:
    """A rich progress bar on stderr; shows passes as it goes."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]running"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[passed]}"),
            TimeElapsedColumn(), console=console, transient=False, refresh_per_second=8,
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
        click.option("--github", "github", is_flag=True,
                     help="Print GitHub annotations and append the report to $GITHUB_STEP_SUMMARY."),
    ]):
        command = option(command)
    return command


def _gate(run_result: Any, baseline_path: Path, margin: float | None, alpha: float | None,
          inconclusive: str | None, markdown_path: Path | None, junit_path: Path | None, json_path: Path | None,
          github: bool) -> int:
    """Compares, renders every requested report, and returns the gate's exit code."""
    import json

    from evalkit.baseline import load_baseline
    from evalkit.compare import GateConfig, compare
    from evalkit.github import append_step_summary
    from evalkit.report import render_annotations, render_comparison, render_junit, render_markdown

    baseline = load_baseline(baseline_path)
    overrides: dict[str, Any] = {"margin": margin, "alpha": alpha}
    if inconclusive is not None:
        overrides["inconclusive_blocks"] = inconclusive == "block"
    config = GateConfig.from_mapping(run_result.suite.gate, **overrides)
    comparison = compare(run_result, baseline, config)
    render_comparison(comparison, _console())
    markdown = render_markdown(comparison)
    if markdown_path:
        markdown_path.write_text(markdown, "utf-8")
    if junit_path:
        junit_path.write_text(render_junit(comparison), "utf-8")
    if json_path:
        json_path.write_text(json.dumps(comparison.to_dict(), indent=2, ensure_ascii=False) + "\n", "utf-8")
    if github:
        click.echo(render_annotations(comparison, file=str(baseline_path)), nl=False)
        append_step_summary(markdown)
    return int(comparison.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="evalkit", prog_name="evalkit")
def cli() -> None:
    """evalkit: evaluation harness and CI regression gate for LLM features.

    \b
    Exit codes: 0 ok · 1 regression · 2 usage or config error · 3 inconclusive ·
    4 lint failed · 5 run failed · 70 internal error · 130 interrupted.
    """


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
    progress = None if quiet else BarProgress(_console(stderr=True))
    try:
        if resume is not None:
            result = resume_run(resume, progress=progress)
        else:
            assert suite is not None
            options = RunOptions(out=out, run_id=run_id, concurrency=concurrency, repeats=repeats,
                                 shard=_shard(shard), cache=cache, seed=seed, requests_per_minute=rpm,
                                 tokens_per_minute=tpm)
            result = run_suite(suite, options, progress=progress)
    finally:
        if progress is not None:
            progress.stop()
    render_run(result, _console())
    if baseline_path is not None:
        raise click.exceptions.Exit(_gate(result, baseline_path, **gate))


@cli.command(name="compare")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--baseline", "baseline_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The baseline file (see: evalkit baseline save).")
@gate_options
def compare_command(run_dir: Path, baseline_path: Path, **gate: Any) -> None:
    """Compare a run with a baseline: pass, regression, inconclusive or improvement."""
    from evalkit.results import load_run

    raise click.exceptions.Exit(_gate(load_run(run_dir), baseline_path, **gate))


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


@cli.group()
def ci() -> None:
    """GitHub Actions helpers: the prompt-PR workflow, affected suites, the sticky PR comment."""


@ci.command(name="init")
@click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Repository root.")
@click.option("--force", is_flag=True, help="Replace an existing workflow.")
def ci_init(root: Path, force: bool) -> None:
    """Write the prompt-PR gate workflow to .github/workflows/evalkit.yml."""
    from evalkit.github import init_workflow

    click.echo(f"wrote {init_workflow(root, force=force)}")


@ci.command(name="affected")
@click.argument("changed_file", type=click.File("r"), default="-")
@click.option("--suites", "pattern", default="suites/*.yaml", show_default=True, help="Glob of suite files.")
def ci_affected(changed_file: Any, pattern: str) -> None:
    """Print the suites that read any changed file (one path per line of CHANGED_FILE, default stdin)."""
    import glob

    from evalkit.suite import affected_suites

    changed = [line.strip() for line in changed_file if line.strip()]
    for suite in affected_suites(sorted(glob.glob(pattern)), changed):
        click.echo(suite.path)


@ci.command(name="comment")
@click.option("--markdown", "markdown_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The Markdown report to post.")
@click.option("--repo", help="owner/name (default: $GITHUB_REPOSITORY).")
@click.option("--pr", "number", type=int, help="Pull-request number (default: from $GITHUB_EVENT_PATH).")
@click.option("--api-url", help="GitHub API URL (default: $GITHUB_API_URL or https://api.github.com).")
def ci_comment(markdown_path: Path, repo: str | None, number: int | None, api_url: str | None) -> None:
    """Create or update evalkit's single sticky comment on the pull request (token from $GITHUB_TOKEN)."""
    import os

    from evalkit.errors import PrerequisiteError
    from evalkit.github import PullRequest, post_sticky_comment, pull_request_from_env

    token = os.environ.get("GITHUB_TOKEN")
    if not token:
        raise PrerequisiteError("ci comment: expected a token in the environment variable GITHUB_TOKEN, got it unset")
    if repo and number:
        pr = PullRequest(repo, number, api_url or os.environ.get("GITHUB_API_URL", "https://api.github.com"))
    else:
        pr = pull_request_from_env()
    try:
        body = markdown_path.read_text("utf-8")
    except OSError as exc:
        raise click.BadParameter(f"{markdown_path}: cannot read ({exc.strerror})", param_hint="--markdown") from None
    url = post_sticky_comment(body, pr, token)
    click.echo(f"commented on {pr.repository}#{pr.number}: {url}")


@cli.command(name="lint")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--base", help="Git revision to diff against (removed or shrunk sections); read with git, no checkout.")
@click.option("--format", "fmt", type=click.Choice(["text", "github", "json", "sarif"]), default="text",
              show_default=True, help="Output format.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file (default: evalkit.yaml if present).")
@click.option("--output", "output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report here instead of standard output.")
def lint_command(paths: tuple[Path, ...], base: str | None, fmt: str, config_path: Path | None,
                 output: Path | None) -> None:
    """Lint prompts, suites and eval data: required sections, variables, budgets, model ids, PII, removals."""
    import json

    from evalkit.lint import lint
    from evalkit.report.lint import render_lint_github, render_lint_json, render_lint_sarif, render_lint_text

    report = lint([str(p) for p in paths], base=base, config=config_path)
    if fmt == "text":
        if output is None:
            render_lint_text(report, _console())
        else:
            from rich.console import Console

            with output.open("w", encoding="utf-8") as handle:
                render_lint_text(report, Console(file=handle, width=120, highlight=False))
    else:
        text = {"github": render_lint_github, "json": render_lint_json}[fmt](report) if fmt != "sarif" \
            else json.dumps(render_lint_sarif(report), indent=2) + "\n"
        if output is not None:
            output.write_text(text, "utf-8")
        else:
            click.echo(text, nl=False)
    raise click.exceptions.Exit(int(report.exit_code))


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--failures", type=click.IntRange(0), default=10, show_default=True, help="Failing cases to list.")
def show(run_dir: Path, failures: int) -> None:
    """Re-render the summary of a run directory."""
    from evalkit.report import render_run
    from evalkit.results import load_run

    render_run(load_run(run_dir), _console(), failures=failures)


@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="New run directory for the merged run.")
def merge(runs: tuple[Path, ...], out: Path) -> None:
    """Join shard runs of one suite into one run."""
    from evalkit.report import render_run
    from evalkit.results import merge_runs

    render_run(merge_runs(runs, out), _console())


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print one line and exit with their code; bugs keep their traceback."""
    try:
        # Without standalone mode, click returns the code of a command's Exit rather than raising it.
        returned = cli.main(args=argv, prog_name="evalkit", standalone_mode=False)
        if isinstance(returned, int):
            return returned
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return int(ExitCode.USAGE_ERROR)
    except click.exceptions.Abort:
        click.echo("evalkit: aborted", err=True)
        return int(ExitCode.INTERRUPTED)
    except EvalkitError as exc:
        click.echo(f"evalkit: error: {exc}", err=True)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("evalkit: interrupted", err=True)
        return int(ExitCode.INTERRUPTED)
    return int(ExitCode.OK)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
