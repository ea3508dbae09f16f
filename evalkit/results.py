"""Run results: records, the case-by-case journal, and the versioned run directory.

A run directory holds ``manifest.json`` (``"format": "evalkit.run/2"``: suite identity, options,
sessions, conditions) and ``journal.jsonl`` (``evalkit.journal/2``: one case result per line, appended and
flushed as each finishes, so an interrupted run loses only the calls that were in flight). Readers accept
the /1 formats of evalkit 0.1, validate every record against its schema, ignore fields they do not know
(forward compatibility within a version) and report a corrupt line with its number instead of dropping it.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from evalkit.artifact import read_versioned, record_problem, write_atomic
from evalkit.conditions import Conditions, Session
from evalkit.core.score import Score
from evalkit.core.trajectory import Trajectory
from evalkit.errors import ResultsError
from evalkit.providers.base import CallRecord

RUN_FORMAT = "evalkit.run/2"
RUN_FORMATS = ("evalkit.run/1", RUN_FORMAT)
JOURNAL_FORMAT = "evalkit.journal/2"
JOURNAL_FORMATS = ("evalkit.journal/1", JOURNAL_FORMAT)
MANIFEST = "manifest.json"
JOURNAL = "journal.jsonl"
LOCK = ".lock"
STATUSES = ("running", "interrupted", "complete", "failed", "incomplete", "partial")
"""``running`` (or killed), ``interrupted`` (Ctrl-C/SIGTERM), ``complete``, ``failed`` (the provider failed
every call, or refused the key), ``incomplete`` (results are missing though the manifest says otherwise),
``partial`` (a merge of shards that do not cover the suite)."""


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case in one repeat."""

    case_id: str
    repeat: int
    """0-based repeat (epoch) index."""
    passed: bool
    """True when the case ran without error and every check passed."""
    output: str
    scores: tuple[Score, ...]
    trajectory: Trajectory
    """Every model call and tool event of the case, in order."""
    tags: tuple[str, ...] = ()
    prompt_sha256: str = ""
    """Hash of the rendered messages sent for this case."""
    route: str | None = None
    """The case's route (see :attr:`evalkit.suite.Case.route`)."""
    session: int = 0
    """Which session of the run produced it (0, then 1 for the first ``--resume`` …)."""
    case_error: str | None = None
    """An error of the case itself (a tool runtime or state check that broke), beside any call error."""

    @property
    def unscored(self) -> bool:
        """No verdict: a check could not decide (an unparseable judge answer) and every other check passed.

        Such a result counts neither as a pass nor as a fail: it is left out of pass-rate denominators.
        """
        return (not self.passed and any(s.unscored for s in self.scores)
                and all(s.passed or s.unscored for s in self.scores) and self.error is None)

    @property
    def key(self) -> tuple[str, int]:
        return self.case_id, self.repeat

    @property
    def calls(self) -> tuple[CallRecord, ...]:
        """The model calls of the case, in order."""
        return self.trajectory.calls

    @property
    def call(self) -> CallRecord:
        """The case's first model call (a single-turn target makes exactly one)."""
        calls = self.trajectory.calls
        if not calls:
            raise ValueError(f"case {self.case_id!r} made no model call")
        return calls[0]

    @property
    def error(self) -> str | None:
        """Why the case could not be scored: its own error, or the last failed call's."""
        if self.case_error:
            return self.case_error
        failed = [c for c in self.trajectory.calls if not c.ok]
        return failed[-1].error if failed else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id, "repeat": self.repeat, "passed": self.passed, "output": self.output,
            "tags": list(self.tags), "route": self.route, "prompt_sha256": self.prompt_sha256,
            "session": self.session, "error": self.case_error, "scores": [s.to_dict() for s in self.scores],
            "trajectory": self.trajectory.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaseResult:
        """Reads a journal record (of either journal version); unknown fields are ignored."""
        if "trajectory" in data:
            trajectory = Trajectory.from_dict(data["trajectory"])
        else:  # evalkit.journal/1: one call per result
            record = CallRecord.from_dict(data["call"])
            trajectory = Trajectory((record,), "complete" if record.ok else "error", record.total_s)
        return cls(
            case_id=data["case_id"], repeat=data["repeat"], passed=data["passed"], output=data["output"],
            scores=tuple(Score.from_dict(s) for s in data["scores"]), trajectory=trajectory,
            tags=tuple(data.get("tags") or ()), prompt_sha256=data.get("prompt_sha256") or "",
            route=data.get("route"), session=int(data.get("session") or 0), case_error=data.get("error"),
        )


