"""The ``openai`` provider: the official SDK, streaming, any OpenAI-compatible endpoint via ``base_url``."""

from __future__ import annotations

import asyncio
import time
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

from evalkit.core.trajectory import ToolCall
from evalkit.errors import PrerequisiteError, install_hint
from evalkit.providers.base import CallFailure, Completion, Request, sdk_failure


def endpoint_host(base_url: str | None, default: str) -> str:
    """Host and port of an endpoint URL (never its path, query or credentials)."""
    parts = urlsplit(base_url or default)
    return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else "unknown"


def _sdk_version() -> str | None:
    try:
        return metadata.version("openai")
    except metadata.PackageNotFoundError:
        return None


def chat_messages(messages: Any) -> list[dict[str, Any]]:
    """evalkit's neutral messages in the Chat Completions form: assistant ``tool_calls`` as functions, tool
    results as ``role: tool`` messages (a failed call's result is an error text, as the API expects)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            out.append({"role": "assistant", "content": message.get("content") or None, "tool_calls": [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in message["tool_calls"]]})
        elif role == "tool":
            content = str(message.get("content") or "")
            if message.get("is_error"):
                content = f"Error: {content}"
            out.append({"role": "tool", "tool_call_id": message["tool_call_id"], "content": content})
        else:
            out.append(dict(message))
    return out


class OpenAIProvider:
    """Chat completions over the OpenAI SDK, streamed so TTFT is measured."""

    name = "openai"

    def __init__(self, *, api_key: str, base_url: str | None = None, name: str = "openai",
                 stream_usage: bool = True, timeout: float = 600.0, schema_dialect: str = "openai") -> None:
        try:
            import openai
        except ImportError:  # pragma: no cover - openai is a core dependency
            raise PrerequisiteError(install_hint("openai", "the openai SDK")) from None
        self.name = name
        self.endpoint = endpoint_host(base_url, "https://api.openai.com/v1")
        self.sdk_version = _sdk_version()
        self._stream_usage = stream_usage
        self._schema_dialect = schema_dialect
        """``openai`` (``{"type": "json_schema", ...}``) or ``llama.cpp`` (``{"type": "json_object", "schema"}``)."""
        # evalkit counts and spaces retries itself, so the SDK must not retry behind its back.
        # The SDK's own timeout is a backstop; each attempt is bounded by asyncio.timeout in complete().
        self._client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout)

    async def complete(self, request: Request, timeout: float) -> Completion:
        import openai

        extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if self._stream_usage else {}
        if request.response_format is not None:
            extra["response_format"] = self.response_format(request.response_format)
        if request.tools:
            extra["tools"] = [{"type": "function", "function": {
                "name": t["name"], "description": t.get("description", ""),
                "parameters": dict(t.get("parameters") or {"type": "object", "properties": {}})}}
                for t in request.tools]
        t0 = time.perf_counter()
        ttft: float | None = None
        pieces: list[str] = []
        tools: dict[int, dict[str, str]] = {}
        info: dict[str, Any] = {}
        try:
            async with asyncio.timeout(timeout):
                # stream=True makes this an AsyncStream; the SDK's overloads cannot see params' keys.
                stream: Any = await self._client.chat.completions.create(
                    model=request.model, messages=chat_messages(request.messages),  # type: ignore[arg-type]
                    stream=True, **extra, **dict(request.params),
                )
                info["request_id"] = stream.response.headers.get("x-request-id")
                async for chunk in stream:
                    info["response_id"] = chunk.id or info.get("response_id")
                    info["model"] = chunk.model or info.get("model")
                    info["fingerprint"] = chunk.system_fingerprint or info.get("fingerprint")
                    if chunk.usage is not None:
                        info["usage"] = chunk.usage
                    for choice in chunk.choices:
                        delta = choice.delta
                        if delta.content:
                            if ttft is None:
                                ttft = time.perf_counter() - t0
                            pieces.append(delta.content)
                        for call in delta.tool_calls or ():
                            # Streamed tool calls arrive in pieces keyed by index: id and name first,
                            # then the arguments' JSON text in fragments.
                            if ttft is None:
                                ttft = time.perf_counter() - t0
                            slot = tools.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                            slot["id"] = call.id or slot["id"]
                            if call.function is not None:
                                slot["name"] = call.function.name or slot["name"]
                                slot["arguments"] += call.function.arguments or ""
                        if choice.finish_reason:
                            info["finish"] = choice.finish_reason
        except Exception as exc:
            failure = sdk_failure(exc, openai, timeout)
            if failure is None:
                raise
            raise failure from None
        if "finish" not in info:
            raise CallFailure("bad_response", "stream ended without a finish reason")
        usage = info.get("usage")
        return Completion(
            text="".join(pieces), request_id=info.get("request_id"), response_id=info.get("response_id"),
            model_returned=info.get("model"), system_fingerprint=info.get("fingerprint"), ttft_s=ttft,
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            stop_reason_raw=info["finish"],
            tool_calls=tuple(ToolCall(id=t["id"] or f"call_{i}", name=t["name"], arguments=t["arguments"] or "{}")
                             for i, t in sorted(tools.items())),
        )

    def response_format(self, spec: Any) -> dict[str, Any]:
        """The ``response_format`` body field for a JSON Schema, in this endpoint's dialect."""
        if self._schema_dialect == "llama.cpp":
            # llama-cpp-python's server compiles the schema into a grammar; it knows no "json_schema" type.
            return {"type": "json_object", "schema": dict(spec["schema"])}
        return {"type": "json_schema",
                "json_schema": {"name": spec.get("name", "answer"), "schema": dict(spec["schema"]), "strict": True}}

    async def aclose(self) -> None:
        await self._client.close()
