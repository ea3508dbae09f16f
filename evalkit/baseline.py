"""Baselines: the committed record a run is compared with, and the samples both are read as.

A baseline file (``"format": "evalkit.baseline/1"``) is pretty JSON with one sample per line, keys in a
stable order, so a change to a baseline reads well in a pull-request diff.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.artifact import read_versioned, write_atomic
from evalkit.errors import BaselineError
from evalkit.results import Run

BASELINE_FORMAT = "evalkit.baseline/1"


@dataclass(frozen=True)
class Sample:
    """One case in one repeat, as the gate sees it."""

    case_id: str
    repeat: int
    passed: bool
    output: str
    scores: Mapping[str, float | None] = field(hash=False)
    """Check name → graded score (None when the check has no grade)."""
    checks: Mapping[str, bool] = field(hash=False)
    """Check name → passed."""
    latency_s: float | None = None
    ttft_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error_class: str | None = None
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id, "repeat": self.repeat, "passed": self.passed, "tags": list(self.tags),
            "checks": dict(self.checks), "scores": dict(self.scores), "latency_s": self.latency_s,
            "ttft_s": self.ttft_s, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "error_class": self.error_class, "output": self.output,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sample:
        return cls(
            case_id=data["case_id"], repeat=data["repeat"], passed=data["passed"], output=data["output"],
            scores=data.get("scores", {}), checks=data.get("checks", {}), latency_s=data.get("latency_s"),
            ttft_s=data.get("ttft_s"), prompt_tokens=data.get("prompt_tokens"),
            completion_tokens=data.get("completion_tokens"), error_class=data.get("error_class"),
            tags=tuple(data.get("tags", ())),
        )


def _unique_names(names: Sequence[str]) -> list[str]:
    """``contains, contains`` → ``contains, contains#2``: several checks of one kind stay distinct."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


def samples_of(run: Run) -> tuple[Sample, ...]:
    """The samples of a run."""
    samples = []
    for result in run.results:
        names = _unique_names([s.name for s in result.scores])
        call = result.call
        samples.append(Sample(
            case_id=result.case_id, repeat=result.repeat, passed=result.passed, output=result.output,
            scores={n: s.score for n, s in zip(names, result.scores, strict=True)},
            checks={n: s.passed for n, s in zip(names, result.scores, strict=True)},
            latency_s=None if call.cached else call.latency_s, ttft_s=None if call.cached else call.ttft_s,
            prompt_tokens=call.prompt_tokens, completion_tokens=call.completion_tokens,
            error_class=call.error_class, tags=result.tags,
        ))
    return tuple(samples)


@dataclass(frozen=True)
class Baseline:
    """A stored run, reduced to what comparisons need."""

    suite: Mapping[str, Any] = field(hash=False)
    """Name, path, sha256 and case ids of the suite, and its gate settings."""
    fingerprints: Mapping[str, Any] = field(hash=False)
    """What decides comparability: suite/prompt hashes, models requested and returned, fingerprints."""
    conditions: Mapping[str, Any] = field(hash=False)
    repeats: int
    samples: tuple[Sample, ...]
    run_id: str = ""


def fingerprints_of(run: Run) -> dict[str, Any]:
    """The fields that decide whether two runs are comparable."""
    c = run.conditions
    return {
        "suite_sha256": run.suite.sha256,
        "template_sha256": dict(c.template_sha256) if c else {},
        "rendered_prompts_sha256": c.rendered_prompts_sha256 if c else None,
        "provider": c.provider if c else None,
        "model_requested": c.model_requested if c else None,
        "models_returned": list(c.models_returned) if c else [],
        "system_fingerprints": list(c.system_fingerprints) if c else [],
        "evalkit_version": c.evalkit_version if c else None,
    }


def baseline_of(run: Run) -> Baseline:
    """A baseline from a run."""
    return Baseline(suite=run.suite.to_dict(), fingerprints=fingerprints_of(run),
                    conditions=run.conditions.to_dict() if run.conditions else {}, repeats=run.repeats,
                    samples=samples_of(run), run_id=run.run_id)


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def save_baseline(run: Run, path: str | os.PathLike[str]) -> Baseline:
    """Writes the run as a baseline file (pretty JSON, one sample per line, sorted keys)."""
    if run.status != "complete":
        raise BaselineError(f"{run.directory}: status: expected a complete run to save as a baseline, "
                            f"got {run.status!r} ({len(run.results)} of {run.expected} results)")
    baseline = baseline_of(run)
    head = {"format": BASELINE_FORMAT, "run_id": baseline.run_id, "repeats": baseline.repeats,
            "suite": baseline.suite, "fingerprints": baseline.fingerprints, "conditions": baseline.conditions}
    lines = ["{"]
    for key in sorted(head):
        lines.append(f"  {json.dumps(key)}: {_dump(head[key])},")
    lines.append('  "samples": [')
    rows = [f"    {_dump(s.to_dict())}" for s in baseline.samples]
    lines.append(",\n".join(rows))
    lines.append("  ]")
    lines.append("}")
    write_atomic(Path(path), "\n".join(lines) + "\n")
    return baseline


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    """Reads a baseline file; an unknown format version or a corrupt file is a one-line error."""
    target = Path(path)
    data = read_versioned(target, BASELINE_FORMAT, BaselineError,
                          "baseline file not found (save one with: evalkit baseline save RUN)")
    try:
        return Baseline(suite=data["suite"], fingerprints=data["fingerprints"], conditions=data["conditions"],
                        repeats=data["repeats"], samples=tuple(Sample.from_dict(s) for s in data["samples"]),
                        run_id=data.get("run_id", ""))
    except (KeyError, TypeError) as exc:
        raise BaselineError(f"{target}: expected a complete baseline record, missing {exc}") from None
