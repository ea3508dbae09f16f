"""Change points in a suite's history: one value per run (pass rate, latency p95, TTFT p95, error rate).

Method: ruptures' exact kernel change-point search (PELT over a linear kernel, i.e. the least-squares cost
of a shift in mean) proposes change points on the robustly standardised series; each is then kept only if
a Welch t-test between the segments on either side of it gives p ≤ ``alpha``, dropping the weakest and
re-testing until all pass. That second step is what Apache Otava (E-divisive means with a t-test instead of
a permutation test) does to make change points deterministic and to give each a p-value; ``alpha`` is
small because the search already chose the most different split (the rate of false change points on a
stable series is checked by simulation in the tests). Latency series are analysed on the log scale, so a
+20% step is the same size at any level.

Each change point is tagged with what else changed around it (±2 runs): the rendered prompts' hash, the
served model, the provider's fingerprint, the evalkit version, the judge.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

METRICS = ("pass_rate", "latency_p95", "ttft_p95", "error_rate")
LOG_METRICS = frozenset({"latency_p95", "ttft_p95"})
ALPHA = 0.001
"""Otava's default p-value threshold for keeping a change point."""
MIN_SIZE = 3
"""Fewest runs in a segment."""
PENALTY = 3.0
"""Penalty per change point of the search, × log(runs), on the standardised series (a modified BIC: it
proposes candidates; the t-test decides)."""
MIN_RUNS = 2 * MIN_SIZE + 2
WINDOW = 2
"""Runs either side of a change point searched for what else changed."""
ATTRIBUTES = {"prompt_sha256": "prompt", "models_returned": "served model", "fingerprints": "fingerprint",
              "evalkit_version": "evalkit", "judge": "judge"}
"""Run columns whose changes are reported beside a change point, with their display names."""


@dataclass(frozen=True)
class Point:
    """One run's value of the metric."""

    run_key: str
    run_id: str
    started_at: str
    value: float
    calls: int


@dataclass(frozen=True)
class Change:
    """Something else that changed between two consecutive runs near a change point."""

    attribute: str
    before: str | None
    after: str | None
    run_id: str
    """The first run with the new value."""


@dataclass(frozen=True)
class ChangePoint:
    """Where the series shifted: the first run of the new segment."""

    index: int
    run_id: str
    started_at: str
    before: float
    """Mean of the segment before (geometric for latency)."""
    after: float
    p_value: float
    changes: tuple[Change, ...] = ()

    @property
    def relative(self) -> float | None:
        """after / before − 1 (None when before is 0)."""
        return self.after / self.before - 1 if self.before else None


@dataclass(frozen=True)
class Series:
    """A metric over time with its change points."""

    suite: str
    metric: str
    route: str | None
    points: tuple[Point, ...]
    change_points: tuple[ChangePoint, ...] = ()
    not_enough: str | None = None
    alpha: float = ALPHA


def _welch(left: np.ndarray, right: np.ndarray) -> float:
    """Welch's t-test p-value; two constant segments are different (p = 0) or the same (p = 1)."""
    import numpy as np
    from scipy import stats

    if np.ptp(left) == 0 and np.ptp(right) == 0:
        return 0.0 if left[0] != right[0] else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # one constant segment: scipy still answers
        return float(stats.ttest_ind(left, right, equal_var=False).pvalue)


def robust_scale(values: np.ndarray) -> float:
    """Noise level from successive differences (MAD, so level shifts barely move it); std as a fallback."""
    import numpy as np

    differences = np.diff(values)
    mad = float(np.median(np.abs(differences - np.median(differences)))) * 1.4826 / math.sqrt(2)
    return mad if mad > 0 else float(np.std(values))


