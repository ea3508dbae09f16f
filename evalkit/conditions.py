"""Conditions of a run: clock, load, concurrency, latency percentiles, errors, versions, fingerprints.

Written before the first call (:func:`at_start`) and completed after the last (:func:`at_end`), so a
latency measured at 2 AM on a quiet machine says so.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from evalkit.providers.base import CallRecord

SDK_PACKAGES = ("openai", "anthropic", "llama_cpp_python", "jinja2", "jsonschema")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0–100) by linear interpolation (numpy's default method); None when empty."""
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _loadavg() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:  # pragma: no cover - not available on every platform
        return None


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for package in SDK_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def _evalkit_version() -> str:
    try:
        return metadata.version("evalkit")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def git_state(folder: Path) -> tuple[str | None, bool | None]:
    """The commit and dirty flag of the working tree that holds ``folder`` (None outside git)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
                                timeout=10, check=False)
        if commit.returncode != 0:
            return None, None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                               capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    return commit.stdout.strip(), bool(dirty.stdout.strip())


@dataclass(frozen=True)
class Conditions:
    """Under what conditions a run happened. Fields after ``ended_at_utc`` are filled at the end."""

    started_at_utc: str
    started_at_local: str
    timezone: str
    hour_local: int
    weekday: str
    host_platform: str
    loadavg_start: tuple[float, float, float] | None
    concurrency_configured: int
    provider: str
    endpoint: str | None
    """Host and port only; never a key or a path."""
    model_requested: str | None
    evalkit_version: str
    python_version: str
    versions: Mapping[str, str | None] = field(hash=False)
    """Installed versions of the SDKs and libraries a run depends on."""
    git_commit: str | None
    git_dirty: bool | None
    suite_sha256: str
    template_sha256: Mapping[str, str] = field(hash=False)
    """Template origin → hash of its source."""
    rendered_prompts_sha256: str
    """Hash over every rendered prompt of the run, in case order."""
    rate_limit: Mapping[str, float | None] = field(default_factory=dict, hash=False)
    host_cpus: int | None = None
    """CPUs of the machine that ran the calls (``os.cpu_count()``): latency moves with it."""

    ended_at_utc: str | None = None
    ended_at_local: str | None = None
    duration_s: float | None = None
    loadavg_end: tuple[float, float, float] | None = None
    in_flight_mean: float | None = None
    in_flight_max: int | None = None
    calls: int = 0
    throughput_per_s: float | None = None
    ttft_p50: float | None = None
    ttft_p95: float | None = None
    ttft_p99: float | None = None
    latency_p50: float | None = None
    latency_p95: float | None = None
    latency_p99: float | None = None
    attempts: int = 0
    errors_pre_retry: int = 0
    """Failed attempts, before any retry could hide them."""
    errors_post_retry: int = 0
    """Calls still failed after all retries."""
    error_rate_pre_retry: float | None = None
    """Failed attempts / attempts: the provider's real error rate."""
    error_rate_post_retry: float | None = None
    """Failed calls / calls: what the retry budget left."""
    errors_by_class: Mapping[str, int] = field(default_factory=dict, hash=False)
    models_returned: tuple[str, ...] = ()
    system_fingerprints: tuple[str, ...] = ()
    cached_calls: int = 0
    provider_tokens_reported: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("loadavg_start", "loadavg_end", "models_returned", "system_fingerprints"):
            if data[key] is not None:
                data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Conditions:
        """Reads stored conditions; fields this version does not know are ignored (forward compatibility)."""
        values = {k: v for k, v in data.items() if k in _CONDITION_FIELDS}
        for key in ("loadavg_start", "loadavg_end", "models_returned", "system_fingerprints"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


_CONDITION_FIELDS = frozenset(Conditions.__dataclass_fields__)


@dataclass(frozen=True)
class Session:
    """One stretch of a run in one process: the first run, then each ``--resume``."""

    index: int
    started_at_utc: str | None = None
    ended_at_utc: str | None = None
    duration_s: float | None = None
    """Wall time from the first call's start to the last call's end."""
    calls: int = 0
    """Live (uncached) model calls made in this session."""
    in_flight_mean: float | None = None
    """Time-weighted mean of calls in flight over the session."""
    in_flight_max: int | None = None
    status: str = "complete"
    """How it ended: ``complete``, ``interrupted``, ``failed``, or ``killed`` (reconstructed from the journal)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Session:
        return cls(**{k: v for k, v in data.items() if k in _SESSION_FIELDS})


_SESSION_FIELDS = frozenset(Session.__dataclass_fields__)


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def session_from_calls(index: int, records: Sequence[CallRecord], status: str = "killed") -> Session:
    """A session's figures rebuilt from its calls alone (for a process killed before it could write them).

    Mean in flight is busy time over wall time (the time-weighted mean, by definition); the maximum comes
    from sweeping the calls' start and end times.
    """
    live = [r for r in records if not r.cached]
    if not live:
        return Session(index, calls=0, status=status)
    spans = sorted((_parse_time(r.started_at), _parse_time(r.started_at) + r.total_s) for r in live)
    start, end = spans[0][0], max(e for _, e in spans)
    wall = max(end - start, 1e-9)
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    current = peak = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return Session(
        index, datetime.fromtimestamp(start, UTC).isoformat(timespec="seconds"),
        datetime.fromtimestamp(end, UTC).isoformat(timespec="seconds"), round(wall, 3), len(live),
        round(sum(e - s for s, e in spans) / wall, 3), peak, status,
    )


def combine_sessions(sessions: Sequence[Session]) -> tuple[float, float, int]:
    """Total duration, time-weighted mean in flight, and maximum in flight over several sessions.

    A resumed run is several stretches of work with gaps between them: throughput and concurrency are
    measured over the time spent running, never over one session's share of the calls.
    """
    duration = sum(s.duration_s or 0.0 for s in sessions)
    busy = sum((s.duration_s or 0.0) * (s.in_flight_mean or 0.0) for s in sessions)
    peak = max((s.in_flight_max or 0 for s in sessions), default=0)
    return duration, (busy / duration if duration > 0 else 0.0), peak


def at_start(*, concurrency: int, provider: str, endpoint: str | None, model: str | None, suite_sha256: str,
             template_sha256: Mapping[str, str], rendered_prompts_sha256: str, suite_folder: Path,
             rate_limit: Mapping[str, float | None] | None = None) -> Conditions:
    """The conditions known before the first call."""
    now = datetime.now(UTC)
    local = now.astimezone()
    commit, dirty = git_state(suite_folder)
    return Conditions(
        started_at_utc=now.isoformat(timespec="seconds"), started_at_local=local.isoformat(timespec="seconds"),
        timezone=local.tzname() or "unknown", hour_local=local.hour, weekday=local.strftime("%A"),
        host_platform=platform.platform(terse=True), loadavg_start=_loadavg(),
        concurrency_configured=concurrency, provider=provider, endpoint=endpoint, model_requested=model,
        evalkit_version=_evalkit_version(), python_version=sys.version.split()[0], versions=_versions(),
        git_commit=commit, git_dirty=dirty, suite_sha256=suite_sha256, template_sha256=dict(template_sha256),
        rendered_prompts_sha256=rendered_prompts_sha256, rate_limit=dict(rate_limit or {}),
        host_cpus=os.cpu_count(),
    )


def summarise_calls(records: Iterable[CallRecord]) -> dict[str, Any]:
    """Latency/TTFT percentiles and error accounting over call records (cached calls excluded)."""
    live = list(records)
    measured = [r for r in live if not r.cached]
    ttfts = [r.ttft_s for r in measured if r.ttft_s is not None]
    latencies = [r.latency_s for r in measured if r.latency_s is not None]
    attempts = sum(len(r.attempts) for r in measured)
    failed_attempts = sum(r.failed_attempts for r in measured)
    failed_calls = sum(1 for r in measured if not r.ok)
    classes = Counter(a.error_class for r in measured for a in r.attempts if a.error_class)
    return {
        "calls": len(live),
        "cached_calls": len(live) - len(measured),
        "ttft_p50": percentile(ttfts, 50), "ttft_p95": percentile(ttfts, 95), "ttft_p99": percentile(ttfts, 99),
        "latency_p50": percentile(latencies, 50), "latency_p95": percentile(latencies, 95),
        "latency_p99": percentile(latencies, 99),
        "attempts": attempts, "errors_pre_retry": failed_attempts, "errors_post_retry": failed_calls,
        "error_rate_pre_retry": failed_attempts / attempts if attempts else None,
        "error_rate_post_retry": failed_calls / len(measured) if measured else None,
        "errors_by_class": dict(sorted(classes.items())),
        "models_returned": tuple(sorted({r.model_returned for r in live if r.model_returned})),
        "system_fingerprints": tuple(sorted({r.system_fingerprint for r in live if r.system_fingerprint})),
        "provider_tokens_reported": any(r.completion_tokens is not None for r in measured) if measured else None,
    }


def at_end(start: Conditions, records: Sequence[CallRecord], sessions: Sequence[Session]) -> Conditions:
    """Completes the conditions after the last call, over every session of the run."""
    now = datetime.now(UTC)
    summary = summarise_calls(records)
    measured = len(records) - summary["cached_calls"]
    duration_s, in_flight_mean, in_flight_max = combine_sessions(sessions)
    return replace(
        start, ended_at_utc=now.isoformat(timespec="seconds"),
        ended_at_local=now.astimezone().isoformat(timespec="seconds"), duration_s=round(duration_s, 3),
        loadavg_end=_loadavg(), in_flight_mean=round(in_flight_mean, 3), in_flight_max=in_flight_max,
        throughput_per_s=round(measured / duration_s, 3) if duration_s > 0 else None, **summary,
    )


class InFlight:
    """Tracks calls in flight: the time-weighted mean and the maximum (achieved concurrency)."""

    def __init__(self) -> None:
        self.current = 0
        self.maximum = 0
        self._area = 0.0
        self._t0 = self._last = time.perf_counter()

    def _advance(self) -> None:
        now = time.perf_counter()
        self._area += self.current * (now - self._last)
        self._last = now

    def enter(self) -> None:
        self._advance()
        self.current += 1
        self.maximum = max(self.maximum, self.current)

    def exit(self) -> None:
        self._advance()
        self.current -= 1

    def mean(self) -> float:
        self._advance()
        elapsed = self._last - self._t0
        return self._area / elapsed if elapsed > 0 else 0.0

