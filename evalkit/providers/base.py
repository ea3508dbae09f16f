"""The Provider protocol, the CallRecord every call yields, and retry accounting.

Errors are data: a provider raises :class:`CallFailure` for one failed attempt; :func:`call` retries with
backoff (honouring ``retry-after``) and always returns a :class:`CallRecord` that lists every attempt.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from evalkit.core.redact import redact
from evalkit.core.trajectory import ToolCall

ERROR_CLASSES = ("timeout", "rate_limit", "server", "connection", "bad_response", "auth", "client")
"""Normalised error classes of a failed attempt."""
RETRYABLE = frozenset({"timeout", "rate_limit", "server", "connection", "bad_response"})

STOP_REASONS = ("complete", "length", "content_filter", "tool_call", "error")
"""Normalised stop reasons."""
_STOP_MAP = {
    "stop": "complete", "end_turn": "complete", "stop_sequence": "complete", "eos": "complete",
    "length": "length", "max_tokens": "length",
    "content_filter": "content_filter", "refusal": "content_filter", "safety": "content_filter",
    "tool_calls": "tool_call", "tool_use": "tool_call", "function_call": "tool_call",
}

TOKEN_ESTIMATE_METHOD = "chars/4"
"""How local token estimates are made: ceil(characters / 4), the usual rule of thumb for English."""


def shorten(text: str, limit: int = 200) -> str:
    """Folds white space and cuts ``text`` to ``limit`` characters for a one-line message."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def transport_errors() -> tuple[type[BaseException], ...]:
    """The HTTP client's transport errors (a connection dropped mid-stream surfaces as one of these).

    The provider SDKs moved from httpx to its successor httpx2; either may be the one installed.
    """
    found: list[type[BaseException]] = []
    for module_name in ("httpx2", "httpx"):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        found.append(module.TransportError)
    return tuple(found)


def estimate_tokens(text: str) -> int:
    """A provider-independent token estimate (see :data:`TOKEN_ESTIMATE_METHOD`)."""
    return math.ceil(len(text) / 4)


def normalise_stop(raw: str | None) -> str:
    """Maps a provider's stop reason onto :data:`STOP_REASONS`."""
    if raw is None:
        return "complete"
    return _STOP_MAP.get(raw, "complete" if raw.startswith("stop") else raw)


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date)."""
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # neither seconds nor an HTTP date: fall back to our own backoff
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class CallFailure(Exception):
    """One failed attempt, classified."""

    def __init__(self, error_class: str, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.status = status
        self.retry_after = retry_after


def sdk_failure(exc: BaseException, sdk: Any, timeout: float) -> CallFailure | None:
    """Classifies an exception from an official SDK (openai and anthropic share these class names).

    None means the exception is not a provider failure (a bug of ours): let it propagate.
    """
    if isinstance(exc, TimeoutError):
        return CallFailure("timeout", f"no complete answer within {timeout:g} s")
    if isinstance(exc, sdk.APITimeoutError):  # a subclass of APIConnectionError, so it goes first
        return CallFailure("timeout", f"request timed out after {timeout:g} s")
    if isinstance(exc, sdk.APIStatusError):
        status = exc.status_code
        return CallFailure(status_class(status), f"HTTP {status}: {shorten(exc.message)}", status=status,
                           retry_after=parse_retry_after(exc.response.headers))
    if isinstance(exc, sdk.APIConnectionError):
        return CallFailure("connection", shorten(str(exc.__cause__ or exc)))
    if isinstance(exc, transport_errors()):  # the connection dropped mid-stream
        return CallFailure("connection", f"{type(exc).__name__}: {shorten(str(exc)) or 'connection lost'}")
    if isinstance(exc, (sdk.APIResponseValidationError, ValueError, KeyError)):
        return CallFailure("bad_response", f"{type(exc).__name__}: {shorten(str(exc))}")
    return None


def status_class(status: int) -> str:
    """Error class of an HTTP status."""
    if status == 429:
        return "rate_limit"
    if status == 408:
        return "timeout"
    if status in (401, 403):
        return "auth"
    if status >= 500:
        return "server"
    return "client"


@dataclass(frozen=True)
class ProviderSpec:
    """Which model endpoint to call and how: what a suite target or a judge spec says about its provider."""

    provider: str = "local"
    """A registered provider name (``openai``, ``anthropic``, ``local`` …) or a dotted path to a factory."""
    model: str | None = None
    """The model id to request; None means the provider's default (only ``local`` has one)."""
    base_url: str | None = None
    api_key_env: str | None = None
    """The environment variable holding the key (never the key itself)."""
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """Sampling parameters sent with every call (temperature, max_tokens, seed …)."""
    timeout: float = 60.0
    """Seconds allowed for one attempt (connect to last token)."""
    max_attempts: int = 3
    """Attempts per call, the first included; retries back off and honour ``retry-after``."""

    @property
    def retry_policy(self) -> RetryPolicy:
        """How this provider's failed attempts are retried."""
        return RetryPolicy(max_attempts=self.max_attempts, timeout_s=self.timeout)


