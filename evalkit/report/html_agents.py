"""Agent runs at a glance: tools called, retries, injected faults and what they did, how loops ended.

Each case's own trajectory (model turns, tool calls with their arguments and results, faults, retries) is
in the case views; this section sums them over the run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from evalkit.conditions import percentile
from evalkit.report.html import ReportData, Section, fragment
from evalkit.report.html_cases import is_agent
from evalkit.results import CaseResult


@dataclass(frozen=True)
class ToolStats:
    """One tool over the run."""

    name: str
    intents: int
    """Distinct calls the model asked for."""
    attempts: int
    retries: int
    """Attempts after the first of an intent."""
    failed: int
    """Attempts after which the agent got no usable result."""
    faults: int
    writes: int
    """Attempts at a tool declared to write."""
    latency_p50: float | None
    latency_p95: float | None


@dataclass(frozen=True)
class AgentSummary:
    """The agent loops of a run, summed."""

    cases: int
    """Results (case × repeat) that ran a loop."""
    model_calls: int
    tool_attempts: int
    user_turns: int
    tools: tuple[ToolStats, ...]
    faults: Mapping[tuple[str, str], int]
    """(kind, phase) → injected faults."""
    side_effects_after_fault: int
    """Faults injected after a write really happened (the agent saw an error, the state changed)."""
    terminations: Mapping[str, int]
    with_fault: tuple[int, int]
    """(passed, results) among results that met at least one injected fault."""
    without_fault: tuple[int, int]


def agent_summary(results: Iterable[CaseResult]) -> AgentSummary | None:
    """None when no result ran a loop (a prompt suite)."""
    loops = [r for r in results if is_agent(r.trajectory)]
    if not loops:
        return None
    events = [e for r in loops for e in r.trajectory.tool_events]
    stats = []
    for name in sorted({e.tool for e in events}):
        mine = [e for e in events if e.tool == name]
        latencies = [e.latency_s for e in mine]
        stats.append(ToolStats(
            name, len({e.intent for e in mine}), len(mine), sum(1 for e in mine if e.attempt > 1),
            sum(1 for e in mine if not e.ok), sum(1 for e in mine if e.fault is not None),
            sum(1 for e in mine if e.effect == "write"), percentile(latencies, 50), percentile(latencies, 95),
        ))
    hit = [any(e.fault is not None for e in r.trajectory.tool_events) for r in loops]
    faulted = [r for r, h in zip(loops, hit, strict=True) if h]
    clean = [r for r, h in zip(loops, hit, strict=True) if not h]
    return AgentSummary(
        cases=len(loops), model_calls=sum(len(r.calls) for r in loops), tool_attempts=len(events),
        user_turns=sum(len(r.trajectory.steps) - len(r.calls) - len(r.trajectory.tool_events) for r in loops),
        tools=tuple(stats),
        faults=dict(Counter((e.fault.kind, e.fault.phase) for e in events if e.fault is not None)),
        side_effects_after_fault=sum(1 for e in events if e.fault is not None and e.side_effect),
        terminations=dict(Counter(r.trajectory.termination for r in loops).most_common()),
        with_fault=(sum(r.passed for r in faulted), len(faulted)),
        without_fault=(sum(r.passed for r in clean), len(clean)),
    )


def agents_section(data: ReportData) -> Section | None:
    summary = agent_summary(data.run.results)
    if summary is None:
        return None
    return Section("agents", "Agent trajectories", fragment("agents.html.j2", s=summary))
