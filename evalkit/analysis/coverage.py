"""Traffic coverage: joins a traffic profile to a suite (and a run) route by route.

Per route: its traffic share with a Wilson interval, its eval cases and their share, its pass rate with a
Wilson interval (given a run), and a status:

- ``missing``: traffic and no cases;
- ``stale``: the cases' evidence is older than the route's last model or prompt change seen in the traffic;
- ``thin``: fewer cases than a pass-rate interval of ± ``min_precision`` needs (``add`` says how many more);
- ``covered``: enough cases;
- ``unreached``: cases and no traffic.

The **head** is the fewest routes that carry ``head_share`` (80%) of traffic plus any route with at least
``min_share`` (1%); **head coverage** is the share of head traffic on covered routes. Given a run, the
**traffic-weighted pass rate** post-stratifies the per-route pass rates by traffic share over the routes
that have results, beside the suite's unweighted rate, with bounds that let the traffic no case reaches pass
anywhere from 0% to 100%. The case-vs-traffic distance is a TVD; the χ² test is only a floor (a large TVD
on ten cases is noise).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from evalkit.analysis.drift import ArmSkew, arm_skew
from evalkit.analysis.traffic import TrafficProfile, iso, to_epoch
from evalkit.errors import ConfigError
from evalkit.results import Run
from evalkit.suite import Suite

COVERAGE_FORMAT = "evalkit.coverage/1"
STATUSES = ("missing", "stale", "thin", "covered", "unreached")


@dataclass(frozen=True)
class CoverageConfig:
    """The suite's ``coverage:`` section (command-line options override it)."""

    traffic: str | None = None
    """The traffic profile, relative to the suite file."""
    min_precision: float = 0.15
    """Half-width of the 95% pass-rate interval a route's cases should reach (0.15 = ± 15 points)."""
    level: float = 0.95
    head_share: float = 0.8
    min_share: float = 0.01
    max_distance: float = 0.25
    """Case-vs-traffic TVD above which (and with χ² p < alpha) the suite's mix is called unrepresentative."""
    alpha: float = 0.05
    warn: tuple[str, ...] = ("missing", "stale", "thin")
    """Statuses that warn (reported, exit code unchanged)."""
    block: tuple[str, ...] = ()
    """Statuses that fail the gate (none by default: coverage is report-only)."""
    scope: str = "head"
    """Which routes ``warn`` and ``block`` apply to: ``head`` or ``all``."""
    arms: Mapping[str, float] | None = field(default=None, hash=False)
    """Configured arm weights; None: an equal split over the arms seen."""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, **overrides: Any) -> CoverageConfig:
        """From a suite's ``coverage:`` mapping (already schema-checked), then non-None overrides."""
        data = dict(data or {})
        config = cls(
            traffic=data.get("traffic"),
            min_precision=float(data.get("min_precision", 0.15)),
            level=float(data.get("level", 0.95)),
            head_share=float(data.get("head_share", 0.8)),
            min_share=float(data.get("min_share", 0.01)),
            max_distance=float(data.get("max_distance", 0.25)),
            alpha=float(data.get("alpha", 0.05)),
            warn=tuple(data.get("warn", cls.warn)),
            block=tuple(data.get("block", ())),
            scope=str(data.get("scope", "head")),
            arms=dict(data["arms"]) if data.get("arms") else None,
        )
        return replace(config, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return {"traffic": self.traffic, "min_precision": self.min_precision, "level": self.level,
                "head_share": self.head_share, "min_share": self.min_share, "max_distance": self.max_distance,
                "alpha": self.alpha, "warn": list(self.warn), "block": list(self.block), "scope": self.scope,
                "arms": dict(self.arms) if self.arms else None}


@dataclass(frozen=True)
class RouteCoverage:
    """One route: traffic, cases, results, status."""

    route: str
    requests: int
    share: float
    share_low: float
    share_high: float
    cases: int
    case_share: float
    status: str
    head: bool
    needed: int
    """Cases a ± ``min_precision`` pass-rate interval needs on this route."""
    evaluated: int = 0
    """Cases with results in the run."""
    passed: float = 0.0
    """Sum of per-case pass fractions (k/n with repeats)."""
    pass_rate: float | None = None
    pass_low: float | None = None
    pass_high: float | None = None
    last_change: str | None = None
    """When the route's newest model or prompt version first appeared (when it served more than one)."""
    change: str | None = None
    """What changed (``model gpt-4.1-mini``)."""
    models: tuple[str, ...] = ()
    """Served models, most requests first."""
    errors: int = 0

    @property
    def add(self) -> int:
        """Cases to add to reach ``needed`` (0 when covered or unreached)."""
        return max(self.needed - self.cases, 0) if self.requests else 0

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.__dict__.items() if k != "models"}, "models": list(self.models),
                "add": self.add}


