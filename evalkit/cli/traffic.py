"""``evalkit traffic import``: production logs → a traffic profile (aggregates only, never prompt text)."""

from __future__ import annotations

from pathlib import Path

import click

from evalkit.cli.app import cli, console

LOG_FORMATS = ("csv", "jsonl", "otel", "langfuse", "litellm")


@cli.group()
def traffic() -> None:
    """Traffic profiles: routes, arms, models and errors counted from production logs."""


@traffic.command(name="import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--from", "log_format", required=True, type=click.Choice(LOG_FORMATS),
              help="Log format: CSV, JSON Lines, OTLP JSON spans, Langfuse trace export, LiteLLM spend logs.")
@click.option("--route-field", metavar="PATH",
              help="Where the route is (e.g. metadata.route, app.route, tags[route:]); a comma-separated chain "
                   "tries each in turn. Default: the format's chain.")
@click.option("--field", "fields", multiple=True, metavar="NAME=PATH",
              help="Where arm, model, error, prompt (version) or time is; repeatable.")
@click.option("--since", help="Keep requests at or after this time (ISO 8601, UTC when no zone).")
@click.option("--until", help="Keep requests before this time.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("traffic.json"),
              show_default=True, help="The profile to write.")
def import_command(files: tuple[Path, ...], log_format: str, route_field: str | None, fields: tuple[str, ...],
                   since: str | None, until: str | None, out: Path) -> None:
    """Count the requests in FILE… per route and hour (and per arm, served model, error class)."""
    from evalkit.analysis.traffic import import_traffic, save_profile
    from evalkit.report.coverage import render_profile

    mapping = {}
    for item in fields:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise click.BadParameter(f"expected NAME=PATH (e.g. arm=metadata.variant), got {item!r}",
                                     param_hint="--field")
        mapping[name.strip()] = path.strip()
    profile = import_traffic(files, log_format, route_field=route_field, fields=mapping, since=since, until=until)
    save_profile(profile, out)
    render_profile(profile, out, console(), console(stderr=True))
