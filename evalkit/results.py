"""Run results: records, the case-by-case journal, and the versioned run directory.

A run directory holds ``manifest.json`` (``"format": "evalkit.run/1"``: suite identity, options,
conditions) and ``journal.jsonl`` (one case result per line, appended and flushed as each finishes, so
an interrupted run loses only the calls that were in flight).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from evalkit.artifact import read_versioned, write_atomic
from evalkit.conditions import Conditions
from evalkit.errors import ResultsError
from evalkit.providers.base import CallRecord
from evalkit.scorers import Score

RUN_FORMAT = "evalkit.run/1"
JOURNAL_FORMAT = "evalkit.journal/1"
MANIFEST = "manifest.json"
JOURNAL = "journal.jsonl"


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case in one repeat."""

    case_id: str
    repeat: int
    """0-based repeat (epoch) index."""
    passed: bool
    """True when the call succeeded and every check passed."""
    output: str
    scores: tuple[Score, ...]
    call: CallRecord
    tags: tuple[str, ...] = ()
    prompt_sha256: str = ""
    """Hash of the rendered messages sent for this case."""
    route: str | None = None
    """The case's route (see :attr:`evalkit.suite.Case.route`)."""

    @property
    def key(self) -> tuple[str, int]:
        return self.case_id, self.repeat

    @property
    def error(self) -> str | None:
        return self.call.error

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id, "repeat": self.repeat, "passed": self.passed, "output": self.output,
            "tags": list(self.tags), "route": self.route, "prompt_sha256": self.prompt_sha256,
            "scores": [s.to_dict() for s in self.scores], "call": self.call.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaseResult:
        return cls(
            case_id=data["case_id"], repeat=data["repeat"], passed=data["passed"], output=data["output"],
            scores=tuple(Score.from_dict(s) for s in data["scores"]), call=CallRecord.from_dict(data["call"]),
            tags=tuple(data.get("tags", ())), prompt_sha256=data.get("prompt_sha256", ""),
            route=data.get("route"),
        )


@dataclass(frozen=True)
class SuiteIdentity:
    """What a run ran: enough to pair runs and to tell when the suite changed."""

    name: str
    path: str
    sha256: str
    case_ids: tuple[str, ...]
    """Every case id of the suite (a shard runs a subset)."""
    target: Mapping[str, Any] = field(hash=False)
    """Provider, model, params and callable: never keys."""
    gate: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """The suite's gate settings, so a comparison needs nothing but the run and the baseline."""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "sha256": self.sha256, "case_ids": list(self.case_ids),
                "target": dict(self.target), "gate": dict(self.gate)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SuiteIdentity:
        return cls(data["name"], data["path"], data["sha256"], tuple(data["case_ids"]), data["target"],
                   data.get("gate", {}))


@dataclass(frozen=True)
class Run:
    """A run: its identity, options, conditions and results."""

    run_id: str
    suite: SuiteIdentity
    repeats: int
    conditions: Conditions | None
    """None only before the provider is up; every written manifest has them."""
    results: tuple[CaseResult, ...] = ()
    status: str = "running"
    """``running`` (or killed), ``interrupted``, ``complete``."""
    shard: tuple[int, int] | None = None
    """(i, n) with 1 <= i <= n when this run is one shard of n."""
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """How it was run (concurrency, cache, seed…), so ``--resume`` continues the same way."""
    merged_from: tuple[str, ...] = ()
    directory: Path | None = None

    @property
    def expected(self) -> int:
        """How many case results a complete run has."""
        return len(self.planned_case_ids) * self.repeats

    @property
    def planned_case_ids(self) -> tuple[str, ...]:
        if self.shard is None:
            return self.suite.case_ids
        return tuple(c for c in self.suite.case_ids if shard_of(c, self.shard[1]) == self.shard[0])

    def manifest(self) -> dict[str, Any]:
        return {
            "format": RUN_FORMAT, "run_id": self.run_id, "status": self.status, "repeats": self.repeats,
            "shard": list(self.shard) if self.shard else None, "merged_from": list(self.merged_from),
            "options": dict(self.options), "suite": self.suite.to_dict(),
            "conditions": self.conditions.to_dict() if self.conditions else None,
        }


def shard_of(case_id: str, n: int) -> int:
    """The shard (1..n) a case belongs to: a hash of its id, so adding cases moves no others."""
    import hashlib

    return int(hashlib.sha256(case_id.encode()).hexdigest()[:12], 16) % n + 1


class Journal:
    """Appends case results to ``journal.jsonl``, one flushed line each."""

    def __init__(self, directory: Path, run_id: str) -> None:
        self.path = directory / JOURNAL
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._file: IO[str] = self.path.open("a", encoding="utf-8")
        if new:
            self._write({"format": JOURNAL_FORMAT, "run_id": run_id})
        else:
            _repair_tail(self.path, self._file)

    def _write(self, data: Mapping[str, Any]) -> None:
        self._file.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._file.flush()

    def append(self, result: CaseResult) -> None:
        """Writes one result and flushes it to the OS at once."""
        self._write(result.to_dict())

    def close(self) -> None:
        self._file.close()


def _repair_tail(path: Path, handle: IO[str]) -> None:
    """A kill mid-write can leave a partial last line; end it so the next result starts clean."""
    with path.open("rb") as raw:
        raw.seek(-1, os.SEEK_END)
        if raw.read(1) != b"\n":
            handle.write("\n")
            handle.flush()