def find_change_points(values: Sequence[float] | np.ndarray, *, alpha: float = ALPHA, min_size: int = MIN_SIZE,
                       penalty: float | None = None) -> list[tuple[int, float]]:
    """Change points of a series as (index of the first point after the change, p-value), in order."""
    import numpy as np
    import ruptures

    x = np.asarray(values, dtype=float)
    n = x.size
    if n < 2 * min_size + 2:
        return []
    scale = robust_scale(x)
    if scale == 0:
        return []
    standardised = ((x - np.median(x)) / scale).reshape(-1, 1)
    search = ruptures.KernelCPD(kernel="linear", min_size=min_size).fit(standardised)
    breaks = [int(b) for b in search.predict(pen=penalty if penalty is not None else PENALTY * math.log(n))][:-1]
    while breaks:
        bounds = [0, *breaks, n]
        p_values = [_welch(x[bounds[i]:bounds[i + 1]], x[bounds[i + 1]:bounds[i + 2]]) for i in range(len(breaks))]
        worst = int(np.argmax(p_values))
        if p_values[worst] <= alpha:
            return list(zip(breaks, p_values, strict=True))
        del breaks[worst]
    return []


def _metric(group: pd.DataFrame, metric: str) -> float | None:
    import numpy as np

    measured = group[~group["cached"].astype(bool)]
    if metric == "pass_rate":  # per case: an agent's case has a row per call, its pass on each
        cases = group[group["call_index"] == 0] if "call_index" in group else group
        return float(cases["passed"].astype(bool).mean()) if len(cases) else None
    if metric == "error_rate":
        return float(measured["error_class"].notna().mean()) if len(measured) else None
    column = "latency_s" if metric == "latency_p95" else "ttft_s"
    values = measured[column].dropna().to_numpy(float)
    values = values[values > 0]
    return float(np.percentile(values, 95)) if values.size else None


def series_points(calls: pd.DataFrame, metric: str) -> list[Point]:
    """One point per run (in start order) with the metric computed from its calls."""
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {', '.join(METRICS)}, got {metric!r}")
    points: list[Point] = []
    if calls.empty:
        return points
    order = calls.groupby("run_key", sort=False)["started_epoch"].min().sort_values(kind="stable")
    grouped = dict(tuple(calls.groupby("run_key", sort=False)))
    for key in order.index:
        group = grouped[key]
        value = _metric(group, metric)
        if value is not None:
            first = group["started_at"].min()
            started = first.isoformat(timespec="seconds") if hasattr(first, "isoformat") else str(first)
            points.append(Point(str(key), str(group["run_id"].iloc[0]), started, value, len(group)))
    return points


def _changes_near(index: int, keys: Sequence[str], runs: Mapping[str, Mapping[str, Any]]) -> tuple[Change, ...]:
    found: list[Change] = []
    for j in range(max(1, index - WINDOW), min(len(keys), index + WINDOW + 1)):
        old, new = runs.get(keys[j - 1], {}), runs.get(keys[j], {})
        for column, name in ATTRIBUTES.items():
            before, after = old.get(column), new.get(column)
            if before != after:
                found.append(Change(name, _text(before), _text(after), str(new.get("run_id", keys[j]))))
    return tuple(found)


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    return str(value)


def history_series(calls: pd.DataFrame, runs: pd.DataFrame, *, suite: str, metric: str = "pass_rate",
                   route: str | None = None, alpha: float = ALPHA) -> Series:
    """The metric per run with its change points, each tagged with what else changed around it."""
    import numpy as np

    points = series_points(calls, metric)
    if len(points) < MIN_RUNS:
        return Series(suite, metric, route, tuple(points), alpha=alpha,
                      not_enough=f"{len(points)} runs with a {metric} value; change points need ≥ {MIN_RUNS} "
                                 f"(segments of ≥ {MIN_SIZE} runs either side)")
    values = np.array([p.value for p in points])
    logged = metric in LOG_METRICS
    analysed = np.log(values) if logged else values
    by_key = {str(row["run_key"]): row for row in runs.to_dict("records")}
    keys = [p.run_key for p in points]
    found = find_change_points(analysed, alpha=alpha)
    bounds = [0, *(i for i, _ in found), len(points)]
    change_points = []
    for k, (index, p_value) in enumerate(found):
        before, after = analysed[bounds[k]:index].mean(), analysed[index:bounds[k + 2]].mean()
        change_points.append(ChangePoint(
            index=index, run_id=points[index].run_id, started_at=points[index].started_at,
            before=float(np.exp(before) if logged else before), after=float(np.exp(after) if logged else after),
            p_value=p_value, changes=_changes_near(index, keys, by_key),
        ))
    return Series(suite, metric, route, tuple(points), tuple(change_points), alpha=alpha)
