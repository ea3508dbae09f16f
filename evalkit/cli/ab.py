"""``evalkit ab``: two versions of a suite, interleaved case by case in one window, compared on pairs."""

from __future__ import annotations

import json
from pathlib import Path

import click

from evalkit.cli.app import cli, console


@cli.command(name="ab")
@click.argument("suite", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--baseline-ref", metavar="REF",
              help="Arm A: the suite and every file it reads as of this git revision (arm B: the working tree).")
@click.option("--a", "prompt_a", type=click.Path(dir_okay=False, path_type=Path),
              help="Arm A's system prompt file (with --b: the suite run with each prompt).")
@click.option("--b", "prompt_b", type=click.Path(dir_okay=False, path_type=Path), help="Arm B's system prompt file.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path(".evalkit") / "ab",
              show_default=True, help="Folder that receives <id>/a, <id>/b and <id>/ab.json.")
@click.option("--id", "ab_id", help="Name of this A/B (default: suite, time and a random suffix).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the order of the arms (and every draw).")
@click.option("-c", "--concurrency", type=click.IntRange(1), help="Calls in flight per arm (default: the suite's).")
@click.option("--shard", metavar="I/N", help="Only the cases whose id hashes to shard I of N (as evalkit run).")
@click.option("--markdown", "markdown_path", type=click.Path(path_type=Path), help="Write the Markdown report here.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the JSON result here.")
def ab_command(suite: Path, baseline_ref: str | None, prompt_a: Path | None, prompt_b: Path | None, out: Path,
               ab_id: str | None, seed: int, concurrency: int | None, shard: str | None, markdown_path: Path | None,
               json_path: Path | None) -> None:
    """Run base and candidate interleaved (a seeded coin per case picks which goes first) and compare them
    on the paired cases: pass rate against its margin, latency and TTFT by their paired ratios. Exit codes as
    the gate's: 0 pass or improvement, 1 regression, 3 inconclusive."""
    from rich.table import Table

    from evalkit.ab import HEADERS, headline, render_markdown, rows, run_ab
    from evalkit.artifact import write_atomic
    from evalkit.cli.gate import check_output_path

    for path, option in ((markdown_path, "--markdown"), (json_path, "--json")):
        if path is not None:
            check_output_path(path, option)
    from evalkit.cli.run import parse_shard

    result = run_ab(suite, baseline_ref=baseline_ref, prompt_a=prompt_a, prompt_b=prompt_b, out=out, ab_id=ab_id,
                    seed=seed, concurrency=concurrency, shard=parse_shard(shard))
    out_console = console()
    out_console.print(headline(result), markup=False, highlight=False, soft_wrap=True)
    table = Table(*HEADERS)
    for row in rows(result):
        table.add_row(*row)
    from evalkit.report.terminal import print_whole

    print_whole(table, out_console)
    for note in result.notes:
        out_console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    out_console.print(f"runs: {result.directory}/a, {result.directory}/b · result: {result.directory}/ab.json",
                      markup=False, highlight=False, soft_wrap=True)
    if markdown_path is not None:
        write_atomic(markdown_path, render_markdown(result))
    if json_path is not None:
        write_atomic(json_path, json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")
    raise click.exceptions.Exit(int(result.exit_code))
