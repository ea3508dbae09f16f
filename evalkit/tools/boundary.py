"""The boundary between an agent and its tools: every attempt is numbered, faulted (seeded) and recorded.

One :class:`CaseTools` serves one case in one repeat. Whatever calls a tool — evalkit's own agent loop,
the loopback proxy in front of a user's app, or a user's agent through :meth:`CaseTools.call` — goes
through :meth:`CaseTools.attempt`, which draws the fault, runs the real runtime and appends a
:class:`~evalkit.core.trajectory.ToolEvent`. The trace never depends on the agent's account of itself.

Intents: an attempt repeating the previous attempt of the same tool with the same arguments after it
failed is a *retry* of that intent (same ``intent``, next ``attempt``); after a success it is a new,
redundant intent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from evalkit.core.trajectory import ToolEvent
from evalkit.tools import faults
from evalkit.tools.faults import Perform, ToolResponse
from evalkit.tools.spec import FaultProfile, ToolSpec

RESULT_LIMIT = 2000
"""Characters of a tool's answer kept in the trace."""


def canonical(arguments: Mapping[str, Any]) -> str:
    """Arguments as canonical JSON (what decides that two calls are 'the same')."""
    return json.dumps(arguments, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


class CaseTools:
    """The tool boundary of one case in one repeat."""

    def __init__(self, *, case_id: str, repeat: int, seed: int, profile: FaultProfile | None,
                 tools: Mapping[str, ToolSpec], runtime: Callable[[ToolSpec], Any], tool_timeout_s: float,
                 sink: Callable[[ToolEvent], None]) -> None:
        self.case_id = case_id
        self.repeat = repeat
        self.seed = seed
        self.profile = profile
        self.tools = tools
        self._runtime = runtime
        self._timeout = tool_timeout_s
        self._sink = sink
        self._calls: dict[str, int] = {}
        self._last: dict[tuple[str, str], tuple[str, int, bool]] = {}
        self._intents = 0
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[ToolResponse]] = set()

    def timeout_for(self, tool: ToolSpec | None) -> float:
        return tool.timeout_s if tool is not None and tool.timeout_s else self._timeout

    async def _number(self, name: str, arguments: Mapping[str, Any], call_id: str | None) -> tuple[int, str, int]:
        async with self._lock:
            number = self._calls[name] = self._calls.get(name, 0) + 1
            key = (name, canonical(arguments))
            previous = self._last.get(key)
            if previous is not None and not previous[2]:
                intent, attempt = previous[0], previous[1] + 1
            else:
                self._intents += 1
                intent, attempt = call_id or f"t{self._intents}", 1
            self._last[key] = (intent, attempt, False)
            return number, intent, attempt

    async def attempt(self, name: str, arguments: Mapping[str, Any], perform: Perform, *, effect: str,
                      call_id: str | None = None) -> ToolResponse:
        """One attempt at a tool through the fault schedule; records it and returns what the agent sees."""
        number, intent, attempt = await self._number(name, arguments, call_id)
        rule = faults.decide(self.profile, self.seed, self.case_id, self.repeat, name, number)
        started = datetime.now(UTC).isoformat(timespec="microseconds")
        t0 = time.perf_counter()
        spec = self.tools.get(name)
        timeout = self.timeout_for(spec)

        async def bounded() -> ToolResponse:
            try:
                async with asyncio.timeout(timeout):
                    return await perform()
            except TimeoutError:
                return ToolResponse(False, "timeout", "", "timeout", f"{name} did not answer within {timeout:g} s",
                                    None if effect == "write" else False)

        response, fault = await faults.apply(rule, self.profile.name if self.profile else "", bounded, timeout,
                                             effect == "write")
        if effect != "write":
            response = _no_write(response)
        async with self._lock:
            self._last[(name, canonical(arguments))] = (intent, attempt, response.ok)
        self._sink(ToolEvent(
            intent=intent, tool=name, arguments=dict(arguments), attempt=attempt, started_at=started,
            latency_s=round(time.perf_counter() - t0, 6), effect=effect, ok=response.ok, status=response.status,
            error_class=response.error_class, error=response.error, fault=fault,
            result=response.body[:RESULT_LIMIT], side_effect=response.side_effect,
            idempotency_key=spec.idempotency_key if spec is not None else None,
        ))
        return response

    async def attempt_detached(self, name: str, arguments: Mapping[str, Any], perform: Perform, *, effect: str,
                               call_id: str | None = None) -> ToolResponse:
        """:meth:`attempt`, finished and recorded even when the caller gives up (a client that disconnects
        from the proxy mid-fault); :meth:`drain` waits for such attempts before the trace is closed."""
        task = asyncio.ensure_future(self.attempt(name, arguments, perform, effect=effect, call_id=call_id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return await asyncio.shield(task)

    async def drain(self) -> None:
        """Waits for attempts still in progress (so every one of them is in the trace)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def call(self, name: str, arguments: Mapping[str, Any], call_id: str | None = None) -> ToolResponse:
        """Calls a declared tool through its runtime (the agent loop, and a user's agent, use this)."""
        spec = self.tools.get(name)
        if spec is None:
            response = ToolResponse(False, "unknown-tool", "", "client",
                                    f"unknown tool {name!r}; expected one of: {', '.join(sorted(self.tools))}", False)
            self._sink(ToolEvent(intent=call_id or f"t{self._intents + 1}", tool=name, arguments=dict(arguments),
                                 started_at=datetime.now(UTC).isoformat(timespec="microseconds"), ok=False,
                                 status=response.status, error_class="client", error=response.error,
                                 side_effect=False))
            return response
        runtime = self._runtime(spec)
        timeout = self.timeout_for(spec)

        async def perform() -> ToolResponse:
            result: ToolResponse = await runtime.call(spec, arguments, timeout)
            return result

        return await self.attempt(name, arguments, perform, effect=spec.effect, call_id=call_id)


def _no_write(response: ToolResponse) -> ToolResponse:
    from dataclasses import replace

    return replace(response, side_effect=False) if response.side_effect is not False else response
