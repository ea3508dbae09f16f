"""Load ladders: the suite (or a seeded sample of it) at each concurrency, and the knee where latency departs.

Each step is an ordinary run through the public API (``run_suite`` with ``RunOptions(concurrency=k)``),
written under one sweep folder beside a ``ladder.json`` that names its steps, and recorded to the store as
ladder steps. Per step: latency and TTFT percentiles, throughput (measured calls per second of wall time),
errors before and after retries, pass rate, and the concurrency actually achieved.

The knee is the first step whose latency departs from flat: its median latency is more than
``tolerance`` above the first step's **and** a one-sided Mann–Whitney test (scipy) says its latencies are
larger, Holm-adjusted over the steps at ``alpha``. Below it, latency is flat; at and above it, calls queue.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from evalkit.artifact import write_atomic
from evalkit.core.seeds import draws
from evalkit.errors import ConfigError
from evalkit.results import Run
from evalkit.store.ingest import LADDER_FILE, LADDER_FORMAT

if TYPE_CHECKING:
    from evalkit.runner import Progress, RunOptions
    from evalkit.suite import Suite

TOLERANCE = 0.25
"""A step's median latency may be this much above the first step's and still count as flat."""
ALPHA = 0.05


@dataclass(frozen=True)
class Step:
    """One rung of the ladder."""

    concurrency: int
    run_id: str
    calls: int
    """Measured (uncached) calls."""
    duration_s: float | None
    throughput_per_s: float | None
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    ttft_p50: float | None
    ttft_p95: float | None
    error_rate_pre_retry: float | None
    error_rate_post_retry: float | None
    pass_rate: float | None
    in_flight_mean: float | None
    in_flight_max: int | None
    median_ratio: float | None = None
    """Median latency / the first step's median latency."""
    p_value: float | None = None
    """Holm-adjusted one-sided Mann–Whitney p that this step's latencies exceed the first step's."""


@dataclass(frozen=True)
class LadderReport:
    """A ladder's steps and its knee."""

    suite: str
    sweep_id: str
    steps: tuple[Step, ...]
    knee: int | None
    """The first concurrency whose latency departs from flat; None when none does."""
    best_throughput: int | None
    """The concurrency with the highest throughput."""
    tolerance: float = TOLERANCE
    alpha: float = ALPHA
    warnings: tuple[str, ...] = field(default=(), hash=False)
    """Store writes that failed (the step runs themselves are safe in their directories)."""

    @property
    def verdict(self) -> str:
        """One line: where the knee is."""
        if len(self.steps) < 2:
            return "a ladder needs at least two steps to find a knee"
        flat = [s.concurrency for s in self.steps if self.knee is None or s.concurrency < self.knee]
        if self.knee is None:
            return (f"latency stays flat up to concurrency {flat[-1]} (no step's median is more than "
                    f"{self.tolerance:.0%} above concurrency {self.steps[0].concurrency}'s with p < {self.alpha})")
        step = next(s for s in self.steps if s.concurrency == self.knee)
        below = f"flat up to {flat[-1]}" if flat else "never flat"
        return (f"knee at concurrency {self.knee}: median latency ×{step.median_ratio:.2f} of concurrency "
                f"{self.steps[0].concurrency}'s (p = {step.p_value:.2g}); {below}; best throughput at "
                f"{self.best_throughput}")


def _latencies(run: Run) -> list[float]:
    return [c.latency_s for r in run.results for c in r.calls if not c.cached and c.latency_s is not None]


