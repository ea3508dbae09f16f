"""Targets: what is under test (a prompt, a callable app, an agent loop), separate from the providers
(model endpoints) they call. One registry, :data:`TARGETS`, used by the built-ins too."""

from evalkit.targets import agent as _agent  # noqa: F401 -- importing registers the built-in targets
from evalkit.targets import callable as _callable  # noqa: F401
from evalkit.targets import prompt as _prompt  # noqa: F401
from evalkit.targets.base import (
    TARGETS,
    Caller,
    Outcome,
    Planned,
    TargetRunner,
    open_target,
    plan_cases,
    register_target,
)

__all__ = ["TARGETS", "Caller", "Outcome", "Planned", "TargetRunner", "open_target", "plan_cases",
           "register_target"]
