"""The agent target: a case is a conversation with tools, run against live runtimes.

Two modes, chosen by the suite's target:

- a **prompt** target (a provider and a system prompt) runs evalkit's own tool loop: the model is called,
  the tools it asks for are called through the case's :class:`~evalkit.tools.boundary.CaseTools` (seeded
  faults, recording), their results are fed back, until the model answers or a limit is hit
  (``max_turns`` model calls per user turn, ``max_tool_calls`` per case, a per-tool timeout). OpenAI and
  Anthropic use their native tool calling; the embedded model uses evalkit's prompted protocol — one JSON
  object per turn, constrained by a ``response_format`` schema — because llama-cpp-python's
  ``chatml-function-calling`` handler drops tool results from the prompt (upstream issue #1869);
- a **callable** target (the user's own agent, ordinary code) receives an :class:`~evalkit.tools.AgentTask`
  with proxied URLs; evalkit records what reached the tools at the proxy.

Before each case the state is reset; cases sharing the store run one at a time (the lock is released by
the runner once the case's checks have read the state). An optional simulated user answers the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evalkit.core.seeds import draws
from evalkit.core.trajectory import ToolCall, ToolEvent, Trajectory, UserTurn
from evalkit.providers.base import CallFailure, CallRecord, Completion, Provider, Request, RetryPolicy
from evalkit.targets.base import Caller, Outcome, Planned, register_target
from evalkit.targets.prompt import default_model, messages_sha256

if TYPE_CHECKING:
    from evalkit.suite import Case, Suite
    from evalkit.tools.boundary import CaseTools
    from evalkit.tools.environment import AgentTask, ToolEnv
    from evalkit.tools.faults import ToolResponse

RETRYABLE_TOOL_ERRORS = frozenset({"rate_limit", "server", "timeout", "connection"})
ANSWER = "answer"
PROTOCOL = (
    "You can use tools. Reply with exactly one JSON object and nothing else.\n"
    'To call a tool: {{"tool": "<tool name>", "arguments": {{...}}}}\n'
    'To reply to the customer: {{"tool": "answer", "text": "<your reply>"}}\n'
    "Tools:\n{tools}"
)
_TASK: contextvars.ContextVar[AgentTask] = contextvars.ContextVar("evalkit_agent_task")


def first_message(suite: Suite, case: Case) -> str:
    """The case's first user message: its ``user`` template, else the target's ``user`` template."""
    template = case.user or suite.target.user
    return template.render(case.vars, context=f"{case.source}: case {case.id!r}") if template else ""


def prompted_schema(definitions: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The JSON Schema of one reply in the prompted protocol: a call of one declared tool, or an answer."""
    options: list[dict[str, Any]] = [
        {"type": "object", "properties": {"tool": {"const": name}, "arguments": dict(d["parameters"])},
         "required": ["tool", "arguments"]}
        for name, d in definitions.items()
    ]
    options.append({"type": "object", "properties": {"tool": {"const": ANSWER}, "text": {"type": "string"}},
                    "required": ["tool", "text"]})
    return {"anyOf": options}


def describe_tools(definitions: Mapping[str, Mapping[str, Any]]) -> str:
    lines = []
    for name, d in definitions.items():
        properties = d["parameters"].get("properties", {})
        arguments = ", ".join(f'"{k}": {v.get("type", "any")}' for k, v in properties.items())
        lines.append(f"- {name}: {d['description']} Arguments: {{{arguments}}}")
    return "\n".join(lines)


def parse_prompted(text: str) -> tuple[str | None, dict[str, Any], str]:
    """(tool or None for an answer, arguments, answer text) from a prompted-protocol reply."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None, {}, text.strip()
    if not isinstance(data, dict):
        return None, {}, text.strip()
    tool = data.get("tool")
    if tool == ANSWER or not isinstance(tool, str):
        return None, {}, str(data.get("text", text)).strip()
    arguments = data.get("arguments")
    return tool, arguments if isinstance(arguments, dict) else {}, ""


def tool_message(name: str, response: ToolResponse) -> str:
    """A tool's outcome as the model reads it in the prompted protocol."""
    if response.ok:
        return f"Tool {name} returned: {response.body or '(empty)'}"
    detail = f" {response.body}" if response.body and response.body != response.error else ""
    return f"Tool {name} failed: {response.error}{detail}"


