"""``evalkit judge check``: is this still the judge that was calibrated, and does it still judge the same?

``changed``: the identity differs from the calibration (model requested or returned, system or
tokenizer fingerprint, endpoint, prompt, params). The static parts need no call at all and the returned
model needs one probe call, so a silently swapped model is caught without judging a single anchor.
``drifted``: re-judged anchors flip against their calibration verdicts more than the calibration's own
re-tests did (an exact, one-sided, paired test: :func:`~evalkit.judges.agreement.exchangeable_flip_test`),
with the direction (McNemar on the discordant anchors), the ordinal shift (Wilcoxon, Pratt) and the
change of kappa with a bootstrap interval. ``inconclusive``: too few anchors were scored to tell, or the
instrument failed. ``stable`` otherwise.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from evalkit.artifact import write_atomic
from evalkit.errors import ExitCode, JudgeError
from evalkit.judges.anchors import SPLITS, Anchor, load_anchors
from evalkit.judges.calibrate import Calibration, load_calibration
from evalkit.judges.judge import UNREADABLE, Identity
from evalkit.judges.scoring import Progress, Scoring, check_rubric_variables, returned, score_anchors, token_totals
from evalkit.judges.spec import JudgeSpec, load_judge
from evalkit.judges.verdict import Verdict

CHECK_FORMAT = "evalkit.judge_check/1"
STATUSES = ("stable", "changed", "drifted", "inconclusive")
EXIT_CODES = {"stable": ExitCode.OK, "changed": ExitCode.JUDGE_CHANGED, "drifted": ExitCode.JUDGE_DRIFTED,
              "inconclusive": ExitCode.JUDGE_INCONCLUSIVE}
MIN_ANCHORS = 20
"""Fewer re-judged anchors than this cannot show drift (with no calibration noise, 3 flips of 20 can)."""


@dataclass(frozen=True)
class Change:
    """One identity field that differs from the calibration."""

    field: str
    calibrated: Any
    now: Any
    needed_call: bool
    """False when the spec alone shows it (no call was needed)."""

    @property
    def text(self) -> str:
        return f"{self.field}: calibrated {_show(self.calibrated)}, now {_show(self.now)}"

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "calibrated": self.calibrated, "now": self.now, "needed_call": self.needed_call,
                "text": self.text}


def _show(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12]
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value) if value is not None else "none"


@dataclass(frozen=True)
class DriftCheck:
    """The outcome of a check: status, reasons, identity changes, and every statistic (``record``)."""

    judge: str
    status: str
    reasons: tuple[str, ...]
    changes: tuple[Change, ...]
    record: Mapping[str, Any] = field(hash=False)

    @property
    def exit_code(self) -> ExitCode:
        return EXIT_CODES[self.status]


def static_changes(spec: JudgeSpec, calibrated: Mapping[str, Any]) -> list[Change]:
    """Identity differences visible in the spec alone (no call)."""
    now = {"provider": spec.provider.provider, "model_requested": spec.model, "prompt_sha256": spec.prompt_sha256,
           "params_sha256": spec.params_sha256}
    return [Change(k, calibrated.get(k), v, False) for k, v in now.items() if calibrated.get(k) != v]


def probe_changes(identity: Identity, calibrated: Mapping[str, Any]) -> list[Change]:
    """Identity differences the endpoint reports to one probe call."""
    out = []
    if identity.endpoint != calibrated.get("endpoint"):
        out.append(Change("endpoint", calibrated.get("endpoint"), identity.endpoint, True))
    models = list(calibrated.get("models_returned", []))
    if identity.model_returned and models and identity.model_returned not in models:
        out.append(Change("model_returned", models, identity.model_returned, True))
    prints = list(calibrated.get("system_fingerprints", []))
    fingerprint = identity.system_fingerprint
    if (fingerprint is None) != (not prints) or (fingerprint is not None and fingerprint not in prints):
        out.append(Change("system_fingerprint", prints, fingerprint, True))
    for key in ("tokenizer_sha256", "local_model_sha256"):
        was, now = calibrated.get(key), getattr(identity, key)
        if was != now and UNREADABLE not in (was, now):
            out.append(Change(key, was, now, True))
    return out


def call_changes(calls: Sequence[Any], calibrated: Mapping[str, Any]) -> list[Change]:
    """Models or fingerprints returned by any anchor call that the calibration never saw."""
    models, prints = returned(calls)
    out = []
    new_models = [m for m in models if m not in calibrated.get("models_returned", [])]
    new_prints = [p for p in prints if p not in calibrated.get("system_fingerprints", [])]
    if new_models:
        out.append(Change("model_returned", calibrated.get("models_returned", []), new_models, True))
    if new_prints:
        out.append(Change("system_fingerprint", calibrated.get("system_fingerprints", []), new_prints, True))
    return out


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def drift_statistics(spec: JudgeSpec, rows: Sequence[Mapping[str, Any]], anchors: Mapping[str, Anchor],
                     current: Mapping[str, Verdict], *, level: float, resamples: int, seed: int) -> dict[str, Any]:
    """Flips against the calibration verdicts, the exact test against the noise floor, direction and shift.

    ``rows`` are the calibration's anchor rows (verdict per pass) for the anchors re-judged now.
    """
    import numpy as np

    from evalkit import stats
    from evalkit.core.seeds import numpy_draws
    from evalkit.judges import agreement as ag

    form = spec.verdict
    labels = list(form.labels)
    usable = [r for r in rows if current[r["id"]].scored and all(v is not None for v in r["verdicts"])]
    cal = np.array([[labels.index(v) for v in r["verdicts"]] for r in usable], dtype=np.int64).reshape(
        len(usable), len(rows[0]["verdicts"]) if rows else 2)
    now = np.array([labels.index(current[r["id"]].value) for r in usable], dtype=np.int64)
    first = cal[:, 0] if len(usable) else np.zeros(0, dtype=np.int64)
    flips = int(np.count_nonzero(first != now))
    statistic, null_mean, pvalue = ag.exchangeable_flip_test(cal, now) if len(usable) else (0, 0.0, 1.0)
    cal_flips = int(np.count_nonzero((cal[:, 1:] != cal[:, :1]).any(axis=1))) if len(usable) else 0
    positive = np.array([form.positive(v) for v in labels], dtype=bool)
    counts = stats.paired_counts(positive[first], positive[now])
    direction = ("more lenient" if counts.gained > counts.lost else "stricter" if counts.lost > counts.gained
                 else "no net direction")
    out: dict[str, Any] = {
        "n": len(usable),
        "flips": ag.rate(flips, len(usable), level).to_dict(),
        "noise_floor": ag.rate(cal_flips, len(usable), level).to_dict(),
        "test": {"name": "exact exchangeable-retest test (one-sided)", "statistic": statistic,
                 "null_mean": null_mean, "pvalue": pvalue, "alpha": spec.drift_alpha},
        "direction": {"name": "exact McNemar (two-sided) on discordant anchors", "to_pass": counts.gained,
                      "to_fail": counts.lost, "pvalue": stats.mcnemar_exact(counts), "direction": direction},
    }
    if form.ordinal and len(usable):
        diffs = (np.array(labels)[now] - np.array(labels)[first]).astype(float)
        interval = stats.bootstrap_mean_bca(diffs, level, numpy_draws(seed, "drift-shift", spec.name), resamples)
        out["shift"] = {"name": "Wilcoxon signed-rank (Pratt) + BCa bootstrap of the mean shift",
                        "mean": float(diffs.mean()), "low": interval.low, "high": interval.high, "level": level,
                        "pvalue": stats.wilcoxon_pratt(diffs)}
    labelled = [r for r in usable if r["id"] in anchors]
    if labelled:
        human = np.array([labels.index(anchors[r["id"]].human_label) for r in labelled], dtype=np.int64)
        was = np.array([labels.index(r["verdicts"][0]) for r in labelled], dtype=np.int64)
        is_ = np.array([labels.index(current[r["id"]].value) for r in labelled], dtype=np.int64)
        k = len(labels)

        def change(weights: ag.FloatArray) -> ag.FloatArray:
            after = ag.kappa(ag.batch_confusion(weights, human, is_, k), quadratic=form.ordinal)
            before = ag.kappa(ag.batch_confusion(weights, human, was, k), quadratic=form.ordinal)
            result: ag.FloatArray = after - before
            return result

        estimate = ag.bootstrap_statistic(change, len(labelled), level, resamples,
                                          numpy_draws(seed, "drift-kappa", spec.name))
        before = float(ag.kappa(ag.confusion(human, was, k), quadratic=form.ordinal))
        out["kappa_change"] = {**estimate.to_dict(), "calibrated": _num(before),
                               "now": _num(before + estimate.value) if not math.isnan(estimate.value) else None,
                               "n": len(labelled)}
    return out


def check(name: str, judges_dir: str | os.PathLike[str] = "judges", *, split: str | None = None, full: bool = False,
          progress: Progress | None = None, save: bool = True) -> DriftCheck:
    """Re-checks a judge against its calibration (see the module docstring for the four outcomes).

    ``split`` limits the anchors re-judged (``canary`` for a quick check); ``full`` judges the anchors even
    when the identity probe already shows the judge changed (to measure how much it changed).
    """
    spec = load_judge(name, judges_dir)
    anchors = load_anchors(spec.anchors, spec.verdict)
    check_rubric_variables(spec, anchors)
    calibration = load_calibration(spec)
    if split is not None and split not in SPLITS:
        raise JudgeError(f"--split: expected one of {', '.join(SPLITS)}, got {split!r}")
    calibrated = calibration.identity
    changes = static_changes(spec, calibrated)
    rows_by_id = {r["id"]: r for r in calibration.record["anchor_verdicts"]}
    chosen = [a for a in anchors.split(*([split] if split else [])) if a.id in rows_by_id
              and rows_by_id[a.id].get("sha256") == a.sha256]
    skipped = len(anchors.split(*([split] if split else []))) - len(chosen)

    def stop(identity: Identity) -> bool:
        return not full and bool(changes or probe_changes(identity, calibrated))

    scoring = score_anchors(spec, chosen, passes=1, what="check", progress=progress, stop=stop)
    changes += [c for c in probe_changes(scoring.identity, calibrated) if c.field not in {x.field for x in changes}]
    if not full and changes:
        return _finish(spec, calibration, changes, scoring, None, skipped, save)
    current = scoring.passes[0] if scoring.passes else {}
    seen = {c.field for c in changes}
    changes += [c for c in call_changes(scoring.calls, calibrated) if c.field not in seen]
    settings = calibration.record["settings"]
    statistics = drift_statistics(spec, [rows_by_id[a.id] for a in chosen], {a.id: a for a in chosen}, current,
                                  level=float(settings.get("level", 0.95)),
                                  resamples=int(settings.get("bootstrap", 2000)), seed=int(settings.get("seed", 0)))
    unscored = sum(1 for v in current.values() if not v.scored)
    statistics["unscored"] = {"count": unscored, "n": len(current),
                              "rate": unscored / len(current) if current else None}
    return _finish(spec, calibration, changes, scoring, statistics, skipped, save)


def decide(changes: Sequence[Change], statistics: Mapping[str, Any] | None, unscored_max: float,
           alpha: float) -> tuple[str, list[str]]:
    """The status and its reasons (identity first: a changed judge is changed whatever its anchors say)."""
    reasons = [c.text for c in changes]
    drifted = False
    if statistics is not None:
        test = statistics["test"]
        flips = statistics["flips"]
        floor = statistics["noise_floor"]
        if test["pvalue"] < alpha:
            drifted = True
            reasons.append(f"drifted: {flips['count']}/{flips['n']} anchors flipped against their calibration "
                           f"verdicts (noise floor {floor['count']}/{floor['n']}; exact one-sided p = "
                           f"{test['pvalue']:.3g} < {alpha:g}); {statistics['direction']['direction']}")
    if changes:
        return "changed", reasons
    assert statistics is not None
    rate = statistics["unscored"]["rate"]
    if rate is not None and rate > unscored_max:
        return "inconclusive", [f"instrument failed: {100 * rate:.1f}% of verdicts unscored "
                                f"(at most {100 * unscored_max:.0f}% allowed)"]
    if drifted:
        return "drifted", reasons
    if statistics["n"] < MIN_ANCHORS:
        return "inconclusive", [f"too few anchors to tell: {statistics['n']} re-judged and scored, "
                                f"expected at least {MIN_ANCHORS}"]
    test = statistics["test"]
    return "stable", [f"{statistics['flips']['count']}/{statistics['n']} anchors flipped, within the noise "
                      f"floor (exact one-sided p = {test['pvalue']:.3g})"]


def _finish(spec: JudgeSpec, calibration: Calibration, changes: Sequence[Change], scoring: Scoring,
            statistics: dict[str, Any] | None, skipped: int, save: bool) -> DriftCheck:
    thresholds = calibration.record["settings"].get("thresholds", {})
    status, reasons = decide(changes, statistics, float(thresholds.get("unscored_max", 0.02)), spec.drift_alpha)
    record = {
        "format": CHECK_FORMAT, "judge": spec.name, "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "status": status, "reasons": reasons, "changes": [c.to_dict() for c in changes],
        "anchors_judged": statistics is not None, "anchors_skipped_changed": skipped,
        "identity": scoring.identity.to_dict(), "calibration": str(calibration.path),
        "calibration_status": calibration.status, "statistics": statistics,
        "usage": {**token_totals(scoring.calls, spec.cost_per_mtok, spec.provider.provider),
                  "duration_s": round(scoring.duration_s, 2)},
        "journal": str(scoring.journal) if scoring.journal else None,
        "verdicts": [{"id": k, "label": v.label, "unscored": v.unscored}
                     for k, v in (scoring.passes[0] if scoring.passes else {}).items()],
    }
    if save and scoring.journal is not None:
        write_atomic(scoring.journal.parent / "check.json", json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return DriftCheck(spec.name, status, tuple(reasons), tuple(changes), record)
