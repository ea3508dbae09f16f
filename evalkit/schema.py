"""Strict validation of YAML/JSON inputs against the JSON Schemas shipped in ``evalkit/schemas``.

Every error becomes one line: ``suites/support.yaml:14: cases[3].expect[0].regex: expected a string,
got a list``.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from evalkit.errors import ConfigError

Locator = Callable[[Sequence[str | int]], int | None]
"""Maps a field path to a 1-based line number in the source, where one is known."""

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


def describe(value: object) -> str:
    """Names the type of a parsed YAML/JSON value the way a user wrote it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, datetime.date):
        return f"a date ({value.isoformat()})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def format_path(path: Sequence[str | int]) -> str:
    """``("cases", 3, "expect")`` → ``cases[3].expect``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def where(source: str, line: int | None) -> str:
    """``file:line`` or ``file`` when the line is unknown."""
    return f"{source}:{line}" if line else source


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """The packaged JSON Schema ``evalkit/schemas/<name>.schema.json``."""
    if name == "cases":
        # A cases file is a list of the suite schema's case records; derived so the two never drift.
        defs = load_schema("suite")["$defs"]
        return {"$defs": defs, "type": "array", "items": {"$ref": "#/$defs/case"}}
    text = resources.files("evalkit.schemas").joinpath(f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _inline_refs(node: Any, defs: dict[str, Any], expanding: frozenset[str] = frozenset()) -> Any:
    """The schema with each local ``#/$defs/…`` reference replaced by its definition (recursive ones kept).

    jsonschema resolves a ``$ref`` on every instance it checks; inlined, a 120,000-case suite validates in
    about 60% of the time. Instance paths, and so every message, are unchanged.
    """
    if isinstance(node, list):
        return [_inline_refs(item, defs, expanding) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _inline_refs(value, defs, expanding) for key, value in node.items() if key != "$ref"}
    ref = node.get("$ref")
    name = ref.removeprefix("#/$defs/") if isinstance(ref, str) else None
    if name is None or name == ref or name not in defs or name in expanding:
        if ref is not None:
            out["$ref"] = ref
        return out
    target = _inline_refs(defs[name], defs, expanding | {name})
    if not out:
        return target
    if not isinstance(target, dict) or set(out) & set(target):
        out["allOf"] = [*out.get("allOf", []), target]
        return out
    return {**out, **target}


@functools.cache
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    schema = load_schema(name)
    return Draft202012Validator(_inline_refs(schema, schema.get("$defs", {})))


def _message(error: Any) -> tuple[list[str | int], str]:
    """The field path and the 'expected …, got …' text for one jsonschema error."""
    path: list[str | int] = list(error.absolute_path)
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "type":
        types = [value] if isinstance(value, str) else list(value)
        expected = " or ".join(_TYPE_NAMES.get(t, t) for t in types)
        return path, f"expected {expected}, got {describe(instance)}"
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(instance) - set(allowed))
        key = extra[0] if extra else "?"
        return [*path, key], f"unknown key {key!r}; expected one of: {', '.join(allowed)}"
    if kind == "required":
        missing = [k for k in value if k not in instance]
        return path, f"missing required field {missing[0]!r}" if missing else error.message
    if kind in ("enum", "const"):
        options = value if kind == "enum" else [value]
        return path, f"expected one of {options}, got {describe(instance)}"
    if kind == "pattern":
        return path, f"expected a string matching {value}, got {describe(instance)}"
    if kind in ("minProperties", "maxProperties") and len(path) >= 2 and path[-2] == "expect":
        return path, f"expected exactly one check per list item, got {len(instance)} keys"
    if kind == "minItems":
        return path, f"expected at least {value} item(s), got {len(instance)}"
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[kind]
        return path, f"expected a value {op} {value}, got {describe(instance)}"
    if kind == "oneOf" and path and path[-1] == "target":
        return path, "expected either 'callable' alone, or 'provider' with a 'user' template"
    if kind == "oneOf" and path and path[-1] == "cases":
        return path, f"expected a list of cases or a cases file path, got {describe(instance)}"
    return path, error.message


def problem(data: Any, schema: str) -> tuple[list[str | int], str] | None:
    """The first violation of a packaged schema as (field path, what was expected and got), or None."""
    from jsonschema.exceptions import best_match

    error = best_match(_validator(schema).iter_errors(data))
    return None if error is None else _message(error)


def validate(data: Any, schema: str, source: str, locate: Locator | None = None) -> None:
    """Raises :class:`ConfigError` naming file, line, field, expected and got for the first violation."""
    found = problem(data, schema)
    if found is None:
        return
    path, text = found
    line = locate(path) if locate else None
    raise ConfigError(f"{where(source, line)}: {format_path(path)}: {text}")


# --- reading YAML ---------------------------------------------------------------------------------------
# Every YAML input is JSON-shaped data (the JSON Schemas above describe it), so the reader builds plain dicts,
# lists and scalars straight from the parser's events: one pass, libyaml's C parser where installed, no
# recursion, and a line for every value kept beside the data. It refuses, each as one line, what JSON cannot
# mean or what would make later steps blow up: a key written twice, a key that is not a string, nesting
# deeper than MAX_DEPTH, aliases expanding past a budget (an "alias bomb"), a recursive alias.

MAX_DEPTH = 100
"""The deepest nesting of lists and mappings accepted in an input file."""
ALIAS_BUDGET = 100_000
"""Values aliases may add to a document: the larger of this and 10 times the values written."""
_ALIAS_RATIO = 10

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE_KEY = object()
"""Stands for ``<<`` while its value (the mappings to merge) is read."""

Lines = Any
"""Where a parsed value sits: a line (scalar), ``(line, [Lines, ...])`` (list) or
``(line, {key: (key line, Lines)})`` (mapping)."""


def _loader_class() -> type[Any]:
    """PyYAML's C loader when libyaml is present, else the pure-Python one (same events, same values)."""
    loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return loader