@dataclass(frozen=True)
class WeightedRate:
    """The traffic-weighted pass rate and what it leaves out."""

    estimate: float | None
    """None when no route with traffic has results."""
    low: float | None
    high: float | None
    effective_cases: float | None
    evaluated_share: float
    """Traffic share of the routes that have results (the strata)."""
    bound_low: float
    """The pass rate over all traffic if the traffic no case reaches always failed (and at the CI's low end)."""
    bound_high: float
    unweighted: float
    unweighted_low: float
    unweighted_high: float
    cases: int


@dataclass(frozen=True)
class Distance:
    """How far the suite's route mix is from the traffic's."""

    tvd: float
    chi2_p: float | None
    """χ² goodness of fit of the case counts to the traffic shares (routes with traffic only)."""
    flagged: bool
    small_expected: bool
    """Some route expects fewer than five cases: the χ² p-value is rough."""


@dataclass(frozen=True)
class Coverage:
    """A suite's coverage of a traffic profile."""

    suite: str
    suite_path: str
    profile: str
    window: tuple[str | None, str | None]
    requests: int
    routes: tuple[RouteCoverage, ...]
    """Routes with traffic, by share, then routes with cases and no traffic."""
    head_coverage: float
    """Share of head traffic on covered routes."""
    unrouted_cases: int
    distance: Distance
    weighted: WeightedRate | None
    arms: ArmSkew | None
    config: CoverageConfig
    run_id: str | None = None
    cases_as_of: str | None = None
    """When the cases' evidence was produced (the run's start, the suite's last commit, or as given)."""

    @property
    def head(self) -> tuple[RouteCoverage, ...]:
        return tuple(r for r in self.routes if r.head)

    @property
    def unreached(self) -> tuple[RouteCoverage, ...]:
        return tuple(r for r in self.routes if r.status == "unreached")

    def in_scope(self) -> tuple[RouteCoverage, ...]:
        """The routes ``warn`` and ``block`` apply to."""
        return self.head if self.config.scope == "head" else self.routes

    @property
    def blocking(self) -> tuple[RouteCoverage, ...]:
        return tuple(r for r in self.in_scope() if r.status in self.config.block)

    @property
    def warnings(self) -> tuple[RouteCoverage, ...]:
        return tuple(r for r in self.in_scope() if r.status in self.config.warn and r.status not in self.config.block)

    def to_dict(self) -> dict[str, Any]:
        w = self.weighted
        return {
            "format": COVERAGE_FORMAT, "suite": self.suite, "suite_path": self.suite_path, "profile": self.profile,
            "window": list(self.window), "requests": self.requests, "run_id": self.run_id,
            "cases_as_of": self.cases_as_of, "head": [r.route for r in self.head],
            "head_coverage": self.head_coverage, "routes": [r.to_dict() for r in self.routes],
            "unreached": [r.route for r in self.unreached], "unrouted_cases": self.unrouted_cases,
            "distance": self.distance.__dict__, "weighted": w.__dict__ if w else None,
            "arms": self.arms.to_dict() if self.arms else None,
            "blocking": [r.route for r in self.blocking], "warnings": [r.route for r in self.warnings],
            "config": self.config.to_dict(),
        }


