"""The ``judge`` check: a case's output judged by a pinned, calibrated LLM judge (see :mod:`evalkit.judges.pool`)."""

from __future__ import annotations

from typing import Any

from evalkit.core.score import Score, ScoreContext
from evalkit.scorers.registry import register

JUDGE_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"type": "string", "minLength": 1},
        {"type": "object", "additionalProperties": False, "required": ["name"],
         "properties": {"name": {"type": "string", "minLength": 1}, "pass_at": {"type": "integer"}}},
    ],
}


@register("judge", schema=JUDGE_SCHEMA)
async def _judge(output: str, arg: Any, context: ScoreContext) -> Score:
    from evalkit.judges.pool import judge_arg

    name, pass_at = judge_arg(arg)
    pool = context.extras.get("judges")
    if pool is None or name not in pool.judges:
        return Score(f"judge:{name}", False, None, f"unscored: judge {name!r} is not open in this run",
                     {"unscored": "judge not open"})
    result: Score = await pool.verdict(name, pass_at, context.case, output, context.repeat)
    return result
