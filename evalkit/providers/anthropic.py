"""The ``anthropic`` provider: the official SDK's Messages API, streamed so TTFT is measured."""

from __future__ import annotations

import asyncio
import time
from importlib import metadata
from typing import Any

from evalkit.core.trajectory import ToolCall
from evalkit.errors import PrerequisiteError, install_hint
from evalkit.providers.base import CallFailure, Completion, Request, sdk_failure
from evalkit.providers.openai import endpoint_host

DEFAULT_MAX_TOKENS = 1024
"""The Messages API requires max_tokens; this is used when a suite's params do not set it."""


def anthropic_messages(messages: Any) -> list[dict[str, Any]]:
    """evalkit's neutral messages in the Messages API form: assistant ``tool_use`` blocks, and tool results as
    ``tool_result`` blocks of one user message (``is_error`` set on a failed call)."""
    import json

    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            text = message.get("content")
            blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
            for c in message["tool_calls"]:
                try:
                    arguments = json.loads(c["arguments"] or "{}")
                except json.JSONDecodeError:
                    arguments = {}
                blocks.append({"type": "tool_use", "id": c["id"], "name": c["name"],
                               "input": arguments if isinstance(arguments, dict) else {}})
            out.append({"role": "assistant", "content": blocks})
        elif role == "tool":
            block = {"type": "tool_result", "tool_use_id": message["tool_call_id"],
                     "content": str(message.get("content") or ""), "is_error": bool(message.get("is_error"))}
            previous = out[-1] if out else None
            if previous is not None and previous["role"] == "user" and isinstance(previous["content"], list) \
                    and all(b.get("type") == "tool_result" for b in previous["content"]):
                previous["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        else:
            out.append(dict(message))
    return out


class AnthropicProvider:
    """Messages over the Anthropic SDK."""

    name = "anthropic"

    def __init__(self, *, api_key: str, base_url: str | None = None, timeout: float = 600.0) -> None:
        try:
            import anthropic
        except ImportError:  # pragma: no cover - anthropic is a core dependency
            raise PrerequisiteError(install_hint("anthropic", "the anthropic SDK")) from None
        self.endpoint = endpoint_host(base_url, "https://api.anthropic.com")
        try:
            self.sdk_version: str | None = metadata.version("anthropic")
        except metadata.PackageNotFoundError:  # pragma: no cover
            self.sdk_version = None
        self._client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout)

    def _split(self, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Params the installed SDK names as keywords, and the rest (sent in the JSON body as they are).

        SDK releases add and drop keywords (2.x dropped ``temperature``); a suite's params keep working.
        """
        import inspect

        known = set(inspect.signature(self._client.messages.create).parameters)
        return ({k: v for k, v in params.items() if k in known},
                {k: v for k, v in params.items() if k not in known})

    async def complete(self, request: Request, timeout: float) -> Completion:
        import anthropic

        system = "\n\n".join(m["content"] for m in request.messages if m["role"] == "system")
        messages = anthropic_messages([m for m in request.messages if m["role"] != "system"])
        params, extra = self._split({"max_tokens": DEFAULT_MAX_TOKENS, **request.params})
        if system:
            params["system"] = system
        if extra:
            params["extra_body"] = extra
        if request.tools:
            params["tools"] = [{"name": t["name"], "description": t.get("description", ""),
                                "input_schema": dict(t.get("parameters") or {"type": "object", "properties": {}})}
                               for t in request.tools]
        if request.response_format is not None:
            # Anthropic has no response_format: a forced call of one tool whose input schema is the format.
            name = str(request.response_format.get("name", "answer"))
            params["tools"] = [{"name": name, "description": "Give the answer in this form.",
                                "input_schema": dict(request.response_format["schema"])}]
            params["tool_choice"] = {"type": "tool", "name": name}
        t0 = time.perf_counter()
        ttft: float | None = None
        pieces: list[str] = []
        tools: dict[int, dict[str, str]] = {}
        info: dict[str, Any] = {}
        try:
            async with asyncio.timeout(timeout):
                stream: Any = await self._client.messages.create(
                    model=request.model, messages=messages, stream=True,  # type: ignore[arg-type]
                    **params,
                )
                info["request_id"] = stream.response.headers.get("request-id")
                async for event in stream:  # the SDK's event union, narrowed by event.type
                    if event.type == "message_start":
                        info["response_id"] = event.message.id
                        info["model"] = event.message.model
                        info["prompt_tokens"] = event.message.usage.input_tokens
                    elif event.type == "content_block_start" and event.content_block.type == "tool_use":
                        ttft = ttft if ttft is not None else time.perf_counter() - t0
                        if request.response_format is None:  # the forced format tool is not a tool call
                            tools[event.index] = {"id": event.content_block.id, "name": event.content_block.name,
                                                  "arguments": ""}
                    elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                        ttft = ttft if ttft is not None else time.perf_counter() - t0
                        pieces.append(event.delta.text)
                    elif event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                        # A structured answer arrives as the forced tool's input JSON: it is the output.
                        if request.response_format is not None:
                            pieces.append(event.delta.partial_json)
                        elif event.index in tools:
                            tools[event.index]["arguments"] += event.delta.partial_json
                    elif event.type == "message_delta":
                        info["finish"] = event.delta.stop_reason
                        info["completion_tokens"] = event.usage.output_tokens
        except Exception as exc:
            failure = sdk_failure(exc, anthropic, timeout)
            if failure is None:
                raise
            raise failure from None
        if "finish" not in info:
            raise CallFailure("bad_response", "stream ended without a stop reason")
        return Completion(
            text="".join(pieces), request_id=info.get("request_id"), response_id=info.get("response_id"),
            model_returned=info.get("model"), ttft_s=ttft, prompt_tokens=info.get("prompt_tokens"),
            completion_tokens=info.get("completion_tokens"), stop_reason_raw=info["finish"],
            tool_calls=tuple(ToolCall(id=t["id"], name=t["name"], arguments=t["arguments"] or "{}")
                             for _, t in sorted(tools.items())),
        )

    async def aclose(self) -> None:
        await self._client.close()
