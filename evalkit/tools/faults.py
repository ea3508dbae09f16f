"""Seeded fault injection at the tool boundary.

Whether a fault hits is a pure function of ``(seed, case, repeat, tool, call number, rule)``:
:func:`decide` draws from :func:`evalkit.core.seeds.draws` with exactly those parts, so a schedule replays
identically at any concurrency and in any process. :func:`apply` turns a decision into what the agent
sees, calling the real tool when the fault's phase says the side effect happens (``timeout`` ``after``,
``truncated``, ``malformed``, ``empty``, ``latency``) and not calling it when it does not (``before``,
``rate_limit``, ``server``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace

from evalkit.core.seeds import draws
from evalkit.core.trajectory import Fault
from evalkit.tools.spec import FaultProfile, FaultRule


@dataclass(frozen=True)
class ToolResponse:
    """What one attempt at a tool produced, before it is recorded."""

    ok: bool
    status: str | None = None
    """HTTP status, ``mcp-error``, ``exception``, ``timeout`` …"""
    body: str = ""
    """What the agent receives (JSON text where the tool speaks JSON)."""
    error_class: str | None = None
    error: str | None = None
    side_effect: bool | None = None
    """Whether a write really happened (False for reads and for refused writes; None when unknown)."""
    retry_after_s: float | None = None
    headers: Mapping[str, str] | None = None
    """Response headers worth passing on (content type, retry-after)."""


Perform = Callable[[], Awaitable[ToolResponse]]


def decide(profile: FaultProfile | None, seed: int, case_id: str, repeat: int, tool: str,
           call_number: int) -> FaultRule | None:
    """The rule that fires on this call of this tool, or None. The first matching rule that fires wins."""
    if profile is None:
        return None
    for index, rule in enumerate(profile.rules):
        if rule.tool not in ("*", tool):
            continue
        if rule.nth:
            if call_number in rule.nth:
                return rule
            continue
        probability = 1.0 if rule.probability is None else rule.probability
        if draws(seed, case_id, repeat, tool, call_number, "fault", index).random() < probability:
            return rule
    return None


def schedule(profile: FaultProfile, seed: int, case_id: str, repeat: int, tool: str, calls: int) -> list[str | None]:
    """The faults the first ``calls`` calls of a tool would meet (``kind/phase`` or None), for tests and docs."""
    out: list[str | None] = []
    for number in range(1, calls + 1):
        rule = decide(profile, seed, case_id, repeat, tool, number)
        out.append(None if rule is None else f"{rule.kind}/{rule.phase}")
    return out


async def apply(rule: FaultRule | None, profile: str, perform: Perform, timeout_s: float,
                write: bool) -> tuple[ToolResponse, Fault | None]:
    """Runs one attempt under a fault (or none): returns what the agent sees and the fault record."""
    if rule is None:
        return await perform(), None
    fault = Fault(kind=rule.kind, phase=rule.phase, profile=profile)
    kind = rule.kind
    if kind == "latency":
        await asyncio.sleep(rule.latency_s)
        return await perform(), replace(fault, detail=f"+{rule.latency_s:g} s")
    if kind == "rate_limit":
        retry_after = rule.retry_after_s if rule.retry_after_s is not None else 1.0
        return ToolResponse(False, "429", '{"error": "rate limited"}', "rate_limit", "HTTP 429: rate limited",
                            False, retry_after, {"retry-after": f"{retry_after:g}"}), \
            replace(fault, phase="before", detail=f"retry-after {retry_after:g} s")
    if kind == "server":
        status = rule.status or 503
        return ToolResponse(False, str(status), '{"error": "service unavailable"}', "server",
                            f"HTTP {status}: injected server error", False), replace(fault, phase="before")
    if kind == "timeout":
        wait = min(rule.hold_s, timeout_s)
        if rule.phase == "after":
            real = await perform()
            await asyncio.sleep(wait)
            happened = real.side_effect if write else False
            return ToolResponse(False, "timeout", "", "timeout", f"no response within {wait:g} s (timed out)",
                                happened), replace(fault, detail="the call reached the tool; its response was lost")
        await asyncio.sleep(wait)
        return ToolResponse(False, "timeout", "", "timeout", f"no response within {wait:g} s (timed out)",
                            False), replace(fault, detail="the call never reached the tool")
    real = await perform()
    if kind == "truncated":
        body = real.body[: max(0, len(real.body) // 2)]
        detail = f"{len(real.body)} → {len(body)} characters"
    elif kind == "malformed":
        body = "{\"result\": <<not json>>"
        detail = "replaced by invalid JSON"
    else:
        body, detail = "", "empty body"
    return replace(real, ok=False, body=body, error_class="bad_response",
                   error=f"unusable response ({kind}: {detail})"), replace(fault, phase="after", detail=detail)
