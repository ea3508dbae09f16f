"""The ``evalkit`` command: a thin layer over the library; each command calls one public function.

:mod:`evalkit.cli.app` holds the command group; each command group is a module of this package that
registers itself on it (imported below). :func:`main` is the entry point and owns the exit codes.
"""

from __future__ import annotations

import sys
import traceback

import click

from evalkit.cli import ab, ci, coverage, gate, history, judge, lint, report, run, traffic  # noqa: F401 -- importing a command module registers its commands
from evalkit.cli.app import cli
from evalkit.errors import EvalkitError, ExitCode

__all__ = ["cli", "main"]


def _usage_line(exc: click.ClickException) -> str:
    """A click usage error as one line: ``evalkit run: --shard: expected i/n …``."""
    message = exc.format_message()
    context = getattr(exc, "ctx", None)
    where = context.command_path if context is not None else "evalkit"
    hint = f" (see: {where} --help)" if isinstance(exc, click.UsageError) else ""
    return f"{where}: error: {' '.join(message.split())}{hint}"


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print one line and exit with their code; bugs exit 70 with their traceback."""
    try:
        # Without standalone mode, click returns the code of a command's Exit rather than raising it.
        returned = cli.main(args=argv, prog_name="evalkit", standalone_mode=False)
        if isinstance(returned, int):
            return returned
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        click.echo(_usage_line(exc), err=True)
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
    except Exception:
        # Anything else is a bug in evalkit. It must never read as a verdict (exit 1 is REGRESSION).
        traceback.print_exc()
        click.echo("evalkit: internal error: the traceback above is a bug in evalkit; please report it "
                   f"(exit {int(ExitCode.INTERNAL_ERROR)})", err=True)
        return int(ExitCode.INTERNAL_ERROR)
    return int(ExitCode.OK)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