def coverage(suite: Suite, profile: TrafficProfile, run: Run | None = None, config: CoverageConfig | None = None,
             *, cases_as_of: str | datetime | None = None) -> Coverage:
    """Joins a profile to a suite route by route; ``run`` adds pass rates and the weighted pass rate.

    ``cases_as_of`` dates the cases' evidence for the ``stale`` status (default: the run's start time).
    """
    import numpy as np

    from evalkit.analysis import proportions as P

    config = config or CoverageConfig.from_mapping(suite.coverage)
    case_routes: dict[str, int] = defaultdict(int)
    unrouted = 0
    for case in suite.cases:
        if case.route:
            case_routes[case.route] += 1
        else:
            unrouted += 1
    if not case_routes:
        raise ConfigError(f"{suite.path}: cases[*].route: expected a route on at least one case (defaults.route "
                          f"or a case's route:), got none on {len(suite.cases)} cases")
    as_of = _as_of(cases_as_of, run)
    results = _results_by_route(suite, run) if run is not None else {}

    traffic_routes = sorted(profile.routes, key=lambda r: (-profile.routes[r].requests, r))
    total = profile.requests
    counts = np.array([profile.routes[r].requests for r in traffic_routes], dtype=float)
    low, high = P.wilson_interval(counts, total, config.level)
    head = _head(counts / total, config.head_share, config.min_share)
    total_cases = sum(case_routes.values())
    rows = []
    for i, route in enumerate(traffic_routes):
        rows.append(_route_row(route, profile, int(counts[i]), total, float(low[i]), float(high[i]),
                               case_routes.get(route, 0), total_cases, i in head, results.get(route), as_of, config))
    for route in sorted(set(case_routes) - set(profile.routes)):
        rows.append(RouteCoverage(route, 0, 0.0, 0.0, float(P.wilson_interval(0, total, config.level)[1][()]),
                                  case_routes[route], case_routes[route] / total_cases, "unreached", False, 0,
                                  **_rate(results.get(route), config.level)))
    head_rows = [r for r in rows if r.head]
    head_traffic = sum(r.requests for r in head_rows)
    head_coverage = sum(r.requests for r in head_rows if r.status == "covered") / head_traffic if head_traffic else 0.0
    weighted = _weighted(rows, run, total, config.level) if run is not None else None
    arms = arm_skew(profile.arms(), config.arms, alpha=0.01, tvd=0.05) if profile.arms() else None
    return Coverage(
        suite=suite.name, suite_path=suite.path, profile=profile.path, window=(profile.first, profile.last),
        requests=total, routes=tuple(rows), head_coverage=head_coverage, unrouted_cases=unrouted,
        distance=_distance(rows, config), weighted=weighted, arms=arms, config=config,
        run_id=run.run_id if run is not None else None, cases_as_of=iso(as_of),
    )


def _as_of(value: str | datetime | None, run: Run | None) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            return to_epoch(value)
        except ValueError:
            raise ConfigError(f"--as-of: expected an ISO 8601 time such as 2025-03-10T00:00Z, got {value!r}") from None
    if run is not None and run.conditions is not None and run.conditions.started_at_utc:
        return to_epoch(run.conditions.started_at_utc)
    return None


def _results_by_route(suite: Suite, run: Run) -> dict[str, tuple[int, float]]:
    """Route → (cases with results, sum of per-case pass fractions), the case being the unit."""
    routes = {case.id: case.route for case in suite.cases}
    per_case: dict[str, list[int]] = {}
    route_of: dict[str, str | None] = {}
    for result in run.results:
        tally = per_case.setdefault(result.case_id, [0, 0])
        tally[0] += result.passed
        tally[1] += 1
        route_of[result.case_id] = result.route or routes.get(result.case_id)
    out: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for case_id, (passed, total) in per_case.items():
        route = route_of[case_id]
        if route:
            out[route][0] += 1
            out[route][1] += passed / total
    return {route: (int(v[0]), float(v[1])) for route, v in out.items()}


def _rate(evaluated: tuple[int, float] | None, level: float) -> dict[str, Any]:
    """The pass-rate fields of a :class:`RouteCoverage` (none without results)."""
    from evalkit.analysis import proportions as P

    if not evaluated or not evaluated[0]:
        return {}
    n, passed = evaluated
    low, high = P.wilson_interval(passed, n, level)
    return {"evaluated": n, "passed": passed, "pass_rate": passed / n, "pass_low": float(low),
            "pass_high": float(high)}


