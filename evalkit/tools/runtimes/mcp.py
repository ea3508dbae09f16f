"""The ``mcp`` runtime: tools of real MCP servers, through the official ``mcp`` SDK (1.x), over stdio or
streamable HTTP. Tool schemas come from the server's ``list_tools``."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import tempfile
from collections.abc import Mapping
from typing import Any

from evalkit.errors import PrerequisiteError, ServiceError, install_hint
from evalkit.providers.base import shorten
from evalkit.tools.faults import ToolResponse
from evalkit.tools.spec import McpServerSpec, ToolSpec, expand


def _tail(handle: Any) -> str:
    handle.flush()
    handle.seek(0)
    lines = [line for line in handle.read().splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-400:] if lines else "(no output on stderr)"


class McpRuntime:
    """Open sessions to every MCP server of the suite; :meth:`call` calls one tool."""

    def __init__(self) -> None:
        self.sessions: dict[str, Any] = {}
        self.tools: dict[str, dict[str, Any]] = {}
        """Server → tool name → {description, inputSchema} as ``list_tools`` gave them."""
        self.urls: dict[str, str] = {}
        """Server → streamable-HTTP URL (for servers reached over HTTP)."""

    async def connect(self, stack: contextlib.AsyncExitStack, spec: McpServerSpec, values: Mapping[str, str],
                      service_urls: Mapping[str, str]) -> None:
        """Starts (stdio) or reaches (HTTP) one server, initialises a session and lists its tools."""
        try:
            from mcp import ClientSession, StdioServerParameters
            from mcp.client.stdio import stdio_client
            from mcp.client.streamable_http import streamable_http_client
        except ImportError:
            raise PrerequisiteError(install_hint("tools", "the MCP SDK (package mcp)")) from None
        import asyncio

        errlog = stack.enter_context(tempfile.TemporaryFile("w+", encoding="utf-8"))  # noqa: SIM115
        where = spec.source
        try:
            async with asyncio.timeout(spec.start_timeout_s):
                if spec.transport == "stdio":
                    command = [expand(part, values) for part in spec.command]
                    env = {**os.environ, **{k: expand(v, values) for k, v in spec.env.items()}}
                    params = StdioServerParameters(command=command[0], args=command[1:], env=env,
                                                   cwd=values.get("suite_dir"))
                    read, write = await stack.enter_async_context(stdio_client(params, errlog=errlog))
                else:
                    url = spec.url or (service_urls[spec.service or ""] + spec.path)
                    self.urls[spec.name] = url
                    read, write, _ = await stack.enter_async_context(streamable_http_client(url))
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                listed = await session.list_tools()
        except TimeoutError:
            raise ServiceError(f"{where}: expected the MCP server to answer initialize within "
                               f"{spec.start_timeout_s:g} s, got no answer; stderr: {_tail(errlog)}") from None
        except ServiceError:
            raise
        except Exception as exc:  # the SDK raises many kinds (OSError, McpError, ExceptionGroup …): one line
            raise ServiceError(f"{where}: MCP server {spec.name!r} failed to start ({type(exc).__name__}: "
                               f"{shorten(str(exc), 160)}); stderr: {_tail(errlog)}") from None
        self.sessions[spec.name] = session
        self.tools[spec.name] = {t.name: {"description": t.description or "", "inputSchema": t.inputSchema}
                                 for t in listed.tools}

    def check(self, tool: ToolSpec) -> str | None:
        """Why a declared MCP tool cannot be called (its server does not list it), or None."""
        listed = self.tools.get(tool.mcp_server or "", {})
        if tool.mcp_tool not in listed:
            return (f"{tool.source}.mcp: expected a tool the MCP server {tool.mcp_server!r} lists "
                    f"({', '.join(sorted(listed)) or 'none'}), got {tool.mcp_tool!r}")
        return None

    def schema(self, tool: ToolSpec) -> tuple[str, Mapping[str, Any]]:
        """The tool's description and argument schema as its server declares them."""
        found = self.tools[tool.mcp_server or ""][tool.mcp_tool or ""]
        return found["description"], found["inputSchema"]

    async def call(self, tool: ToolSpec, arguments: Mapping[str, Any], timeout_s: float) -> ToolResponse:
        from mcp.shared.exceptions import McpError

        session = self.sessions[tool.mcp_server or ""]
        write = tool.effect == "write"
        try:
            result = await session.call_tool(tool.mcp_tool or tool.name, dict(arguments),
                                             read_timeout_seconds=datetime.timedelta(seconds=timeout_s))
        except McpError as exc:
            timed_out = "timed out" in str(exc).lower()
            return ToolResponse(False, "timeout" if timed_out else "mcp-error", "",
                                "timeout" if timed_out else "server", f"MCP: {shorten(str(exc), 160)}",
                                None if write else False)
        except Exception as exc:  # a dead server surfaces as a closed stream
            return ToolResponse(False, "connection", "", "connection",
                                f"MCP server {tool.mcp_server!r}: {type(exc).__name__}: {shorten(str(exc), 120)}",
                                None if write else False)
        if result.structuredContent is not None:
            body = json.dumps(result.structuredContent, ensure_ascii=False)
        else:
            body = "\n".join(getattr(block, "text", "") for block in result.content)
        if result.isError:
            return ToolResponse(False, "mcp-error", body, "client", f"MCP tool error: {shorten(body, 160)}", False)
        return ToolResponse(True, "ok", body, side_effect=write)
