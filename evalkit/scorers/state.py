"""State checks: ``state`` (a query of the real store and its expectation) and ``state-unchanged``
(collateral damage: nothing changed but what ``except`` allows)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from evalkit.core.score import Score, ScoreContext
from evalkit.scorers.registry import register

QUERY_SCHEMA: dict[str, Any] = {"$ref": "#/$defs/state_query"}


def _query_schema() -> dict[str, Any]:
    from evalkit.schema import load_schema

    defs = load_schema("suite")["$defs"]
    return {"$defs": defs, "$ref": "#/$defs/state_query"}


def _state_problem(arg: Any) -> str | None:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(_query_schema()).iter_errors(arg))
    if error is None:
        return None
    if error.validator == "oneOf" and isinstance(arg, Mapping):
        return f"expected exactly one of sql, http or python, got {', '.join(sorted(arg)) or 'none'}"
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where + ': ' if where else ''}{error.message}"


def _no_state(name: str) -> Score:
    return Score(name, False, None, "the case ran without live state (the suite declares no 'state')")


@register("state", validate=_state_problem)
async def _state(output: str, arg: Any, context: ScoreContext) -> Score:
    from evalkit.tools.state import StateError

    live = context.state
    if live is None or getattr(live, "store", None) is None:
        return _no_state("state")
    try:
        ok, found = await live.check(arg, context.case.vars)
    except StateError as exc:
        return Score("state", False, None, str(exc))
    return Score("state", ok, float(ok), found)


_EXCEPT = re.compile(
    r"^(?P<table>[A-Za-z_][\w.-]*?)(?:\.(?P<column>[A-Za-z_]\w*))?(?:\[(?P<field>\w+)=(?P<value>[^\]]*)\])?$")


def _unchanged_problem(arg: Any) -> str | None:
    if arg is True or arg is None:
        return None
    if not isinstance(arg, Mapping) or set(arg) - {"except"}:
        return f"expected true or a mapping with 'except' (a list), got {json.dumps(arg, default=str)[:60]}"
    for item in arg.get("except", []):
        if not isinstance(item, str) or not _EXCEPT.match(item):
            return f"except: expected 'table', 'table.column' or 'table[column=value]', got {item!r}"
    return None


def _drop(rows: Any, column: str | None, field: str | None, value: str | None) -> Any:
    if not isinstance(rows, list):
        return rows
    out = []
    for row in rows:
        if isinstance(row, dict) and field is not None and str(row.get(field)) == value:
            continue
        if isinstance(row, dict) and column is not None:
            row = {k: v for k, v in row.items() if k != column}
        out.append(row)
    return out


def _canonical(row: Any) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def diff(before: Mapping[str, Any], after: Mapping[str, Any], allowed: list[str]) -> list[str]:
    """What changed between two snapshots outside the allowed tables, columns and rows."""
    rules: dict[str, list[tuple[str | None, str | None, str | None]]] = {}
    for item in allowed:
        match = _EXCEPT.match(item)
        if match:
            rules.setdefault(match["table"], []).append((match["column"], match["field"], match["value"]))
    changes = []
    for table in sorted(set(before) | set(after)):
        old, new = before.get(table), after.get(table)
        for column, field, value in rules.get(table, []):
            if column is None and field is None:
                old = new = None
                break
            old, new = _drop(old, column, field, value), _drop(new, column, field, value)
        if old == new:
            continue
        if isinstance(old, list) and isinstance(new, list):
            old_keys, new_keys = {_canonical(o) for o in old}, {_canonical(n) for n in new}
            gone = [r for r in old if _canonical(r) not in new_keys]
            came = [r for r in new if _canonical(r) not in old_keys]
            shown = json.dumps((came or gone)[:1], default=str)[:100]
            changes.append(f"{table}: {len(came)} rows added/changed, {len(gone)} removed/changed (e.g. {shown})")
        else:
            changes.append(f"{table}: changed")
    return changes


@register("state-unchanged", validate=_unchanged_problem)
async def _state_unchanged(output: str, arg: Any, context: ScoreContext) -> Score:
    from evalkit.tools.state import StateError

    live = context.state
    if live is None or getattr(live, "store", None) is None:
        return _no_state("state-unchanged")
    if live.before is None:
        return Score("state-unchanged", False, None, "no snapshot was taken before the case")
    try:
        after = await live.snapshot()
    except StateError as exc:
        return Score("state-unchanged", False, None, str(exc))
    allowed = list(arg.get("except", [])) if isinstance(arg, Mapping) else []
    changes = diff(live.before, after, allowed)
    if not changes:
        return Score("state-unchanged", True, 1.0, "nothing changed outside " + (", ".join(allowed) or "(nothing)"))
    return Score("state-unchanged", False, 0.0, "collateral change: " + "; ".join(changes[:3]),
                 {"collateral_changes": len(changes)})