class _Frame:
    """A list or mapping whose events are still being read."""

    __slots__ = ("anchor", "data", "is_map", "key", "key_line", "line", "lines", "merges", "size")

    def __init__(self, is_map: bool, line: int, anchor: str | None) -> None:
        self.is_map = is_map
        self.line = line
        self.anchor = anchor
        self.data: Any = {} if is_map else []
        self.lines: Any = {} if is_map else []
        self.size = 1
        """Values in this subtree, every alias expanded."""
        self.key: Any = None
        """The key whose value is being read (mappings)."""
        self.key_line = 0
        self.merges: list[tuple[Any, Lines]] = []


def _short(tag: str) -> str:
    """``tag:yaml.org,2002:set`` → ``!!set``, as it is written."""
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def _line(lines: Lines) -> int:
    return lines if isinstance(lines, int) else int(lines[0])


class _Reader:
    """Reads one YAML document into plain data and its :data:`Lines`."""

    def __init__(self, text: str, display: str, loader: type[Any] | None = None) -> None:
        self.loader = (loader or _loader_class())(text)
        self.display = display
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, Lines, int]] = {}
        self.open_anchors: set[str] = set()
        self.written = 0
        self.expanded = 0

    def path(self) -> list[str | int]:
        """The field path of the value being read."""
        out: list[str | int] = []
        for frame in self.stack:
            if not frame.is_map:
                out.append(len(frame.data))
            elif frame.key is _MERGE_KEY:
                out.append("<<")
            elif frame.key is not None:
                out.append(frame.key)
        return out

    def fail(self, line: int, text: str, path: Sequence[str | int] | None = None) -> ConfigError:
        shown = format_path(self.path() if path is None else path)
        return ConfigError(f"{self.display}:{line}: {shown}: {text}")

    def read(self) -> tuple[Any, Lines]:
        loader = self.loader
        try:
            loader.get_event()  # stream start
            if loader.check_event(yaml.StreamEndEvent):
                return None, None
            loader.get_event()  # document start
            if loader.check_event(yaml.DocumentEndEvent):
                return None, None
            result = self.value()
            loader.get_event()  # document end
            if not loader.check_event(yaml.StreamEndEvent):
                line = loader.peek_event().start_mark.line + 1
                raise ConfigError(f"{self.display}:{line}: expected a single YAML document, got a second one")
            return result
        finally:
            loader.dispose()

    def scalar(self, event: Any, line: int) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == _STR:
            return event.value
        construct = self.loader.yaml_constructors.get(tag)
        if construct is None or tag in (_MAP, _SEQ) or tag.endswith((":set", ":omap", ":pairs")):
            raise self.fail(line, f"expected a plain YAML value, got the tag {_short(tag)!r}")
        return construct(self.loader, yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark,
                                                      style=event.style))

    def value(self) -> tuple[Any, Lines]:
        """Reads the next complete value, however deep, with an explicit stack (never recursion)."""
        loader, stack = self.loader, self.stack
        while True:
            event = loader.get_event()
            kind = type(event)
            line = event.start_mark.line + 1
            if stack and stack[-1].is_map and stack[-1].key is None and kind is not yaml.MappingEndEvent:
                self.key(stack[-1], event, kind, line)
                continue
            value: Any
            lines: Lines
            size = 1
            if kind is yaml.ScalarEvent:
                self.written += 1
                self.expanded += 1
                value, lines = self.scalar(event, line), line
                if event.anchor is not None:
                    self.anchors[event.anchor] = (value, lines, 1)
            elif kind is yaml.AliasEvent:
                value, lines, size = self.alias(event.anchor, line)
            elif kind is yaml.SequenceStartEvent or kind is yaml.MappingStartEvent:
                self.open(kind is yaml.MappingStartEvent, event, line)
                continue
            else:  # the end of a list or mapping
                frame = stack.pop()
                if frame.merges:
                    self.merge(frame)
                value, lines, size = frame.data, (frame.line, frame.lines), frame.size
                if frame.anchor is not None:
                    self.open_anchors.discard(frame.anchor)
                    self.anchors[frame.anchor] = (value, lines, size)
            if not stack:
                return value, lines
            top = stack[-1]
            top.size += size
            if not top.is_map:
                top.data.append(value)
                top.lines.append(lines)
            elif top.key is _MERGE_KEY:
                top.merges.append((value, lines))
                top.key = None
            else:
                top.data[top.key] = value
                top.lines[top.key] = (top.key_line, lines)
                top.key = None

    def open(self, is_map: bool, event: Any, line: int) -> None:
        if event.tag not in (None, "!", _MAP if is_map else _SEQ):
            raise self.fail(line, f"expected a plain YAML {'mapping' if is_map else 'list'}, got the tag "
                                  f"{_short(event.tag)!r}")
        if len(self.stack) >= MAX_DEPTH:
            path = self.path()
            shown = format_path(path[:4]) + ("..." if len(path) > 4 else "")
            raise ConfigError(f"{self.display}:{line}: {shown}: expected at most {MAX_DEPTH} levels of nested "
                              "lists and mappings, got more")
        self.written += 1
        self.expanded += 1
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        self.stack.append(_Frame(is_map, line, event.anchor))

    def alias(self, name: str, line: int) -> tuple[Any, Lines, int]:
        if name in self.open_anchors:
            raise self.fail(line, f"expected an alias of a finished value, got '*{name}' inside the value it "
                                  "names (a recursive structure)")
        if name not in self.anchors:
            raise self.fail(line, f"expected an anchor defined before its alias, got '*{name}'")
        value, lines, size = self.anchors[name]
        self.expanded += size
        limit = max(ALIAS_BUDGET, _ALIAS_RATIO * self.written)
        if self.expanded > limit:
            raise self.fail(line, f"expected aliases to expand the document to at most {limit:,} values, got "
                                  f"more ('*{name}' alone expands to {size:,}: an alias bomb?)")
        return value, lines, size

    def key(self, frame: _Frame, event: Any, kind: type[Any], line: int) -> None:
        """Reads a mapping key: a string written once in its mapping, or ``<<`` (merge)."""
        if kind is yaml.ScalarEvent:
            if event.tag is None and event.implicit[0] and event.value == "<<":
                frame.key, frame.key_line = _MERGE_KEY, line
                return
            key = self.scalar(event, line)
            if event.anchor is not None:
                self.anchors[event.anchor] = (key, line, 1)
        elif kind is yaml.AliasEvent and event.anchor in self.anchors:
            key = self.anchors[event.anchor][0]
        else:
            got = {yaml.SequenceStartEvent: "a list", yaml.MappingStartEvent: "a mapping"}.get(kind, "an alias")
            raise self.fail(line, f"expected a string key, got {got}")
        if not isinstance(key, str):
            raise self.fail(line, f"expected a string key, got {describe(key)}")
        if key in frame.data:
            raise self.fail(line, f"expected each key once, got {key!r} again (first at line "
                                  f"{frame.lines[key][0]})", [*self.path(), key])
        self.written += 1
        self.expanded += 1
        frame.key, frame.key_line = key, line

    def merge(self, frame: _Frame) -> None:
        """Applies ``<<`` merges: keys written in the mapping win, then earlier merged mappings."""
        sources: list[tuple[Any, Lines, int]] = []
        for value, lines in frame.merges:
            if isinstance(value, dict):
                sources.append((value, lines, _line(lines)))
            elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
                sources += [(v, item, _line(lines)) for v, item in zip(value, lines[1], strict=True)]
            else:
                raise self.fail(_line(lines), f"expected a mapping or a list of mappings to merge, got "
                                              f"{describe(value)}", [*self.path(), "<<"])
        data: dict[str, Any] = {}
        where: dict[str, Any] = {}
        for value, lines, at in reversed(sources):
            data.update(value)
            where.update({k: (at, lines[1][k][1]) for k in value})
        data.update(frame.data)
        where.update(frame.lines)
        frame.data, frame.lines = data, where


