"""A file as the linter reads it: text, kind, sections, personal data, suppressions, bounded redacted snippets."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field, replace
from functools import cached_property

from evalkit.lint.sections import Section, normalise, parse_sections
from evalkit.text.pii import Match, find, redact_spans

__all__ = ["Document", "Section", "normalise", "parse_sections"]

PROMPT_SUFFIXES = (".md", ".markdown", ".txt", ".j2", ".jinja", ".jinja2", ".prompt", ".tmpl", ".gotmpl", ".prompty",
                   ".mustache", ".hbs", ".handlebars", ".mdc", ".liquid", ".njk")
STRUCTURED_SUFFIXES = (".yaml", ".yml", ".json")
DATA_SUFFIXES = (".jsonl", ".csv")
SNIPPET_CHARS = 200
"""Snippets are at most this long (cut around the finding's column): a 40 KB line never reaches a report."""

_SUPPRESS = re.compile(r"evalkit:\s*disable=([\w,-]+)[ \t]*(.*?)(?:-->|\*/|$)", re.MULTILINE)


@dataclass(frozen=True)
class Suppression:
    rules: frozenset[str]
    reason: str
    line: int


@dataclass
class Document:
    """One file's text and what the rules need to know about it."""

    path: str
    """POSIX path relative to the working directory, as findings name it."""
    text: str
    kind: str
    """``prompt`` (Markdown/text/jinja), ``messages`` (a YAML/JSON message list), ``suite``, ``data``."""
    prompt_text: str | None = None
    """For ``messages``: the message contents; for ``prompt``: the text itself."""
    allow: frozenset[str] = frozenset()
    """Values the pii detector does not report (``lint.pii.allowlist``)."""
    composed: str | None = None
    """The prompt with its ``{% include %}``s spliced in (set by the engine when there are any)."""
    _line_starts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        starts = [0]
        starts.extend(m.end() for m in re.finditer("\n", self.text))
        self._line_starts = starts

    def position(self, offset: int) -> tuple[int, int]:
        """1-based line and column of a character offset in ``text``."""
        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    def line_text(self, line: int) -> str:
        """The raw line (never put it in a report: :meth:`snippet` redacts and bounds it)."""
        if not 0 < line <= len(self._line_starts):
            return ""
        start = self._line_starts[line - 1]
        end = self._line_starts[line] - 1 if line < len(self._line_starts) else len(self.text)
        return self.text[start:end].rstrip("\r")

    @cached_property
    def pii(self) -> list[Match]:
        """Personal data and secrets anywhere in the file (every rule's snippets are redacted with these)."""
        return find(self.text, self.allow)

    def snippet(self, line: int, column: int = 1) -> str:
        """The line with every personal value on it redacted, cut to :data:`SNIPPET_CHARS` around ``column``."""
        if not 0 < line <= len(self._line_starts):
            return ""
        start = self._line_starts[line - 1]
        text = self.line_text(line)
        end = start + len(text)
        matches = [m for m in self.pii if m.start < end and m.end > start]
        shown = redact_spans(text, matches, start) if matches else text
        if len(shown) <= SNIPPET_CHARS:
            return shown
        left = max(0, min(column - 1 - SNIPPET_CHARS // 4, len(shown) - SNIPPET_CHARS))
        cut = shown[left:left + SNIPPET_CHARS - 2]
        return ("…" if left else "") + cut + ("…" if left + len(cut) < len(shown) else "")

    @cached_property
    def sections(self) -> list[Section]:
        text = self.composed if self.composed is not None else self.prompt_text
        if text is None or text == self.text:
            return parse_sections(self.text)
        # Sections live in the message contents (or the composed template): point each at its title's line.
        found = []
        for section in parse_sections(text):
            offset = self.text.find(section.title) if section.kind != "preamble" else 0
            line = self.position(offset)[0] if offset >= 0 else 1
            found.append(replace(section, line=line))
        return found

    @cached_property
    def suppressions(self) -> dict[int, Suppression]:
        found = {}
        for match in _SUPPRESS.finditer(self.text) if "evalkit:" in self.text else ():
            line, _ = self.position(match.start())
            rules = frozenset(r for r in match.group(1).split(",") if r)
            found[line] = Suppression(rules, match.group(2).strip(), line)
        return found

    def suppressed(self, rule: str, line: int) -> Suppression | None:
        """A suppression of ``rule`` on this line or the line above, if there is one."""
        for at in (line, line - 1):
            found = self.suppressions.get(at)
            if found is not None and (rule in found.rules or "all" in found.rules):
                return found
        return None
