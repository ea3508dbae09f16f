"""Everything a live-tools suite starts for one run, opened in order and closed in reverse.

Order: a work folder; the state's seed (so the services find their database); the services (each in its
own process group); the MCP servers; the runtimes; the loopback proxy (for a user's own agent). Closing
— at the end, on Ctrl-C, on any error — stops every process group started, so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from evalkit.errors import ConfigError, PrerequisiteError, install_hint
from evalkit.tools.boundary import CaseTools
from evalkit.tools.faults import ToolResponse
from evalkit.tools.spec import Toolkit, ToolSpec
from evalkit.tools.state import Store, open_store


@dataclass(frozen=True)
class ToolEndpoint:
    """How a user's agent reaches one tool: its proxied URL (HTTP tools) and what it expects."""

    name: str
    effect: str
    description: str
    parameters: Mapping[str, Any] = field(hash=False)
    method: str | None = None
    url: str | None = None
    """The route through evalkit's proxy, with ``{argument}`` placeholders left in (HTTP tools)."""


@dataclass(frozen=True)
class AgentTask:
    """What a ``callable`` agent receives for one case: the user's message and the (proxied) tools."""

    user: str
    vars: Mapping[str, Any] = field(hash=False)
    tools: Mapping[str, ToolEndpoint] = field(hash=False)
    services: Mapping[str, str] = field(hash=False)
    """Service name → base URL through evalkit's proxy (every request is recorded and may be faulted)."""
    mcp: Mapping[str, str] = field(hash=False)
    """MCP server name → its streamable-HTTP URL through evalkit's proxy."""
    call: Callable[[str, Mapping[str, Any]], Awaitable[ToolResponse]] = field(hash=False, repr=False)
    """Calls any declared tool through evalkit's boundary (for runtimes without a URL: python, stdio MCP)."""


def _fallback_parameters(tool: ToolSpec) -> dict[str, Any]:
    names = tool.http.path_arguments if tool.http else ()
    return {"type": "object", "properties": {n: {"type": "string"} for n in names}, "required": list(names)}


class ToolEnv:
    """The live environment of one run: services, runtimes, state and the proxy."""

    def __init__(self, toolkit: Toolkit, work_dir: str) -> None:
        self.toolkit = toolkit
        self.work_dir = work_dir
        self.values = toolkit.placeholders(work_dir)
        self.services: dict[str, Any] = {}
        self.store: Store | None = None
        self.lock = asyncio.Lock()
        self.http: Any = None
        self.mcp: Any = None
        self.proxy: Any = None
        self._python: Any = None
        self.definitions: dict[str, dict[str, Any]] = {}
        """Tool name → ``{"name", "description", "parameters"}`` as the model is shown them."""

    def why_down(self, service: str) -> str | None:
        found = self.services.get(service)
        return found.why_down() if found is not None else None

    def runtime(self, tool: ToolSpec) -> Any:
        if tool.runtime == "http":
            return self.http
        if tool.runtime == "mcp":
            return self.mcp
        return self._python

    def case_tools(self, case_id: str, repeat: int, seed: int, profile: str | None,
                   sink: Callable[[Any], None]) -> CaseTools:
        return CaseTools(case_id=case_id, repeat=repeat, seed=seed,
                         profile=self.toolkit.faults.get(profile) if profile else None, tools=self.toolkit.tools,
                         runtime=self.runtime, tool_timeout_s=self.toolkit.agent.tool_timeout_s, sink=sink)

    def task(self, user: str, vars: Mapping[str, Any], token: str, tools: CaseTools) -> AgentTask:
        """What a user's agent gets for one case (its URLs carry the case's proxy token)."""
        base = self.proxy.url(token) if self.proxy is not None else ""
        endpoints = {}
        for name, spec in self.toolkit.tools.items():
            definition = self.definitions[name]
            endpoints[name] = ToolEndpoint(
                name, spec.effect, definition["description"], definition["parameters"],
                spec.http.method if spec.http else None,
                f"{base}/{spec.http.service}{spec.http.path}" if spec.http and base else None)
        return AgentTask(user=user, vars=dict(vars), tools=endpoints,
                         services={name: f"{base}/{name}" for name in self.services} if base else {},
                         mcp={name: f"{base}/mcp/{name}" for name in self.mcp.urls} if base and self.mcp else {},
                         call=tools.call)


