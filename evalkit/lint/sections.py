"""Sections as a reviewer sees them: Markdown headings, XML-style tags (nested, correctly paired), ``Label:``
lines, ``**Bold:**`` and ALL-CAPS headings, and the untitled preamble before the first of them.

Headings and tags inside fenced code blocks are examples, not structure, and are ignored.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

__all__ = ["Section", "normalise", "parse_sections", "words"]

LABEL_LEVEL = 7
"""Label, bold and caps headings rank below every Markdown heading: a ``##`` heading ends them."""

_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+(.+?)[ \t]*(?:[ \t]#+[ \t]*)?$")
_TAG = re.compile(r"<(/?)([A-Za-z][\w.-]*)(?:\s[^<>]*)?>")
_LABEL = re.compile(
    r"^[ \t]*(?:"
    r"(?:\*\*|__)([^*_\n]{1,60}?)(?::(?:\*\*|__)|(?:\*\*|__):?)"  # **Bold:**, **Bold**:, **Bold**
    r"|([A-Z][A-Za-z0-9 /&,'()-]{0,58}[A-Za-z0-9)]):"  # Label:
    r"|([A-Z][A-Z0-9 /&,'()-]{2,60}[A-Z0-9)]):?"  # ALL CAPS HEADING (with or without a colon)
    r")[ \t]*$"
)
_INLINE_CODE = re.compile(r"`[^`\n]*`")


@functools.lru_cache(maxsize=4096)
def normalise(name: str) -> str:
    """Section names compare case-insensitively, with ``_``/``-``/punctuation folded to spaces."""
    return " ".join(re.sub(r"[^\w\s]|_", " ", name.casefold()).split())


def words(name: str) -> frozenset[str]:
    return frozenset(normalise(name).split())


@dataclass(frozen=True)
class Section:
    """A heading, tag, label or the preamble, with the text it holds."""

    name: str
    """Normalised name (``output format``); ``preamble`` for the text before the first section."""
    title: str
    """As written (``## Output format`` → ``Output format``; ``<safety>`` → ``safety``)."""
    line: int
    body: str
    kind: str = "heading"
    """``heading``, ``tag``, ``label`` or ``preamble``."""
    level: int = 1
    """Heading level (1-6), label level (7), or tag nesting depth (1 = outermost)."""
    start: int = 0
    """Offset of the section's first character in the text."""


def _code_lines(lines: list[str]) -> list[bool]:
    """Which lines are inside (or are the fences of) a fenced code block."""
    inside: list[bool] = []
    fence = ""
    for line in lines:
        match = _FENCE.match(line)
        if fence:
            inside.append(True)
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) and \
                    not line.strip()[len(match.group(1)):].strip():
                fence = ""
        elif match:
            fence = match.group(1)
            inside.append(True)
        else:
            inside.append(False)
    return inside


def parse_sections(text: str, *, labels: bool = True) -> list[Section]:
    """Every section of ``text`` in document order (tags after headings), the preamble first if there is one."""
    lines = text.split("\n")
    code = _code_lines(lines)
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    # (offset of the line, offset after it, level, title, kind)
    heads: list[tuple[int, int, int, str, str]] = []
    for index, line in enumerate(lines):
        if code[index] or not line.strip():
            continue
        if "#" in line:
            match = _ATX.match(line)
            if match:
                heads.append((starts[index], starts[index] + len(line), len(match.group(1)), match.group(2), "heading"))
                continue
        tail = line.rstrip()[-2:]
        if labels and (tail[-1:] == ":" or tail in ("**", "__") or tail.isupper()):
            match = _LABEL.match(line)
            if match:
                title = next(g for g in match.groups() if g is not None).strip().rstrip(":").strip()
                if title and len(title.split()) <= 8:
                    heads.append((starts[index], starts[index] + len(line), LABEL_LEVEL, title, "label"))
    sections: list[Section] = []
    for index, (start, end, level, title, kind) in enumerate(heads):
        stop = len(text)
        for later in heads[index + 1:]:
            if later[2] <= level:
                stop = later[0]
                break
        number = text.count("\n", 0, start) + 1
        sections.append(Section(normalise(title), title, number, text[end:stop].strip(), kind, level, start))
    sections.extend(_tags(text, code, starts))
    first = min([s.start for s in sections], default=len(text))
    preamble = text[:first].strip()
    if preamble and not preamble.startswith("---"):  # front matter is metadata, not a preamble
        offset = len(text[:first]) - len(text[:first].lstrip())
        sections.insert(0, Section("preamble", "(preamble)", text.count("\n", 0, offset) + 1, preamble, "preamble",
                                   0, offset))
    return sections


def _tags(text: str, code: list[bool], starts: list[int]) -> list[Section]:
    """Paired XML-style tags: a closing tag closes the nearest open tag of its name; unclosed tags hold nothing."""
    if "</" not in text:
        return []
    import bisect

    found: list[Section] = []
    stack: list[tuple[str, int, int]] = []  # (name, offset of the tag, offset after it)
    for match in _TAG.finditer(text):
        line_index = bisect.bisect_right(starts, match.start()) - 1
        if code[line_index] or _in_inline_code(text, starts[line_index], match.start()):
            continue
        closing, name = match.group(1), match.group(2)
        if not closing:
            if not match.group().endswith("/>"):
                stack.append((name, match.start(), match.end()))
            continue
        for depth in range(len(stack) - 1, -1, -1):
            if stack[depth][0] == name:
                _, start, body_start = stack[depth]
                del stack[depth:]
                found.append(Section(normalise(name), name, text.count("\n", 0, start) + 1,
                                     text[body_start:match.start()].strip(), "tag", depth + 1, start))
                break
    found.sort(key=lambda s: s.start)
    return found


def _in_inline_code(text: str, line_start: int, offset: int) -> bool:
    line_end = text.find("\n", offset)
    line = text[line_start:line_end if line_end >= 0 else len(text)]
    if "`" not in line:
        return False
    column = offset - line_start
    return any(m.start() < column < m.end() for m in _INLINE_CODE.finditer(line))
