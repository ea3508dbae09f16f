"""A loopback HTTP proxy between a user's own agent and its HTTP tools (and streamable-HTTP MCP servers).

Each case gets a token; its URLs are ``http://127.0.0.1:<port>/<token>/<service>/<route>``. Every request
is matched to a declared tool by method and route (an undeclared route is still recorded, as
``<service> <METHOD> <path>``), put through the case's seeded fault schedule, forwarded to the real
service and recorded at the boundary — what the agent really called, not what it says it called.
MCP traffic (``/<token>/mcp/<server>``) is forwarded whole; each ``tools/call`` in it is a recorded attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import socket
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl

from evalkit.tools.boundary import CaseTools
from evalkit.tools.faults import ToolResponse
from evalkit.tools.runtimes.http import response_of
from evalkit.tools.spec import ToolSpec

_HOP = {"content-type", "idempotency-key", "accept", "mcp-session-id", "mcp-protocol-version", "last-event-id"}


def _route(tool: ToolSpec) -> re.Pattern[str]:
    assert tool.http is not None
    pattern = re.sub(r"\\\{([A-Za-z_][A-Za-z0-9_]*)\\\}", r"(?P<\1>[^/]+)", re.escape(tool.http.path))
    return re.compile(f"^{pattern}$")


class ToolProxy:
    """The proxy server (uvicorn, in the run's event loop, on a free 127.0.0.1 port)."""

    def __init__(self, env: Any, urls: Mapping[str, str]) -> None:
        import httpx

        self._env = env
        self._urls = dict(urls)
        self._cases: dict[str, CaseTools] = {}
        self._routes = [(t, _route(t)) for t in env.toolkit.tools.values() if t.http is not None]
        self._client = httpx.AsyncClient(timeout=None, trust_env=False)
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    def url(self, token: str) -> str:
        return f"http://127.0.0.1:{self.port}/{token}"

    @contextlib.contextmanager
    def case(self, tools: CaseTools) -> Any:
        """Registers a case for the duration of the block; yields its token."""
        token = secrets.token_hex(6)
        self._cases[token] = tools
        try:
            yield token
        finally:
            self._cases.pop(token, None)

    def match(self, service: str, method: str, path: str) -> tuple[ToolSpec | None, dict[str, str]]:
        for tool, pattern in self._routes:
            assert tool.http is not None
            if tool.http.service == service and tool.http.method == method:
                found = pattern.match(path)
                if found:
                    return tool, found.groupdict()
        return None, {}

    async def __aenter__(self) -> ToolProxy:
        import uvicorn
        from starlette.applications import Starlette
        from starlette.routing import Route

        app = Starlette(routes=[
            Route("/{token}/mcp/{server}", self._mcp, methods=["GET", "POST", "DELETE"]),
            Route("/{token}/{service}/{path:path}", self._http,
                  methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]),
        ])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit TCP_NODELAY from the listening socket; without it a response's headers
        # and body wait on the client's delayed ACK: +42 ms per proxied call (bench/tools_bench.py).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield  # the run owns Ctrl-C and SIGTERM (uvicorn would swallow them until it stops)

        config = uvicorn.Config(app, log_level="error", access_log=False, lifespan="off")
        self._server = Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._task, 5)
        await self._client.aclose()

    async def _forward(self, method: str, url: str, body: bytes, headers: Mapping[str, str],
                       timeout: float) -> tuple[int, bytes, dict[str, str]]:
        response = await self._client.request(method, url, content=body, headers=dict(headers), timeout=timeout)
        kept = {k.lower(): v for k, v in response.headers.items() if k.lower() in _HOP | {"retry-after"}}
        return response.status_code, response.content, kept

    async def _http(self, request: Any) -> Any:
        import httpx
        from starlette.responses import Response

        tools = self._cases.get(request.path_params["token"])
        service = request.path_params["service"]
        if tools is None or service not in self._urls:
            return Response('{"error": "unknown case or service"}', 404, media_type="application/json")
        path = "/" + request.path_params["path"]
        method = request.method
        body = await request.body()
        tool, path_args = self.match(service, method, path)
        arguments: dict[str, Any] = dict(path_args)
        arguments.update(parse_qsl(request.url.query))
        if body:
            try:
                parsed = json.loads(body)
                arguments.update(parsed if isinstance(parsed, dict) else {"body": parsed})
            except json.JSONDecodeError:
                arguments["body"] = body.decode("utf-8", "replace")[:500]
        name = tool.name if tool is not None else f"{service} {method} {path}"
        effect = tool.effect if tool is not None else ("read" if method in ("GET", "HEAD") else "write")
        headers = {k: v for k, v in request.headers.items() if k.lower() in _HOP}
        upstream = self._urls[service] + path + (f"?{request.url.query}" if request.url.query else "")
        timeout = tools.timeout_for(tool)
        relayed: dict[str, Any] = {}

        async def perform() -> ToolResponse:
            try:
                status, content, kept = await self._forward(method, upstream, body, headers, timeout)
            except httpx.TimeoutException:
                return ToolResponse(False, "timeout", "", "timeout", f"{name} did not answer within {timeout:g} s",
                                    None if effect == "write" else False)
            except httpx.TransportError as exc:
                down = self._env.why_down(service)
                return ToolResponse(False, "connection", "", "connection", down or f"{type(exc).__name__}", False)
            relayed.update(status=status, content=content, headers=kept)
            text = content.decode("utf-8", "replace")
            return response_of(name, status, text, kept.get("content-type", ""), effect == "write", kept)

        seen = await tools.attempt_detached(name, arguments, perform, effect=effect)
        if seen.status == "timeout":
            return Response('{"error": "gateway timeout"}', 504, media_type="application/json")
        if seen.status == "connection":
            return Response(json.dumps({"error": seen.error}), 502, media_type="application/json")
        injected = relayed.get("content") is None or seen.body != relayed["content"].decode("utf-8", "replace")
        status = int(seen.status or 200) if (seen.status or "").isdigit() else 200
        content = seen.body.encode() if injected else relayed["content"]
        out_headers = dict(seen.headers or {}) if injected else dict(relayed.get("headers") or {})
        out_headers.pop("content-length", None)
        media = out_headers.pop("content-type", "application/json")
        return Response(content, status, headers=out_headers, media_type=media)

    async def _mcp(self, request: Any) -> Any:
        """Forwards streamable-HTTP MCP traffic; each ``tools/call`` is one recorded, faultable attempt."""
        from starlette.responses import Response

        tools = self._cases.get(request.path_params["token"])
        server = request.path_params["server"]
        upstream = self._env.mcp.urls.get(server) if self._env.mcp is not None else None
        if tools is None or upstream is None:
            return Response('{"error": "unknown case or MCP server"}', 404, media_type="application/json")
        if request.method == "GET":
            return Response(status_code=405)  # no server-initiated stream through the proxy (allowed by the spec)
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() in _HOP}
        try:
            message = json.loads(body) if body else {}
        except json.JSONDecodeError:
            message = {}
        if not (isinstance(message, dict) and message.get("method") == "tools/call"):
            status, content, kept = await self._forward(request.method, upstream, body, headers, 60.0)
            media = kept.pop("content-type", "application/json")
            return Response(content, status, headers=kept, media_type=media)
        params = message.get("params") or {}
        name = str(params.get("name", ""))
        spec = next((t for t in self._env.toolkit.tools.values() if t.mcp_server == server and t.mcp_tool == name),
                    None)
        tool_name = spec.name if spec is not None else f"{server} {name}"
        effect = spec.effect if spec is not None else "write"
        relayed: dict[str, Any] = {}

        async def perform() -> ToolResponse:
            status, content, kept = await self._forward("POST", upstream, body, headers, tools.timeout_for(spec))
            relayed.update(status=status, content=content, headers=kept)
            text = content.decode("utf-8", "replace")
            failed = status >= 400 or '"isError":true' in text.replace(" ", "")
            return ToolResponse(not failed, str(status), text, "client" if failed else None,
                                "MCP tool error" if failed else None, (effect == "write") and not failed)

        seen = await tools.attempt_detached(tool_name, dict(params.get("arguments") or {}), perform, effect=effect)
        if seen.status == "timeout":
            return Response('{"error": "gateway timeout"}', 504, media_type="application/json")
        if "content" not in relayed or seen.body != relayed["content"].decode("utf-8", "replace"):
            return Response(seen.body, int(seen.status or 502) if (seen.status or "").isdigit() else 502,
                            media_type="application/json")
        kept = dict(relayed["headers"])
        media = kept.pop("content-type", "application/json")
        return Response(relayed["content"], relayed["status"], headers=kept, media_type=media)
