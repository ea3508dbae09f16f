"""The history store at scale: ingest 1,000 runs × 1,000 calls into SQLite and Postgres, then `evalkit diurnal`.

Side by side with a bare baseline: the same rows inserted with the bare driver (``executemany`` on sqlite3,
``COPY`` on psycopg) into the same schema, one transaction per run, with no evalkit in the loop — the least
any store could do. Prints ingest seconds (and the ratio to bare), the store's size on disk, and the wall
time of ``evalkit diurnal`` over the whole store as a fresh process (imports included), beside a process
that only loads the per-call table into pandas.

Postgres runs in a throwaway cluster (tests/postgres.py, durable settings: fsync on) on a free loopback port.

Usage: python bench/store_bench.py [--runs 1000] [--calls 1000] [--engines sqlite,postgres] [--out bench/out]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from evalkit.store import open_store  # noqa: E402
from evalkit.store.backend import Location, connect  # noqa: E402
from evalkit.store.rows import run_rows  # noqa: E402
from evalkit.store.schema import CALL_COLUMNS, MIGRATIONS, RUN_COLUMNS  # noqa: E402
from tests.history_runs import make_run  # noqa: E402


def synthetic_run(i: int, calls: int, first: datetime) -> object:
    """Run i: a sweep every 20 minutes back from now, slower in the afternoon (UTC+1), some errors."""
    rng = np.random.default_rng(i)
    begun = first + timedelta(minutes=20 * i)
    hour = (begun.hour + 1) % 24
    slow = 1.3 if 13 <= hour < 17 else 1.0
    latencies = [float(v) for v in np.exp(rng.normal(-0.5, 0.3, calls)) * slow]
    errors = [None if u > 0.01 else "rate_limit" for u in rng.uniform(size=calls)]
    return make_run(f"bench-{i:05d}", begun, latencies, errors=errors, offset_hours=1, spacing_s=0.05,
                    tokens=[int(t) for t in rng.integers(10, 120, calls)],
                    passed=[bool(p) for p in rng.uniform(size=calls) < 0.8])


def bare_insert(location: Location, runs_rows: list[tuple[tuple[object, ...], list[tuple[object, ...]]]]) -> float:
    """Seconds to insert the rows with the bare driver, one transaction per run."""
    connection = connect(location)
    raw = connection._raw
    for migration in MIGRATIONS:
        for statement in migration.statements:
            connection.execute(statement)
    started = time.perf_counter()
    if location.engine == "sqlite":
        run_sql = f"INSERT INTO evalkit_runs VALUES ({', '.join('?' for _ in RUN_COLUMNS)})"
        call_sql = f"INSERT INTO evalkit_calls VALUES ({', '.join('?' for _ in CALL_COLUMNS)})"
        for run, calls in runs_rows:
            raw.execute("BEGIN")
            raw.execute(run_sql, run)
            raw.executemany(call_sql, calls)
            raw.execute("COMMIT")
    else:
        for run, calls in runs_rows:
            with raw.transaction():
                cursor = raw.cursor()
                cursor.execute(f"INSERT INTO evalkit_runs VALUES ({', '.join('%s' for _ in RUN_COLUMNS)})", run)
                with cursor.copy(f"COPY evalkit_calls ({', '.join(CALL_COLUMNS)}) FROM STDIN") as copy:
                    for row in calls:
                        copy.write_row(row)
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def size_of(url: str) -> int:
    if not url.startswith("postgresql://"):
        return Path(url).stat().st_size
    import psycopg

    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT pg_total_relation_size('evalkit_runs') + "
                                 "pg_total_relation_size('evalkit_calls')").fetchone()
    return int(row[0]) if row else 0


def process_seconds(args: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return time.perf_counter() - started


def bench_engine(engine: str, url: str, bare_url: str, runs: int, calls: int, first: datetime) -> dict[str, object]:
    ingest = generate = 0.0
    sample: list[tuple[tuple[object, ...], list[tuple[object, ...]]]] = []
    bare_every = max(1, runs // 100)  # the bare baseline inserts every k-th run's rows (100 runs), scaled up
    with open_store(url) as store:
        for i in range(runs):
            t0 = time.perf_counter()
            run = synthetic_run(i, calls, first)
            t1 = time.perf_counter()
            store.ingest(run)  # type: ignore[arg-type]
            ingest += time.perf_counter() - t1
            generate += t1 - t0
            if i % bare_every == 0:
                rows = run_rows(run)  # type: ignore[arg-type]
                sample.append((rows.run, rows.calls))
        t0 = time.perf_counter()
        again = store.ingest(synthetic_run(0, calls, first))  # type: ignore[arg-type]
        unchanged_s = time.perf_counter() - t0
    bare = bare_insert(Location(engine, bare_url), sample) * runs / len(sample)
    diurnal = process_seconds(["-m", "evalkit.cli", "diurnal", "svc", "--since", "15d", "--store", url])
    load = process_seconds(["-c", "import sys; from evalkit.store import open_store; "
                                  "open_store(sys.argv[1]).calls('svc', since=0.0)", url])
    return {"engine": engine, "runs": runs, "calls": runs * calls, "ingest_s": round(ingest, 2),
            "bare_s": round(bare, 2), "ratio": round(ingest / bare, 2), "per_run_ms": round(1000 * ingest / runs, 1),
            "reingest_unchanged_ms": round(1000 * unchanged_s, 1), "reingest": again.outcome,
            "size_mib": round(size_of(url) / 2**20, 1), "diurnal_s": round(diurnal, 2),
            "load_table_s": round(load, 2), "generate_s": round(generate, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "store")
    options = parser.parse_args()
    shutil.rmtree(options.out, ignore_errors=True)
    options.out.mkdir(parents=True)
    first = datetime.now(UTC) - timedelta(minutes=20 * options.runs + 60)
    results = []
    for engine in options.engines.split(","):
        if engine == "sqlite":
            results.append(bench_engine("sqlite", str(options.out / "history.sqlite"), str(options.out / "bare.sqlite"),
                                        options.runs, options.calls, first))
        else:
            from tests.postgres import running_server

            with running_server(durable=True) as server:
                results.append(bench_engine("postgres", server.create_database("history"),
                                            server.create_database("bare"), options.runs, options.calls, first))
        print(json.dumps(results[-1]), flush=True)
    print(f"{'engine':9} {'calls':>9} {'ingest s':>9} {'bare s':>7} {'ratio':>6} {'ms/run':>7} {'MiB':>7} "
          f"{'diurnal s':>10} {'load s':>7}")
    for r in results:
        print(f"{r['engine']:9} {r['calls']:>9} {r['ingest_s']:>9} {r['bare_s']:>7} {r['ratio']:>6} "
              f"{r['per_run_ms']:>7} {r['size_mib']:>7} {r['diurnal_s']:>10} {r['load_table_s']:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
