"""Providers behind one Protocol, and the registry that opens them by name.

Built-ins: ``openai``, ``anthropic`` and ``local`` (the embedded model), registered in :data:`PROVIDERS`
with :func:`register_provider` as a plugin's would be. A user provider is named by dotted path
(``provider: mypkg.llm:MyProvider``): a class or factory taking a :class:`ProviderSpec` and returning an
object that satisfies :class:`Provider`. :class:`CallableProvider` runs a user's function as a target.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

from evalkit.core.redact import remember
from evalkit.errors import ConfigError, PrerequisiteError
from evalkit.providers.base import (
    CallFailure,
    CallRecord,
    Completion,
    Provider,
    ProviderSpec,
    Request,
    RetryPolicy,
    call,
    estimate_tokens,
)

__all__ = [
    "PROVIDERS", "CallFailure", "CallRecord", "Completion", "Provider", "ProviderSpec",
    "Request", "RetryPolicy", "call", "estimate_tokens", "open_provider", "register_provider",
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


def api_key(spec: ProviderSpec, provider: str, where: str) -> str:
    """The API key from the environment; a missing key names the variable, never a value."""
    env = spec.api_key_env or DEFAULT_KEY_ENV[provider]
    key = os.environ.get(env)
    if key:
        remember(key)  # whatever a provider echoes of it is masked before it is stored or printed
        return key
    if spec.api_key_env is None and _is_loopback(spec.base_url):
        return "not-needed-on-loopback"
    raise PrerequisiteError(
        f"{where}: target.provider: {provider} needs an API key; expected it in the environment "
        f"variable {env}, got it unset"
    )


ProviderFactory = Callable[[ProviderSpec, str], contextlib.AbstractAsyncContextManager[Provider]]
"""Opens a provider for a spec (``where`` names the file for messages) and closes it afterwards."""
PROVIDERS: dict[str, ProviderFactory] = {}
"""Provider name → factory. The built-ins are registered here the same way a plugin registers its own."""


def register_provider(name: str) -> Callable[[ProviderFactory], ProviderFactory]:
    """Registers a provider factory under ``name`` (usable in YAML as ``provider: <name>``)."""

    def decorate(factory: ProviderFactory) -> ProviderFactory:
        PROVIDERS[name] = factory
        return factory

    return decorate


@contextlib.asynccontextmanager
async def _closing(provider: Provider) -> AsyncIterator[Provider]:
    try:
        yield provider
    finally:
        await provider.aclose()


@register_provider("openai")
def _openai(spec: ProviderSpec, where: str) -> contextlib.AbstractAsyncContextManager[Provider]:
    from evalkit.providers.openai import OpenAIProvider

    return _closing(OpenAIProvider(api_key=api_key(spec, "openai", where), base_url=spec.base_url,
                                   timeout=spec.timeout))


@register_provider("anthropic")
def _anthropic(spec: ProviderSpec, where: str) -> contextlib.AbstractAsyncContextManager[Provider]:
    from evalkit.providers.anthropic import AnthropicProvider

    return _closing(AnthropicProvider(api_key=api_key(spec, "anthropic", where), base_url=spec.base_url,
                                      timeout=spec.timeout))


@register_provider("local")
@contextlib.asynccontextmanager
async def _local(spec: ProviderSpec, where: str) -> AsyncIterator[Provider]:
    """The embedded model, started for the run; or, with ``base_url``, a llama.cpp server already running."""
    from evalkit.providers.local import find_model, serve
    from evalkit.providers.openai import OpenAIProvider

    if spec.base_url:
        # A llama-cpp-python server the user runs: spoken to in its own structured-output dialect.
        async with _closing(OpenAIProvider(api_key="local", base_url=spec.base_url, name="local",
                                           timeout=spec.timeout, schema_dialect="llama.cpp")) as provider:
            yield provider
        return
    find_model()  # fail fast with the install hint, before anything starts
    server_cm = serve()
    server = await asyncio.to_thread(server_cm.__enter__)
    try:
        provider = OpenAIProvider(api_key="local", base_url=server.base_url, name="local", timeout=spec.timeout,
                                  schema_dialect="llama.cpp")
        async with _closing(provider):
            yield provider
    finally:
        server_cm.__exit__(None, None, None)


@contextlib.asynccontextmanager
async def open_provider(spec: ProviderSpec, where: str) -> AsyncIterator[Provider]:
    """Opens the spec's provider for one run (starting the local server if needed) and closes it."""
    from evalkit.plugins import load_callable, load_entry_points

    name = spec.provider
    factory = PROVIDERS.get(name)
    if factory is None and ":" not in name:
        load_entry_points()  # a plugin may register it
        factory = PROVIDERS.get(name)
    if factory is not None:
        async with factory(spec, where) as provider:
            yield provider
        return
    if ":" not in name:
        raise ConfigError(f"{where}: target.provider: expected one of {', '.join(sorted(PROVIDERS))} or a dotted "
                          f"path (pkg.module:Factory), got {name!r}")
    try:
        user_factory = load_callable(name)
    except ValueError as exc:
        raise ConfigError(f"{where}: target.provider: {exc}") from None
    async with _closing(user_factory(spec)) as provider:
        yield provider