def _locate(lines: Lines, path: Sequence[str | int]) -> int | None:
    """The line of the value at ``path`` (its key's line for a mapping entry), or of its nearest ancestor."""
    if lines is None:
        return None
    line = _line(lines)
    for depth, part in enumerate(path):
        if isinstance(lines, int):
            return line
        children = lines[1]
        if isinstance(children, dict):
            if not isinstance(part, str) or part not in children:
                return line
            key_line, lines = children[part]
            if depth == len(path) - 1:
                return int(key_line)  # a field is best pointed at by its key
        else:
            if not isinstance(part, int) or not 0 <= part < len(children):
                return line
            lines = children[part]
        line = _line(lines)
    return line


def parse_yaml(text: str, display: str) -> tuple[Any, Locator]:
    """Parses YAML text once; returns the data and a locator of field paths to lines."""
    try:
        data, lines = _Reader(text, display).read()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{display}{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{display}: invalid YAML: {str(exc).splitlines()[0]}") from None
    return data, lambda field: _locate(lines, field)


def load_yaml(path: Path, display: str) -> tuple[Any, Locator]:
    """Reads and parses a YAML file; returns the data and a locator of field paths to lines."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{display}: file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{display}: expected UTF-8 text, got undecodable byte at offset {exc.start}") from None
    except IsADirectoryError:
        raise ConfigError(f"{display}: expected a file, got a directory") from None
    except OSError as exc:
        raise ConfigError(f"{display}: cannot read file ({exc.strerror})") from None
    return parse_yaml(text, display)


def nesting_too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether lists and mappings nest deeper than ``limit`` in parsed JSON data (checked without recursion)."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return False
