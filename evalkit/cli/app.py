"""The ``evalkit`` command group and what every command module shares (consoles, the run progress bar).

Each command group lives in its own module (``run``, ``gate``, ``ci``, ``lint`` …) and registers itself on
:data:`cli` when :mod:`evalkit.cli` imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.console import Console


def console(stderr: bool = False) -> Console:
    """A rich console; without a terminal (CI logs) it never wraps or truncates a line."""
    import os

    from rich.console import Console

    out = Console(stderr=stderr, highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        # A CI log has no width: a line wrapped at 80 columns splits values and model names in two.
        out = Console(stderr=stderr, highlight=False, width=10_000, soft_wrap=True)
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="evalkit", prog_name="evalkit")
def cli() -> None:
    """evalkit: evaluation harness and CI regression gate for LLM features.

    \b
    Exit codes: 0 ok · 1 regression · 2 usage or config error · 3 inconclusive ·
    4 lint failed · 5 run failed · 6 judge changed · 7 judge drifted · 8 judge inconclusive ·
    70 internal error · 130 interrupted · 143 terminated.
    """
