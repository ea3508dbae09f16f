"""``evalkit ci``: the prompt-PR workflow, the suites a change affects, the sticky PR comment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from evalkit.cli.app import cli


@cli.group()
def ci() -> None:
    """GitHub Actions helpers: the prompt-PR workflow, affected suites, the sticky PR comment."""


@ci.command(name="init")
@click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Repository root.")
@click.option("--force", is_flag=True, help="Replace an existing workflow.")
@click.option("--sweep", is_flag=True,
              help="Write the scheduled-sweep workflow (.github/workflows/evalkit-sweep.yml) instead.")
@click.option("--every", type=click.Choice(["1", "2", "3", "4", "6", "8", "12"]), default="3", show_default=True,
              help="With --sweep: hours between sweeps.")
@click.option("--minute", type=click.IntRange(0, 59), default=17, show_default=True,
              help="With --sweep: minute past the hour (off the hour: crons at :00 start latest).")
@click.option("--ladder", default="1,2,4,8,16", show_default=True, help="With --sweep: the weekly load ladder.")
@click.option("--ladder-cron", default="43 4 * * 1", show_default=True,
              help="With --sweep: when the load ladder runs (cron, UTC).")
@click.option("--suites", default="suites/*.yaml", show_default=True, help="With --sweep: glob of suites to sweep.")
def ci_init(root: Path, force: bool, sweep: bool, every: str, minute: int, ladder: str, ladder_cron: str,
            suites: str) -> None:
    """Write the prompt-PR gate workflow to .github/workflows/evalkit.yml (or, with --sweep, the sweeps)."""
    from evalkit.github import init_workflow

    settings = {"every": int(every), "minute": minute, "ladder": ladder, "ladder_cron": ladder_cron,
                "suites": suites} if sweep else {}
    click.echo(f"wrote {init_workflow(root, force=force, sweep=sweep, **settings)}")


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
