"""Prompt templates: jinja2 with StrictUndefined, variable discovery with jinja2's own parser."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evalkit.errors import TemplateError


@functools.cache
def _environment() -> Any:
    import jinja2

    # Prompts are text, not HTML; keep_trailing_newline keeps the hash equal to what the model sees.
    return jinja2.Environment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


@dataclass(frozen=True)
class Template:
    """One prompt template: its source text, where it came from, and the variables it reads."""

    source: str
    """The template text."""
    origin: str
    """A file path (as the user wrote it) or ``<suite>:target.user`` for inline text."""
    variables: frozenset[str]
    """Undeclared variables the template reads (found by jinja2's parser)."""

    @property
    def sha256(self) -> str:
        """Hash of the template source."""
        return hashlib.sha256(self.source.encode()).hexdigest()

    def render(self, values: Mapping[str, Any], *, context: str) -> str:
        """Renders with StrictUndefined; a missing variable raises :class:`TemplateError`."""
        import jinja2

        missing = sorted(self.variables - set(values))
        if missing:
            raise TemplateError(
                f"{context}: template variable {missing[0]!r} used in {self.origin} is not supplied "
                f"(expected it in the case's vars or defaults.vars, got: {', '.join(sorted(values)) or 'none'})"
            )
        try:
            rendered: str = _compiled(self.source).render(**values)
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"{context}: {self.origin}: {exc.message}") from None
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{context}: {self.origin}: template failed to render: {exc}") from None
        return rendered


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> Any:
    return _environment().from_string(source)


def parse_template(source: str, origin: str) -> Template:
    """Parses a template; a syntax error raises :class:`TemplateError` with the line."""
    import jinja2
    from jinja2 import meta

    try:
        ast = _environment().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{origin}:{exc.lineno}: template syntax error: {exc.message}") from None
    return Template(source=source, origin=origin, variables=frozenset(meta.find_undeclared_variables(ast)))
