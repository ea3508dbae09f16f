"""Strict validation of YAML/JSON inputs against the JSON Schemas shipped in ``evalkit/schemas``.

Every error becomes one line: ``suites/support.yaml:14: cases[3].expect[0].regex: expected a string,
got a list``.
"""

from __future__ import annotations

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


@functools.cache
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name))


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


def _node_line(node: yaml.Node, path: Sequence[str | int]) -> int | None:
    """The line of the node at ``path`` (or of its nearest existing ancestor)."""
    line = node.start_mark.line + 1
    for depth, part in enumerate(path):
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    if depth == len(path) - 1:
                        return int(key.start_mark.line) + 1  # a field is best pointed at by its key
                    child = value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            return line
        node, line = child, child.start_mark.line + 1
    return line


def load_yaml(path: Path, display: str) -> tuple[Any, Locator]:
    """Parses a YAML file; returns the data and a locator of field paths to lines."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{display}: file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{display}: expected UTF-8 text, got undecodable byte at offset {exc.start}") from None
    except OSError as exc:
        raise ConfigError(f"{display}: cannot read file ({exc.strerror})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{display}{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{display}: invalid YAML: {exc}") from None

    def locate(field: Sequence[str | int]) -> int | None:
        return _node_line(node, field) if node is not None else None

    return data, locate
