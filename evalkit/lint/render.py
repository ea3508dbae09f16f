"""Rendering for token budgets and composing templates for sections: includes resolved, nothing executed.

Rendering happens in the limited sandbox of :mod:`evalkit.template` (time and output-size limits); a render
that stops there, or that the sandbox refuses, is reported as a finding by the caller, never a hang.
``{% include %}``, ``{% import %}`` and ``{% extends %}`` names are looked up relative to the including file,
then in ``lint.template_paths``; jinja2's loader refuses names that climb out of those folders.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.lint import engines
from evalkit.lint.config import LintConfig

__all__ = ["compose", "render_for_budget", "search_path"]

MAX_DEPTH = 10


def search_path(path: str, config: LintConfig) -> tuple[str, ...]:
    """Where a file's includes are looked up: its own folder, then the configured folders."""
    return (os.path.dirname(path) or ".", *config.template_paths)


@functools.lru_cache(maxsize=64)
def _environment(search: tuple[str, ...]) -> Any:
    import jinja2

    from evalkit.template import sandbox

    # Variables no case supplies render empty (and so do their attributes), so that the whole template runs:
    # a missing variable is undefined-variable's finding, and must not hide what comes after it.
    return sandbox().overlay(loader=jinja2.FileSystemLoader(list(search)) if search else None,
                             undefined=jinja2.ChainableUndefined)


def render_for_budget(text: str, values: Mapping[str, Any], search: Sequence[str],
                      config: LintConfig) -> tuple[str, str | None]:
    """(rendered text, None), or (the raw text, why the render was stopped or refused).

    A template that does not parse or needs a variable nobody supplies is measured raw: that is
    template-syntax's or undefined-variable's finding, not this rule's.
    """
    import jinja2
    from jinja2.exceptions import SecurityError

    from evalkit.template import LimitExceeded, RenderLimits, render_limited

    limits = RenderLimits(config.render_seconds, config.render_output_chars)
    try:
        return render_limited(text, values, limits, environment=_environment(tuple(search))), None
    except LimitExceeded as exc:
        return text, f"the render was stopped ({exc})"
    except SecurityError as exc:
        return text, f"the sandbox refused the template ({exc})"
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError, AttributeError):
        return text, None


def compose(text: str, path: str, search: Sequence[str], depth: int = 0,
            seen: frozenset[str] = frozenset()) -> str | None:
    """The template with the files it includes or extends spliced in at their tags (None: it includes none)."""
    if depth >= MAX_DEPTH or ("include" not in text and "extends" not in text and "import" not in text):
        return None
    parsed = engines.parse(text)
    targets = engines.includes(parsed)
    if not targets:
        return None
    lines = text.split("\n")
    for name, line in reversed(targets):
        found = _find(name, search)
        if found is None or found in seen:
            continue
        try:
            included = Path(found).read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        nested = compose(included, found, (str(Path(found).parent), *search[1:]), depth + 1, seen | {found})
        lines[line - 1] = lines[line - 1] + "\n" + (nested if nested is not None else included)
    return "\n".join(lines)


def _find(name: str, search: Sequence[str]) -> str | None:
    """The file an include names, inside one of the search folders (never outside them)."""
    from jinja2.loaders import split_template_path

    try:
        pieces = split_template_path(name)
    except Exception:  # a name that climbs out ('../x'): jinja2's loader refuses it, and so do we
        return None
    for folder in search:
        candidate = Path(folder, *pieces)
        if candidate.is_file():
            return candidate.as_posix()
    return None