def read_journal(path: Path) -> list[CaseResult]:
    """Results in a journal; a torn line (from a kill mid-write) is skipped, later duplicates win."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        raise ResultsError(f"{path}: journal not found") from None
    if not lines:
        return []
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError:
        raise ResultsError(f"{path}:1: expected a journal header, got invalid JSON") from None
    if header.get("format") != JOURNAL_FORMAT:
        raise ResultsError(f"{path}:1: format: expected {JOURNAL_FORMAT!r}, got {header.get('format')!r}")
    found: dict[tuple[str, int], CaseResult] = {}
    for line in lines[1:]:
        try:
            result = CaseResult.from_dict(json.loads(line))
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line torn by a kill mid-write; its case simply runs again on resume
        found[result.key] = result
    return list(found.values())


def in_suite_order(results: Iterable[CaseResult], case_ids: Sequence[str]) -> tuple[CaseResult, ...]:
    """Results sorted by the suite's case order, then repeat (completion order is not reproducible)."""
    order = {case_id: i for i, case_id in enumerate(case_ids)}
    return tuple(sorted(results, key=lambda r: (order.get(r.case_id, len(order)), r.repeat)))


def write_manifest(run: Run) -> None:
    """Writes ``manifest.json`` atomically (write, then rename)."""
    assert run.directory is not None
    write_atomic(run.directory / MANIFEST, json.dumps(run.manifest(), indent=2, ensure_ascii=False) + "\n")


def load_run(location: str | os.PathLike[str]) -> Run:
    """Loads a run directory (or its manifest.json) with every result journalled so far."""
    path = Path(location)
    directory = path.parent if path.name == MANIFEST else path
    data = read_versioned(directory / MANIFEST, RUN_FORMAT, ResultsError,
                          f"not a run directory (expected {MANIFEST} in it)", where=str(directory))
    results = in_suite_order(read_journal(directory / JOURNAL), data["suite"]["case_ids"])
    return Run(
        run_id=data["run_id"], suite=SuiteIdentity.from_dict(data["suite"]), repeats=data["repeats"],
        conditions=Conditions.from_dict(data["conditions"]) if data.get("conditions") else None,
        results=results, status=data["status"],
        shard=(data["shard"][0], data["shard"][1]) if data.get("shard") else None,
        options=data.get("options", {}), merged_from=tuple(data.get("merged_from", ())), directory=directory,
    )


@dataclass(frozen=True)
class CaseSummary:
    """One case across its repeats: k of n passed."""

    case_id: str
    tags: tuple[str, ...]
    passed: int
    total: int
    errors: int

    @property
    def flaky(self) -> bool:
        return 0 < self.passed < self.total


def per_case(results: Iterable[CaseResult]) -> list[CaseSummary]:
    """k-of-n pass counts per case, in first-seen order."""
    grouped: dict[str, list[CaseResult]] = defaultdict(list)
    for result in results:
        grouped[result.case_id].append(result)
    return [
        CaseSummary(case_id, items[0].tags, sum(r.passed for r in items), len(items),
                    sum(1 for r in items if r.error))
        for case_id, items in grouped.items()
    ]


def merge_runs(locations: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]) -> Run:
    """Joins shard runs of one suite into one run directory; conflicts are errors, never overwrites."""
    from evalkit.conditions import summarise_calls

    runs = [load_run(location) for location in locations]
    if not runs:
        raise ResultsError("merge: expected at least one run, got none")
    first = runs[0]
    for run in runs[1:]:
        if run.suite.sha256 != first.suite.sha256:
            raise ResultsError(f"{run.directory}: suite.sha256: expected {first.suite.sha256[:12]} (as in "
                               f"{first.directory}), got {run.suite.sha256[:12]}: the shards ran different suites")
        if run.repeats != first.repeats:
            raise ResultsError(f"{run.directory}: repeats: expected {first.repeats}, got {run.repeats}")
    seen: dict[tuple[str, int], Path | None] = {}
    results: list[CaseResult] = []
    for run in runs:
        for result in run.results:
            if result.key in seen:
                raise ResultsError(f"{run.directory}: case {result.case_id!r} repeat {result.repeat} is also in "
                                   f"{seen[result.key]}: shards must not overlap")
            seen[result.key] = run.directory
            results.append(result)
    starts = [r.conditions for r in runs if r.conditions is not None]
    summary = summarise_calls(r.call for r in results)
    durations = [c.duration_s or 0.0 for c in starts]
    conditions = replace(
        min(starts, key=lambda c: c.started_at_utc),
        ended_at_utc=max((c.ended_at_utc or "" for c in starts), default=None) or None,
        duration_s=max(durations), in_flight_max=max(c.in_flight_max or 0 for c in starts),
        in_flight_mean=sum(c.in_flight_mean or 0 for c in starts),
        loadavg_end=starts[-1].loadavg_end,
        throughput_per_s=round((summary["calls"] - summary["cached_calls"]) / max(durations), 3)
        if max(durations) > 0 else None,
        **summary,
    )
    complete = all(r.status == "complete" for r in runs) and len(results) == len(first.suite.case_ids) * first.repeats
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / MANIFEST).exists() or (directory / JOURNAL).exists():
        raise ResultsError(f"{directory}: expected a new or empty directory for the merged run, got an existing run")
    merged = Run(
        run_id=directory.name, suite=first.suite, repeats=first.repeats, conditions=conditions,
        results=tuple(results), status="complete" if complete else "partial", shard=None,
        options=first.options, merged_from=tuple(r.run_id for r in runs), directory=directory,
    )
    journal = Journal(directory, merged.run_id)
    for result in results:
        journal.append(result)
    journal.close()
    write_manifest(merged)
    return load_run(directory)
