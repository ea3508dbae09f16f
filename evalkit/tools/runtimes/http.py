"""The ``http`` runtime: a tool is one route of a service evalkit started (or any base URL)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from evalkit.providers.base import shorten, status_class
from evalkit.tools.faults import ToolResponse
from evalkit.tools.spec import ToolSpec

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def split_arguments(tool: ToolSpec, arguments: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The route with its ``{placeholders}`` filled (URL-quoted), and the arguments left for query or body."""
    assert tool.http is not None
    path = tool.http.path
    rest = dict(arguments)
    for name in tool.http.path_arguments:
        value = rest.pop(name, "")
        path = path.replace("{" + name + "}", quote(str(value), safe=""))
    return path, rest


def response_of(tool_name: str, status: int, text: str, content_type: str, write: bool,
                headers: Mapping[str, str] | None = None) -> ToolResponse:
    """A tool response from an HTTP answer: 2xx with a JSON body is usable; anything else is an error."""
    ok = 200 <= status < 300
    side_effect = (ok if write else False) if status < 500 else None
    if ok and text.strip():
        try:
            json.loads(text)
        except json.JSONDecodeError:
            kind = content_type.split(";")[0].strip() or "no content type"
            return ToolResponse(False, str(status), text, "bad_response",
                                f"tool {tool_name} answered non-JSON ({kind}): {shorten(text, 80)!r}", side_effect,
                                headers=headers)
    if ok:
        return ToolResponse(True, str(status), text, side_effect=side_effect, headers=headers)
    retry_after = None
    if headers and headers.get("retry-after"):
        try:
            retry_after = float(headers["retry-after"])
        except ValueError:
            retry_after = None
    return ToolResponse(False, str(status), text, status_class(status), f"HTTP {status}: {shorten(text, 160)}",
                        side_effect, retry_after, headers)


class HttpRuntime:
    """Calls routes of services over loopback HTTP with httpx."""

    def __init__(self, base_urls: Mapping[str, str], why_down: Callable[[str], str | None]) -> None:
        import httpx

        self._base = dict(base_urls)
        self._why_down = why_down
        self._client = httpx.AsyncClient(timeout=None, trust_env=False)

    async def call(self, tool: ToolSpec, arguments: Mapping[str, Any], timeout_s: float) -> ToolResponse:
        import httpx

        assert tool.http is not None
        path, rest = split_arguments(tool, arguments)
        url = self._base[tool.http.service] + path
        method = tool.http.method
        try:
            if method in BODY_METHODS:
                response = await self._client.request(method, url, json=rest, timeout=timeout_s)
            else:
                params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in rest.items()}
                response = await self._client.request(method, url, params=params, timeout=timeout_s)
        except httpx.TimeoutException:
            return ToolResponse(False, "timeout", "", "timeout", f"{tool.name} did not answer within {timeout_s:g} s",
                                None if tool.effect == "write" else False)
        except httpx.TransportError as exc:
            down = self._why_down(tool.http.service)
            message = down or f"{type(exc).__name__}: {shorten(str(exc) or 'connection failed', 120)}"
            return ToolResponse(False, "connection", "", "connection", message, False)
        headers = {k.lower(): v for k, v in response.headers.items() if k.lower() in ("content-type", "retry-after")}
        return response_of(tool.name, response.status_code, response.text, response.headers.get("content-type", ""),
                           tool.effect == "write", headers)

    async def aclose(self) -> None:
        await self._client.aclose()
