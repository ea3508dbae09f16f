"""The history store: runs and their calls, fed from run directories, read back as pandas DataFrames."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from evalkit.errors import PrerequisiteError, StoreError, install_hint
from evalkit.results import Run
from evalkit.store.backend import Connection, Location, connect, locate
from evalkit.store.rows import run_rows
from evalkit.store.schema import CALL_COLUMNS, MIGRATIONS, RUN_COLUMNS, STORE_FORMAT

if TYPE_CHECKING:
    import pandas as pd

BOOTSTRAP = """CREATE TABLE IF NOT EXISTS evalkit_migrations (
    name TEXT PRIMARY KEY,
    applied_at TEXT NOT NULL,
    evalkit_version TEXT NOT NULL
)"""
OUR_TABLES = frozenset({"evalkit_migrations", "evalkit_meta", "evalkit_runs", "evalkit_calls"})
ADVISORY_LOCK = 0x6576616C6B6974  # "evalkit": serialises concurrent migrations of one Postgres store
RUN_FIELDS = ("run_id", "suite", "kind", "sweep_id", "concurrency", "evalkit_version", "judge",
              "prompt_sha256 AS run_prompt_sha256")
"""Run columns joined onto each call row by :meth:`Store.calls` (the run's prompt-set hash renamed)."""


@dataclass(frozen=True)
class Ingested:
    """What recording one run did."""

    run_key: str
    run_id: str
    outcome: str
    """``added``, ``updated`` (the run had grown or finished since), or ``unchanged`` (a no-op)."""
    calls: int


def _evalkit_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("evalkit")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def migrate(connection: Connection) -> list[str]:
    """Brings the store's schema up to date; returns the migrations it applied.

    A store that holds a migration this evalkit does not know was written by a newer evalkit: refused.
    """
    display = connection.location.display
    tables = connection.tables()
    if "evalkit_migrations" not in tables:
        if connection.engine == "sqlite" and tables:
            raise StoreError(f"{display}: expected an evalkit store, got a SQLite database with other tables "
                             f"({', '.join(sorted(tables)[:3])})")
        if tables & OUR_TABLES:
            raise StoreError(f"{display}: expected an evalkit store, got evalkit's tables without their migration "
                             "record (a damaged store)")
    applied: list[str] = []
    known = [m.name for m in MIGRATIONS]
    with connection.transaction():
        if connection.engine == "postgres":
            connection.execute("SELECT pg_advisory_xact_lock(?)", (ADVISORY_LOCK,))
        connection.execute(BOOTSTRAP)
        _, rows = connection.query("SELECT name FROM evalkit_migrations")
        done = {str(r[0]) for r in rows}
        unknown = sorted(done - set(known))
        if unknown:
            raise StoreError(f"{display}: written by a newer evalkit (its schema has migration {unknown[-1]!r}, "
                             f"unknown to evalkit {_evalkit_version()}); upgrade evalkit to use this store")
        for migration in MIGRATIONS:
            if migration.name in done:
                continue
            for statement in migration.statements:
                connection.execute(statement)
            connection.execute("INSERT INTO evalkit_migrations (name, applied_at, evalkit_version) VALUES (?, ?, ?)",
                               (migration.name, datetime.now(UTC).isoformat(timespec="seconds"), _evalkit_version()))
            if migration is MIGRATIONS[0]:
                connection.execute("INSERT INTO evalkit_meta (key, value) VALUES (?, ?)", ("format", STORE_FORMAT))
            applied.append(migration.name)
    _, rows = connection.query("SELECT value FROM evalkit_meta WHERE key = ?", ("format",))
    found = rows[0][0] if rows else None
    if found != STORE_FORMAT:
        raise StoreError(f"{display}: evalkit_meta.format: expected {STORE_FORMAT!r}, got {found!r}")
    return applied


def _epoch(since: datetime | float | None) -> float | None:
    if since is None or isinstance(since, float | int):
        return since
    moment = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
    return moment.timestamp()


class Store:
    """An open history store. Use :func:`open_store`; close it (or use it as a context manager)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    @property
    def location(self) -> Location:
        return self._connection.location

    @property
    def display(self) -> str:
        """Where the store is, as it may be printed (no password)."""
        return self._connection.location.display

    def __enter__(self) -> Store:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._connection.close()

    def ingest(self, run: Run, *, kind: str = "run", sweep_id: str | None = None,
               source: str | None = None) -> Ingested:
        """Records a run and its calls; the same run twice is a no-op, a run that grew since replaces itself."""
        rows = run_rows(run, kind=kind, sweep_id=sweep_id, source=source)
        connection = self._connection
        with connection.transaction():
            _, found = connection.query("SELECT digest FROM evalkit_runs WHERE run_key = ?", (rows.run_key,))
            if found and found[0][0] == rows.digest:
                return Ingested(rows.run_key, run.run_id, "unchanged", len(rows.calls))
            if found:
                connection.execute("DELETE FROM evalkit_calls WHERE run_key = ?", (rows.run_key,))
                connection.execute("DELETE FROM evalkit_runs WHERE run_key = ?", (rows.run_key,))
            connection.insert("evalkit_runs", RUN_COLUMNS, [rows.run])
            connection.insert("evalkit_calls", CALL_COLUMNS, rows.calls)
        return Ingested(rows.run_key, run.run_id, "updated" if found else "added", len(rows.calls))

    def suites(self) -> list[str]:
        """Names of the suites with runs in the store."""
        _, rows = self._connection.query("SELECT DISTINCT suite FROM evalkit_runs ORDER BY suite")
        return [str(r[0]) for r in rows]

    def _where(self, suite: str | None, since: datetime | float | None, kinds: Sequence[str] | None,
               since_column: str) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if suite is not None:
            clauses.append("r.suite = ?")
            params.append(suite)
        if kinds:
            clauses.append(f"r.kind IN ({', '.join('?' for _ in kinds)})")
            params.extend(kinds)
        cutoff = _epoch(since)
        if cutoff is not None:
            clauses.append(f"{since_column} >= ?")
            params.append(cutoff)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def runs(self, suite: str | None = None, *, since: datetime | float | None = None,
             kinds: Sequence[str] | None = ("run",)) -> pd.DataFrame:
        """One row per run (without its manifest), oldest first."""
        where, params = self._where(suite, since, kinds, "r.started_epoch")
        columns = ", ".join(f"r.{c}" for c in RUN_COLUMNS if c != "manifest")
        names, rows = self._connection.query(
            f"SELECT {columns} FROM evalkit_runs r{where} ORDER BY r.started_epoch, r.run_key", params)
        return _frame(names, rows)

    def calls(self, suite: str | None = None, *, since: datetime | float | None = None, route: str | None = None,
              kinds: Sequence[str] | None = ("run",), sweep_id: str | None = None) -> pd.DataFrame:
        """The per-call table (one row per provider call) with its run's identity, in start order."""
        where, params = self._where(suite, since, kinds, "c.started_epoch")
        extra = []
        if route is not None:
            extra.append("c.route = ?")
            params.append(route)
        if sweep_id is not None:
            extra.append("r.sweep_id = ?")
            params.append(sweep_id)
        if extra:
            where = (where + " AND " if where else " WHERE ") + " AND ".join(extra)
        columns = ", ".join([*(f"c.{c}" for c in CALL_COLUMNS), *(f"r.{c}" for c in RUN_FIELDS)])
        names, rows = self._connection.query(
            f"SELECT {columns} FROM evalkit_calls c JOIN evalkit_runs r ON r.run_key = c.run_key{where} "
            "ORDER BY c.started_epoch, c.run_key, c.case_id, c.repeat, c.call_index", params)
        return _frame(names, rows)

    def export_parquet(self, path: str | os.PathLike[str], suite: str | None = None, *,
                       since: datetime | float | None = None, kinds: Sequence[str] | None = None) -> int:
        """Writes the per-call table to a Parquet file; returns the number of rows written."""
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise PrerequisiteError(install_hint("parquet", "pyarrow (Parquet export)")) from None
        frame = self.calls(suite, since=since, kinds=kinds)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), temporary)
        os.replace(temporary, target)
        return len(frame)


