"""Router drift between two traffic windows: route mix (TVD, PSI), new and vanished routes, arm skew.

At production volume every test of "has anything changed" rejects, and on a small sample the usual fixed
cut-offs fire on noise (PSI > 0.1 does on most unchanged windows of a hundred requests). So a flag needs
both: a permutation test that says the change is not sampling noise (level ``alpha``), and an effect that
matters — the TVD's upper confidence bound reaching ``tvd`` (5 points by default), or PSI above a
threshold that grows with sampling noise. :func:`drift_flags` is that rule on batched counts (the
simulation tests call it on thousands of seeds at once); :func:`drift` applies it to two profiles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit.analysis.traffic import TrafficProfile

DRIFT_FORMAT = "evalkit.drift/1"


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds of the drift rule."""

    tvd: float = 0.05
    """Flag a route-mix shift whose TVD may be this large (its upper bound reaches it)."""
    alpha: float = 0.01
    """Level of the permutation test every flag also needs (the false-alarm rate on unchanged traffic)."""
    level: float = 0.95
    """One-sided level of the TVD's upper confidence bound."""
    psi_floor: float = 0.1
    """The smallest PSI flagged however large the samples."""
    min_share: float = 0.01
    """New or vanished routes below this share are listed, not flagged."""
    arm_tvd: float = 0.05
    """An arm split flagged must be this far (TVD) from its configured weights, besides significant."""
    arm_weights: Mapping[str, float] | None = field(default=None, hash=False)
    """Configured arm weights (normalised); None: an equal split over the arms seen."""
    draws: int = 1000
    """Permutations drawn for the TVD test (p-values resolve to 0.001)."""
    seed: int = 0


def drift_flags(old: Any, new: Any, config: DriftConfig, *, all_pvalues: bool = True) -> dict[str, Any]:
    """The drift rule on counts whose last axis is the routes (batched over leading axes).

    Returns arrays: ``tvd``, ``tvd_upper``, ``p_value`` (permutation), ``psi``, ``psi_threshold``,
    ``route_flags`` (new or vanished routes flagged, per route), and booleans ``flag_tvd``, ``flag_psi``,
    ``flag_routes`` and ``flagged``. With ``all_pvalues=False`` the permutation test runs only where a
    flag is still possible (NaN elsewhere) and stops drawing once p cannot fall below alpha; the flags are
    the same, and a 1,000-seed simulation takes seconds.
    """
    import numpy as np

    from evalkit.analysis import proportions as P

    a = np.asarray(old, dtype=np.int64)
    b = np.asarray(new, dtype=np.int64)
    a, b = np.broadcast_arrays(a, b)
    n = a.sum(axis=-1)
    m = b.sum(axis=-1)
    pa, pb = P.shares(a), P.shares(b)
    tvd = P.total_variation(pa, pb)
    upper = P.total_variation_upper(a, b, config.level)
    psi = P.psi(a, b)
    routes_seen = ((a + b) > 0).sum(axis=-1)
    psi_threshold = np.empty(n.shape)
    for k in np.unique(routes_seen):
        mask = routes_seen == k
        psi_threshold[mask] = P.psi_threshold(n[mask], m[mask], int(k), config.alpha, config.psi_floor)
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction_new = m[..., None] / (n[..., None] + m[..., None])
        p_new = np.where((a == 0) & (b > 0), fraction_new ** b, 1.0)
        p_gone = np.where((b == 0) & (a > 0), (1 - fraction_new) ** a, 1.0)
    route_flags = (((p_new < config.alpha) & (pb >= config.min_share))
                   | ((p_gone < config.alpha) & (pa >= config.min_share)))
    possible = (upper >= config.tvd) | (psi >= psi_threshold) | route_flags.any(axis=-1)
    need = np.ones(n.shape, dtype=bool) if all_pvalues else possible
    p_value = np.full(n.shape, np.nan)
    if np.any(need):
        rng = np.random.default_rng(config.seed)
        p_value[need] = P.total_variation_pvalue(a[need], b[need], rng, config.draws,
                                                 stop_above=None if all_pvalues else config.alpha)
    # Every flag needs the permutation test, so on unchanged traffic all of them together alarm at most alpha.
    significant = np.nan_to_num(p_value, nan=1.0) < config.alpha
    flag_tvd = significant & (upper >= config.tvd)
    flag_psi = significant & (psi >= psi_threshold)
    route_flags = route_flags & significant[..., None]
    flag_routes = route_flags.any(axis=-1)
    return {"tvd": tvd, "tvd_upper": upper, "p_value": p_value, "psi": psi, "psi_threshold": psi_threshold,
            "route_flags": route_flags, "flag_tvd": flag_tvd, "flag_psi": flag_psi, "flag_routes": flag_routes,
            "flagged": flag_tvd | flag_psi | flag_routes}


