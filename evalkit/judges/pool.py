"""Judges inside suites: ``expect: [{judge: NAME}]`` (or ``{judge: {name: NAME, pass_at: 4}}``).

A run that uses a judge first assesses it (:func:`assess`): its calibration must exist and be ``eligible``,
and the anchors' ``canary`` split, re-judged now, must show the judge ``stable`` against that calibration
(identity and flips). The run then opens each judge's provider once (:class:`JudgePool`) and judges every
case's output through it; each verdict is a :class:`~evalkit.core.score.Score` named ``judge:NAME`` whose
details hold the judge's calls (so they are journalled with the case, apart from the target's calls and
tokens). A verdict that cannot be parsed is **unscored** (never a fail): the case is left out of pass-rate
denominators and counted. After the run, the models the judge returned are compared with the calibration
once more. The trust of each judge is written to the run directory as ``judges.json``; the gate reads it
and lets a judge-scored metric block or pass only when its judge is ``trusted``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.core.score import Score

if TYPE_CHECKING:
    from evalkit.judges.judge import Judge
    from evalkit.suite import Case, Suite

TRUSTED = "trusted"
UNSCORED_MAX = 0.02
"""Above this share of unscored verdicts the run says the instrument failed."""


def judge_arg(arg: Any) -> tuple[str, int | None]:
    """(name, pass_at) from a ``judge:`` check's argument."""
    if isinstance(arg, str):
        return arg, None
    return str(arg["name"]), arg.get("pass_at")


def judges_dir_for(suite_path: str | Path, name: str) -> Path | None:
    """The ``judges/`` folder holding ``NAME/judge.yaml``: beside the suite, or in a folder above it."""
    folder = Path(suite_path).resolve().parent
    for candidate in (folder, *folder.parents):
        if (candidate / "judges" / name / "judge.yaml").is_file():
            return candidate / "judges"
    return None


def judges_of(suite: Suite) -> dict[str, Path]:
    """Every judge the suite's checks name → its ``judges/`` folder (``load_suite`` has checked they exist)."""
    found: dict[str, Path] = {}
    for case in suite.cases:
        for check in case.expect:
            if check.name == "judge":
                name, _ = judge_arg(check.arg)
                if name not in found:
                    folder = judges_dir_for(suite.path, name)
                    if folder is not None:
                        found[name] = folder
    return found


@dataclass(frozen=True)
class JudgeTrust:
    """Whether a judge's verdicts may decide a gate in this run, and why (not)."""

    name: str
    status: str
    """``trusted``, ``judge_uncalibrated``, ``judge_changed``, ``judge_drifted`` or ``judge_unverified``."""
    reasons: tuple[str, ...] = ()
    calibration_status: str | None = None
    canary_status: str | None = None
    verdicts: int = 0
    unscored: int = 0

    @property
    def trusted(self) -> bool:
        return self.status == TRUSTED

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "reasons": list(self.reasons),
                "calibration_status": self.calibration_status, "canary_status": self.canary_status,
                "verdicts": self.verdicts, "unscored": self.unscored}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JudgeTrust:
        return cls(str(data["name"]), str(data["status"]), tuple(data.get("reasons") or ()),
                   data.get("calibration_status"), data.get("canary_status"), int(data.get("verdicts") or 0),
                   int(data.get("unscored") or 0))


def assess(name: str, judges_dir: Path) -> JudgeTrust:
    """The judge's calibration status, then (when eligible) its canary anchors re-judged against it."""
    from evalkit.errors import EvalkitError
    from evalkit.judges.calibrate import load_calibration
    from evalkit.judges.drift import check
    from evalkit.judges.spec import load_judge

    spec = load_judge(name, judges_dir)
    try:
        calibration = load_calibration(spec)
    except EvalkitError as exc:
        return JudgeTrust(name, "judge_uncalibrated", (str(exc),))
    status = str(calibration.record.get("status"))
    if status != "eligible":
        reasons = tuple(str(r) for r in calibration.record.get("reasons", ()))
        return JudgeTrust(name, "judge_uncalibrated", (f"its calibration says {status}", *reasons), status)
    result = check(name, judges_dir, split="canary", save=False)
    outcome = {"stable": TRUSTED, "changed": "judge_changed", "drifted": "judge_drifted"}.get(result.status,
                                                                                            "judge_unverified")
    return JudgeTrust(name, outcome, tuple(result.reasons), status, result.status)