BOOLEAN_COLUMNS = ("cached", "passed", "git_dirty")
NUMERIC_COLUMNS = ("in_flight_at_start", "ttft_s", "latency_s", "total_s", "prompt_tokens", "completion_tokens",
                   "score", "duration_s", "in_flight_mean", "in_flight_max", "host_cpus", "loadavg_start",
                   "loadavg_end", "throughput_per_s", "pass_rate", "latency_p50", "latency_p95", "ttft_p95",
                   "error_rate_pre_retry", "error_rate_post_retry", "concurrency")
TIME_COLUMNS = ("started_at", "ended_at", "ingested_at")


def _frame(names: list[str], rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """A DataFrame with the same dtypes from either engine (SQLite returns booleans as 0/1)."""
    import pandas as pd

    frame = pd.DataFrame.from_records(rows, columns=names)
    for column in BOOLEAN_COLUMNS:
        if column in frame and frame[column].notna().all():
            frame[column] = frame[column].astype(bool)
    for column in NUMERIC_COLUMNS:
        if column in frame and frame[column].dtype == object:
            frame[column] = frame[column].astype("float64")
    for column in TIME_COLUMNS:
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame


def open_store(url: str | os.PathLike[str] | None = None) -> Store:
    """Opens (creating and migrating as needed) the store at ``url``: a SQLite path or a ``postgresql://`` URL.

    Without ``url``: ``$EVALKIT_STORE``, else ``.evalkit/history.sqlite``.
    """
    connection = connect(locate(url))
    try:
        migrate(connection)
    except BaseException:
        connection.close()
        raise
    return Store(connection)