class _AgentFunction:
    """The user's agent behind the provider protocol (one attempt: an agent run is never retried blindly)."""

    name = "callable"
    endpoint = None
    sdk_version = None

    def __init__(self, dotted: str, fn: Any) -> None:
        import inspect

        self.dotted = dotted
        self._fn = fn
        self._async = inspect.iscoroutinefunction(fn)

    async def complete(self, request: Request, timeout: float) -> Completion:
        task = _TASK.get()
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                if self._async:
                    result = await self._fn(task)
                else:
                    result = await asyncio.to_thread(contextvars.copy_context().run, self._fn, task)
        except TimeoutError:
            raise CallFailure("timeout", f"{self.dotted} did not return within {timeout:g} s") from None
        except Exception as exc:  # the agent failing is a recorded outcome
            raise CallFailure("client", f"{self.dotted} raised {type(exc).__name__}: {exc}") from None
        return Completion(text=result if isinstance(result, str) else str(result), ttft_s=time.perf_counter() - t0,
                          model_returned=self.dotted, stop_reason_raw="stop")

    async def aclose(self) -> None:
        return None


@dataclass
class _Conversation:
    steps: list[CallRecord | ToolEvent | UserTurn]
    messages: list[dict[str, Any]]
    calls: int = 0
    tool_calls: int = 0


