"""The callable target: the user's own app, ``f(vars) -> str`` (sync or async), called in-process."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from evalkit.core.trajectory import Trajectory
from evalkit.errors import ConfigError
from evalkit.providers.base import CallFailure, Completion, Provider, Request
from evalkit.targets.base import Caller, Outcome, Planned, register_target
from evalkit.targets.prompt import messages_sha256

if TYPE_CHECKING:
    from evalkit.suite import Case, Suite


class CallableProvider:
    """A user's function behind the provider protocol, so its calls get the same records and retries."""

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


@register_target("callable")
class CallableTarget:
    """Calls the user's function once per case and repeat with the case's vars."""

    kind = "callable"

    def __init__(self, dotted: str, fn: Callable[..., Any]) -> None:
        self.provider: Provider = CallableProvider(dotted, fn)
        self.model = dotted

    @classmethod
    def plan(cls, suite: Suite, case: Case) -> Planned:
        return Planned(case, (), messages_sha256(dict(case.vars)))

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, suite: Suite) -> AsyncIterator[CallableTarget]:
        from evalkit.plugins import load_callable

        dotted = suite.target.callable
        assert dotted is not None
        try:
            fn = load_callable(dotted)
        except ValueError as exc:
            raise ConfigError(f"{suite.path}: target.callable: {exc}") from None
        yield cls(dotted, fn)

    def cacheable(self, case: Case) -> bool:
        return True

    async def run(self, planned: Planned, repeat: int, caller: Caller) -> Outcome:
        t0 = time.perf_counter()
        request = Request((), self.model, {}, planned.case.vars)
        record = await caller(request, case_id=planned.case.id, repeat=repeat)
        return Outcome(record.output, Trajectory((record,), "complete" if record.ok else "error",
                                                 time.perf_counter() - t0))