@dataclass(frozen=True)
class SuiteIdentity:
    """What a run ran: enough to pair runs and to tell when the suite changed."""

    name: str
    path: str
    """The suite file as the user named it."""
    sha256: str
    case_ids: tuple[str, ...]
    """Every case id of the suite (a shard runs a subset)."""
    target: Mapping[str, Any] = field(hash=False)
    """Provider, model, params and callable: never keys."""
    gate: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """The suite's gate settings, so a comparison needs nothing but the run and the baseline."""
    file: str | None = None
    """The suite file's absolute path, so a run resumes from any working directory."""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "file": self.file, "sha256": self.sha256,
                "case_ids": list(self.case_ids), "target": dict(self.target), "gate": dict(self.gate)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SuiteIdentity:
        return cls(data["name"], data["path"], data["sha256"], tuple(data["case_ids"]), data.get("target") or {},
                   data.get("gate") or {}, data.get("file"))


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
    """See :data:`STATUSES`."""
    shard: tuple[int, int] | None = None
    """(i, n) with 1 <= i <= n when this run is one shard of n."""
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """How it was run (concurrency, cache, seed…), so ``--resume`` continues the same way."""
    merged_from: tuple[str, ...] = ()
    directory: Path | None = None
    sessions: tuple[Session, ...] = ()
    """One record per session that ended normally (the first run, then each ``--resume``)."""
    problems: tuple[str, ...] = ()
    """Journal lines that could not be read (``journal.jsonl:17: …``); their cases run again on resume."""
    failure: str | None = None
    """Why a ``failed`` run failed as a whole (the provider refused the key, every call failed …)."""

    @property
    def expected(self) -> int:
        """How many case results a complete run has."""
        return len(self.planned_case_ids) * self.repeats

    @property
    def planned_case_ids(self) -> tuple[str, ...]:
        if self.shard is None:
            return self.suite.case_ids
        return tuple(c for c in self.suite.case_ids if shard_of(c, self.shard[1]) == self.shard[0])

    @property
    def missing(self) -> int:
        """Planned (case, repeat) pairs with no readable result."""
        have = {r.key for r in self.results}
        return sum(1 for c in self.planned_case_ids for k in range(self.repeats) if (c, k) not in have)

    def manifest(self) -> dict[str, Any]:
        return {
            "format": RUN_FORMAT, "run_id": self.run_id, "status": self.status, "repeats": self.repeats,
            "shard": list(self.shard) if self.shard else None, "merged_from": list(self.merged_from),
            "options": dict(self.options), "sessions": [s.to_dict() for s in self.sessions],
            "failure": self.failure,
            "suite": self.suite.to_dict(), "conditions": self.conditions.to_dict() if self.conditions else None,
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


@dataclass(frozen=True)
class JournalRead:
    """The results a journal holds, and the lines that could not be read."""

    results: tuple[CaseResult, ...]
    problems: tuple[str, ...]


def _journal_lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        handle = path.open("r", encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise ResultsError(f"{path}: journal not found") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            yield number, line.rstrip("\n")


def scan_journal(path: Path) -> JournalRead:
    """Every readable result (later duplicates win) and one line per unreadable record."""
    lines = _journal_lines(path)
    first = next(lines, None)
    if first is None or not first[1].strip():
        return JournalRead((), ())
    try:
        header = json.loads(first[1])
    except json.JSONDecodeError:
        raise ResultsError(f"{path}:1: expected a journal header, got invalid JSON") from None
    got = header.get("format") if isinstance(header, dict) else type(header).__name__
    if got not in JOURNAL_FORMATS:
        raise ResultsError(f"{path}:1: format: expected {JOURNAL_FORMAT!r}, got {got!r} "
                           "(written by another evalkit version?)")
    found: dict[tuple[str, int], CaseResult] = {}
    problems: list[str] = []
    for number, line in lines:
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{number}: unreadable line ({exc.msg} at column {exc.colno}); "
                            "its case runs again on resume")
            continue
        problem = record_problem(data, "result")
        if problem is None:
            try:
                result = CaseResult.from_dict(data)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                problem = f"invalid record ({type(exc).__name__}: {exc})"
        if problem is not None:
            problems.append(f"{path}:{number}: {problem}; its case runs again on resume")
            continue
        found[result.key] = result
    return JournalRead(tuple(found.values()), tuple(problems))


def read_journal(path: Path) -> list[CaseResult]:
    """The readable results of a journal (see :func:`scan_journal` for the lines that were not)."""
    return list(scan_journal(path).results)


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
    data = read_versioned(directory / MANIFEST, RUN_FORMATS, ResultsError,
                          f"not a run directory (expected {MANIFEST} in it)", where=str(directory), schema="run")
    journal = scan_journal(directory / JOURNAL) if (directory / JOURNAL).exists() else JournalRead((), ())
    try:
        run = Run(
            run_id=data["run_id"], suite=SuiteIdentity.from_dict(data["suite"]), repeats=data["repeats"],
            conditions=Conditions.from_dict(data["conditions"]) if data.get("conditions") else None,
            results=in_suite_order(journal.results, data["suite"]["case_ids"]), status=data["status"],
            shard=(data["shard"][0], data["shard"][1]) if data.get("shard") else None,
            options=data.get("options") or {}, merged_from=tuple(data.get("merged_from") or ()),
            directory=directory, sessions=tuple(Session.from_dict(s) for s in data.get("sessions") or ()),
            problems=journal.problems, failure=data.get("failure"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultsError(f"{directory / MANIFEST}: invalid manifest ({type(exc).__name__}: {exc})") from None
    if run.status == "complete" and run.missing:
        run = replace(run, status="incomplete")  # a result was lost (a corrupt line): resume redoes it
    return run


class RunLock:
    """An exclusive lock on a run directory for as long as a process runs it (released even by kill -9)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK
        self._handle: IO[str] | None = None

    def __enter__(self) -> RunLock:
        import fcntl

        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ResultsError(f"{self.path.parent}: expected no other evalkit running this run, got {holder} "
                               "holding its lock; wait for it to finish (or stop it), then resume") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()  # closing releases the flock
            self._handle = None


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


def all_calls(results: Iterable[CaseResult]) -> list[CallRecord]:
    """Every model call of these results, case by case."""
    return [call for result in results for call in result.calls]


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
    summary = summarise_calls(all_calls(results))
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
