"""The live-tools part of a suite: tools, services, MCP servers, state, fault profiles, agent limits.

Parsed from the suite YAML after schema validation (:func:`parse_toolkit`); every cross-reference (a tool
naming an unknown service or MCP server, a fault rule naming no declared tool, a case naming an unknown
fault profile) is one :class:`~evalkit.errors.ConfigError` line with file, line and field.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError

EFFECTS = ("read", "write")
FAULT_KINDS = ("latency", "rate_limit", "server", "timeout", "truncated", "malformed", "empty")
"""What a fault rule injects (see :mod:`evalkit.tools.faults`)."""
NO_FAULTS = "none"
"""The profile name that injects nothing (always defined)."""
_PLACEHOLDER = re.compile(r"\{(port|python|suite_dir|work_dir)\}")


def expand(text: str, values: Mapping[str, str]) -> str:
    """Replaces ``{port}``, ``{python}``, ``{suite_dir}`` and ``{work_dir}``; other braces are left alone."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


@dataclass(frozen=True)
class HttpBinding:
    """A tool that is one HTTP route of a service."""

    service: str
    method: str
    path: str
    """May hold ``{argument}`` placeholders, filled from the call's arguments (URL-quoted)."""

    @property
    def path_arguments(self) -> tuple[str, ...]:
        return tuple(re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", self.path))


@dataclass(frozen=True)
class ToolSpec:
    """One tool the agent may call, bound to a real runtime."""

    name: str
    runtime: str
    """``http``, ``mcp`` or ``python``."""
    effect: str = "read"
    """``read`` or ``write`` (a write makes the case uncacheable and is checked for duplicates)."""
    description: str = ""
    parameters: Mapping[str, Any] | None = field(default=None, hash=False)
    """JSON Schema of the arguments; MCP tools take theirs from ``list_tools`` when this is None."""
    idempotency_key: str | None = None
    """The argument that makes a repeated write safe (the service deduplicates on it)."""
    http: HttpBinding | None = None
    mcp_server: str | None = None
    mcp_tool: str | None = None
    python: str | None = None
    """``package.module:function`` taking the arguments as keywords."""
    timeout_s: float | None = None
    """Per-tool timeout; else the agent's ``tool_timeout``."""
    claims: tuple[str, ...] = ()
    """Regular expressions that, in a final answer, claim this write was done (e.g. ``cancel+ed``)."""
    confirm: Mapping[str, Any] | None = field(default=None, hash=False)
    """A state query that confirms this write happened, with the call's arguments as parameters."""
    source: str = ""


@dataclass(frozen=True)
class ServiceSpec:
    """A process evalkit starts for the run."""

    name: str
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    ready_http: str | None = "/health"
    """A path that answers 2xx once the service is ready (None: the port accepting connections is enough)."""
    start_timeout_s: float = 30.0
    cwd: str | None = None
    source: str = ""


@dataclass(frozen=True)
class McpServerSpec:
    """An MCP server: a command spoken to over stdio, or a streamable-HTTP URL (of a service, or any)."""

    name: str
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    url: str | None = None
    service: str | None = None
    path: str = "/mcp"
    start_timeout_s: float = 30.0
    source: str = ""

    @property
    def transport(self) -> str:
        return "stdio" if self.command else "http"


@dataclass(frozen=True)
class StateSpec:
    """The store a case changes: reset before each case, queried by state checks."""

    kind: str
    """``sqlite``, ``postgres``, ``http`` or ``python``."""
    path: str | None = None
    """sqlite: the database file the services use (placeholders expanded)."""
    seed: str | None = None
    """sqlite/postgres: an .sql script (or, for sqlite, a .db file) the store starts from in every case."""
    url: str | None = None
    """postgres: a server URL (its database is ignored); ``url_env`` names a variable holding it instead."""
    url_env: str | None = None
    database: str | None = None
    """postgres: the database the services use, recreated from a template per case."""
    service: str | None = None
    """http: the service holding the reset and snapshot endpoints."""
    reset: str | None = None
    """http: ``POST /reset``; python: ``pkg.module:function``."""
    snapshot: str | None = None
    """http: ``GET /snapshot``; python: ``pkg.module:function`` returning JSON-able data."""
    source: str = ""


@dataclass(frozen=True)
class FaultRule:
    """One line of a fault profile: what to inject into which tool, how often."""

    tool: str
    """A tool name or ``*``."""
    kind: str
    phase: str = "before"
    probability: float | None = None
    nth: tuple[int, ...] = ()
    """Inject on these call numbers of the tool within a case (1-based); else by probability."""
    latency_s: float = 0.0
    retry_after_s: float | None = None
    status: int | None = None
    hold_s: float = 1.0
    """timeout: how long the caller waits before the call gives up."""


@dataclass(frozen=True)
class FaultProfile:
    """A named, seeded fault schedule."""

    name: str
    rules: tuple[FaultRule, ...] = ()


@dataclass(frozen=True)
class UserSim:
    """A simulated user who answers the agent for a few turns."""

    instructions: str
    max_turns: int = 2
    provider: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class AgentSettings:
    """Limits of the agent loop."""

    max_turns: int = 6
    """Model calls per user turn."""
    max_tool_calls: int = 8
    tool_timeout_s: float = 10.0
    tool_retries: int = 0
    """Retries the loop itself makes of a tool attempt that failed transiently (429, 5xx, timeout)."""
    protocol: str = "auto"
    """``native`` (the API's tool calling), ``prompted`` (evalkit's JSON protocol) or ``auto``."""
    python_path: tuple[str, ...] = ()
    """Folders (absolute) added to ``sys.path`` for python tools and a callable agent."""


@dataclass(frozen=True)
class Toolkit:
    """Everything live a suite declares."""

    tools: Mapping[str, ToolSpec] = field(default_factory=dict, hash=False)
    services: Mapping[str, ServiceSpec] = field(default_factory=dict, hash=False)
    mcp: Mapping[str, McpServerSpec] = field(default_factory=dict, hash=False)
    state: StateSpec | None = None
    faults: Mapping[str, FaultProfile] = field(default_factory=dict, hash=False)
    agent: AgentSettings = AgentSettings()
    user_sim: UserSim | None = None
    suite_dir: str = "."

    @property
    def writes(self) -> frozenset[str]:
        """Names of the tools that change state."""
        return frozenset(n for n, t in self.tools.items() if t.effect == "write")

    def placeholders(self, work_dir: str, port: int | None = None) -> dict[str, str]:
        values = {"python": sys.executable, "suite_dir": self.suite_dir, "work_dir": work_dir}
        if port is not None:
            values["port"] = str(port)
        return values


Where = Callable[..., str]
"""``where(*field_path)`` → ``file:line: field.path`` for a message."""


def _command(value: Any) -> tuple[str, ...]:
    import shlex

    return tuple(shlex.split(value)) if isinstance(value, str) else tuple(str(v) for v in value)


def _profile(name: str, raw: list[dict[str, Any]], tools: Mapping[str, ToolSpec], where: Where) -> FaultProfile:
    rules = []
    for index, item in enumerate(raw):
        tool = item["tool"]
        if tool != "*" and tool not in tools:
            raise ConfigError(f"{where('faults', name, index, 'tool')}: expected a declared tool or '*', got "
                              f"{tool!r} (tools: {', '.join(sorted(tools)) or 'none'})")
        nth = item.get("nth", ())
        rules.append(FaultRule(
            tool=tool, kind=item["kind"], phase=item.get("phase", "before"),
            probability=item.get("probability"), nth=tuple([nth] if isinstance(nth, int) else nth),
            latency_s=float(item.get("latency", 0.0)), retry_after_s=item.get("retry_after"),
            status=item.get("status"), hold_s=float(item.get("hold", 1.0)),
        ))
    return FaultProfile(name, tuple(rules))


def parse_toolkit(raw: Mapping[str, Any], suite_dir: Path, where: Where) -> Toolkit | None:
    """The suite's live-tools sections, cross-checked; None when the suite declares no tools."""
    if "tools" not in raw:
        for section in ("services", "mcp", "state", "faults", "user_sim"):
            if section in raw:
                raise ConfigError(f"{where(section)}: expected a 'tools' section beside '{section}', got none")
        return None
    services = {}
    for name, item in (raw.get("services") or {}).items():
        ready = item.get("ready", {"http": "/health"})
        services[name] = ServiceSpec(
            name=name, command=_command(item["command"]), env={k: str(v) for k, v in item.get("env", {}).items()},
            ready_http=ready.get("http") if isinstance(ready, dict) else None,
            start_timeout_s=float(item.get("start_timeout", 30)), cwd=item.get("cwd"), source=where("services", name),
        )
    mcp = {}
    for name, item in (raw.get("mcp") or {}).items():
        service = item.get("service")
        if service is not None and service not in services:
            raise ConfigError(f"{where('mcp', name, 'service')}: expected one of the declared services "
                              f"({', '.join(sorted(services)) or 'none'}), got {service!r}")
        mcp[name] = McpServerSpec(
            name=name, command=_command(item["command"]) if "command" in item else (),
            env={k: str(v) for k, v in item.get("env", {}).items()}, url=item.get("url"), service=service,
            path=item.get("path", "/mcp"), start_timeout_s=float(item.get("start_timeout", 30)),
            source=where("mcp", name),
        )
    tools: dict[str, ToolSpec] = {}
    for name, item in raw["tools"].items():
        http = mcp_server = mcp_tool = python = None
        if "http" in item:
            binding = item["http"]
            if binding["service"] not in services:
                raise ConfigError(f"{where('tools', name, 'http', 'service')}: expected one of the declared "
                                  f"services ({', '.join(sorted(services)) or 'none'}), got {binding['service']!r}")
            http = HttpBinding(binding["service"], binding.get("method", "GET").upper(), binding["path"])
            runtime = "http"
        elif "mcp" in item:
            binding = item["mcp"]
            server = binding if isinstance(binding, str) else binding["server"]
            if server not in mcp:
                raise ConfigError(f"{where('tools', name, 'mcp')}: expected one of the declared MCP servers "
                                  f"({', '.join(sorted(mcp)) or 'none'}), got {server!r}")
            mcp_server, mcp_tool = server, (name if isinstance(binding, str) else binding.get("tool", name))
            runtime = "mcp"
        else:
            python, runtime = item["python"], "python"
        for pattern in item.get("claims", ()):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"{where('tools', name, 'claims')}: expected a regular expression, got "
                                  f"{pattern!r} ({exc})") from None
        tools[name] = ToolSpec(
            name=name, runtime=runtime, effect=item.get("effect", "read"), description=item.get("description", ""),
            parameters=item.get("parameters"), idempotency_key=item.get("idempotency_key"), http=http,
            mcp_server=mcp_server, mcp_tool=mcp_tool, python=python, timeout_s=item.get("timeout"),
            claims=tuple(item.get("claims", ())), confirm=item.get("confirm"), source=where("tools", name),
        )
    state = None
    if "state" in raw:
        ((kind, item),) = raw["state"].items()
        if kind == "http" and item["service"] not in services:
            raise ConfigError(f"{where('state', 'http', 'service')}: expected one of the declared services "
                              f"({', '.join(sorted(services)) or 'none'}), got {item['service']!r}")
        seed = item.get("seed")
        state = StateSpec(
            kind=kind, path=item.get("path"), seed=str((suite_dir / seed).resolve()) if seed else None,
            url=item.get("url"), url_env=item.get("url_env"), database=item.get("database"),
            service=item.get("service"), reset=item.get("reset"), snapshot=item.get("snapshot"),
            source=where("state", kind),
        )
        if seed and not Path(state.seed or "").is_file():
            raise ConfigError(f"{where('state', kind, 'seed')}: file {seed!r} does not exist")
    faults = {NO_FAULTS: FaultProfile(NO_FAULTS)}
    for name, rules in (raw.get("faults") or {}).items():
        faults[name] = _profile(name, rules, tools, where)
    agent_raw = raw.get("agent", {})
    agent = AgentSettings(
        max_turns=int(agent_raw.get("max_turns", 6)), max_tool_calls=int(agent_raw.get("max_tool_calls", 8)),
        tool_timeout_s=float(agent_raw.get("tool_timeout", 10.0)), tool_retries=int(agent_raw.get("tool_retries", 0)),
        protocol=agent_raw.get("protocol", "auto"),
        python_path=tuple(str((suite_dir / p).resolve()) for p in agent_raw.get("python_path", ())),
    )
    sim = raw.get("user_sim")
    user_sim = UserSim(sim["instructions"], int(sim.get("max_turns", 2)), sim.get("provider"),
                       sim.get("model")) if sim else None
    return Toolkit(tools=tools, services=services, mcp=mcp, state=state, faults=faults, agent=agent,
                   user_sim=user_sim, suite_dir=str(suite_dir.resolve()))
