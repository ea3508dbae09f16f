"""Providers behind one Protocol, and the registry that opens them by name.

Built-ins: ``openai``, ``anthropic``, ``local`` (the embedded model) and ``callable`` (a user's Python
function). A user provider is named by dotted path (``provider: mypkg.llm:MyProvider``): a class or
factory taking ``target`` and returning an object that satisfies :class:`Provider`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from evalkit.errors import ConfigError, PrerequisiteError
from evalkit.providers.base import (
    CallFailure,
    CallRecord,
    Completion,
    Provider,
    Request,
    RetryPolicy,
    call,
    estimate_tokens,
)

if TYPE_CHECKING:
    from evalkit.suite import Target

__all__ = [
    "CallFailure", "CallRecord", "CallableProvider", "Completion", "Provider", "Request", "RetryPolicy",
    "call", "estimate_tokens", "open_provider",
]

DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


def _is_loopback(base_url: str | None) -> bool:
    host = urlsplit(base_url or "").hostname
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key(target: Target, provider: str, where: str) -> str:
    """The API key from the environment; a missing key names the variable, never a value."""
    env = target.api_key_env or DEFAULT_KEY_ENV[provider]
    key = os.environ.get(env)
    if key:
        return key
    if target.api_key_env is None and _is_loopback(target.base_url):
        return "not-needed-on-loopback"
    raise PrerequisiteError(
        f"{where}: target.provider: {provider} needs an API key; expected it in the environment "
        f"variable {env}, got it unset"
    )


class CallableProvider:
    """A user's function (``mypkg.agent:answer``) called with the case vars; returns the output text."""

    name = "callable"
    endpoint = None
    sdk_version = None

    def __init__(self, dotted: str, fn: Callable[..., Any]) -> None:
        self.dotted = dotted
        self._fn = fn
        self._is_async = inspect.iscoroutinefunction(fn)

    async def complete(self, request: Request, timeout: float) -> Completion:
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                if self._is_async:
                    result = await self._fn(dict(request.vars))
                else:
                    result = await asyncio.to_thread(self._fn, dict(request.vars))
        except TimeoutError:
            raise CallFailure("timeout", f"{self.dotted} did not return within {timeout:g} s") from None
        except Exception as exc:  # the user's app failing is a recorded outcome, not a crash of the run
            raise CallFailure("client", f"{self.dotted} raised {type(exc).__name__}: {exc}") from None
        text = result if isinstance(result, str) else str(result)
        return Completion(text=text, ttft_s=time.perf_counter() - t0, model_returned=self.dotted,
                          stop_reason_raw="stop")

    async def aclose(self) -> None:
        return None


@contextlib.asynccontextmanager
async def open_provider(target: Target, where: str) -> AsyncIterator[Provider]:
    """Opens the target's provider for one run (starting the local server if needed) and closes it."""
    from evalkit.scorers import load_callable

    if target.callable:
        try:
            fn = load_callable(target.callable)
        except ValueError as exc:
            raise ConfigError(f"{where}: target.callable: {exc}") from None
        yield CallableProvider(target.callable, fn)
        return

    name = target.provider or "local"
    provider: Provider
    server = None
    if name == "local":
        from evalkit.providers.local import find_model, serve
        from evalkit.providers.openai import OpenAIProvider

        find_model()  # fail fast with the install hint, before anything starts
        server_cm = serve()
        server = await asyncio.to_thread(server_cm.__enter__)
        provider = OpenAIProvider(api_key="local", base_url=server.base_url, name="local", timeout=target.timeout)
    elif name == "openai":
        from evalkit.providers.openai import OpenAIProvider

        provider = OpenAIProvider(api_key=api_key(target, "openai", where), base_url=target.base_url,
                                  timeout=target.timeout)
    elif name == "anthropic":
        from evalkit.providers.anthropic import AnthropicProvider

        provider = AnthropicProvider(api_key=api_key(target, "anthropic", where), base_url=target.base_url,
                                     timeout=target.timeout)
    elif ":" in name:
        try:
            factory = load_callable(name)
        except ValueError as exc:
            raise ConfigError(f"{where}: target.provider: {exc}") from None
        provider = factory(target)
    else:
        raise ConfigError(f"{where}: target.provider: expected openai, anthropic, local or a dotted path "
                          f"(pkg.module:Factory), got {name!r}")
    try:
        yield provider
    finally:
        await provider.aclose()
        if server is not None:
            server_cm.__exit__(None, None, None)
