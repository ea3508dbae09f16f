"""The target protocol, its registry, and :class:`Caller`: the one path every model call of a run takes.

A target turns a case into a :class:`~evalkit.core.trajectory.Trajectory` and a final output. Its model
calls go through :class:`Caller`, which applies the response cache, the rate limits, the in-flight count
and the retry policy, with retry jitter drawn from ``(seed, case, repeat, "retry", call number)`` so a
replay spaces its retries identically at any concurrency.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from evalkit.core.seeds import draws
from evalkit.core.trajectory import Trajectory
from evalkit.errors import ConfigError

if TYPE_CHECKING:
    from evalkit.cache import ResponseCache
    from evalkit.conditions import InFlight
    from evalkit.providers.base import CallRecord, Provider, Request, RetryPolicy
    from evalkit.suite import Case, Suite


@dataclass(frozen=True)
class Planned:
    """One case, rendered: its messages (empty for a callable) and the hash of what is sent."""

    case: Case
    messages: tuple[Mapping[str, Any], ...]
    prompt_sha256: str


@dataclass(frozen=True)
class Outcome:
    """What a target produced for one case in one repeat."""

    output: str
    trajectory: Trajectory
    state: Any = None
    """A handle to the live state the case ran against (the scorers' ``context.state``), if any."""
    error: str | None = None
    """Why the case itself failed (a tool runtime, a reset, a service), beside any model-call error."""
    release: Callable[[], None] | None = None
    """Called by the runner once the case is scored: frees the state for the next case that shares it."""


class Limiter(Protocol):
    """Client-side rate limits (see :class:`evalkit.runner.RateLimiter`)."""

    async def acquire(self, tokens: int) -> None: ...


class Caller:
    """Makes a target's model calls: cache, rate limits, in-flight accounting, retries with seeded jitter."""

    def __init__(self, provider: Provider, policy: RetryPolicy, *, seed: int, limiter: Limiter,
                 in_flight: InFlight, cache: ResponseCache | None) -> None:
        self.provider = provider
        self.policy = policy
        self.seed = seed
        self._limiter = limiter
        self._in_flight = in_flight
        self._cache = cache

    def without_cache(self) -> Caller:
        """The same caller, never reading or writing the response cache (for cases with side effects)."""
        if self._cache is None:
            return self
        return Caller(self.provider, self.policy, seed=self.seed, limiter=self._limiter, in_flight=self._in_flight,
                      cache=None)

    def for_provider(self, provider: Provider, policy: RetryPolicy | None = None) -> Caller:
        """A caller to another provider (a simulated user's) sharing this one's limits and accounting."""
        return Caller(provider, policy or self.policy, seed=self.seed, limiter=self._limiter,
                      in_flight=self._in_flight, cache=self._cache)

    async def __call__(self, request: Request, *, case_id: str, repeat: int, index: int = 0,
                       cacheable: bool = True) -> CallRecord:
        """One call (with its retries): the ``index``-th model call of this case in this repeat."""
        from evalkit.cache import cache_key
        from evalkit.providers.base import call, estimate_tokens

        key = None
        if self._cache is not None and cacheable:
            key = cache_key(provider=self.provider.name, endpoint=self.provider.endpoint, model=request.model,
                            params=request.params, messages=list(request.messages) or dict(request.vars),
                            repeat=repeat, index=index, response_format=request.response_format,
                            tools=list(request.tools) or None)
            cached = self._cache.get(key)
            if cached is not None:
                return cached
        estimate = sum(estimate_tokens(str(m.get("content") or "")) for m in request.messages)
        await self._limiter.acquire(estimate + int(request.params.get("max_tokens", 0) or 0))
        self._in_flight.enter()
        concurrent = self._in_flight.current
        try:
            record = await call(self.provider, request, self.policy, draws(self.seed, case_id, repeat, "retry", index))
        finally:
            self._in_flight.exit()
        record = replace(record, in_flight_at_start=concurrent)
        if key is not None and self._cache is not None:
            self._cache.put(key, record)
        return record


class TargetRunner(Protocol):
    """What is under test, opened for one run. Registered classes also plan (render) cases before any call."""

    kind: str
    """``prompt``, ``callable``, ``agent`` … (the registry name)."""
    provider: Provider
    """The provider its calls go to (conditions record its name and endpoint)."""
    model: str
    """The model requested (a callable's dotted path)."""

    @classmethod
    def plan(cls, suite: Suite, case: Case) -> Planned:
        """Renders a case up front (no provider needed), so a template error stops the run before any call."""

    @classmethod
    def open(cls, suite: Suite) -> contextlib.AbstractAsyncContextManager[TargetRunner]:
        """Opens the target (and the provider behind it) for one run."""

    def cacheable(self, case: Case) -> bool:
        """Whether the response cache may replay this case's calls (never when it touches tools that write)."""

    async def run(self, planned: Planned, repeat: int, caller: Caller) -> Outcome:
        """Runs one case in one repeat; provider errors are recorded in the trajectory, never raised."""


TARGETS: dict[str, type[TargetRunner]] = {}
"""Target kind → its class. The built-ins register here as a plugin's would."""


def register_target(kind: str) -> Callable[[type[TargetRunner]], type[TargetRunner]]:
    """Registers a target class for suites whose target is of this kind."""

    def decorate(cls: type[TargetRunner]) -> type[TargetRunner]:
        TARGETS[kind] = cls
        return cls

    return decorate


def target_class(suite: Suite) -> type[TargetRunner]:
    """The registered class for the suite's target kind."""
    found = TARGETS.get(suite.target.kind)
    if found is None:
        raise ConfigError(f"{suite.path}: target: expected one of {', '.join(sorted(TARGETS))}, "
                          f"got {suite.target.kind!r}")
    return found


def plan_cases(suite: Suite) -> list[Planned]:
    """Every case of the suite rendered, in order."""
    cls = target_class(suite)
    return [cls.plan(suite, case) for case in suite.cases]


@contextlib.asynccontextmanager
async def open_target(suite: Suite) -> AsyncIterator[TargetRunner]:
    """Opens the suite's target (and the provider behind it) for one run, and closes it."""
    async with target_class(suite).open(suite) as target:
        yield target
