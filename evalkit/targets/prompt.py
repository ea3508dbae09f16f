"""The prompt target: a system and user template rendered per case and sent to a provider once."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from evalkit.core.trajectory import Trajectory
from evalkit.providers import open_provider
from evalkit.providers.base import Provider, Request
from evalkit.targets.base import Caller, Outcome, Planned, register_target

if TYPE_CHECKING:
    from evalkit.suite import Case, Suite, Target


def default_model(target: Target, where: str) -> str:
    """The model a target requests; the local provider defaults to the embedded model."""
    from evalkit.errors import ConfigError

    if target.model:
        return target.model
    if (target.provider or "local") == "local":
        from evalkit.providers.local import MODEL_NAME

        return MODEL_NAME
    raise ConfigError(f"{where}: target.model: expected a model id for provider {target.provider}, got none")


def render_messages(target: Target, case: Case) -> tuple[dict[str, str], ...]:
    """The case's chat messages: the rendered system template, then the rendered user template."""
    context = f"{case.source}: case {case.id!r}"
    messages = []
    if target.system is not None:
        messages.append({"role": "system", "content": target.system.render(case.vars, context=context)})
    if target.user is not None:
        messages.append({"role": "user", "content": target.user.render(case.vars, context=context)})
    return tuple(messages)


def messages_sha256(messages: object) -> str:
    """Hash of what is sent for a case (canonical JSON)."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


@register_target("prompt")
class PromptTarget:
    """One rendered prompt, one model call per case and repeat."""

    kind = "prompt"

    def __init__(self, suite: Suite, provider: Provider) -> None:
        self._target = suite.target
        self.provider = provider
        self.model = default_model(suite.target, suite.path)

    @classmethod
    def plan(cls, suite: Suite, case: Case) -> Planned:
        messages = render_messages(suite.target, case)
        return Planned(case, messages, messages_sha256(messages))

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, suite: Suite) -> AsyncIterator[PromptTarget]:
        async with open_provider(suite.target.provider_spec, suite.path) as provider:
            yield cls(suite, provider)

    def cacheable(self, case: Case) -> bool:
        return True

    async def run(self, planned: Planned, repeat: int, caller: Caller) -> Outcome:
        t0 = time.perf_counter()
        request = Request(planned.messages, self.model, self._target.params, planned.case.vars)
        record = await caller(request, case_id=planned.case.id, repeat=repeat)
        return Outcome(record.output, Trajectory((record,), "complete" if record.ok else "error",
                                                 time.perf_counter() - t0))
