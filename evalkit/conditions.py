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
        values = dict(data)
        for key in ("loadavg_start", "loadavg_end", "models_returned", "system_fingerprints"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


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


def at_end(start: Conditions, records: Sequence[CallRecord], *, duration_s: float, in_flight_mean: float,
           in_flight_max: int) -> Conditions:
    """Completes the conditions after the last call."""
    now = datetime.now(UTC)
    summary = summarise_calls(records)
    measured = len(records) - summary["cached_calls"]
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

