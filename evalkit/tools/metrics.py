"""Tool and agent metrics: pure functions over trajectories and runs (nothing here does I/O).

Per run: state-check pass rate; pass^k (the share of cases whose every repeat passed); per tool, error
rates before retries (failed attempts / attempts) and after (intents whose last attempt failed / intents);
retry amplification (attempts per intent); duplicate writes; silent successes (claims the store and trace
do not support); model and tool calls per case; redundant calls (a successful read repeated with the same
arguments); and the recovery rate under each fault profile (cases that met an injected fault and passed).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit.core.trajectory import ToolEvent

STATE_CHECKS = frozenset({"state", "state-unchanged"})


def _key(event: ToolEvent, ignore: str | None = None) -> str:
    arguments = {k: v for k, v in event.arguments.items() if k != ignore}
    return event.tool + " " + json.dumps(arguments, sort_keys=True, default=str)


def intents(events: Sequence[ToolEvent]) -> dict[str, list[ToolEvent]]:
    """Attempts grouped by the intent they serve, in first-seen order."""
    grouped: dict[str, list[ToolEvent]] = {}
    for event in events:
        grouped.setdefault(event.intent, []).append(event)
    return grouped


def duplicate_writes(events: Sequence[ToolEvent]) -> int:
    """Writes performed more than once for one logical request (same tool and arguments).

    Attempts that carried the same idempotency key are one request the service deduplicates, so they never
    count; an attempt known not to have written (refused, faulted before the side effect) never counts.
    """
    from evalkit.tools.claims import performed

    groups: dict[str, list[ToolEvent]] = defaultdict(list)
    for event in events:
        if event.effect == "write" and performed(event):
            groups[_key(event, event.idempotency_key)].append(event)
    extra = 0
    for group in groups.values():
        key_name = group[0].idempotency_key
        if key_name is not None:
            keys = {str(e.arguments.get(key_name)) for e in group if e.arguments.get(key_name) is not None}
            if len(keys) == 1 and all(e.arguments.get(key_name) is not None for e in group):
                continue
        extra += len(group) - 1
    return extra


def redundant_calls(events: Sequence[ToolEvent]) -> int:
    """Reads repeated with the same arguments after one already succeeded."""
    seen: set[str] = set()
    count = 0
    for event in events:
        if event.effect != "read":
            continue
        key = _key(event)
        if key in seen and event.attempt == 1:
            count += 1
        if event.ok:
            seen.add(key)
    return count


@dataclass(frozen=True)
class ToolStats:
    """One tool over a run."""

    tool: str
    attempts: int
    intents: int
    failed_attempts: int
    failed_intents: int

    @property
    def error_rate_before(self) -> float:
        return self.failed_attempts / self.attempts if self.attempts else 0.0

    @property
    def error_rate_after(self) -> float:
        return self.failed_intents / self.intents if self.intents else 0.0

    @property
    def amplification(self) -> float:
        return self.attempts / self.intents if self.intents else 0.0


@dataclass(frozen=True)
class AgentMetrics:
    """The live-tools metrics of a run (see the module docstring)."""

    cases: int
    results: int
    state_checks: int
    state_checks_passed: int
    pass_k: float | None
    """Share of cases whose every repeat passed (None without results)."""
    k: int
    tools: tuple[ToolStats, ...]
    duplicate_writes: int
    silent_successes: int
    unverified_claims: int
    unclaimed_writes: int
    model_calls_per_case: float
    tool_calls_per_case: float
    redundant_calls: int
    recovery: Mapping[str, tuple[int, int]] = field(hash=False)
    """Fault profile → (cases that met an injected fault and passed, cases that met one)."""
    terminations: Mapping[str, int] = field(hash=False)

    @property
    def attempts(self) -> int:
        return sum(t.attempts for t in self.tools)

    @property
    def intents(self) -> int:
        return sum(t.intents for t in self.tools)

    @property
    def amplification(self) -> float:
        return self.attempts / self.intents if self.intents else 0.0

    @property
    def state_pass_rate(self) -> float | None:
        return self.state_checks_passed / self.state_checks if self.state_checks else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases, "results": self.results, "state_checks": self.state_checks,
            "state_checks_passed": self.state_checks_passed, "state_pass_rate": self.state_pass_rate,
            "pass_k": self.pass_k, "k": self.k, "amplification": self.amplification,
            "tools": {t.tool: {"attempts": t.attempts, "intents": t.intents, "error_rate_before": t.error_rate_before,
                               "error_rate_after": t.error_rate_after, "amplification": t.amplification}
                      for t in self.tools},
            "duplicate_writes": self.duplicate_writes, "silent_successes": self.silent_successes,
            "unverified_claims": self.unverified_claims, "unclaimed_writes": self.unclaimed_writes,
            "model_calls_per_case": self.model_calls_per_case, "tool_calls_per_case": self.tool_calls_per_case,
            "redundant_calls": self.redundant_calls,
            "recovery": {k: {"recovered": v[0], "faulted": v[1]} for k, v in self.recovery.items()},
            "terminations": dict(self.terminations),
        }


def pass_k(results: Iterable[Any]) -> tuple[float | None, int]:
    """(share of cases whose every repeat passed, the largest k seen)."""
    by_case: dict[str, list[bool]] = defaultdict(list)
    for result in results:
        by_case[result.case_id].append(bool(result.passed))
    if not by_case:
        return None, 0
    return sum(all(v) for v in by_case.values()) / len(by_case), max(len(v) for v in by_case.values())


def agent_metrics(results: Sequence[Any]) -> AgentMetrics | None:
    """The metrics of a run's results; None when no case touched a tool (not an agent run)."""
    if not any(r.trajectory.tool_events for r in results):
        return None
    attempts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    duplicates = redundant = silent = unverified = unclaimed = state_total = state_passed = 0
    model_calls = tool_calls = 0
    recovery: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    terminations: dict[str, int] = defaultdict(int)
    for result in results:
        events = result.trajectory.tool_events
        terminations[result.trajectory.termination] += 1
        model_calls += len(result.trajectory.calls)
        for intent in intents(events).values():
            stats = attempts[intent[0].tool]
            stats[0] += len(intent)
            stats[1] += 1
            stats[2] += sum(not e.ok for e in intent)
            stats[3] += not intent[-1].ok
            tool_calls += 1
        duplicates += duplicate_writes(events)
        redundant += redundant_calls(events)
        for score in result.scores:
            if score.name in STATE_CHECKS:
                state_total += 1
                state_passed += bool(score.passed)
            details = getattr(score, "details", None) or {}
            silent += int(details.get("unsupported", 0))
            unverified += int(details.get("unverified", 0))
            unclaimed += int(details.get("unclaimed", 0))
        profiles = {e.fault.profile for e in events if e.fault is not None}
        for profile in profiles:
            recovery[profile][1] += 1
            recovery[profile][0] += bool(result.passed)
    share, k = pass_k(results)
    n = len(results) or 1
    return AgentMetrics(
        cases=len({r.case_id for r in results}), results=len(results), state_checks=state_total,
        state_checks_passed=state_passed, pass_k=share, k=k,
        tools=tuple(ToolStats(t, *v) for t, v in sorted(attempts.items())), duplicate_writes=duplicates,
        silent_successes=silent, unverified_claims=unverified, unclaimed_writes=unclaimed,
        model_calls_per_case=model_calls / n, tool_calls_per_case=tool_calls / n, redundant_calls=redundant,
        recovery={k2: (v[0], v[1]) for k2, v in sorted(recovery.items())}, terminations=dict(terminations),
    )