@dataclass(frozen=True)
class RouteShift:
    """One route in both windows."""

    route: str
    old: int
    new: int
    old_share: float
    new_share: float
    status: str
    """``new``, ``vanished`` or empty."""
    flagged: bool

    @property
    def change(self) -> float:
        return self.new_share - self.old_share


@dataclass(frozen=True)
class ArmSkew:
    """An arm split against its configured weights."""

    arms: tuple[str, ...]
    observed: tuple[int, ...]
    expected_shares: tuple[float, ...]
    tvd: float
    p_value: float
    test: str
    flagged: bool
    configured: bool
    """Whether the weights were configured (else an equal split over the arms seen was assumed)."""

    @property
    def observed_shares(self) -> tuple[float, ...]:
        total = sum(self.observed) or 1
        return tuple(c / total for c in self.observed)

    @property
    def top(self) -> tuple[str, float]:
        """The arm with the largest share, and that share."""
        shares = self.observed_shares
        best = max(range(len(self.arms)), key=lambda i: shares[i])
        return self.arms[best], shares[best]

    def to_dict(self) -> dict[str, Any]:
        return {"arms": list(self.arms), "observed": list(self.observed), "observed_shares": list(self.observed_shares),
                "expected_shares": list(self.expected_shares), "tvd": self.tvd, "p_value": self.p_value,
                "test": self.test, "flagged": self.flagged, "configured": self.configured}


def arm_skew(counts: Mapping[str, int], weights: Mapping[str, float] | None, *, alpha: float = 0.01,
             tvd: float = 0.05) -> ArmSkew | None:
    """Tests an arm split against configured weights; None with fewer than two arms and no weights.

    Flagged when the goodness-of-fit test rejects at ``alpha`` (exact binomial for two arms, χ² for more)
    and the split is at least ``tvd`` from the weights: at production volume a 34/33/33 split is significant
    and harmless.
    """

    arms = sorted(set(counts) | set(weights or {}), key=lambda a: (-counts.get(a, 0), a))
    if len(arms) < 2 and not weights:
        return None
    observed = tuple(int(counts.get(a, 0)) for a in arms)
    raw = [float((weights or {}).get(a, 0.0 if weights else 1.0)) for a in arms]
    total_weight = sum(raw) or 1.0
    expected = tuple(w / total_weight for w in raw)
    flags = arm_skew_flags(observed, expected, alpha=alpha, tvd=tvd)
    return ArmSkew(tuple(arms), observed, expected, float(flags["tvd"]), float(flags["p_value"]), flags["test"],
                   bool(flags["flagged"]), weights is not None)


def arm_skew_flags(counts: Any, expected: Any, *, alpha: float = 0.01, tvd: float = 0.05) -> dict[str, Any]:
    """The arm-skew rule on batched counts (last axis: arms): ``p_value``, ``tvd``, ``flagged``, ``test``."""
    from evalkit.analysis import proportions as P

    p_value, test = P.goodness_of_fit(counts, expected)
    distance = P.total_variation(P.shares(counts), expected)
    return {"p_value": p_value, "tvd": distance, "flagged": (p_value < alpha) & (distance >= tvd), "test": test}


@dataclass(frozen=True)
class Drift:
    """Two traffic windows compared."""

    old: str
    new: str
    old_window: tuple[str | None, str | None]
    new_window: tuple[str | None, str | None]
    old_requests: int
    new_requests: int
    tvd: float
    tvd_upper: float
    p_value: float
    """Permutation test of the TVD (H0: one route distribution)."""
    chi2_p: float
    """Pearson's χ² homogeneity test, for reference (liberal when routes expect few requests)."""
    psi: float
    psi_threshold: float
    routes: tuple[RouteShift, ...]
    arms_old: ArmSkew | None
    arms_new: ArmSkew | None
    reasons: tuple[str, ...]
    """Why it is flagged, one line each; empty when it is not."""
    config: DriftConfig
    route_drift: bool = False
    """The route mix moved (TVD or PSI flag) or a route appeared or vanished."""
    arm_skew: bool = False
    """The new window's arm split departs from the configured weights."""

    @property
    def flagged(self) -> bool:
        return self.route_drift or self.arm_skew

    def to_dict(self) -> dict[str, Any]:
        c = self.config
        return {
            "format": DRIFT_FORMAT, "old": self.old, "new": self.new, "flagged": self.flagged,
            "route_drift": self.route_drift, "arm_skew": self.arm_skew, "reasons": list(self.reasons),
            "old_window": list(self.old_window), "new_window": list(self.new_window),
            "old_requests": self.old_requests, "new_requests": self.new_requests, "tvd": self.tvd,
            "tvd_upper": self.tvd_upper, "p_value": self.p_value, "chi2_p": self.chi2_p, "psi": self.psi,
            "psi_threshold": self.psi_threshold,
            "routes": [{"route": r.route, "old": r.old, "new": r.new, "old_share": r.old_share,
                        "new_share": r.new_share, "change": r.change, "status": r.status, "flagged": r.flagged}
                       for r in self.routes],
            "arms_old": self.arms_old.to_dict() if self.arms_old else None,
            "arms_new": self.arms_new.to_dict() if self.arms_new else None,
            "config": {"tvd": c.tvd, "alpha": c.alpha, "level": c.level, "psi_floor": c.psi_floor,
                       "min_share": c.min_share, "arm_tvd": c.arm_tvd,
                       "arm_weights": dict(c.arm_weights) if c.arm_weights else None, "draws": c.draws,
                       "seed": c.seed},
        }


