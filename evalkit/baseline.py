"""Baselines: the committed record a run is compared with, and the samples both are read as.

A baseline file (``"format": "evalkit.baseline/2"``) is pretty JSON with one sample per line, keys in a
stable order, so a change to a baseline reads well in a pull-request diff. It holds the samples of one run
(the cases every comparison pairs with) and a summary of each run it was saved from (latency and TTFT
percentiles, error counts, the conditions that move latency): with several runs, latency and error rates
are judged against their run-to-run spread. Files of format ``evalkit.baseline/1`` (one run, no summaries)
are still read.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.artifact import read_versioned, write_atomic
from evalkit.errors import BaselineError
from evalkit.results import Run

BASELINE_FORMAT = "evalkit.baseline/2"
READABLE_FORMATS = (BASELINE_FORMAT, "evalkit.baseline/1")
RUN_CONDITIONS = ("started_at_utc", "hour_local", "weekday", "timezone", "loadavg_start", "loadavg_end", "host_cpus",
                  "concurrency_configured", "in_flight_mean", "in_flight_max", "provider", "endpoint",
                  "model_requested", "models_returned", "system_fingerprints", "duration_s", "cpu_pressure")
"""The conditions kept per run: what moves latency, and when the run happened."""


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
    in_flight_at_start: int | None = None
    """Calls of the run in flight when this one started, itself included."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id, "repeat": self.repeat, "passed": self.passed, "tags": list(self.tags),
            "checks": dict(self.checks), "scores": dict(self.scores), "latency_s": self.latency_s,
            "ttft_s": self.ttft_s, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "error_class": self.error_class,
            "in_flight_at_start": self.in_flight_at_start, "output": self.output,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sample:
        return cls(
            case_id=data["case_id"], repeat=data["repeat"], passed=data["passed"], output=data["output"],
            scores=data.get("scores", {}), checks=data.get("checks", {}), latency_s=data.get("latency_s"),
            ttft_s=data.get("ttft_s"), prompt_tokens=data.get("prompt_tokens"),
            completion_tokens=data.get("completion_tokens"), error_class=data.get("error_class"),
            tags=tuple(data.get("tags", ())), in_flight_at_start=data.get("in_flight_at_start"),
        )


@dataclass(frozen=True)
class Percentiles:
    """Latency (or TTFT) percentiles of one run, in seconds, and the sampling error of its log p95."""

    n: int
    p50: float
    p95: float
    p99: float
    log_p95_se: float
    """Standard error of log(p95) within the run (distribution-free, from order statistics)."""

    @classmethod
    def of(cls, values: Sequence[float]) -> Percentiles | None:
        """Percentiles of measured values (order statistics, ``inverted_cdf``); None when there are none."""
        if not values:
            return None
        import numpy as np

        from evalkit.stats import quantile_log_se

        x = np.asarray(values, dtype=float)
        p50, p95, p99 = (float(np.quantile(x, q, method="inverted_cdf")) for q in (0.5, 0.95, 0.99))
        return cls(int(x.size), p50, p95, p99, quantile_log_se(x, 0.95))

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "p50": self.p50, "p95": self.p95, "p99": self.p99,
                "log_p95_se": self.log_p95_se if math.isfinite(self.log_p95_se) else None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Percentiles | None:
        if data is None:
            return None
        se = data.get("log_p95_se")
        return cls(int(data["n"]), float(data["p50"]), float(data["p95"]), float(data["p99"]),
                   math.inf if se is None else float(se))


@dataclass(frozen=True)
class RunSummary:
    """One run as latency and error-rate comparisons see it: the run is their unit."""

    run_id: str
    calls: int
    """Calls made (cached answers excluded)."""
    errors: int
    """Calls that still failed after every retry."""
    latency: Percentiles | None
    ttft: Percentiles | None
    in_flight_at_start: float | None
    """Mean over calls of the calls in flight when each started (our own concurrency, as calls saw it)."""
    conditions: Mapping[str, Any] = field(hash=False)
    """The run's conditions that move latency (see :data:`RUN_CONDITIONS`)."""

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "calls": self.calls, "errors": self.errors,
                "latency": self.latency.to_dict() if self.latency else None,
                "ttft": self.ttft.to_dict() if self.ttft else None, "in_flight_at_start": self.in_flight_at_start,
                "conditions": dict(self.conditions)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSummary:
        return cls(str(data["run_id"]), int(data["calls"]), int(data["errors"]), Percentiles.from_dict(data["latency"]),
                   Percentiles.from_dict(data["ttft"]), data.get("in_flight_at_start"), dict(data["conditions"]))


