"""A file as the linter reads it: text, kind, sections, inline suppressions, and line/column lookup."""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass, field
from functools import cached_property

PROMPT_SUFFIXES = (".md", ".markdown", ".txt", ".j2", ".jinja", ".jinja2", ".prompt", ".tmpl")
STRUCTURED_SUFFIXES = (".yaml", ".yml", ".json")
DATA_SUFFIXES = (".jsonl", ".csv")

_HEADING = re.compile(r"(#{1,6})[ \t]+([^\n]+)")
_TAG = re.compile(r"<([A-Za-z][\w-]*)>(.*?)</\1>", re.DOTALL)
_SUPPRESS = re.compile(r"evalkit:\s*disable=([\w,-]+)[ \t]*(.*?)(?:-->|\*/|$)", re.MULTILINE)


@functools.lru_cache(maxsize=4096)
def normalise(name: str) -> str:
    """Section names compare case-insensitively, with ``_``/``-``/punctuation folded to spaces."""
    return " ".join(re.sub(r"[^\w\s]|_", " ", name.casefold()).split())


@dataclass(frozen=True)
class Section:
    """A Markdown heading or an XML-style tag with the text it holds."""

    name: str
    """Normalised name (``output format``)."""
    title: str
    """As written (``## Output format`` → ``Output format``; ``<safety>`` → ``safety``)."""
    line: int
    body: str


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
    parsed: object = None
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
        lines = self.text.splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else ""

    @cached_property
    def sections(self) -> list[Section]:
        if self.prompt_text is None:
            return parse_sections(self.text)
        # A message list: sections live in the message contents; point each at its title's line in the file.
        found = []
        for section in parse_sections(self.prompt_text):
            offset = self.text.find(section.title)
            line = self.position(offset)[0] if offset >= 0 else 1
            found.append(Section(section.name, section.title, line, section.body))
        return found

    @cached_property
    def suppressions(self) -> dict[int, Suppression]:
        found = {}
        for match in _SUPPRESS.finditer(self.text):
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


def parse_sections(text: str) -> list[Section]:
    """Markdown headings (body runs to the next heading of the same or a higher level) and XML-style tags."""
    sections: list[Section] = []
    headings = []  # (start of the heading line, end of its line, level, title)
    start = 0 if text.startswith("#") else text.find("\n#") + 1
    while start > 0 or (start == 0 and text.startswith("#")):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        match = _HEADING.match(text, start, end)
        if match:
            headings.append((start, end, len(match.group(1)), match.group(2)))
        start = text.find("\n#", end) + 1
        if start == 0:
            break
    line, counted = 1, 0
    for index, (start, end, level, raw_title) in enumerate(headings):
        stop = len(text)
        for later in headings[index + 1:]:
            if later[2] <= level:
                stop = later[0]
                break
        line += text.count("\n", counted, start)
        counted = start
        title = raw_title.rstrip().rstrip("#").rstrip()  # closing hashes are decoration
        sections.append(Section(normalise(title), title, line, text[end:stop].strip()))
    for match in _TAG.finditer(text) if "</" in text else ():
        sections.append(Section(normalise(match.group(1)), match.group(1), text.count("\n", 0, match.start()) + 1,
                                match.group(2).strip()))
    return sections
