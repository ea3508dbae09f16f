"""Synthetic runs for the history store's tests and benchmark: real Run records, made without a model.

The store, the diurnal analysis and the change points are what is under test; the calls' figures are
chosen here (a live model cannot be told to be slow at 2 PM).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from evalkit.conditions import Conditions, summarise_calls
from evalkit.core.trajectory import Trajectory
from evalkit.providers.base import Attempt, CallRecord
from evalkit.results import CaseResult, Journal, Run, SuiteIdentity, write_manifest
from evalkit.scorers import Score


def make_run(run_id: str, started: datetime, latencies: Sequence[float], *, suite: str = "svc",
             passed: Sequence[bool] | None = None, in_flight: Sequence[int] | None = None,
             tokens: Sequence[int] | None = None, errors: Sequence[str | None] | None = None,
             model: str = "model-a", fingerprint: str = "fp-1", prompt: str = "prompt-1", version: str = "0.1.0",
             offset_hours: float = 0.0, concurrency: int = 4, spacing_s: float = 0.5,
             directory: Path | None = None) -> Run:
    """A complete run of ``len(latencies)`` calls starting at ``started`` (UTC), one call per case."""
    n = len(latencies)
    zone = timezone(timedelta(hours=offset_hours))
    results = []
    for i, latency in enumerate(latencies):
        at = started + timedelta(seconds=i * spacing_s)
        error = errors[i] if errors else None
        stamp = at.timestamp()
        if error is not None:  # failed on every attempt: an error before and after retries
            attempts = (Attempt(1, stamp, latency, error, f"{error}: failed", None, None, 0.1),
                        Attempt(2, stamp + latency, latency, error, f"{error}: failed"))
        elif i % 7 == 3:  # failed once, then succeeded: an error before retries, none after
            attempts = (Attempt(1, stamp, latency, "rate_limit", "HTTP 429", 429, None, 0.1),
                        Attempt(2, stamp + latency, latency))
        else:
            attempts = (Attempt(1, stamp, latency),)
        out = tokens[i] if tokens else 40
        call = CallRecord(
            provider="openai", model_requested="model-a", started_at=at.isoformat(timespec="milliseconds"),
            output="ok", model_returned=None if error else model, system_fingerprint=None if error else fingerprint,
            ttft_s=None if error else latency * 0.25, latency_s=None if error else latency,
            total_s=latency * len(attempts), prompt_tokens=30, completion_tokens=None if error else out,
            prompt_tokens_est=30, completion_tokens_est=out, stop_reason="error" if error else "complete",
            attempts=attempts, error_class=error, error=error and f"{error}: failed",
            in_flight_at_start=in_flight[i] if in_flight else 1 + i % concurrency,
        )
        ok = bool(passed[i] if passed else True) and error is None
        trajectory = Trajectory((call,), "error" if error else "complete", call.total_s)
        results.append(CaseResult(f"case-{i:04d}", 0, ok, "ok", (Score("contains", ok, float(ok), "r"),), trajectory,
                                  tags=("t1",), prompt_sha256=f"{prompt}-{i}", route="billing" if i % 2 else "general"))
    summary = summarise_calls(c for r in results for c in r.calls)
    local = started.astimezone(zone)
    duration = n * spacing_s
    conditions = Conditions(
        started_at_utc=started.astimezone(UTC).isoformat(timespec="seconds"),
        started_at_local=local.isoformat(timespec="seconds"), timezone=local.tzname() or "UTC",
        hour_local=local.hour, weekday=local.strftime("%A"), host_platform="Linux", loadavg_start=(0.5, 0.4, 0.3),
        concurrency_configured=concurrency, provider="openai", endpoint="127.0.0.1:8000", model_requested="model-a",
        evalkit_version=version, python_version="3.11.7", versions={}, git_commit="abc", git_dirty=False,
        suite_sha256="s" * 64, template_sha256={}, rendered_prompts_sha256=prompt, host_cpus=2,
        ended_at_utc=(started + timedelta(seconds=duration)).astimezone(UTC).isoformat(timespec="seconds"),
        duration_s=duration, in_flight_mean=concurrency / 2, in_flight_max=concurrency,
        throughput_per_s=n / duration, **summary,
    )
    identity = SuiteIdentity(suite, f"suites/{suite}.yaml", "s" * 64, tuple(r.case_id for r in results),
                             {"provider": "openai", "model": "model-a", "params": {}})
    run = Run(run_id, identity, 1, conditions, tuple(results), "complete", options={"concurrency": concurrency},
              directory=directory)
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        journal = Journal(directory, run_id)
        for result in results:
            journal.append(result)
        journal.close()
        write_manifest(run)
    return run


def start(day: int = 0, hour: float = 0.0) -> datetime:
    """A fixed UTC moment: 2025-03-03 (a Monday) plus days and hours."""
    return datetime(2025, 3, 3, tzinfo=UTC) + timedelta(days=day, hours=hour)