def summarise_ladder(runs: Sequence[Run], *, sweep_id: str = "", tolerance: float = TOLERANCE,
                     alpha: float = ALPHA, warnings: Sequence[str] = ()) -> LadderReport:
    """Per-step figures and the knee, from the step runs (lowest concurrency first)."""
    import numpy as np
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    ordered = sorted(runs, key=lambda r: r.conditions.concurrency_configured if r.conditions else 0)
    if not ordered:
        raise ConfigError("ladder: expected at least one step run, got none")
    first = np.asarray(_latencies(ordered[0]))
    p_raw: list[float] = []
    ratios: list[float | None] = []
    for run in ordered[1:]:
        current = np.asarray(_latencies(run))
        if first.size and current.size:
            p_raw.append(float(stats.mannwhitneyu(current, first, alternative="greater").pvalue))
            ratios.append(float(np.median(current) / np.median(first)))
        else:
            p_raw.append(1.0)
            ratios.append(None)
    adjusted = list(multipletests(p_raw, method="holm")[1]) if p_raw else []
    steps: list[Step] = []
    for i, run in enumerate(ordered):
        c = run.conditions
        assert c is not None
        measured = c.calls - c.cached_calls
        steps.append(Step(
            concurrency=c.concurrency_configured, run_id=run.run_id, calls=measured, duration_s=c.duration_s,
            throughput_per_s=measured / c.duration_s if c.duration_s else None, latency_p50=c.latency_p50,
            latency_p95=c.latency_p95, latency_p99=c.latency_p99, ttft_p50=c.ttft_p50, ttft_p95=c.ttft_p95,
            error_rate_pre_retry=c.error_rate_pre_retry, error_rate_post_retry=c.error_rate_post_retry,
            pass_rate=sum(r.passed for r in run.results) / len(run.results) if run.results else None,
            in_flight_mean=c.in_flight_mean, in_flight_max=c.in_flight_max,
            median_ratio=1.0 if i == 0 else ratios[i - 1], p_value=None if i == 0 else float(adjusted[i - 1]),
        ))
    knee = next((s.concurrency for s in steps[1:] if s.median_ratio is not None and s.p_value is not None
                 and s.median_ratio > 1 + tolerance and s.p_value < alpha), None)
    rated = [s for s in steps if s.throughput_per_s is not None]
    best = max(rated, key=lambda s: s.throughput_per_s or 0.0).concurrency if rated else None
    return LadderReport(ordered[0].suite.name, sweep_id, tuple(steps), knee, best, tolerance, alpha, tuple(warnings))


def parse_ladder(text: str) -> tuple[int, ...]:
    """``1,2,4,8`` → (1, 2, 4, 8): distinct positive integers, ascending."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--ladder: expected comma-separated positive integers like 1,2,4,8, got {text!r}") from None
    if not values or min(values) < 1 or len(set(values)) != len(values):
        raise ConfigError(f"--ladder: expected distinct positive integers like 1,2,4,8, got {text!r}")
    return tuple(sorted(values))


def sample_cases(suite: Suite, count: int | None, seed: int) -> Suite:
    """The suite with a seeded sample of ``count`` cases (all of them when ``count`` is None or larger)."""
    if count is None or count >= len(suite.cases):
        return suite
    if count < 1:
        raise ConfigError(f"--sample: expected a positive number of cases, got {count}")
    chosen = set(draws(seed, "ladder", "sample").sample(range(len(suite.cases)), count))
    return replace(suite, cases=tuple(c for i, c in enumerate(suite.cases) if i in chosen))


def run_ladder(suite: Suite | str | os.PathLike[str], ladder: Sequence[int], options: RunOptions | None = None, *,
               sample: int | None = None, seed: int = 0, store: str | os.PathLike[str] | None = None,
               record: bool = True, progress: Callable[[int], Progress | None] | None = None) -> LadderReport:
    """Runs the suite at each concurrency of ``ladder`` and summarises; each step is recorded to the store.

    ``options`` are the :class:`~evalkit.runner.RunOptions` of every step (its concurrency and run id are
    set per step); ``progress(k)`` may give a progress sink for step ``k``.
    """
    from evalkit.runner import RunOptions, run_suite
    from evalkit.store import record_quietly
    from evalkit.suite import Suite, load_suite

    loaded = suite if isinstance(suite, Suite) else load_suite(suite)
    loaded = sample_cases(loaded, sample, seed)
    steps = tuple(sorted(set(ladder)))
    if not steps or min(steps) < 1:
        raise ConfigError(f"--ladder: expected positive concurrencies, got {list(ladder)}")
    base = options or RunOptions()
    sweep_id = f"{loaded.name}-ladder-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    folder = base.out / sweep_id
    run_ids = [f"{sweep_id}-c{k}" for k in steps]
    write_atomic(folder / LADDER_FILE, json.dumps({
        "format": LADDER_FORMAT, "sweep_id": sweep_id, "suite": loaded.name, "ladder": list(steps),
        "runs": run_ids, "sample": sample, "seed": seed,
    }, indent=2) + "\n")
    runs: list[Run] = []
    notes: list[str] = []
    for k, run_id in zip(steps, run_ids, strict=True):
        run = run_suite(loaded, replace(base, concurrency=k, run_id=run_id, out=folder),
                        progress=progress(k) if progress else None)
        runs.append(run)
        if record:
            note = record_quietly(run, store, kind="ladder", sweep_id=sweep_id)
            if note:
                notes.append(note)
    return summarise_ladder(runs, sweep_id=sweep_id, warnings=notes)
