"""The history page of a busy suite: how long it takes to write, its size, and how fast Chromium opens it.

Usage: python bench/html_views_bench.py [--days 60] [--per-day 8] [--calls 40] [--rounds 5] [--keep DIR]

A SQLite store is filled with ``days × per-day`` runs of ``calls`` calls each (tests/history_runs.py: real
Run records, latency shifted half-way through and slower in the afternoon) plus a five-step load ladder;
then ``render_history_html`` writes the page (four series with change points, the hour × weekday heatmap,
percentile bands, the ladder) and one headless Chromium opens it ``--rounds`` times. Side by side, the bare
baseline: reading the same per-call table from the store (``Store.calls``), which the page cannot do without.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' run builders and browser helper

import numpy as np

from evalkit.report.html_history import render_history_html
from evalkit.store import open_store
from tests.browser import Chromium
from tests.history_runs import make_run, start


def fill(url: Path, days: int, per_day: int, calls: int) -> int:
    rng = np.random.default_rng(0)
    total = 0
    with open_store(url) as store:
        for k in range(days * per_day):
            hour = (k * 24 // per_day + k // per_day) % 24
            slow = (1.6 if k >= days * per_day // 2 else 1.0) * (1.4 if 12 <= hour < 18 else 1.0)
            latencies = list(np.exp(rng.normal(np.log(0.4), 0.2, calls)) * slow)
            store.ingest(make_run(f"run-{k:05d}", start(k // per_day, hour), latencies))
            total += calls
        for c, slowdown in ((1, 1.0), (2, 1.02), (4, 1.05), (8, 1.9), (16, 3.6)):
            latencies = list(np.exp(rng.normal(np.log(0.4), 0.1, 40)) * slowdown)
            run = make_run(f"svc-ladder-c{c}", start(days, 3), latencies, concurrency=c)
            assert run.conditions is not None
            store.ingest(replace(run, conditions=replace(run.conditions, duration_s=16 * slowdown / c)), kind="ladder",
                         sweep_id="svc-ladder-1")
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--per-day", type=int, default=8)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="evalkit-html-views-"))
    out = args.keep or folder
    out.mkdir(parents=True, exist_ok=True)
    calls = fill(folder / "h.db", args.days, args.per_day, args.calls)
    t0 = time.perf_counter()
    with open_store(folder / "h.db") as store:
        frame = store.calls("svc")
    bare = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    page = render_history_html("svc", folder / "h.db")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    path = out / "history.html"
    path.write_text(page, "utf-8")
    dcl = []
    with Chromium() as chromium:
        for _ in range(args.rounds):
            opened = chromium.open(path, wait_until="load")
            assert opened.problems == [], opened.problems
            dcl.append(opened.page.evaluate(
                "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd / 1000"))
            chromium.close(opened)
    print(f"{args.days * args.per_day} runs, {calls:,} calls ({len(frame):,} rows read)")
    print("| step | wall | CPU |\n| --- | ---: | ---: |")
    print(f"| bare baseline: Store.calls (the per-call table) | {bare:.2f} s | – |")
    print(f"| render_history_html (reads, analyses, draws 7 charts) | {wall:.2f} s | {cpu:.2f} s |")
    print(f"page {len(page.encode()) / 1e6:.2f} MB; DOMContentLoaded median {statistics.median(dcl):.3f} s "
          f"(max {max(dcl):.3f} s) over {args.rounds} opens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
