"""The built-in checks, registered exactly as a plugin registers its own (see :mod:`.registry`)."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from evalkit.core.score import Score, ScoreContext
from evalkit.scorers.registry import register


def _short(text: str, limit: int = 60) -> str:
    text = text.replace("\n", "\\n")
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


@register("equals")
def _equals(output: str, arg: Any, context: ScoreContext) -> Score:
    ok = output.strip() == str(arg).strip()
    return Score("equals", ok, float(ok), "output equals expected" if ok else
                 f"expected {_short(str(arg))}, got {_short(output.strip())}")


@register("contains")
def _contains(output: str, arg: Any, context: ScoreContext) -> Score:
    ok = str(arg) in output
    return Score("contains", ok, None, f"{'found' if ok else 'missing'} {_short(str(arg))}")


@register("icontains")
def _icontains(output: str, arg: Any, context: ScoreContext) -> Score:
    ok = str(arg).casefold() in output.casefold()
    return Score("icontains", ok, None, f"{'found' if ok else 'missing'} {_short(str(arg))} (any case)")


@register("not-contains")
def _not_contains(output: str, arg: Any, context: ScoreContext) -> Score:
    ok = str(arg) not in output
    return Score("not-contains", ok, None, "absent as required" if ok else f"found forbidden {_short(str(arg))}")


@register("not-icontains")
def _not_icontains(output: str, arg: Any, context: ScoreContext) -> Score:
    ok = str(arg).casefold() not in output.casefold()
    return Score("not-icontains", ok, None,
                 "absent as required" if ok else f"found forbidden {_short(str(arg))} (any case)")


@functools.lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _regex_problem(arg: Any) -> str | None:
    try:
        _regex(str(arg))
    except re.error as exc:
        return f"expected a valid regular expression, got {arg!r} ({exc})"
    return None


@register("regex", validate=_regex_problem)
def _regex_check(output: str, arg: Any, context: ScoreContext) -> Score:
    match = _regex(str(arg)).search(output)
    return Score("regex", match is not None, None,
                 f"matched {_short(match.group(0))}" if match else f"no match for /{arg}/")


def _parse_json(output: str) -> tuple[Any, str | None]:
    text = output.strip()
    # Models often fence JSON in Markdown; a fence is unwrapped, anything else must be JSON as it stands.
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1)
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"


@register("json-valid")
def _json_valid(output: str, arg: Any, context: ScoreContext) -> Score:
    _, problem = _parse_json(output)
    return Score("json-valid", problem is None, None, problem or "valid JSON")


def _schema_problem(arg: Any) -> str | None:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(arg)
    except SchemaError as exc:
        return f"expected a valid JSON Schema, got one where {exc.message}"
    return None


@register("json-schema", validate=_schema_problem)
def _json_schema(output: str, arg: Any, context: ScoreContext) -> Score:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    value, problem = _parse_json(output)
    if problem:
        return Score("json-schema", False, None, problem)
    error = best_match(Draft202012Validator(arg).iter_errors(value))
    if error is None:
        return Score("json-schema", True, None, "matches the schema")
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return Score("json-schema", False, None, f"at {where}: {error.message}")


_PATH_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[['\"]([^'\"]+)['\"]\]")


def parse_json_path(path: str) -> list[str | int]:
    """``$.order.items[0].sku`` → ``["order", "items", 0, "sku"]`` (a documented JSONPath subset)."""
    rest = path.removeprefix("$")
    parts: list[str | int] = []
    position = 0
    while position < len(rest):
        match = _PATH_TOKEN.match(rest, position)
        if not match:
            raise ValueError(f"expected a path like $.a.b[0], got {path!r}")
        name, index, quoted = match.groups()
        parts.append(int(index) if index is not None else (name or quoted))
        position = match.end()
    return parts


def _path_problem(arg: Any) -> str | None:
    try:
        parse_json_path(arg["path"])
    except ValueError as exc:
        return str(exc)
    return None


@register("json-path", validate=_path_problem)
def _json_path(output: str, arg: Any, context: ScoreContext) -> Score:
    value, problem = _parse_json(output)
    if problem:
        return Score("json-path", False, None, problem)
    for part in parse_json_path(arg["path"]):
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return Score("json-path", False, None, f"{arg['path']} not found")
    ok = bool(value == arg["equals"])
    return Score("json-path", ok, float(ok), f"{arg['path']} = {json.dumps(value)[:60]}"
                 + ("" if ok else f", expected {json.dumps(arg['equals'])[:60]}"))


def _length_problem(arg: Any) -> str | None:
    if arg.get("max", float("inf")) < arg.get("min", 0):
        return f"expected min <= max, got min={arg['min']} max={arg['max']}"
    return None


@register("length", validate=_length_problem)
def _length(output: str, arg: Any, context: ScoreContext) -> Score:
    unit = arg.get("unit", "chars")
    size = len(output.split()) if unit == "words" else len(output)
    low, high = arg.get("min", 0), arg.get("max")
    ok = size >= low and (high is None or size <= high)
    bounds = f"[{low}, {high if high is not None else '∞'}]"
    return Score("length", ok, None, f"{size} {unit} {'within' if ok else 'outside'} {bounds}")


@register("one-of")
def _one_of(output: str, arg: Any, context: ScoreContext) -> Score:
    ok = output.strip() in [str(a).strip() for a in arg]
    return Score("one-of", ok, float(ok), f"{_short(output.strip())} {'is' if ok else 'is not'} one of {arg}")


def _dotted_problem(arg: Any) -> str | None:
    from evalkit.plugins import load_callable

    try:
        load_callable(arg["name"])
    except ValueError as exc:
        return str(exc)
    return None


@register("scorer", validate=_dotted_problem)
async def _user_scorer(output: str, arg: Any, context: ScoreContext) -> Score:
    """A function named by dotted path, with the same contract: ``f(output, args, context)``."""
    import inspect

    from evalkit.plugins import load_callable
    from evalkit.scorers.registry import _as_score

    name = arg["name"]
    try:
        result = load_callable(name)(output, dict(arg.get("args", {})), context)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:  # a user scorer's bug is a failed check with the reason, not a crashed run
        return Score(name, False, None, f"scorer raised {type(exc).__name__}: {exc}")
    return _as_score(name, result)