def summarise(run_id: str, samples: Sequence[Sample], conditions: Mapping[str, Any]) -> RunSummary:
    """The run-level summary of a run's samples (cached answers carry no latency and are not calls)."""
    measured = [s for s in samples if s.latency_s is not None or s.error_class is not None]
    in_flight = [s.in_flight_at_start for s in measured if s.in_flight_at_start is not None]
    return RunSummary(
        run_id=run_id, calls=len(measured), errors=sum(1 for s in measured if s.error_class is not None),
        latency=Percentiles.of([s.latency_s for s in measured if s.latency_s is not None]),
        ttft=Percentiles.of([s.ttft_s for s in measured if s.ttft_s is not None]),
        in_flight_at_start=round(sum(in_flight) / len(in_flight), 3) if in_flight else None,
        conditions={k: conditions.get(k) for k in RUN_CONDITIONS},
    )


def _unique_names(names: Sequence[str]) -> list[str]:
    """``contains, contains`` → ``contains, contains#2``: several checks of one kind stay distinct."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


def _total(values: Sequence[int | float | None]) -> Any:
    return None if not values or any(v is None for v in values) else sum(v for v in values if v is not None)


def samples_of(run: Run) -> tuple[Sample, ...]:
    """The samples of a run: one per case and repeat.

    A case's latency is its model calls' latencies summed (one call for a single-turn prompt; the model's
    share of an agent loop), its TTFT and in-flight count its first call's; a cached answer has none. Its
    error class is that of its last call that failed after every retry.
    """
    samples = []
    for result in run.results:
        if result.unscored:  # no verdict: out of every pass-rate denominator (counted in the run summary)
            continue
        names = _unique_names([s.name for s in result.scores])
        calls = result.calls
        live = [c for c in calls if not c.cached]
        failed = [c.error_class for c in calls if c.error_class is not None]
        first = live[0] if live else None
        samples.append(Sample(
            case_id=result.case_id, repeat=result.repeat, passed=result.passed, output=result.output,
            scores={n: s.score for n, s in zip(names, result.scores, strict=True)},
            checks={n: s.passed for n, s in zip(names, result.scores, strict=True)},
            latency_s=_total([c.latency_s for c in live]) if live and not failed else None,
            ttft_s=first.ttft_s if first is not None else None,
            prompt_tokens=_total([c.prompt_tokens for c in calls]),
            completion_tokens=_total([c.completion_tokens for c in calls]),
            error_class=failed[-1] if failed else None, tags=result.tags,
            in_flight_at_start=first.in_flight_at_start if first is not None else None,
        ))
    return tuple(samples)


@dataclass(frozen=True)
class Baseline:
    """A stored run, reduced to what comparisons need, with a summary of every run it was saved from."""

    suite: Mapping[str, Any] = field(hash=False)
    """Name, path, sha256 and case ids of the suite, and its gate settings (the policy in force)."""
    fingerprints: Mapping[str, Any] = field(hash=False)
    """What decides comparability: suite/prompt hashes, models requested and returned, fingerprints."""
    conditions: Mapping[str, Any] = field(hash=False)
    repeats: int
    samples: tuple[Sample, ...]
    run_id: str = ""
    runs: tuple[RunSummary, ...] = ()
    """One summary per run saved (the samples' run first); empty means: derive it from the samples."""
    origin: str = field(default="", compare=False)
    """Where it was read from (a path), for messages."""

    @property
    def run_summaries(self) -> tuple[RunSummary, ...]:
        return self.runs or (summarise(self.run_id, self.samples, self.conditions),)


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


def baseline_of(run: Run, *others: Run) -> Baseline:
    """A baseline from a run (its samples), with a summary of it and of each further run."""
    samples = samples_of(run)
    conditions = run.conditions.to_dict() if run.conditions else {}
    summaries = [summarise(run.run_id, samples, conditions)]
    for other in others:
        summaries.append(summarise(other.run_id, samples_of(other), other.conditions.to_dict()
                                   if other.conditions else {}))
    return Baseline(suite=run.suite.to_dict(), fingerprints=fingerprints_of(run), conditions=conditions,
                    repeats=run.repeats, samples=samples, run_id=run.run_id, runs=tuple(summaries),
                    origin=str(run.directory or run.run_id))


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _check_savable(runs: Sequence[Run]) -> None:
    """Complete runs of one suite version, each with at least one answered call."""
    first = runs[0]
    seen: set[str] = set()
    for run in runs:
        where = run.directory or run.run_id
        if run.status != "complete":
            raise BaselineError(f"{where}: status: expected a complete run to save as a baseline, "
                                f"got {run.status!r} ({len(run.results)} of {run.expected} results)")
        if run.suite.sha256 != first.suite.sha256 or run.suite.name != first.suite.name:
            raise BaselineError(f"{where}: suite: expected a run of {first.suite.name} {first.suite.sha256[:12]} "
                                f"(as {first.directory or first.run_id}), got {run.suite.name} "
                                f"{run.suite.sha256[:12]}: a baseline holds runs of one suite version")
        if run.run_id in seen:
            raise BaselineError(f"{where}: run {run.run_id!r} is given twice")
        seen.add(run.run_id)
        calls = [c for r in run.results for c in r.calls]
        failed = [c.error_class for c in calls if c.error_class is not None]
        if calls and len(failed) == len(calls):
            classes = ", ".join(f"{name} {count}" for name, count in Counter(failed).most_common())
            raise BaselineError(f"{where}: every call failed ({len(failed)} of {len(calls)}: {classes}); "
                                "a run without a single answer cannot be a baseline")


def save_baseline(runs: Run | Sequence[Run], path: str | os.PathLike[str]) -> Baseline:
    """Writes a baseline file (pretty JSON, one sample per line, sorted keys) from one or more runs.

    The first run's samples are what comparisons pair with; every run adds a run-level summary, so with
    three or more runs latency and error rates are judged against the run-to-run spread.
    """
    runs = [runs] if isinstance(runs, Run) else list(runs)
    if not runs:
        raise BaselineError("baseline save: expected at least one run, got none")
    _check_savable(runs)
    baseline = baseline_of(runs[0], *runs[1:])
    head = {"format": BASELINE_FORMAT, "run_id": baseline.run_id, "repeats": baseline.repeats,
            "suite": baseline.suite, "fingerprints": baseline.fingerprints, "conditions": baseline.conditions}
    lines = ["{"]
    for key in sorted(head):
        lines.append(f"  {json.dumps(key)}: {_dump(head[key])},")
    lines.append('  "runs": [')
    lines.append(",\n".join(f"    {_dump(r.to_dict())}" for r in baseline.runs))
    lines.append("  ],")
    lines.append('  "samples": [')
    lines.append(",\n".join(f"    {_dump(s.to_dict())}" for s in baseline.samples))
    lines.append("  ]")
    lines.append("}")
    write_atomic(Path(path), "\n".join(lines) + "\n")
    return baseline


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    """Reads a baseline file (format 2, or 1) checked against its packaged schema (fields it does not know are
    ignored); an unknown format version or a corrupt file is a one-line error."""
    target = Path(path)
    data = read_versioned(target, READABLE_FORMATS[::-1], BaselineError,
                          "baseline file not found (save one with: evalkit baseline save RUN)", schema="baseline")
    try:
        return Baseline(suite=data["suite"], fingerprints=data["fingerprints"], conditions=data["conditions"],
                        repeats=data["repeats"], samples=tuple(Sample.from_dict(s) for s in data["samples"]),
                        run_id=data.get("run_id", ""),
                        runs=tuple(RunSummary.from_dict(r) for r in data.get("runs", ())), origin=str(target))
    except (KeyError, TypeError, ValueError) as exc:
        raise BaselineError(f"{target}: expected a complete baseline record, missing or invalid {exc}") from None


def check_same_suite(baseline: Baseline, suite_name: str) -> None:
    """A baseline of another suite is a usage error (a changed suite of the same name is compared on its pairs)."""
    stored = baseline.suite.get("name")
    if stored != suite_name:
        raise BaselineError(f"{baseline.origin or baseline.run_id}: suite.name: expected a baseline of suite "
                            f"{suite_name!r}, got one of {stored!r}")
