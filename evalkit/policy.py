"""The gate's policy: which settings decide a comparison, where they came from, and what was asked of it.

The policy in force is the **baseline's** ``gate:`` section (the baseline comes from the base branch, so a
pull request cannot loosen its own gate). When the run under test declares a different ``gate:``, the
difference is reported as *pending*: it takes effect once merged, i.e. once it is in a baseline. Command-line
options (``--margin``, ``--alpha``, ``--inconclusive``) and ``--use-run-gate`` are explicit overrides, and
every report logs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_MARGINS = {"pass_rate": 0.02, "error_rate": 0.01}
"""Margins of metrics the suite does not name (absolute; latency's is relative, see ``latency_margin``)."""


@dataclass(frozen=True)
class GateConfig:
    """How the gate decides: a suite's ``gate:`` section, as stored in the baseline."""

    alpha: float = 0.05
    margins: Mapping[str, float] = field(default_factory=lambda: {"pass_rate": 0.02}, hash=False)
    """Absolute margins per metric (pass_rate 0.02 = 2 points); latency margins are relative to the baseline."""
    latency_margin: float = 0.10
    """How much the p95 may grow, as a fraction of the baseline p95."""
    block_on: tuple[str, ...] = ("pass_rate",)
    """Metrics whose regression (or inconclusiveness) fails the gate."""
    inconclusive_blocks: bool = True
    slices_block: bool = False
    """Whether a per-tag slice's regression (BH-adjusted) fails the gate."""
    seed: int = 0
    resamples: int = 2000

    def margin(self, metric: str) -> float:
        """The margin of ``metric``: its own, else the suite's ``default``, else evalkit's default."""
        return float(self.margins.get(metric, self.margins.get("default", DEFAULT_MARGINS.get(metric, 0.0))))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, **overrides: Any) -> GateConfig:
        """From a suite's ``gate:`` mapping (already schema-checked), then non-None overrides."""
        data = dict(data or {})
        margins = {"pass_rate": 0.02, **data.get("margins", {})}
        margin = overrides.pop("margin", None)
        if margin is not None:
            margins["pass_rate"] = float(margin)
        config = cls(
            alpha=float(data.get("alpha", 0.05)),
            margins=margins,
            latency_margin=float(data.get("latency_margin", 0.10)),
            block_on=tuple(data.get("block_on", ("pass_rate",))),
            inconclusive_blocks=data.get("inconclusive", "block") == "block",
            slices_block=data.get("slices", "report") == "block",
            seed=int(data.get("seed", 0)),
        )
        return replace(config, **{k: v for k, v in overrides.items() if v is not None})

    def settings(self) -> dict[str, str]:
        """The settings as a suite's ``gate:`` section names them, each rendered as text (for diffs)."""
        out = {"alpha": f"{self.alpha:g}", "latency_margin": f"{self.latency_margin:g}",
               "block_on": "[" + ", ".join(self.block_on) + "]",
               "inconclusive": "block" if self.inconclusive_blocks else "warn",
               "slices": "block" if self.slices_block else "report", "seed": str(self.seed)}
        for name in sorted({"pass_rate", *self.margins}):
            out[f"margins.{name}"] = f"{self.margin(name):g}"
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "margins": dict(self.margins), "latency_margin": self.latency_margin,
                "block_on": list(self.block_on), "inconclusive_blocks": self.inconclusive_blocks,
                "slices_block": self.slices_block, "seed": self.seed}


@dataclass(frozen=True)
class PolicyChange:
    """One gate setting that differs: what is (or was) in force, what was asked, and who asked."""

    setting: str
    """As in a suite's ``gate:`` section: ``alpha``, ``margins.pass_rate``, ``block_on`` …"""
    before: str
    after: str
    source: str
    """``the run's suite`` (a pending change), ``--margin``, ``--use-run-gate`` …"""

    def __str__(self) -> str:
        return f"{self.setting} {self.before} → {self.after}"

    def to_dict(self) -> dict[str, str]:
        return {"setting": self.setting, "before": self.before, "after": self.after, "source": self.source}


@dataclass(frozen=True)
class GatePolicy:
    """The gate settings in force for one comparison, and how they were arrived at."""

    config: GateConfig
    source: str = "baseline"
    """``baseline`` (the default), ``run`` (``--use-run-gate``) or ``caller`` (a config passed in code)."""
    pending: tuple[PolicyChange, ...] = ()
    """Settings the run's suite declares differently; not in force until they are in a baseline."""
    overrides: tuple[PolicyChange, ...] = ()
    """Settings changed explicitly for this comparison (command-line options, ``--use-run-gate``)."""

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "in_force": self.config.to_dict(),
                "pending": [c.to_dict() for c in self.pending], "overrides": [c.to_dict() for c in self.overrides]}


def _changes(before: GateConfig, after: GateConfig, source: str) -> tuple[PolicyChange, ...]:
    old, new = before.settings(), after.settings()
    return tuple(PolicyChange(key, old.get(key, "–"), new.get(key, "–"), source)
                 for key in sorted({*old, *new}) if old.get(key) != new.get(key))


OVERRIDE_FLAGS = {"margin": "--margin", "alpha": "--alpha", "inconclusive_blocks": "--inconclusive"}


def resolve_policy(baseline_gate: Mapping[str, Any] | None, run_gate: Mapping[str, Any] | None, *,
                   use_run_gate: bool = False, margin: float | None = None, alpha: float | None = None,
                   inconclusive_blocks: bool | None = None) -> GatePolicy:
    """The policy in force: the baseline's gate, unless ``use_run_gate``; then explicit option overrides.

    A run whose ``gate:`` differs from the baseline's gets that difference as ``pending`` (reported, not in
    force). Every override is listed with the option that made it.
    """
    stored = GateConfig.from_mapping(baseline_gate)
    declared = GateConfig.from_mapping(run_gate)
    overrides: list[PolicyChange] = []
    pending: tuple[PolicyChange, ...] = ()
    if use_run_gate:
        config, source = declared, "run"
        overrides += _changes(stored, declared, "--use-run-gate")
    else:
        config, pending, source = stored, _changes(stored, declared, "the run's suite"), "baseline"
    for name, value in (("margin", margin), ("alpha", alpha), ("inconclusive_blocks", inconclusive_blocks)):
        if value is None:
            continue
        changed = GateConfig.from_mapping({}, **{name: value})
        updated = replace(config, margins={**config.margins, "pass_rate": float(value)}) if name == "margin" \
            else replace(config, **{name: getattr(changed, name)})
        setting = "margins.pass_rate" if name == "margin" else "alpha" if name == "alpha" else "inconclusive"
        same = config.settings()[setting]
        overrides += _changes(config, updated, OVERRIDE_FLAGS[name]) or (
            PolicyChange(setting, same, same, OVERRIDE_FLAGS[name]),)
        config = updated
    return GatePolicy(config, source, pending, tuple(overrides))