def drift(old: TrafficProfile, new: TrafficProfile, config: DriftConfig | None = None) -> Drift:
    """Compares the route mix and arm splits of two profiles (older window first)."""
    import numpy as np

    from evalkit.analysis import proportions as P

    config = config or DriftConfig()
    names = sorted(set(old.routes) | set(new.routes),
                   key=lambda r: -(_requests(old, r) + _requests(new, r)))
    a = np.array([_requests(old, r) for r in names], dtype=np.int64)
    b = np.array([_requests(new, r) for r in names], dtype=np.int64)
    flags = drift_flags(a, b, config)
    _, _, chi2_p = P.chi2_homogeneity(a, b)
    pa, pb = P.shares(a), P.shares(b)
    shifts = tuple(
        RouteShift(route, int(a[i]), int(b[i]), float(pa[i]), float(pb[i]),
                   "new" if a[i] == 0 else "vanished" if b[i] == 0 else "", bool(flags["route_flags"][i]))
        for i, route in enumerate(names)
    )
    arms_old = arm_skew(old.arms(), config.arm_weights, alpha=config.alpha, tvd=config.arm_tvd)
    arms_new = arm_skew(new.arms(), config.arm_weights, alpha=config.alpha, tvd=config.arm_tvd)
    tvd, upper, p_value = float(flags["tvd"]), float(flags["tvd_upper"]), float(flags["p_value"])
    psi, threshold = float(flags["psi"]), float(flags["psi_threshold"])
    reasons = []
    if flags["flag_tvd"]:
        reasons.append(f"route mix shifted: TVD {tvd:.3f} (upper bound {upper:.3f} ≥ {config.tvd:g}), "
                       f"permutation p {format_p(p_value)} (α {config.alpha:g})")
    if flags["flag_psi"]:
        reasons.append(f"PSI {psi:.3f} ≥ {threshold:.3f} (the threshold at these sample sizes), "
                       f"permutation p {format_p(p_value)}")
    reasons.extend(f"{s.status} route {s.route!r}: {s.new_share if s.status == 'new' else s.old_share:.1%} of "
                   f"{'the new' if s.status == 'new' else 'the old'} window" for s in shifts if s.flagged)
    skewed = arms_new is not None and arms_new.flagged
    if arms_new is not None and skewed:
        arm, share = arms_new.top
        reasons.append(f"arm skew: {arm!r} takes {share:.0%} of the new window against "
                       f"{arms_new.expected_shares[arms_new.arms.index(arm)]:.0%} "
                       f"{'configured' if arms_new.configured else 'in an equal split'} "
                       f"({arms_new.test} p {format_p(arms_new.p_value)})")
    return Drift(old.path, new.path, (old.first, old.last), (new.first, new.last), int(a.sum()), int(b.sum()),
                 tvd, upper, p_value, float(chi2_p), psi, threshold, shifts, arms_old, arms_new, tuple(reasons),
                 config, route_drift=bool(flags["flag_tvd"] or flags["flag_psi"] or flags["flag_routes"]),
                 arm_skew=skewed)


def format_p(value: float | None) -> str:
    """A p-value as people read it: ``< 0.001`` below a thousandth, else three decimals."""
    if value is None:
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _requests(profile: TrafficProfile, route: str) -> int:
    item = profile.routes.get(route)
    return item.requests if item else 0


def parse_weights(text: str | Sequence[str] | None) -> dict[str, float] | None:
    """``warm=1,concise=1,formal=1`` (or a list of ``arm=weight``) → weights; None for None."""
    if text is None:
        return None
    parts = [p for chunk in ([text] if isinstance(text, str) else text) for p in chunk.split(",") if p.strip()]
    weights: dict[str, float] = {}
    for part in parts:
        arm, sep, value = part.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if not sep or not arm.strip() or weight < 0:
            raise ValueError(f"expected arm=weight (e.g. warm=1,concise=1), got {part.strip()!r}")
        weights[arm.strip()] = weight
    if not any(weights.values()):
        raise ValueError("expected at least one arm with a weight above 0, got none")
    return weights
