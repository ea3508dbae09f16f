"""Sections as a reviewer sees them: Markdown headings, XML-style tags (nested, correctly paired), ``Label:``
lines (``OUTPUT INSTRUCTIONS:`` too), ``**Bold:**`` / ``**Bold**`` lines, and the untitled preamble before the
first of them.

Headings and tags inside fenced code blocks are examples, not structure, and are ignored.
"""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass

__all__ = ["Section", "normalise", "parse_sections", "words"]

LABEL_LEVEL = 7
"""Label, bold and caps headings rank below every Markdown heading: a ``##`` heading ends them."""

_FENCE_LINE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})([^\n]*)$", re.MULTILINE)
_FAR = 1 << 62
_ATX = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+(.+?)[ \t]*(?:[ \t]#+[ \t]*)?$")
_TAG = re.compile(r"<(/?)([A-Za-z][\w.-]*)(?:\s[^<>]*)?>")
_LABEL = re.compile(
    r"^[ \t]*(?:"
    r"(?:\*\*|__)([^*_\n]{1,60}?)(?::(?:\*\*|__)|(?:\*\*|__):?)"  # **Bold:**, **Bold**:, **Bold**
    r"|([A-Z][A-Za-z0-9 /&,'()-]{0,58}[A-Za-z0-9)]):"  # Label: and ALL CAPS:
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


def _code_ranges(text: str) -> list[tuple[int, int]]:
    """Offsets (start, end) of fenced code blocks, fences included; an unclosed fence runs to the end."""
    if "```" not in text and "~~~" not in text:
        return []
    ranges: list[tuple[int, int]] = []
    opening: re.Match[str] | None = None
    for match in _FENCE_LINE.finditer(text):
        if opening is None:
            opening = match
        elif match.group(1)[0] == opening.group(1)[0] and len(match.group(1)) >= len(opening.group(1)) and \
                not match.group(2).strip():
            ranges.append((opening.start(), match.end()))
            opening = None
    if opening is not None:
        ranges.append((opening.start(), len(text)))
    return ranges


def _candidate_lines(text: str, labels: bool) -> list[int]:
    """Offsets of lines that may be a heading or a label: substring searches (memchr speed), no per-line loop."""
    found = {0} if text[:4].lstrip(" ").startswith("#") or labels else set()
    markers = ["\n#", "\n #", "\n  #", "\n   #"]
    ends = [":\n", ": \n", "**\n", "__\n", ":\r\n", "**\r\n"] if labels else []
    for marker in markers:
        at = text.find(marker)
        while at >= 0:
            found.add(at + 1)
            at = text.find(marker, at + 1)
    for marker in ends:
        at = text.find(marker)
        while at >= 0:
            found.add(text.rfind("\n", 0, at) + 1)
            at = text.find(marker, at + 1)
    if labels:
        found.add(text.rfind("\n") + 1)  # the last line has no line break after it
    return sorted(found)


def _inside(ranges: list[tuple[int, int]], offset: int) -> bool:
    index = bisect.bisect_right(ranges, (offset, _FAR)) - 1
    return index >= 0 and ranges[index][0] <= offset < ranges[index][1]


def parse_sections(text: str, *, labels: bool = True) -> list[Section]:
    """Every section of ``text`` in document order (tags after headings), the preamble first if there is one."""
    code = _code_ranges(text)
    # (offset of the line, offset after it, level, title, kind)
    heads: list[tuple[int, int, int, str, str]] = []
    for start in _candidate_lines(text, labels):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        line = text[start:end].rstrip("\r")
        if code and _inside(code, start):
            continue
        match = _ATX.match(line)
        if match:
            heads.append((start, end, len(match.group(1)), match.group(2), "heading"))
            continue
        match = _LABEL.match(line) if labels else None
        if match:
            title = next(g for g in match.groups() if g is not None).strip().rstrip(":").strip()
            if title and len(title.split()) <= 8:
                heads.append((start, end, LABEL_LEVEL, title, "label"))
    sections: list[Section] = []
    for index, (start, end, level, title, kind) in enumerate(heads):
        stop = len(text)
        for later in heads[index + 1:]:
            if later[2] <= level:
                stop = later[0]
                break
        number = text.count("\n", 0, start) + 1
        sections.append(Section(normalise(title), title, number, text[end:stop].strip(), kind, level, start))
    sections.extend(_tags(text, code))
    first = min([s.start for s in sections], default=len(text))
    preamble = text[:first].strip()
    if preamble and not preamble.startswith("---"):  # front matter is metadata, not a preamble
        offset = len(text[:first]) - len(text[:first].lstrip())
        sections.insert(0, Section("preamble", "(preamble)", text.count("\n", 0, offset) + 1, preamble, "preamble",
                                   0, offset))
    return sections


def _tags(text: str, code: list[tuple[int, int]]) -> list[Section]:
    """Paired XML-style tags: a closing tag closes the nearest open tag of its name; unclosed tags hold nothing."""
    if "</" not in text:
        return []
    found: list[Section] = []
    stack: list[tuple[str, int, int]] = []  # (name, offset of the tag, offset after it)
    for match in _TAG.finditer(text):
        if code and _inside(code, match.start()):
            continue
        line_start = text.rfind("\n", 0, match.start()) + 1
        if _in_inline_code(text, line_start, match.start()):
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