def write_trust(directory: Path, trust: Mapping[str, JudgeTrust]) -> None:
    from evalkit.artifact import write_atomic

    write_atomic(directory / "judges.json", json.dumps(
        {"format": "evalkit.judges/1", "judges": [t.to_dict() for t in trust.values()]}, indent=2) + "\n")


def read_trust(directory: str | Path | None) -> dict[str, JudgeTrust]:
    """The judges' trust recorded in a run directory (empty when the run used no judge)."""
    if directory is None:
        return {}
    path = Path(directory) / "judges.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text("utf-8"))
    return {t["name"]: JudgeTrust.from_dict(t) for t in data.get("judges", [])}


@dataclass
class JudgePool:
    """The judges of one run, each bound to its open provider; what the ``judge`` check calls."""

    judges: dict[str, Judge] = field(default_factory=dict)
    calls: dict[str, list[Any]] = field(default_factory=dict)
    counts: dict[str, list[int]] = field(default_factory=dict)
    """Judge → [verdicts, unscored]."""

    async def verdict(self, name: str, pass_at: int | None, case: Case, output: str, repeat: int) -> Score:
        from evalkit.judges.judge import JudgeItem

        judge = self.judges[name]
        item = JudgeItem(id=f"{case.id}#{repeat}", vars=dict(case.vars), output=output,
                         reference=case.vars.get("reference") if isinstance(case.vars.get("reference"), str) else None)
        verdict = await judge.verdict(item)
        self.calls.setdefault(name, []).extend(verdict.calls)
        counts = self.counts.setdefault(name, [0, 0])
        counts[0] += 1
        details: dict[str, Any] = {"judge_calls": [c.to_dict() for c in verdict.calls],
                                   "judge_tokens": sum((c.prompt_tokens or c.prompt_tokens_est) +
                                                       (c.completion_tokens or c.completion_tokens_est)
                                                       for c in verdict.calls)}
        reasoning = next((s.reasoning for s in verdict.samples if s.reasoning), "")
        if not verdict.scored:
            counts[1] += 1
            details["unscored"] = verdict.unscored
            return Score(f"judge:{name}", False, None, f"unscored: {verdict.unscored}", details)
        label = verdict.value
        form = judge.spec.verdict
        passed = (label >= pass_at) if pass_at is not None and isinstance(label, int) else form.positive(label)
        value = verdict.score if form.ordinal else float(passed)
        return Score(f"judge:{name}", passed, value, f"{label}: {reasoning}"[:300], details)

    def after_run(self, trust: dict[str, JudgeTrust]) -> dict[str, JudgeTrust]:
        """Trust with what the run saw: the models the judge returned, and the share it could not score."""
        from dataclasses import replace

        from evalkit.judges.calibrate import load_calibration
        from evalkit.judges.drift import call_changes

        out = dict(trust)
        for name, judge in self.judges.items():
            verdicts, unscored = self.counts.get(name, [0, 0])
            current = replace(out[name], verdicts=verdicts, unscored=unscored)
            if current.trusted:
                changes = call_changes(self.calls.get(name, []), load_calibration(judge.spec).identity)
                if changes:
                    current = replace(current, status="judge_changed",
                                      reasons=(*current.reasons, *(c.text for c in changes)))
            out[name] = current
        return out


@contextlib.asynccontextmanager
async def open_pool(specs: Mapping[str, Path], seed: int) -> AsyncIterator[JudgePool]:
    """Opens every judge's provider once for the run (the embedded model is started once per judge)."""
    from evalkit.judges.judge import open_judge
    from evalkit.judges.spec import load_judge

    pool = JudgePool()
    async with contextlib.AsyncExitStack() as stack:
        for name, folder in specs.items():
            pool.judges[name] = await stack.enter_async_context(open_judge(load_judge(name, folder), seed=seed))
        yield pool


def instrument_failed(trust: Sequence[JudgeTrust]) -> list[str]:
    """One line per judge whose unscored share is above :data:`UNSCORED_MAX`."""
    return [f"judge {t.name}: the instrument failed: {t.unscored} of {t.verdicts} verdicts unscored "
            f"({t.unscored / t.verdicts:.1%} > {UNSCORED_MAX:.0%})"
            for t in trust if t.verdicts and t.unscored / t.verdicts > UNSCORED_MAX]
