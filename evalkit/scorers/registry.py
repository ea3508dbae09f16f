"""The scorer registry: one contract for built-in, registered, dotted-path and plugin scorers.

A scorer is a callable ``(output, arg, context) -> Score | bool`` (or a coroutine returning one): ``output``
is the case's final output, ``arg`` the check's argument as written in YAML, ``context`` a
:class:`~evalkit.core.score.ScoreContext` (the case, its trajectory, the live state). Register one with
:func:`register` and use it in YAML as ``- <name>: <arg>``; or name a function by dotted path with
``- scorer: {name: pkg.module:function, args: {...}}``; or ship it in a plugin (``evalkit`` entry points).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evalkit.core.score import Score, ScoreContext

if TYPE_CHECKING:
    from evalkit.suite import Case, Check

ScorerFn = Callable[[str, Any, ScoreContext], "Score | bool | Awaitable[Score | bool]"]
Validator = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class Scorer:
    """A registered scorer."""

    name: str
    fn: ScorerFn
    validate: Validator | None = None
    """Why an argument cannot work (checked when the suite loads, before any call), or None."""
    schema: Mapping[str, Any] | None = None
    """A JSON Schema the argument must match (checked when the suite loads)."""


REGISTRY: dict[str, Scorer] = {}
"""Scorer name → scorer. Built-ins are registered here the same way a plugin registers its own."""


def register(name: str, *, validate: Validator | None = None,
             schema: Mapping[str, Any] | None = None) -> Callable[[ScorerFn], ScorerFn]:
    """Registers a scorer under ``name``, usable in YAML as ``- <name>: <arg>``."""

    def decorate(fn: ScorerFn) -> ScorerFn:
        REGISTRY[name] = Scorer(name, fn, validate, schema)
        return fn

    return decorate


def lookup(name: str) -> Scorer | None:
    """The scorer registered under ``name``, loading installed plugins when it is not (yet) known."""
    found = REGISTRY.get(name)
    if found is None:
        from evalkit.plugins import load_entry_points

        load_entry_points()
        found = REGISTRY.get(name)
    return found


def check_problem(check: Check) -> str | None:
    """Why a check cannot run (unknown name, an argument its scorer rejects), or None when it can."""
    scorer = lookup(check.name)
    if scorer is None:
        from evalkit.plugins import load_entry_points

        broken = "; ".join(load_entry_points())
        return (f"unknown check; expected one of: {', '.join(sorted(REGISTRY))} (or a scorer registered by a "
                "plugin in the 'evalkit' entry-point group)" + (f"; plugins that failed to load: {broken}"
                                                                 if broken else ""))
    if scorer.schema is not None:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import best_match

        error = best_match(Draft202012Validator(scorer.schema).iter_errors(check.arg))
        if error is not None:
            return f"argument rejected by scorer {check.name!r}: {error.message}"
    if scorer.validate is not None:
        return scorer.validate(check.arg)
    return None


def _as_score(name: str, result: Any) -> Score:
    if isinstance(result, Score):
        return result
    if isinstance(result, bool):
        return Score(name, result, float(result), "passed" if result else "failed")
    return Score(name, False, None, f"scorer returned {type(result).__name__}; expected bool or Score")


async def score(check: Check, context: ScoreContext) -> Score:
    """Applies one check; a scorer that raises gives a failed Score with the reason, never a crashed run."""
    scorer = lookup(check.name)
    if scorer is None:  # load_suite rejects unknown names; a check built by hand may still carry one
        return Score(check.name, False, None, "unknown check")
    try:
        result = scorer.fn(context.output, check.arg, context)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:  # a scorer's bug is a failed check with the reason, not a crashed run
        return Score(check.name, False, None, f"scorer raised {type(exc).__name__}: {exc}")
    return _as_score(check.name, result)


def run_check(check: Check, output: str, case: Case | None = None) -> Score:
    """Applies one check to one output, outside a run (a convenience for tests and tools)."""
    import asyncio

    from evalkit.suite import Case

    context = ScoreContext(case=case or Case(id="-", vars={}), output=output)
    return asyncio.run(score(check, context))