@dataclass(frozen=True)
class Request:
    """What a provider is asked to do for one call."""

    messages: tuple[Mapping[str, Any], ...]
    """Chat messages (role, content), system first."""
    model: str
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    vars: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """The case's vars (what a callable target receives)."""
    response_format: Mapping[str, Any] | None = field(default=None, hash=False)
    """A JSON Schema the answer must follow (structured output): ``{"name": ..., "schema": {...}}``.

    OpenAI-compatible endpoints (the embedded llama.cpp server included) get it as ``response_format``
    of type ``json_schema``; Anthropic gets a forced tool call whose input schema it is.
    """
    tools: tuple[Mapping[str, Any], ...] = field(default=(), hash=False)
    """Tools the model may call natively: ``{"name", "description", "parameters"}`` (a JSON Schema) each.

    Messages may then hold evalkit's neutral tool turns, which each provider converts to its API's form:
    ``{"role": "assistant", "content": str, "tool_calls": [{"id", "name", "arguments"}]}`` and
    ``{"role": "tool", "tool_call_id", "name", "content", "is_error": bool}``.
    """


@dataclass(frozen=True)
class Completion:
    """A successful attempt, as the provider reported it."""

    text: str
    request_id: str | None = None
    response_id: str | None = None
    model_returned: str | None = None
    system_fingerprint: str | None = None
    ttft_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    stop_reason_raw: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    """Tools the model asked to call, with their ids and arguments."""


@dataclass(frozen=True)
class Attempt:
    """One try of a call."""

    number: int
    started_at: float
    """Unix time."""
    duration_s: float
    error_class: str | None = None
    """None when the attempt succeeded, else one of :data:`ERROR_CLASSES`."""
    error: str | None = None
    status: int | None = None
    retry_after_s: float | None = None
    waited_s: float = 0.0
    """Backoff slept after this attempt before the next one."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number, "started_at": self.started_at, "duration_s": self.duration_s,
            "error_class": self.error_class, "error": self.error, "status": self.status,
            "retry_after_s": self.retry_after_s, "waited_s": self.waited_s,
        }


@dataclass(frozen=True)
class CallRecord:
    """Everything known about one provider call, retries included."""

    provider: str
    model_requested: str
    started_at: str
    """ISO 8601 UTC time of the first attempt."""
    output: str = ""
    request_id: str | None = None
    response_id: str | None = None
    model_returned: str | None = None
    system_fingerprint: str | None = None
    ttft_s: float | None = None
    """Time to first token of the successful attempt."""
    latency_s: float | None = None
    """Duration of the successful attempt."""
    total_s: float = 0.0
    """Wall time of the whole call, retries and backoff included."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_est: int = 0
    completion_tokens_est: int = 0
    stop_reason_raw: str | None = None
    stop_reason: str = "complete"
    tool_calls: tuple[ToolCall, ...] = ()
    """Tools the model asked to call in the successful attempt."""
    attempts: tuple[Attempt, ...] = ()
    error_class: str | None = None
    """Set when the call failed after all retries."""
    error: str | None = None
    cached: bool = False
    in_flight_at_start: int | None = None
    """Calls of this run in flight when this one started, itself included (our own concurrency)."""

    @property
    def ok(self) -> bool:
        return self.error_class is None

    @property
    def failed_attempts(self) -> int:
        return sum(1 for a in self.attempts if a.error_class is not None)

    def to_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in _RECORD_FIELDS}
        data["tool_calls"] = [t.to_dict() for t in self.tool_calls]
        data["attempts"] = [a.to_dict() for a in self.attempts]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallRecord:
        """Reads a stored record; fields this version does not know are ignored (forward compatibility)."""
        values: dict[str, Any] = {k: data.get(k) for k in _RECORD_FIELDS if k in data}
        values["tool_calls"] = tuple(ToolCall.from_dict(t) for t in data.get("tool_calls", ()))
        values["attempts"] = tuple(Attempt(**{k: v for k, v in a.items() if k in _ATTEMPT_FIELDS})
                                   for a in data.get("attempts", ()))
        return cls(**values)


