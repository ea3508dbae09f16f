"""Deterministic scorers and their registry; user scorers plug in by dotted path (``mypkg.checks:no_pii``).

A scorer is a callable ``(output, arg, case) -> Score``. Built-ins are registered with :func:`register`,
the same way a plugin would register its own.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalkit.suite import Case, Check


@dataclass(frozen=True)
class Score:
    """The outcome of one check on one output."""

    name: str
    """The check's name (``contains``) or the user scorer's dotted path."""
    passed: bool
    score: float | None
    """A graded value in [0, 1] where one is meaningful, else None."""
    reason: str
    """Why it passed or failed, in a few words a person can act on."""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "score": self.score, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Score:
        return cls(data["name"], data["passed"], data["score"], data["reason"])


ScorerFn = Callable[[str, Any, "Case | None"], Score]
REGISTRY: dict[str, ScorerFn] = {}
"""Scorer name → function. Built-ins live here; :func:`register` adds more."""


def register(name: str) -> Callable[[ScorerFn], ScorerFn]:
    """Registers a scorer under ``name`` (usable in YAML as ``- <name>: <arg>``)."""

    def decorate(fn: ScorerFn) -> ScorerFn:
        REGISTRY[name] = fn
        return fn

    return decorate


def _short(text: str, limit: int = 60) -> str:
    text = text.replace("\n", "\\n")
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


@register("equals")
def _equals(output: str, arg: Any, case: Case | None) -> Score:
    ok = output.strip() == str(arg).strip()
    return Score("equals", ok, float(ok), "output equals expected" if ok else
                 f"expected {_short(str(arg))}, got {_short(output.strip())}")


@register("contains")
def _contains(output: str, arg: Any, case: Case | None) -> Score:
    ok = str(arg) in output
    return Score("contains", ok, None, f"{'found' if ok else 'missing'} {_short(str(arg))}")


@register("icontains")
def _icontains(output: str, arg: Any, case: Case | None) -> Score:
    ok = str(arg).casefold() in output.casefold()
    return Score("icontains", ok, None, f"{'found' if ok else 'missing'} {_short(str(arg))} (any case)")


@register("not-contains")
def _not_contains(output: str, arg: Any, case: Case | None) -> Score:
    ok = str(arg) not in output
    return Score("not-contains", ok, None, "absent as required" if ok else f"found forbidden {_short(str(arg))}")


@register("not-icontains")
def _not_icontains(output: str, arg: Any, case: Case | None) -> Score:
    ok = str(arg).casefold() not in output.casefold()
    return Score("not-icontains", ok, None,
                 "absent as required" if ok else f"found forbidden {_short(str(arg))} (any case)")


@functools.lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@register("regex")
def _regex_check(output: str, arg: Any, case: Case | None) -> Score:
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
def _json_valid(output: str, arg: Any, case: Case | None) -> Score:
    _, problem = _parse_json(output)
    return Score("json-valid", problem is None, None, problem or "valid JSON")


@register("json-schema")
def _json_schema(output: str, arg: Any, case: Case | None) -> Score:
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


@register("json-path")
def _json_path(output: str, arg: Any, case: Case | None) -> Score:
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


@register("length")
def _length(output: str, arg: Any, case: Case | None) -> Score:
    unit = arg.get("unit", "chars")
    size = len(output.split()) if unit == "words" else len(output)
    low, high = arg.get("min", 0), arg.get("max")
    ok = size >= low and (high is None or size <= high)
    bounds = f"[{low}, {high if high is not None else '∞'}]"
    return Score("length", ok, None, f"{size} {unit} {'within' if ok else 'outside'} {bounds}")


@register("one-of")
def _one_of(output: str, arg: Any, case: Case | None) -> Score:
    ok = output.strip() in [str(a).strip() for a in arg]
    return Score("one-of", ok, float(ok), f"{_short(output.strip())} {'is' if ok else 'is not'} one of {arg}")


@functools.cache
def load_callable(dotted: str) -> Callable[..., Any]:
    """Imports ``package.module:function``; raises ValueError with a one-line reason."""
    module_name, _, attr = dotted.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r} ({exc})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ValueError(f"module {module_name!r} has no callable {attr!r}")
    return fn  # type: ignore[no-any-return]


def _user_scorer(output: str, arg: Any, case: Case | None) -> Score:
    name = arg["name"]
    try:
        result = load_callable(name)(output, case, **arg.get("args", {}))
    except Exception as exc:  # a user scorer's bug is a failed check with the reason, not a crashed run
        return Score(name, False, None, f"scorer raised {type(exc).__name__}: {exc}")
    if isinstance(result, Score):
        return result
    if isinstance(result, bool):
        return Score(name, result, float(result), "passed" if result else "failed")
    return Score(name, False, None, f"scorer returned {type(result).__name__}; expected bool or Score")


REGISTRY["scorer"] = _user_scorer


def check_problem(check: Check) -> str | None:
    """Why a check cannot run (bad regex, bad schema, unknown scorer), or None when it can."""
    if check.name not in REGISTRY:
        return f"unknown check; expected one of: {', '.join(sorted(REGISTRY))}"
    if check.name == "regex":
        try:
            _regex(str(check.arg))
        except re.error as exc:
            return f"expected a valid regular expression, got {check.arg!r} ({exc})"
    if check.name == "json-schema":
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(check.arg)
        except SchemaError as exc:
            return f"expected a valid JSON Schema, got one where {exc.message}"
    if check.name == "json-path":
        try:
            parse_json_path(check.arg["path"])
        except ValueError as exc:
            return str(exc)
    if check.name == "length" and check.arg.get("max", float("inf")) < check.arg.get("min", 0):
        return f"expected min <= max, got min={check.arg['min']} max={check.arg['max']}"
    if check.name == "scorer":
        try:
            load_callable(check.arg["name"])
        except ValueError as exc:
            return str(exc)
    return None


def run_check(check: Check, output: str, case: Case | None = None) -> Score:
    """Applies one check to one output."""
    return REGISTRY[check.name](output, check.arg, case)
