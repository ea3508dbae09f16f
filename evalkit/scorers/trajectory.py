"""Trajectory checks: ``tools`` (which tools, how often, in what order; multiset precision and recall) and
``no-duplicate-writes`` (a write performed twice for one request, e.g. a retry after a timeout that hit
after the side effect)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from evalkit.core.score import Score, ScoreContext
from evalkit.scorers.registry import register

TOOLS_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "minProperties": 1,
    "properties": {
        "used": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "forbidden": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "max_calls": {"oneOf": [{"type": "integer", "minimum": 0},
                                {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}]},
        "order": {"enum": ["strict", "unordered", "subset", "superset"]},
        "min_precision": {"type": "number", "minimum": 0, "maximum": 1},
        "min_recall": {"type": "number", "minimum": 0, "maximum": 1},
        "max_attempts": {"type": "integer", "minimum": 1},
    },
}


def called(context: ScoreContext) -> list[str]:
    """The tools the case called, one entry per intent (retries of one intent count once), in order."""
    from evalkit.tools.metrics import intents

    return [attempts[0].tool for attempts in intents(context.trajectory.tool_events).values()]


def precision_recall(actual: Sequence[str], expected: Sequence[str]) -> tuple[float, float]:
    """Multiset precision and recall: repeats count (two calls of one tool where one was expected is 1/2)."""
    common = sum((Counter(actual) & Counter(expected)).values())
    precision = common / len(actual) if actual else (1.0 if not expected else 0.0)
    recall = common / len(expected) if expected else 1.0
    return precision, recall


def _order_ok(order: str, actual: list[str], expected: list[str]) -> bool:
    if order == "strict":
        return actual == expected
    if order == "unordered":
        return Counter(actual) == Counter(expected)
    if order == "subset":
        return not (Counter(actual) - Counter(expected))
    return not (Counter(expected) - Counter(actual))  # superset


@register("tools", schema=TOOLS_SCHEMA)
def _tools(output: str, arg: Any, context: ScoreContext) -> Score:
    actual = called(context)
    problems = []
    expected = list(arg.get("used", []))
    missing = [t for t in dict.fromkeys(expected) if t not in actual]
    if missing and "order" not in arg:
        problems.append(f"not called: {', '.join(missing)}")
    forbidden = [t for t in arg.get("forbidden", []) if t in actual]
    if forbidden:
        problems.append(f"forbidden tool called: {', '.join(forbidden)}")
    limit = arg.get("max_calls")
    if isinstance(limit, int) and len(actual) > limit:
        problems.append(f"{len(actual)} tool calls, at most {limit} allowed")
    elif isinstance(limit, Mapping):
        for tool, most in limit.items():
            if actual.count(tool) > most:
                problems.append(f"{tool} called {actual.count(tool)} times, at most {most} allowed")
    most_attempts = arg.get("max_attempts")
    if most_attempts is not None:
        from evalkit.tools.metrics import intents

        for attempts in intents(context.trajectory.tool_events).values():
            if len(attempts) > most_attempts:
                problems.append(f"retry amplification: {attempts[0].tool} attempted {len(attempts)} times for one "
                                f"call, at most {most_attempts} allowed")
                break
    order = arg.get("order")
    if order is not None and not _order_ok(order, actual, expected):
        problems.append(f"order {order}: expected {expected}, got {actual}")
    precision, recall = precision_recall(actual, expected)
    if precision < arg.get("min_precision", 0.0):
        problems.append(f"precision {precision:.2f} below {arg['min_precision']}")
    if recall < arg.get("min_recall", 0.0):
        problems.append(f"recall {recall:.2f} below {arg['min_recall']}")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    shown = " → ".join(actual) or "no tool calls"
    return Score("tools", not problems, round(f1, 4) if expected else None,
                 ("; ".join(problems) + f" (called: {shown})") if problems else f"called: {shown}",
                 {"precision": precision, "recall": recall} if expected else {})


def _duplicates_problem(arg: Any) -> str | None:
    return None if arg is True else f"expected true, got {arg!r}"


@register("no-duplicate-writes", validate=_duplicates_problem)
def _no_duplicate_writes(output: str, arg: Any, context: ScoreContext) -> Score:
    from evalkit.tools.metrics import duplicate_writes

    count = duplicate_writes(context.trajectory.tool_events)
    if not count:
        return Score("no-duplicate-writes", True, 1.0, "every write was performed at most once")
    tools = sorted({e.tool for e in context.trajectory.tool_events if e.effect == "write"})
    return Score("no-duplicate-writes", False, 0.0, f"{count} duplicate write(s) ({', '.join(tools)}): a request "
                 "was performed again after it had already taken effect", {"duplicate_writes": count})
