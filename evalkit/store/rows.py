"""A run as store rows: one row for the run, one per call. Pure functions; the store writes them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from evalkit.errors import StoreError
from evalkit.providers.base import CallRecord
from evalkit.results import CaseResult, Run
from evalkit.store.schema import CALL_COLUMNS, RUN_COLUMNS

KINDS = ("run", "ladder")
"""``run``: an ordinary run (scheduled sweeps included); ``ladder``: one step of a load ladder."""


@dataclass(frozen=True)
class RunRows:
    """What one run puts in the store."""

    run_key: str
    run: tuple[Any, ...]
    """Values in :data:`RUN_COLUMNS` order."""
    calls: list[tuple[Any, ...]]
    """Values in :data:`CALL_COLUMNS` order."""
    digest: str


def run_key(run: Run) -> str:
    """The store's key of a run: its id and start, so two runs given the same id elsewhere never collide."""
    assert run.conditions is not None
    return f"{run.run_id}@{run.conditions.started_at_utc}"


def _epoch(iso: str) -> float:
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _offset(started_at_local: str) -> timedelta:
    """The run's UTC offset, from its local start time (``2025-03-01T15:00:00+01:00``)."""
    offset = datetime.fromisoformat(started_at_local).utcoffset()
    return offset if offset is not None else timedelta(0)


def judge_identity(manifest: Mapping[str, Any]) -> str | None:
    """A short hash of the judges a run used, as its manifest records them (``judges``), if it does."""
    judges = manifest.get("judges") or (manifest.get("conditions") or {}).get("judges")
    if not judges:
        return None
    canonical = json.dumps(judges, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _score(result: CaseResult) -> float | None:
    graded = [s.score for s in result.scores if s.score is not None]
    return sum(graded) / len(graded) if graded else None


def _int(value: Any) -> int | None:
    """A plain int (a numpy integer from a user's target would be stored as bytes by sqlite3)."""
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _call_row(key: str, result: CaseResult, index: int, call: CallRecord, offset: timedelta) -> tuple[Any, ...]:
    started = datetime.fromisoformat(call.started_at.replace("Z", "+00:00"))
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    local = started.astimezone(UTC) + offset
    first_error = call.attempts[0].error_class if call.attempts else call.error_class
    values = {
        "run_key": key, "case_id": result.case_id, "repeat": result.repeat, "call_index": index,
        "route": result.route,
        "tags": ",".join(result.tags), "started_at": started.astimezone(UTC).isoformat(timespec="milliseconds"),
        "started_epoch": started.timestamp(), "hour_local": local.hour,
        "hour_frac": local.hour + local.minute / 60 + local.second / 3600, "weekday": local.weekday(),
        "in_flight_at_start": _int(call.in_flight_at_start), "ttft_s": _float(call.ttft_s),
        "latency_s": _float(call.latency_s), "total_s": _float(call.total_s), "prompt_tokens": _int(call.prompt_tokens),
        "completion_tokens": _int(call.completion_tokens), "prompt_tokens_est": _int(call.prompt_tokens_est),
        "completion_tokens_est": _int(call.completion_tokens_est),
        "attempts": len(call.attempts), "failed_attempts": call.failed_attempts, "error_class_first": first_error,
        "error_class": call.error_class, "model_requested": call.model_requested,
        "model_returned": call.model_returned, "fingerprint": call.system_fingerprint, "cached": call.cached,
        "passed": bool(result.passed), "score": _score(result), "prompt_sha256": result.prompt_sha256,
        "stop_reason": call.stop_reason,
    }
    return tuple(values[column] for column in CALL_COLUMNS)


def run_rows(run: Run, *, kind: str = "run", sweep_id: str | None = None, source: str | None = None) -> RunRows:
    """The store rows of a run; a run without conditions (never started) cannot be stored."""
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    where = str(run.directory or run.run_id)
    c = run.conditions
    if c is None:
        raise StoreError(f"{where}: conditions: expected a started run, got a manifest without conditions")
    manifest = run.manifest()
    key = run_key(run)
    canonical = json.dumps(manifest, sort_keys=True, ensure_ascii=False, default=str)
    digest = hashlib.sha256(f"{canonical}|{len(run.results)}|{kind}|{sweep_id}".encode()).hexdigest()
    try:
        offset = _offset(c.started_at_local)
        calls = [_call_row(key, r, i, call, offset) for r in run.results for i, call in enumerate(r.calls)]
        started_epoch = _epoch(c.started_at_utc)
    except ValueError as exc:
        raise StoreError(f"{where}: started_at: expected ISO 8601 times, got {exc}") from None
    records = [call for r in run.results for call in r.calls]
    measured = [call for call in records if not call.cached]
    values = {
        "run_key": key, "run_id": run.run_id, "suite": run.suite.name, "suite_path": run.suite.path,
        "suite_sha256": run.suite.sha256, "kind": kind, "sweep_id": sweep_id, "status": run.status,
        "repeats": run.repeats, "shard": f"{run.shard[0]}/{run.shard[1]}" if run.shard else None,
        "started_at": c.started_at_utc, "started_epoch": started_epoch, "ended_at": c.ended_at_utc,
        "timezone": c.timezone, "utc_offset_s": int(offset.total_seconds()), "hour_local": c.hour_local,
        "weekday": datetime.fromisoformat(c.started_at_local).weekday(), "duration_s": c.duration_s,
        "concurrency": c.concurrency_configured, "in_flight_mean": c.in_flight_mean, "in_flight_max": c.in_flight_max,
        "host_cpus": c.host_cpus, "host_platform": c.host_platform,
        "loadavg_start": c.loadavg_start[0] if c.loadavg_start else None,
        "loadavg_end": c.loadavg_end[0] if c.loadavg_end else None, "provider": c.provider,
        "endpoint": c.endpoint, "model_requested": c.model_requested,
        "models_returned": ",".join(c.models_returned), "fingerprints": ",".join(c.system_fingerprints),
        "evalkit_version": c.evalkit_version, "git_commit": c.git_commit, "git_dirty": c.git_dirty,
        "prompt_sha256": c.rendered_prompts_sha256, "judge": judge_identity(manifest), "calls": len(records),
        "cached_calls": len(records) - len(measured), "throughput_per_s": c.throughput_per_s,
        "pass_rate": sum(r.passed for r in run.results) / len(run.results) if run.results else None,
        "latency_p50": c.latency_p50, "latency_p95": c.latency_p95, "ttft_p95": c.ttft_p95,
        "error_rate_pre_retry": c.error_rate_pre_retry, "error_rate_post_retry": c.error_rate_post_retry,
        "digest": digest, "source": source, "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "manifest": canonical,
    }
    return RunRows(key, tuple(values[column] for column in RUN_COLUMNS), calls, digest)
