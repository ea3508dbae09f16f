"""What a check says of one case, and what a check is given to decide it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalkit.core.trajectory import Trajectory

if TYPE_CHECKING:
    from evalkit.suite import Case


@dataclass(frozen=True)
class Score:
    """The outcome of one check on one case."""

    name: str
    """The check's name (``contains``) or the user scorer's dotted path."""
    passed: bool
    score: float | None
    """A graded value in [0, 1] where one is meaningful, else None."""
    reason: str
    """Why it passed or failed, in a few words a person can act on."""
    details: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """Counts a check wants aggregated over a run (e.g. ``{"unsupported": 1}``); JSON-able, often empty."""

    @property
    def unscored(self) -> bool:
        """True when the check could not decide (a judge answer that could not be parsed): neither pass nor fail."""
        return bool(self.details.get("unscored"))

    def to_dict(self) -> dict[str, Any]:
        data = {"name": self.name, "passed": self.passed, "score": self.score, "reason": self.reason}
        if self.details:
            data["details"] = dict(self.details)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Score:
        return cls(data["name"], data["passed"], data.get("score"), data.get("reason", ""),
                   dict(data.get("details") or {}))


@dataclass(frozen=True)
class ScoreContext:
    """Everything a check may look at: the case, its final output, the trajectory, the live state."""

    case: Case
    output: str
    """The final output (the model's answer, or what the callable returned)."""
    trajectory: Trajectory = field(default_factory=Trajectory)
    """Every model call and tool event of the case, in order."""
    repeat: int = 0
    state: Any = None
    """A handle to the live state the case ran against (queried by state checks), when the suite has one."""
    extras: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """Run-level services a scorer may need (e.g. the judges of the run), by name."""

    @property
    def vars(self) -> Mapping[str, Any]:
        """The case's template variables."""
        return self.case.vars
