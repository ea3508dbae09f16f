"""Times ``compare`` on a 100,000-case run against its baseline (pass/fail, one continuous score, latency).

Usage: python bench/compare_bench.py [--cases 100000] [--repeat 3] [--limit 2.0]
Exits 1 when the best time exceeds --limit seconds.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from evalkit.baseline import Baseline, Sample
from evalkit.compare import GateConfig, compare


def synthetic(n: int, seed: int, drop: float) -> Baseline:
    rng = np.random.default_rng(seed)
    passed = rng.random(n) < 0.8 - drop
    scores = rng.beta(5, 2, size=n) - drop
    latency = rng.gamma(4, 0.1, size=n)
    samples = tuple(
        Sample(case_id=f"c{i}", repeat=0, passed=bool(passed[i]), output="", scores={"quality": float(scores[i])},
               checks={}, latency_s=float(latency[i]), ttft_s=float(latency[i] / 3), tags=(f"route{i % 5}",))
        for i in range(n)
    )
    conditions = {"hour_local": 10, "concurrency_configured": 8}
    return Baseline(suite={"name": "bench"}, fingerprints={}, conditions=conditions, repeats=1, samples=samples,
                    run_id=f"r{seed}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=float, default=2.0)
    args = parser.parse_args()
    before, now = synthetic(args.cases, 1, 0.0), synthetic(args.cases, 2, 0.01)
    compare(synthetic(1000, 3, 0), synthetic(1000, 4, 0), GateConfig())  # warm imports (scipy, statsmodels)
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = compare(now, before, GateConfig())
        times.append(time.perf_counter() - start)
    best = min(times)
    print(f"compare: {args.cases:,} cases, {len(result.metrics)} metrics + {len(result.slices)} slices, "
          f"best {best:.2f} s of {args.repeat} (all: {', '.join(f'{t:.2f}' for t in times)}) · verdict {result.verdict}"
          f" · limit {args.limit:g} s · {'PASS' if best <= args.limit else 'FAIL'}")
    return 0 if best <= args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