def _head(traffic_shares: Any, head_share: float, min_share: float) -> set[int]:
    """Indices (shares sorted descending) of the fewest routes reaching ``head_share``, plus any ≥ ``min_share``."""
    head: set[int] = set()
    cumulative = 0.0
    for i, share in enumerate(traffic_shares):
        if cumulative < head_share - 1e-12 or share >= min_share:
            head.add(i)
        cumulative += float(share)
    return head


def _route_row(route: str, profile: TrafficProfile, requests: int, total: int, low: float, high: float, cases: int,
               total_cases: int, head: bool, evaluated: tuple[int, float] | None, as_of: float | None,
               config: CoverageConfig) -> RouteCoverage:
    from evalkit.analysis import proportions as P

    traffic = profile.routes[route]
    rate = _rate(evaluated, config.level)
    planning = P.planning_rate(rate.get("pass_low"), rate.get("pass_high"))
    needed = P.cases_for_precision(config.min_precision, planning, config.level)
    change = traffic.last_change
    stale = cases > 0 and as_of is not None and change is not None and to_epoch(change[0]) > as_of
    status = ("missing" if cases == 0 else "stale" if stale else "thin" if cases < needed else "covered")
    return RouteCoverage(
        route, requests, requests / total, low, high, cases, cases / total_cases if total_cases else 0.0, status,
        head, needed, **rate, last_change=change[0] if change else None, change=change[1] if change else None,
        models=tuple(traffic.models), errors=sum(traffic.errors.values()),
    )


def _weighted(rows: Sequence[RouteCoverage], run: Run, total: int, level: float) -> WeightedRate | None:
    from evalkit.analysis import proportions as P

    fractions: dict[str, list[int]] = {}
    for case_result in run.results:
        tally = fractions.setdefault(case_result.case_id, [0, 0])
        tally[0] += case_result.passed
        tally[1] += 1
    cases = len(fractions)
    if not cases:
        return None
    passed = sum(k / n for k, n in fractions.values())
    u_low, u_high = P.wilson_interval(passed, cases, level)
    strata = [r for r in rows if r.requests and r.evaluated]
    estimate = low = high = effective = None
    share = 0.0
    if strata:
        result = P.post_stratified([r.requests for r in strata], [r.passed for r in strata],
                                   [r.evaluated for r in strata], level)
        estimate, low, high = float(result.estimate), float(result.low), float(result.high)
        effective = float(result.effective_n)
        share = sum(r.requests for r in strata) / total
    return WeightedRate(
        estimate=estimate, low=low, high=high, effective_cases=effective, evaluated_share=share,
        bound_low=share * (low or 0.0), bound_high=share * (high if high is not None else 1.0) + (1 - share),
        unweighted=passed / cases, unweighted_low=float(u_low), unweighted_high=float(u_high), cases=cases,
    )


def _distance(rows: Sequence[RouteCoverage], config: CoverageConfig) -> Distance:
    import numpy as np
    from scipy import stats as sps

    from evalkit.analysis import proportions as P

    traffic = np.array([r.share for r in rows])
    cases = np.array([r.case_share for r in rows])
    tvd = float(P.total_variation(traffic, cases))
    with_traffic = [r for r in rows if r.requests]
    observed = np.array([r.cases for r in with_traffic], dtype=float)
    n = observed.sum()
    chi2_p: float | None = None
    small = False
    if n > 0 and len(with_traffic) > 1:
        expected = np.array([r.share for r in with_traffic]) * n / sum(r.share for r in with_traffic)
        small = bool(np.any(expected < 5))
        chi2_p = float(sps.chisquare(observed, expected).pvalue)
    flagged = tvd >= config.max_distance and chi2_p is not None and chi2_p < config.alpha
    return Distance(tvd, chi2_p, flagged, small)


def resolve_traffic(suite: Suite, config: CoverageConfig) -> Path | None:
    """The profile path from the ``EVALKIT_TRAFFIC_PROFILE`` variable, else the suite's ``coverage.traffic``.

    A suite's path is relative to the suite file. The variable lets a CI job point at a profile it
    downloaded (an artifact) without editing the suite.
    """
    override = os.environ.get("EVALKIT_TRAFFIC_PROFILE")
    if override:
        return Path(override)
    if config.traffic is None:
        return None
    return Path(suite.path).parent / config.traffic