@register_target("agent")
class AgentTarget:
    """Runs each case as an agent conversation against the suite's live tools."""

    kind = "agent"

    def __init__(self, suite: Suite, provider: Provider, env: ToolEnv, agent_fn: _AgentFunction | None,
                 sim_provider: Provider | None) -> None:
        assert suite.toolkit is not None
        self.suite = suite
        self.toolkit = suite.toolkit
        self.provider = provider
        self.env = env
        self._agent_fn = agent_fn
        self._sim_provider = sim_provider
        self.model = agent_fn.dotted if agent_fn else default_model(suite.target, suite.path)
        protocol = self.toolkit.agent.protocol
        self.native = protocol == "native" or (protocol == "auto" and provider.name in ("openai", "anthropic"))

    @classmethod
    def plan(cls, suite: Suite, case: Case) -> Planned:
        user = first_message(suite, case)
        if suite.target.callable:
            return Planned(case, (), messages_sha256({"user": user, "vars": dict(case.vars)}))
        messages: list[dict[str, str]] = []
        if suite.target.system is not None:
            context = f"{case.source}: case {case.id!r}"
            messages.append({"role": "system", "content": suite.target.system.render(case.vars, context=context)})
        messages.append({"role": "user", "content": user})
        return Planned(case, tuple(messages), messages_sha256(messages))

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, suite: Suite) -> AsyncIterator[AgentTarget]:
        from evalkit.providers import ProviderSpec, open_provider
        from evalkit.tools.environment import open_env

        assert suite.toolkit is not None
        callable_target = suite.target.callable is not None
        async with contextlib.AsyncExitStack() as stack:
            env = await stack.enter_async_context(open_env(suite.toolkit, suite.path, proxy=callable_target))
            _check_state_queries(suite, env)
            agent_fn = None
            if callable_target:
                from evalkit.errors import ConfigError
                from evalkit.plugins import load_callable

                dotted = suite.target.callable or ""
                try:
                    agent_fn = _AgentFunction(dotted, load_callable(dotted))
                except ValueError as exc:
                    raise ConfigError(f"{suite.path}: target.callable: {exc}") from None
                provider: Provider = agent_fn
            else:
                provider = await stack.enter_async_context(open_provider(suite.target.provider_spec, suite.path))
            sim_provider = None
            sim = suite.toolkit.user_sim
            if sim is not None:
                if sim.provider is None and not callable_target:
                    sim_provider = provider
                else:
                    spec = ProviderSpec(provider=sim.provider or "local", model=sim.model,
                                        params=suite.target.params, timeout=suite.target.timeout)
                    sim_provider = await stack.enter_async_context(open_provider(spec, suite.path))
            yield cls(suite, provider, env, agent_fn, sim_provider)

    def cacheable(self, case: Case) -> bool:
        return not self.toolkit.writes

    async def run(self, planned: Planned, repeat: int, caller: Caller) -> Outcome:
        case = planned.case
        t0 = time.perf_counter()
        shared = self.env.store is not None
        if shared:
            await self.env.lock.acquire()
        release = self.env.lock.release if shared else None
        steps: list[CallRecord | ToolEvent | UserTurn] = []
        from evalkit.tools.live import LiveState

        live = LiveState(self.toolkit, self.env.store)
        try:
            if self.env.store is not None:
                await self.env.store.reset()
                if any(c.name == "state-unchanged" for c in case.expect):
                    live.before = await self.env.store.snapshot()
            tools = self.env.case_tools(case.id, repeat, caller.seed, case.faults, steps.append)
            if self._agent_fn is not None:
                output, termination = await self._run_callable(planned, repeat, caller, tools, steps)
            else:
                output, termination = await self._run_loop(planned, repeat, caller, tools, steps)
        except Exception as exc:
            from evalkit.errors import EvalkitError

            if not isinstance(exc, EvalkitError) and not isinstance(exc, OSError):
                if release is not None:
                    release()
                raise
            return Outcome("", Trajectory(tuple(steps), "error", time.perf_counter() - t0), state=live,
                           error=f"{type(exc).__name__}: {exc}", release=release)
        except BaseException:
            if release is not None:
                release()
            raise
        return Outcome(output, Trajectory(tuple(steps), termination, time.perf_counter() - t0),
                       state=live, release=release)

    async def _run_callable(self, planned: Planned, repeat: int, caller: Caller, tools: CaseTools,
                            steps: list[CallRecord | ToolEvent | UserTurn]) -> tuple[str, str]:
        case = planned.case
        user = first_message(self.suite, case)
        steps.append(UserTurn(user))
        policy = RetryPolicy(max_attempts=1, timeout_s=self.suite.target.timeout)
        assert self.env.proxy is not None
        with self.env.proxy.case(tools) as token:
            _TASK.set(self.env.task(user, case.vars, token, tools))
            record = await caller.for_provider(self.provider, policy)(
                Request((), self.model, {}, case.vars), case_id=case.id, repeat=repeat, cacheable=False)
            await tools.drain()
        steps.append(record)
        return record.output, "complete" if record.ok else "error"

    async def _run_loop(self, planned: Planned, repeat: int, caller: Caller, tools: CaseTools,
                        steps: list[CallRecord | ToolEvent | UserTurn]) -> tuple[str, str]:
        case = planned.case
        messages = [dict(m) for m in planned.messages]
        definitions = self.env.definitions
        if not self.native:
            protocol = PROTOCOL.format(tools=describe_tools(definitions))
            if messages and messages[0]["role"] == "system":
                messages[0]["content"] = f"{messages[0]['content']}\n\n{protocol}"
            else:
                messages.insert(0, {"role": "system", "content": protocol})
        steps.append(UserTurn(messages[-1]["content"]))
        talk = _Conversation(steps, messages)
        sim = self.toolkit.user_sim if case.user_sim else None
        user_turns = 0
        while True:
            output, termination = await self._turns(talk, case, repeat, caller, tools)
            if termination != "complete" or sim is None or user_turns >= sim.max_turns:
                return output, termination
            reply = await self._simulated_user(talk, case, repeat, caller)
            if reply is None:
                return output, "complete" if talk.steps and isinstance(talk.steps[-1], CallRecord) \
                    and talk.steps[-1].ok else "error"
            if reply == "":
                return output, "user_ended"
            user_turns += 1
            talk.messages.append({"role": "user", "content": reply})
            talk.steps.append(UserTurn(reply, simulated=True))

    async def _turns(self, talk: _Conversation, case: Case, repeat: int, caller: Caller,
                     tools: CaseTools) -> tuple[str, str]:
        """Model calls and tool calls until the model answers the current user turn, or a limit is hit."""
        limits = self.toolkit.agent
        params = dict(self.suite.target.params)
        last_text = ""
        for _ in range(limits.max_turns):
            request = Request(
                tuple(talk.messages), self.model, params, case.vars,
                response_format=None if self.native else {"name": "agent_step",
                                                          "schema": prompted_schema(self.env.definitions)},
                tools=tuple(self.env.definitions.values()) if self.native else (),
            )
            record = await caller(request, case_id=case.id, repeat=repeat, index=talk.calls,
                                  cacheable=not self.toolkit.writes)
            talk.calls += 1
            talk.steps.append(record)
            if not record.ok:
                return last_text, "error"
            if self.native:
                calls = list(record.tool_calls)
                last_text = record.output
                if not calls:
                    talk.messages.append({"role": "assistant", "content": record.output})
                    return record.output, "complete"
                talk.messages.append({"role": "assistant", "content": record.output,
                                      "tool_calls": [c.to_dict() for c in calls]})
            else:
                name, arguments, text = parse_prompted(record.output)
                talk.messages.append({"role": "assistant", "content": record.output})
                if name is None:
                    return text, "complete"
                calls = [ToolCall(f"call_{case.id}_{repeat}_{talk.tool_calls}", name, json.dumps(arguments))]
            for call in calls:
                if talk.tool_calls >= limits.max_tool_calls:
                    return last_text, "max_tool_calls"
                talk.tool_calls += 1
                response = await self._call_tool(tools, call, case, repeat)
                if self.native:
                    talk.messages.append({"role": "tool", "tool_call_id": call.id, "name": call.name,
                                          "content": response.body if response.ok else
                                          (response.error or "failed") + (f": {response.body}" if response.body
                                                                          else ""),
                                          "is_error": not response.ok})
                else:
                    talk.messages.append({"role": "user", "content": tool_message(call.name, response)})
        return last_text, "max_turns"

    async def _call_tool(self, tools: CaseTools, call: ToolCall, case: Case, repeat: int) -> ToolResponse:
        """One requested tool call, with the loop's own retries of transient failures (``tool_retries``)."""
        arguments = call.parsed_arguments
        if arguments is None:
            from evalkit.tools.faults import ToolResponse

            return ToolResponse(False, "bad-arguments", "", "client",
                                f"arguments are not a JSON object: {call.arguments[:80]!r}", False)
        retries = self.toolkit.agent.tool_retries
        response = await tools.call(call.name, arguments, call_id=call.id)
        for attempt in range(1, retries + 1):
            if response.ok or response.error_class not in RETRYABLE_TOOL_ERRORS:
                break
            rng = draws(tools.seed, case.id, repeat, "tool-retry", call.id, attempt)
            wait = response.retry_after_s if response.retry_after_s is not None else rng.uniform(0, 0.2 * 2 ** attempt)
            await asyncio.sleep(min(wait, 5.0))
            response = await tools.call(call.name, arguments, call_id=call.id)
        return response

    async def _simulated_user(self, talk: _Conversation, case: Case, repeat: int, caller: Caller) -> str | None:
        """The simulated user's next message ('' when satisfied), or None when its call failed."""
        sim = self.toolkit.user_sim
        assert sim is not None and self._sim_provider is not None
        system = (f"{sim.instructions}\n\nYou are the customer talking to a support agent. Write your next short "
                  "message to the agent. If your request is done or you have nothing to add, reply with DONE.")
        flipped: list[dict[str, Any]] = [{"role": "system", "content": system}]
        for message in talk.messages:
            if message["role"] == "assistant" and not message.get("tool_calls"):
                text = message["content"]
                if not self.native:
                    _, _, text = parse_prompted(text)
                if text:
                    flipped.append({"role": "user", "content": text})
            elif message["role"] == "user" and not str(message["content"]).startswith("Tool "):
                flipped.append({"role": "assistant", "content": message["content"]})
        sim_caller = caller if self._sim_provider is self.provider else caller.for_provider(self._sim_provider)
        record = await sim_caller(Request(tuple(flipped), sim.model or self.model, dict(self.suite.target.params)),
                                  case_id=case.id, repeat=repeat, index=1000 + talk.calls, cacheable=False)
        talk.calls += 1
        talk.steps.append(record)
        if not record.ok:
            return None
        reply = record.output.strip()
        return "" if not reply or reply.upper().startswith("DONE") else reply


def _check_state_queries(suite: Suite, env: ToolEnv) -> None:
    """Every SQL state query of the suite is tried against the seed before any call: one line per error."""
    from evalkit.errors import ConfigError

    if env.store is None:
        return
    queries: list[tuple[str, str]] = []
    for case in suite.cases:
        for check in case.expect:
            if check.name == "state" and isinstance(check.arg, Mapping) and "sql" in check.arg:
                queries.append((f"{case.source}: case {case.id!r}: expect.state.sql", check.arg["sql"]))
    for tool in (suite.toolkit.tools.values() if suite.toolkit else ()):
        if tool.confirm and "sql" in tool.confirm:
            queries.append((f"{tool.source}.confirm.sql", tool.confirm["sql"]))
    checked: set[str] = set()
    for where, query in queries:
        if query in checked:
            continue
        checked.add(query)
        problem = env.store.check_sql(query)
        if problem:
            raise ConfigError(f"{where}: {problem}")