def _user_error(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The evalkit error inside an exception group (the MCP SDK's task groups wrap what passes through them)."""
    from evalkit.errors import EvalkitError

    for exc in group.exceptions:
        if isinstance(exc, EvalkitError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _user_error(exc)
            if found is not None:
                return found
    return None


@contextlib.asynccontextmanager
async def open_env(toolkit: Toolkit, where: str, *, proxy: bool = False) -> AsyncIterator[ToolEnv]:
    """Starts everything the toolkit declares; stops all of it when the block ends, however it ends."""
    try:
        async with _open_env(toolkit, where, proxy=proxy) as env:
            yield env
    except BaseExceptionGroup as group:
        found = _user_error(group)
        if found is None:
            raise
        raise found from None


@contextlib.asynccontextmanager
async def _open_env(toolkit: Toolkit, where: str, *, proxy: bool = False) -> AsyncIterator[ToolEnv]:
    try:
        import httpx  # noqa: F401
    except ImportError:
        raise PrerequisiteError(install_hint("tools", "live tools (httpx, uvicorn, starlette, mcp)")) from None
    from evalkit.tools import services
    from evalkit.tools.runtimes.http import HttpRuntime
    from evalkit.tools.runtimes.python import PythonRuntime

    for folder in toolkit.agent.python_path:
        if folder not in sys.path:
            sys.path.insert(0, folder)
    async with contextlib.AsyncExitStack() as stack:
        work_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="evalkit-tools-"))
        env = ToolEnv(toolkit, work_dir)
        if toolkit.state is not None and toolkit.state.kind in ("sqlite", "postgres"):
            env.store = open_store(toolkit.state, env.values, {})
            stack.push_async_callback(env.store.close)
            await env.store.setup()
        for spec in toolkit.services.values():
            service = await services.start(spec, env.values)
            stack.callback(service.stop)
            env.services[spec.name] = service
        urls = {name: s.url for name, s in env.services.items()}
        if toolkit.state is not None and env.store is None:
            env.store = open_store(toolkit.state, env.values, urls)
            stack.push_async_callback(env.store.close)
            try:
                await env.store.reset()
            except Exception as exc:
                from evalkit.errors import ServiceError

                raise ServiceError(f"{toolkit.state.source}: the first reset failed: {exc}") from None
        env.http = HttpRuntime(urls, env.why_down)
        stack.push_async_callback(env.http.aclose)
        env._python = PythonRuntime()
        if toolkit.mcp:
            from evalkit.tools.runtimes.mcp import McpRuntime

            env.mcp = McpRuntime()
            for server in toolkit.mcp.values():
                await env.mcp.connect(stack, server, env.values, urls)
        _define_tools(env)
        if proxy:
            from evalkit.tools.proxy import ToolProxy

            env.proxy = await stack.enter_async_context(ToolProxy(env, urls))
        yield env


def _define_tools(env: ToolEnv) -> None:
    """The tools as the model sees them; MCP schemas from ``list_tools``; checks every python tool imports."""
    from evalkit.plugins import load_callable

    for name, tool in env.toolkit.tools.items():
        description, parameters = tool.description, tool.parameters
        if tool.runtime == "mcp":
            problem = env.mcp.check(tool)
            if problem:
                raise ConfigError(problem)
            listed_description, listed = env.mcp.schema(tool)
            description = description or listed_description
            parameters = parameters or listed
        elif tool.runtime == "python":
            try:
                load_callable(tool.python or "")
            except ValueError as exc:
                raise ConfigError(f"{tool.source}.python: {exc}") from None
        env.definitions[name] = {"name": name, "description": description or name.replace("_", " "),
                                 "parameters": dict(parameters or _fallback_parameters(tool))}