_RECORD_FIELDS = [f for f in CallRecord.__dataclass_fields__ if f not in ("tool_calls", "attempts")]
_ATTEMPT_FIELDS = frozenset(Attempt.__dataclass_fields__)


class Provider(Protocol):
    """A model endpoint. ``complete`` makes one attempt and raises :class:`CallFailure` on failure."""

    name: str

    @property
    def endpoint(self) -> str | None:
        """Host (and port) of the endpoint, never a key; None for in-process targets."""

    @property
    def sdk_version(self) -> str | None:
        """Version of the SDK that makes the calls, where there is one."""

    async def complete(self, request: Request, timeout: float) -> Completion: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How failed attempts are retried."""

    max_attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0
    timeout_s: float = 60.0

    def backoff(self, attempt: int, rng: random.Random, retry_after: float | None) -> float:
        """Full-jitter exponential backoff, never shorter than the server's ``retry-after``."""
        delay = rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after_s))
        return delay


async def call(provider: Provider, request: Request, policy: RetryPolicy, rng: random.Random) -> CallRecord:
    """Runs one call with retries; never raises for provider errors (they are recorded)."""
    started = datetime.now(UTC).isoformat(timespec="microseconds")
    t0 = time.perf_counter()
    attempts: list[Attempt] = []
    prompt_est = sum(estimate_tokens(str(m.get("content") or "")) for m in request.messages)
    for number in range(1, policy.max_attempts + 1):
        wall = time.time()
        a0 = time.perf_counter()
        try:
            done = await provider.complete(request, policy.timeout_s)
        except CallFailure as failure:
            duration = time.perf_counter() - a0
            retry = failure.error_class in RETRYABLE and number < policy.max_attempts
            wait = policy.backoff(number, rng, failure.retry_after) if retry else 0.0
            message = redact(failure.message) or ""  # some providers echo the key in an error body
            attempts.append(Attempt(number, wall, duration, failure.error_class, message,
                                    failure.status, failure.retry_after, wait))
            if not retry:
                return CallRecord(
                    provider=provider.name, model_requested=request.model, started_at=started,
                    total_s=time.perf_counter() - t0, prompt_tokens_est=prompt_est, stop_reason="error",
                    attempts=tuple(attempts), error_class=failure.error_class,
                    error=f"{failure.error_class}: {message}" + (f" (after {number} attempts)" if number > 1 else ""),
                )
            await asyncio.sleep(wait)
            continue
        duration = time.perf_counter() - a0
        attempts.append(Attempt(number, wall, duration))
        return CallRecord(
            provider=provider.name, model_requested=request.model, started_at=started,
            output=redact(done.text, shapes=False) or "",
            request_id=done.request_id, response_id=done.response_id, model_returned=done.model_returned,
            system_fingerprint=done.system_fingerprint, ttft_s=done.ttft_s, latency_s=duration,
            total_s=time.perf_counter() - t0, prompt_tokens=done.prompt_tokens,
            completion_tokens=done.completion_tokens, prompt_tokens_est=prompt_est,
            completion_tokens_est=estimate_tokens(done.text), stop_reason_raw=done.stop_reason_raw,
            stop_reason="tool_call" if done.tool_calls else normalise_stop(done.stop_reason_raw),
            tool_calls=done.tool_calls, attempts=tuple(attempts),
        )
    raise AssertionError("unreachable: max_attempts >= 1")  # pragma: no cover
