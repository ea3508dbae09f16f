"""What happened in one case, in order: every model call and every tool event.

A single-turn prompt yields a trajectory of one :class:`~evalkit.providers.base.CallRecord`; an agent
loop interleaves model calls with :class:`ToolEvent` records (one per attempt at the tool boundary,
faults and retries included). Scorers read the trajectory, never the agent's own account of itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalkit.providers.base import CallRecord

TERMINATIONS = ("complete", "max_turns", "max_tool_calls", "timeout", "error", "user_ended")
"""Why a case's loop ended: the model answered, a limit was hit, or a call failed."""
FAULT_PHASES = ("before", "after")
"""A fault injected before the tool's side effect (nothing written) or after it (written, response lost)."""


@dataclass(frozen=True)
class ToolCall:
    """A tool call the model asked for."""

    id: str
    """The provider's call id (``call_…`` / ``toolu_…``), or one evalkit assigned."""
    name: str
    arguments: str = "{}"
    """The arguments exactly as the model wrote them (JSON text, possibly invalid)."""

    @property
    def parsed_arguments(self) -> Mapping[str, Any] | None:
        """The arguments as a mapping, or None when the model wrote something that is not a JSON object."""
        try:
            value = json.loads(self.arguments or "{}")
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | str) -> ToolCall:
        if isinstance(data, str):  # journals of evalkit 0.1 kept only the tool names
            return cls(id="", name=data)
        return cls(id=str(data.get("id") or ""), name=str(data["name"]), arguments=str(data.get("arguments", "{}")))


@dataclass(frozen=True)
class Fault:
    """A fault evalkit injected at a tool boundary."""

    kind: str
    """``latency``, ``rate_limit``, ``server``, ``timeout``, ``truncated``, ``malformed`` or ``empty``."""
    phase: str = "before"
    """``before`` the side effect or ``after`` it (see :data:`FAULT_PHASES`)."""
    profile: str = ""
    """The fault profile that scheduled it."""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "phase": self.phase, "profile": self.profile, "detail": self.detail}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        return cls(kind=str(data["kind"]), phase=str(data.get("phase", "before")),
                   profile=str(data.get("profile", "")), detail=str(data.get("detail", "")))


@dataclass(frozen=True)
class ToolEvent:
    """One attempt at one tool, as seen at the boundary between the agent and the tool runtime."""

    intent: str
    """The tool call (model call id) this attempt serves; retries of one intent share it."""
    tool: str
    arguments: Mapping[str, Any] = field(default_factory=dict, hash=False)
    attempt: int = 1
    started_at: str = ""
    """ISO 8601 UTC."""
    latency_s: float = 0.0
    effect: str = "read"
    """``read`` or ``write``, as the tool declares."""
    ok: bool = True
    """Whether the agent received a usable result."""
    status: str | None = None
    """Transport status: an HTTP status, an MCP error, ``exception`` …"""
    error_class: str | None = None
    error: str | None = None
    fault: Fault | None = None
    result: str = ""
    """What the agent saw (truncated for storage)."""
    side_effect: bool | None = None
    """Whether the runtime really performed a write (known for injected faults; None when unknown)."""
    idempotency_key: str | None = None
    """The argument the tool declares as its idempotency key (attempts sharing its value are one write)."""

    def to_dict(self) -> dict[str, Any]:
        data = {
            "kind": "tool", "intent": self.intent, "tool": self.tool, "arguments": dict(self.arguments),
            "attempt": self.attempt, "started_at": self.started_at, "latency_s": self.latency_s,
            "effect": self.effect, "ok": self.ok, "status": self.status, "error_class": self.error_class,
            "error": self.error, "fault": self.fault.to_dict() if self.fault else None, "result": self.result,
            "side_effect": self.side_effect,
        }
        if self.idempotency_key is not None:
            data["idempotency_key"] = self.idempotency_key
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolEvent:
        fault = data.get("fault")
        return cls(
            intent=str(data["intent"]), tool=str(data["tool"]), arguments=dict(data.get("arguments") or {}),
            attempt=int(data.get("attempt", 1)), started_at=str(data.get("started_at", "")),
            latency_s=float(data.get("latency_s", 0.0)), effect=str(data.get("effect", "read")),
            ok=bool(data.get("ok", True)), status=data.get("status"), error_class=data.get("error_class"),
            error=data.get("error"), fault=Fault.from_dict(fault) if fault else None,
            result=str(data.get("result", "")), side_effect=data.get("side_effect"),
            idempotency_key=data.get("idempotency_key"),
        )


@dataclass(frozen=True)
class UserTurn:
    """A message from the (possibly simulated) user."""

    content: str
    simulated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "user", "content": self.content, "simulated": self.simulated}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UserTurn:
        return cls(content=str(data["content"]), simulated=bool(data.get("simulated", False)))


@dataclass(frozen=True)
class Trajectory:
    """Every model call, tool event and user turn of one case, in the order they happened."""

    steps: tuple[CallRecord | ToolEvent | UserTurn, ...] = ()
    termination: str = "complete"
    """See :data:`TERMINATIONS`."""
    duration_s: float | None = None
    """Wall time of the whole case (every turn, tool call and backoff)."""

    @property
    def calls(self) -> tuple[CallRecord, ...]:
        """The model calls, in order."""
        from evalkit.providers.base import CallRecord

        return tuple(s for s in self.steps if isinstance(s, CallRecord))

    @property
    def tool_events(self) -> tuple[ToolEvent, ...]:
        """The tool attempts, in order."""
        return tuple(s for s in self.steps if isinstance(s, ToolEvent))

    def to_dict(self) -> dict[str, Any]:
        steps = []
        for step in self.steps:
            data = step.to_dict()
            data.setdefault("kind", "model")
            steps.append(data)
        return {"steps": steps, "termination": self.termination, "duration_s": self.duration_s}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trajectory:
        from evalkit.providers.base import CallRecord

        steps: list[CallRecord | ToolEvent | UserTurn] = []
        for step in data.get("steps", ()):
            kind = step.get("kind", "model")
            if kind == "tool":
                steps.append(ToolEvent.from_dict(step))
            elif kind == "user":
                steps.append(UserTurn.from_dict(step))
            else:
                steps.append(CallRecord.from_dict(step))
        return cls(steps=tuple(steps), termination=str(data.get("termination", "complete")),
                   duration_s=data.get("duration_s"))
