"""Times ``compare``: 100,000 cases (asymptotic tests), and 400 cases (the exact test and its interval).

The large comparison has pass/fail, a continuous score, latency and TTFT over a five-run baseline, and five
per-tag slices; the small one is a typical pull-request suite (400 cases, five tags, few flips), where every
pass-rate decision and interval is exact.

Usage: python bench/compare_bench.py [--cases 100000] [--repeat 3] [--limit 2.0] [--small-limit 2.0]
Exits 1 when a best time exceeds its limit (seconds).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np

from evalkit.baseline import Baseline, Percentiles, RunSummary, Sample
from evalkit.compare import Comparison, GateConfig, compare


def _runs(seed: int, count: int) -> tuple[RunSummary, ...]:
    rng = np.random.default_rng(seed)
    conditions = {"hour_local": 10, "concurrency_configured": 8, "host_cpus": 2, "loadavg_start": [0.5] * 3}
    return tuple(RunSummary(f"r{seed}-{k}", 1000, 0, Percentiles(1000, 0.3, p95, p95 * 1.3, 0.02),
                            Percentiles(1000, 0.1, p95 / 3, p95 / 2, 0.02), 4.0, conditions)
                 for k, p95 in enumerate(rng.normal(0.8, 0.03, size=count)))


def synthetic(n: int, seed: int, drop: float, flip: float | None = None, runs: int = 1) -> Baseline:
    """A run of n cases (passing 80%; or, with ``flip``, the seed-0 outcomes with that share flipped)."""
    rng = np.random.default_rng(seed)
    base = np.random.default_rng(0).random(n) < 0.8
    passed = base ^ (rng.random(n) < flip) if flip is not None else rng.random(n) < 0.8 - drop
    scores = rng.beta(5, 2, size=n) - drop
    latency = rng.gamma(4, 0.1, size=n)
    samples = tuple(
        Sample(case_id=f"c{i}", repeat=0, passed=bool(passed[i]), output="", scores={"quality": float(scores[i])},
               checks={}, latency_s=float(latency[i]), ttft_s=float(latency[i] / 3), tags=(f"route{i % 5}",))
        for i in range(n)
    )
    conditions = {"hour_local": 10, "concurrency_configured": 8}
    return Baseline(suite={"name": "bench"}, fingerprints={}, conditions=conditions, repeats=1, samples=samples,
                    run_id=f"r{seed}", runs=_runs(seed, runs) if runs > 1 else ())


def best_of(repeat: int, work: Callable[[], Comparison]) -> tuple[float, list[float], Comparison]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    assert result is not None
    return min(times), times, result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=float, default=2.0)
    parser.add_argument("--small-limit", type=float, default=2.0)
    args = parser.parse_args()
    compare(synthetic(1000, 3, 0), synthetic(1000, 4, 0), GateConfig())  # warm imports (scipy, statsmodels)
    ok = True
    before, now = synthetic(args.cases, 1, 0.0, runs=5), synthetic(args.cases, 2, 0.01)
    best, times, result = best_of(args.repeat, lambda: compare(now, before, GateConfig()))
    ok &= best <= args.limit
    every = ", ".join(f"{t:.2f}" for t in times)
    print(f"compare: {args.cases:,} cases, {len(result.metrics)} metrics + {len(result.slices)} slices "
          f"({result.metrics[0].test}), best {best:.2f} s of {args.repeat} (all: {every})"
          f" · verdict {result.verdict} · limit {args.limit:g} s · {'PASS' if best <= args.limit else 'FAIL'}")
    small_before, small_now = synthetic(400, 0, 0.0, flip=0.0), synthetic(400, 5, 0.0, flip=0.03)
    best, times, result = best_of(args.repeat, lambda: compare(small_now, small_before, GateConfig()))
    ok &= best <= args.small_limit
    every = ", ".join(f"{t:.2f}" for t in times)
    print(f"compare: 400 cases, {len(result.metrics)} metrics + {len(result.slices)} slices "
          f"({result.metrics[0].test}), best {best:.2f} s of {args.repeat} (all: {every})"
          f" · verdict {result.verdict} · limit {args.small_limit:g} s · "
          f"{'PASS' if best <= args.small_limit else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
