"""The history store's schema: one for SQLite and Postgres, grown only by named, append-only migrations.

A migration is never edited once released: a change is a new migration appended to :data:`MIGRATIONS`.
The store records which migrations it has had; a store holding one this evalkit does not know was written
by a newer evalkit and is refused rather than misread.
"""

from __future__ import annotations

from dataclasses import dataclass

STORE_FORMAT = "evalkit.store/1"
"""What the ``format`` row of ``evalkit_meta`` says."""

RUN_COLUMNS: tuple[str, ...] = (
    "run_key", "run_id", "suite", "suite_path", "suite_sha256", "kind", "sweep_id", "status", "repeats", "shard",
    "started_at", "started_epoch", "ended_at", "timezone", "utc_offset_s", "hour_local", "weekday",
    "duration_s", "concurrency", "in_flight_mean", "in_flight_max", "host_cpus", "host_platform",
    "loadavg_start", "loadavg_end", "provider", "endpoint", "model_requested", "models_returned",
    "fingerprints", "evalkit_version", "git_commit", "git_dirty", "prompt_sha256", "judge", "calls",
    "cached_calls", "throughput_per_s", "pass_rate", "latency_p50", "latency_p95", "ttft_p95",
    "error_rate_pre_retry", "error_rate_post_retry", "digest", "source", "ingested_at", "manifest",
)
"""Columns of ``evalkit_runs``, in the order rows are written."""

CALL_COLUMNS: tuple[str, ...] = (
    "run_key", "case_id", "repeat", "call_index", "route", "tags", "started_at", "started_epoch", "hour_local",
    "hour_frac", "weekday", "in_flight_at_start", "ttft_s", "latency_s", "total_s", "prompt_tokens",
    "completion_tokens", "prompt_tokens_est", "completion_tokens_est", "attempts", "failed_attempts",
    "error_class_first", "error_class", "model_requested", "model_returned", "fingerprint", "cached", "passed",
    "score", "prompt_sha256", "stop_reason",
)
"""Columns of ``evalkit_calls`` (one row per provider call: an agent's case has several, ``call_index``
0, 1, …; the case's pass and score are on each), in the order rows are written."""


@dataclass(frozen=True)
class Migration:
    """One named schema change; its statements run in one transaction."""

    name: str
    statements: tuple[str, ...]


# Types that mean the same to both engines: SQLite maps DOUBLE PRECISION to REAL and BOOLEAN to NUMERIC.
MIGRATIONS: tuple[Migration, ...] = (
    Migration("0001_runs_and_calls", (
        """CREATE TABLE evalkit_meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )""",
        """CREATE TABLE evalkit_runs (
            run_key TEXT PRIMARY KEY,
            run_id TEXT NOT NULL,
            suite TEXT NOT NULL,
            suite_path TEXT,
            suite_sha256 TEXT,
            kind TEXT NOT NULL,
            sweep_id TEXT,
            status TEXT,
            repeats INTEGER,
            shard TEXT,
            started_at TEXT NOT NULL,
            started_epoch DOUBLE PRECISION NOT NULL,
            ended_at TEXT,
            timezone TEXT,
            utc_offset_s INTEGER,
            hour_local INTEGER,
            weekday INTEGER,
            duration_s DOUBLE PRECISION,
            concurrency INTEGER,
            in_flight_mean DOUBLE PRECISION,
            in_flight_max INTEGER,
            host_cpus INTEGER,
            host_platform TEXT,
            loadavg_start DOUBLE PRECISION,
            loadavg_end DOUBLE PRECISION,
            provider TEXT,
            endpoint TEXT,
            model_requested TEXT,
            models_returned TEXT,
            fingerprints TEXT,
            evalkit_version TEXT,
            git_commit TEXT,
            git_dirty BOOLEAN,
            prompt_sha256 TEXT,
            judge TEXT,
            calls INTEGER,
            cached_calls INTEGER,
            throughput_per_s DOUBLE PRECISION,
            pass_rate DOUBLE PRECISION,
            latency_p50 DOUBLE PRECISION,
            latency_p95 DOUBLE PRECISION,
            ttft_p95 DOUBLE PRECISION,
            error_rate_pre_retry DOUBLE PRECISION,
            error_rate_post_retry DOUBLE PRECISION,
            digest TEXT NOT NULL,
            source TEXT,
            ingested_at TEXT NOT NULL,
            manifest TEXT NOT NULL
        )""",
        "CREATE INDEX evalkit_runs_suite_started ON evalkit_runs (suite, started_epoch)",
        """CREATE TABLE evalkit_calls (
            run_key TEXT NOT NULL REFERENCES evalkit_runs (run_key) ON DELETE CASCADE,
            case_id TEXT NOT NULL,
            repeat INTEGER NOT NULL,
            call_index INTEGER NOT NULL,
            route TEXT,
            tags TEXT NOT NULL,
            started_at TEXT,
            started_epoch DOUBLE PRECISION,
            hour_local INTEGER,
            hour_frac DOUBLE PRECISION,
            weekday INTEGER,
            in_flight_at_start INTEGER,
            ttft_s DOUBLE PRECISION,
            latency_s DOUBLE PRECISION,
            total_s DOUBLE PRECISION,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            prompt_tokens_est INTEGER,
            completion_tokens_est INTEGER,
            attempts INTEGER NOT NULL,
            failed_attempts INTEGER NOT NULL,
            error_class_first TEXT,
            error_class TEXT,
            model_requested TEXT,
            model_returned TEXT,
            fingerprint TEXT,
            cached BOOLEAN NOT NULL,
            passed BOOLEAN NOT NULL,
            score DOUBLE PRECISION,
            prompt_sha256 TEXT,
            stop_reason TEXT,
            PRIMARY KEY (run_key, case_id, repeat, call_index)
        )""",
    )),
)
"""Every migration, oldest first. Append only: released migrations are never edited or removed."""
