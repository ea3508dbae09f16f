"""``evalkit lint``: the structural layer over prompts, suites and eval data."""

from __future__ import annotations

from pathlib import Path

import click

from evalkit.cli.app import cli, console


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
            render_lint_text(report, console())
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
