"""``evalkit judge calibrate``: measure a judge against its human-labelled anchors, write calibration.json.

The record (``"format": "evalkit.calibration/1"``) holds the judge's identity, the anchor set's hash and
counts, the confusion matrix, agreement with bootstrap intervals, TPR/TNR with Wilson intervals, signed
bias, the test-retest flip rate (the noise floor drift checks are measured against), bias probes against
a placebo repeat, the unscored rate, tokens and cost, every anchor's verdicts, and a status:
``eligible`` (may block a merge), ``use_with_care`` or ``ineligible``, with the reasons.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evalkit.artifact import read_versioned, write_atomic
from evalkit.errors import JudgeError
from evalkit.judges.anchors import Anchor, AnchorSet, load_anchors
from evalkit.judges.scoring import Progress, Scoring, check_rubric_variables, returned, score_anchors, token_totals
from evalkit.judges.spec import JudgeSpec, Label, Thresholds, load_judge
from evalkit.judges.verdict import Verdict, swap

CALIBRATION_FORMAT = "evalkit.calibration/1"
STATUSES = ("eligible", "use_with_care", "ineligible")
HELD_OUT = ("test", "canary")
"""Splits the headline agreement is measured on (``dev`` is where the rubric was tuned)."""


@dataclass(frozen=True)
class Calibration:
    """A calibration record: the status, its reasons, and everything measured (``record``)."""

    judge: str
    status: str
    reasons: tuple[str, ...]
    record: Mapping[str, Any] = field(hash=False)
    path: Path | None = None

    @property
    def identity(self) -> Mapping[str, Any]:
        identity: Mapping[str, Any] = self.record["identity"]
        return identity


def _evalkit_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("evalkit")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def identity_record(spec: JudgeSpec, scoring: Scoring) -> dict[str, Any]:
    """The judge identity a later check compares against (never a key)."""
    models, prints = returned(scoring.calls)
    ident = scoring.identity
    return {
        "provider": ident.provider, "model_requested": ident.model_requested, "endpoint": ident.endpoint,
        "endpoint_host": ident.endpoint_host, "models_returned": models, "system_fingerprints": prints,
        "tokenizer_sha256": ident.tokenizer_sha256, "local_model_sha256": ident.local_model_sha256,
        "prompt_sha256": spec.prompt_sha256, "params_sha256": spec.params_sha256, "params": dict(spec.params),
        "samples": spec.samples, "aggregate": spec.aggregate, "allow_floating": spec.allow_floating,
        "evalkit_version": _evalkit_version(),
    }


def _criterion(name: str, outcome: str, text: str, value: float | None, threshold: float) -> dict[str, Any]:
    return {"name": name, "outcome": outcome, "text": text, "value": value, "threshold": threshold}


def _fmt(x: float | None, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * x:.1f}%" if pct else f"{x:.2f}"


def decide(metrics: Mapping[str, Any], thresholds: Thresholds, probes: Mapping[str, Any],
           positive_names: tuple[str, str]) -> tuple[str, list[dict[str, Any]]]:
    """Status and every criterion: a lower bound below its threshold with the estimate above it is
    ``use_with_care`` (too few anchors to be sure); an estimate below it, or a failed instrument, is
    ``ineligible``."""
    t = thresholds
    criteria: list[dict[str, Any]] = []
    unscored = metrics["unscored"]
    share = unscored["estimate"] or 0.0
    if share > t.unscored_max:
        criteria.append(_criterion("unscored", "fail", f"instrument failed: {_fmt(share, True)} of verdicts "
                                   f"unscored (at most {_fmt(t.unscored_max, True)} allowed)", share, t.unscored_max))
    else:
        criteria.append(_criterion("unscored", "pass", f"unscored {_fmt(share, True)} ≤ "
                                   f"{_fmt(t.unscored_max, True)}", share, t.unscored_max))
    k = metrics["kappa"]
    kappa_name = metrics["kappa_kind"]
    if k["estimate"] is None:
        criteria.append(_criterion("kappa", "fail", f"{kappa_name} undefined (no scored anchors, or a single "
                                   "label on one side)", None, t.kappa_lower))
    elif k["low"] is not None and k["low"] >= t.kappa_lower:
        criteria.append(_criterion("kappa", "pass", f"{kappa_name} {_fmt(k['estimate'])} (lower bound "
                                   f"{_fmt(k['low'])} ≥ {t.kappa_lower:.2f})", k["low"], t.kappa_lower))
    else:
        outcome = "care" if k["estimate"] >= t.kappa_lower else "fail"
        criteria.append(_criterion("kappa", outcome, f"{kappa_name} {_fmt(k['estimate'])} "
                                   f"[{_fmt(k['low'])}, {_fmt(k['high'])}]: lower bound below {t.kappa_lower:.2f}",
                                   k["low"], t.kappa_lower))
    for key, limit, label in (("tpr", t.tpr_lower, positive_names[0]), ("tnr", t.tnr_lower, positive_names[1])):
        r = metrics[key]
        if not r["n"]:
            criteria.append(_criterion(key, "fail", f"{label} cannot be measured: no scored anchor has that human "
                                       "label", None, limit))
        elif r["low"] >= limit:
            criteria.append(_criterion(key, "pass", f"{label} {_fmt(r['estimate'], True)} (Wilson lower bound "
                                       f"{_fmt(r['low'], True)} ≥ {_fmt(limit, True)})", r["low"], limit))
        else:
            outcome = "care" if r["estimate"] >= limit else "fail"
            criteria.append(_criterion(key, outcome, f"{label} {_fmt(r['estimate'], True)} "
                                       f"[{_fmt(r['low'], True)}, {_fmt(r['high'], True)}] ({r['count']}/{r['n']}): "
                                       f"Wilson lower bound below {_fmt(limit, True)}", r["low"], limit))
    flip = metrics["flip_rate"]
    if flip["n"] == 0:
        criteria.append(_criterion("flip_rate", "fail", "flip rate cannot be measured: no anchor was scored in "
                                   "two passes", None, t.flip_rate_max))
    else:
        ok = flip["estimate"] <= t.flip_rate_max
        criteria.append(_criterion("flip_rate", "pass" if ok else "fail",
                                   f"test-retest flip rate {_fmt(flip['estimate'], True)} "
                                   f"[{_fmt(flip['low'], True)}, {_fmt(flip['high'], True)}] "
                                   f"{'≤' if ok else 'above'} {_fmt(t.flip_rate_max, True)}", flip["estimate"],
                                   t.flip_rate_max))
    for name, probe in probes.items():
        if probe.get("significant"):
            criteria.append(_criterion(name, "care", probe["summary"], probe.get("pvalue"), probe.get("alpha", 0.05)))
    outcomes = {c["outcome"] for c in criteria}
    status = "ineligible" if "fail" in outcomes else "use_with_care" if "care" in outcomes else "eligible"
    return status, criteria


def _codes(form_labels: Sequence[Label], labels: Sequence[Label]) -> list[int]:
    return [list(form_labels).index(lab) for lab in labels]


def measure(spec: JudgeSpec, anchors: Sequence[Anchor], passes: Sequence[Mapping[str, Verdict]],
            padded: Mapping[str, Verdict], *, level: float, resamples: int, seed: int) -> dict[str, Any]:
    """Every statistic of a calibration, from verdicts (pure: no calls; the simulations use it directly)."""
    import numpy as np

    from evalkit.core.seeds import numpy_draws
    from evalkit.judges import agreement as ag

    form = spec.verdict
    labels = list(form.labels)
    k = len(labels)
    held = [a for a in anchors if a.split in HELD_OUT]
    evaluated = held if held else list(anchors)
    first = passes[0]
    scored = [a for a in evaluated if first[a.id].scored]
    human = _codes(labels, [a.human_label for a in scored])
    judged = _codes(labels, [first[a.id].value for a in scored])
    rng = numpy_draws(seed, "calibration", spec.name)
    values = [float(v) for v in labels] if form.ordinal else list(range(k))
    stats = ag.agreement_statistics(human, judged, k, ordinal=form.ordinal, values=values, level=level,
                                    resamples=resamples, rng=rng)
    matrix = ag.confusion(human, judged, k) if scored else np.zeros((k, k), dtype=np.int64)
    agree = int(np.trace(matrix))
    positive_h = [form.positive(a.human_label) for a in scored]
    positive_j = [form.positive(first[a.id].value) for a in scored]
    if form.pairwise:
        # Pairwise: "TPR" and "TNR" are the recalls of 'a' and of 'b' (ties are neither).
        pairs = [(a.human_label, first[a.id].value) for a in scored]
        tp = sum(1 for h, j in pairs if h == j == "a")
        tn = sum(1 for h, j in pairs if h == j == "b")
        npos, nneg = sum(1 for h, _ in pairs if h == "a"), sum(1 for h, _ in pairs if h == "b")
    else:
        tp = sum(1 for h, j in zip(positive_h, positive_j, strict=True) if h and j)
        tn = sum(1 for h, j in zip(positive_h, positive_j, strict=True) if not h and not j)
        npos, nneg = sum(positive_h), len(positive_h) - sum(positive_h)
    if form.ordinal:
        bias = ag.mean_difference([float(first[a.id].value) for a in scored],
                                  [float(a.human_label) for a in scored], level, resamples, rng)
    else:
        bias = ag.mean_difference([float(x) for x in positive_j], [float(x) for x in positive_h], level, resamples,
                                  rng)
    bias_dict = bias.to_dict()
    low, high = bias_dict["low"], bias_dict["high"]
    bias_dict["direction"] = ("lenient" if low is not None and low > 0 else
                              "strict" if high is not None and high < 0 else "no evidence either way")
    bias_dict["unit"] = "points on the scale" if form.ordinal else "pass-rate difference (judge − human)"

    # Unscored: every verdict of every pass over every anchor (the instrument's failure rate, all splits).
    all_verdicts = [p[a.id] for p in passes for a in anchors] + list(padded.values())
    unscored = [v for v in all_verdicts if not v.scored]
    reasons = Counter(_reason_kind(v.unscored or "") for v in unscored)
    unscored_rate = ag.rate(len(unscored), len(all_verdicts), level).to_dict()

    # Test-retest: pass 1 against every later pass, on anchors scored in both (all splits).
    flips = total = 0
    for later in passes[1:]:
        for a in anchors:
            x, y = first[a.id], later[a.id]
            if x.scored and y.scored:
                total += 1
                flips += x.label != y.label
    per_split: dict[str, Any] = {}
    for split in ("dev", "test", "canary"):
        chosen = [a for a in anchors if a.split == split and first[a.id].scored]
        if not chosen:
            continue
        h = _codes(labels, [a.human_label for a in chosen])
        j = _codes(labels, [first[a.id].value for a in chosen])
        m = ag.confusion(h, j, k)
        per_split[split] = {"n": len(chosen), "agreement": ag.rate(int(np.trace(m)), len(chosen), level).to_dict(),
                            "kappa": _num(float(ag.kappa(m, quadratic=form.ordinal)))}
    positive_names = (("recall of 'a'", "recall of 'b'") if form.pairwise else ("TPR", "TNR"))
    return {
        "evaluated_on": "+".join(HELD_OUT) if held else "all",
        "n_evaluated": len(evaluated), "n_scored": len(scored),
        "confusion": {"rows": "human", "columns": "judge", "labels": labels, "matrix": matrix.tolist()},
        "raw_agreement": ag.rate(agree, len(scored), level).to_dict(),
        "kappa_kind": "quadratic-weighted kappa" if form.ordinal else "Cohen's kappa",
        "kappa": stats["kappa"].to_dict(),
        "alpha_level": "ordinal" if form.ordinal else "nominal",
        "alpha": stats["alpha"].to_dict(),
        "tpr": {**ag.rate(tp, npos, level).to_dict(), "name": positive_names[0]},
        "tnr": {**ag.rate(tn, nneg, level).to_dict(), "name": positive_names[1]},
        "bias": bias_dict,
        "flip_rate": ag.rate(flips, total, level).to_dict(),
        "unscored": {**unscored_rate, "reasons": dict(reasons.most_common())},
        "per_split": per_split,
    }


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def _reason_kind(reason: str) -> str:
    """Groups unscored reasons by their kind: the text before the first colon or parenthesis."""
    cuts = [i for i in (reason.find(":"), reason.find(" (")) if i > 0]
    return reason[: min(cuts)] if cuts else reason


def human_ceiling(anchors: AnchorSet, spec: JudgeSpec, level: float, resamples: int, seed: int) -> dict[str, Any]:
    """Agreement between human raters on the double-coded items: the ceiling a judge is read against."""
    import numpy as np

    from evalkit.core.seeds import numpy_draws
    from evalkit.judges import agreement as ag

    coded = anchors.double_coded
    if not coded:
        return {"n": 0, "note": "no double-coded anchors yet (items with two or more raters)"}
    labels = list(spec.verdict.labels)
    names = sorted({r for a in coded for r in a.raters})
    matrix = np.full((len(names), len(coded)), -1, dtype=np.int64)
    for u, a in enumerate(coded):
        for r, label in a.raters.items():
            matrix[names.index(r), u] = labels.index(label)
    values = [float(v) for v in labels] if spec.verdict.ordinal else list(range(len(labels)))
    level_name = "ordinal" if spec.verdict.ordinal else "nominal"
    first_two = [a for a in coded if names[0] in a.raters and names[1] in a.raters] if len(names) >= 2 else []
    out: dict[str, Any] = {"n": len(coded), "raters": names,
                           "alpha": _num(ag.krippendorff_alpha(matrix, values, level_name)), "alpha_level": level_name}
    if first_two:
        h = _codes(labels, [a.raters[names[0]] for a in first_two])
        j = _codes(labels, [a.raters[names[1]] for a in first_two])
        stats = ag.agreement_statistics(h, j, len(labels), ordinal=spec.verdict.ordinal, values=values, level=level,
                                        resamples=resamples, rng=numpy_draws(seed, "ceiling", spec.name))
        out["kappa"] = {**stats["kappa"].to_dict(), "between": names[:2], "n": len(first_two)}
        out["agreement"] = ag.rate(sum(x == y for x, y in zip(h, j, strict=True)), len(h), level).to_dict()
    return out


def probe_results(spec: JudgeSpec, anchors: Sequence[Anchor], passes: Sequence[Mapping[str, Verdict]],
                  padded: Mapping[str, Verdict], alpha: float, level: float) -> dict[str, Any]:
    """Length-padding and position probes, each against the placebo repeat (pass 2 against pass 1)."""
    from evalkit.judges import agreement as ag

    out: dict[str, Any] = {}
    first, second = passes[0], passes[1]
    if padded:
        chosen = [a for a in anchors if first[a.id].scored and second[a.id].scored and padded[a.id].scored]
        placebo = [first[a.id].label != second[a.id].label for a in chosen]
        treated = [first[a.id].label != padded[a.id].label for a in chosen]
        b, c, p = ag.paired_excess(placebo, treated)
        form = spec.verdict
        up = sum(1 for a in chosen if form.code(padded[a.id].value) > form.code(first[a.id].value))
        down = sum(1 for a in chosen if form.code(padded[a.id].value) < form.code(first[a.id].value))
        padded_rate = ag.rate(sum(treated), len(chosen), level).to_dict()
        placebo_rate = ag.rate(sum(placebo), len(chosen), level).to_dict()
        significant = p < alpha
        out["length_padding"] = {
            "n": len(chosen), "changed_by_padding": padded_rate, "changed_by_placebo": placebo_rate,
            "padding_only": b, "placebo_only": c, "pvalue": p, "alpha": alpha, "significant": significant,
            "toward_higher": up, "toward_lower": down,
            "summary": (f"length padding changed {_fmt(padded_rate['estimate'], True)} of verdicts against "
                        f"{_fmt(placebo_rate['estimate'], True)} for a placebo repeat (p = {p:.3g}; {up} up, "
                        f"{down} down)"),
        }
    if spec.verdict.pairwise and spec.probes.position:
        inconsistent = []
        placebo = []
        first_position = second_position = 0
        for a in anchors:
            one = {s.order: s for s in first[a.id].samples if s.sample == 0}
            two = {s.order: s for s in second[a.id].samples if s.sample == 0}
            if any(s.unscored for s in (*one.values(), *two.values())) or len(one) < 2 or len(two) < 2:
                continue
            swapped = one["ab"].label != one["ba"].label
            inconsistent.append(swapped)
            placebo.append(one["ab"].label != two["ab"].label)
            if swapped:
                # Raw answers: "ab" as given; "ba" was mapped back, so its raw answer is the swap of its label.
                raw_ab, raw_ba = one["ab"].label, swap(one["ba"].label)
                if raw_ab == raw_ba == "a":
                    first_position += 1
                elif raw_ab == raw_ba == "b":
                    second_position += 1
        b, c, p = ag.paired_excess(placebo, inconsistent)
        swap_rate = ag.rate(sum(inconsistent), len(inconsistent), level).to_dict()
        placebo_rate = ag.rate(sum(placebo), len(placebo), level).to_dict()
        out["position"] = {
            "n": len(inconsistent), "inconsistent_when_swapped": swap_rate, "inconsistent_on_repeat": placebo_rate,
            "swap_only": b, "placebo_only": c, "pvalue": p, "alpha": alpha, "significant": p < alpha,
            "prefers_first": first_position, "prefers_second": second_position,
            "summary": (f"swapping the outputs changed {_fmt(swap_rate['estimate'], True)} of verdicts against "
                        f"{_fmt(placebo_rate['estimate'], True)} on a placebo repeat (p = {p:.3g}; first position "
                        f"won {first_position}, second {second_position})"),
        }
    return out


def anchor_rows(anchors: Sequence[Anchor], passes: Sequence[Mapping[str, Verdict]],
                padded: Mapping[str, Verdict]) -> list[dict[str, Any]]:
    """Per anchor: its hash, split, human label, verdict per pass, unscored reasons, first reasoning."""
    rows = []
    for a in anchors:
        verdicts = [p[a.id] for p in passes]
        first_reasoning = next((s.reasoning for s in verdicts[0].samples if s.reasoning), "")
        row: dict[str, Any] = {
            "id": a.id, "sha256": a.sha256, "split": a.split, "human": a.human_label,
            "verdicts": [v.label for v in verdicts], "scores": [v.score for v in verdicts],
            "unscored": [v.unscored for v in verdicts], "reasoning": first_reasoning,
        }
        if a.id in padded:
            row["padded"] = padded[a.id].label
        rows.append(row)
    return rows


def build_record(spec: JudgeSpec, anchors: AnchorSet, scoring: Scoring) -> Calibration:
    """The calibration record from a finished scoring (pure)."""
    settings = spec.calibration
    metrics = measure(spec, anchors.items, scoring.passes, scoring.padded, level=settings.level,
                      resamples=settings.bootstrap, seed=settings.seed)
    probes = probe_results(spec, anchors.items, scoring.passes, scoring.padded, spec.drift_alpha, settings.level)
    names = ((metrics["tpr"]["name"], metrics["tnr"]["name"]))
    status, criteria = decide(metrics, settings.thresholds, probes, names)
    reasons = tuple(c["text"] for c in criteria if c["outcome"] != "pass")
    record = {
        "format": CALIBRATION_FORMAT,
        "judge": spec.name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "status": status,
        "reasons": list(reasons),
        "criteria": criteria,
        "identity": identity_record(spec, scoring),
        "verdict_form": {"kind": spec.verdict.kind, "labels": list(spec.verdict.labels),
                         "pass_at": spec.verdict.pass_at},
        "anchors": {"path": anchors.path, "sha256": anchors.sha256, "n": len(anchors.items),
                    "counts": anchors.counts(), "double_coded": len(anchors.double_coded)},
        "settings": {"passes": len(scoring.passes), "level": settings.level, "bootstrap": settings.bootstrap,
                     "seed": settings.seed, "thresholds": dataclasses.asdict(settings.thresholds),
                     "drift_alpha": spec.drift_alpha},
        "metrics": metrics,
        "human_ceiling": human_ceiling(anchors, spec, settings.level, settings.bootstrap, settings.seed),
        "probes": probes,
        "usage": {**token_totals(scoring.calls, spec.cost_per_mtok, spec.provider.provider),
                  "duration_s": round(scoring.duration_s, 2)},
        "journal": str(scoring.journal) if scoring.journal else None,
        "anchor_verdicts": anchor_rows(anchors.items, scoring.passes, scoring.padded),
    }
    return Calibration(spec.name, status, reasons, record)


def save_calibration(calibration: Calibration, path: Path) -> Calibration:
    """Writes the record atomically (two-space JSON, so a diff in review reads line by line)."""
    write_atomic(path, json.dumps(calibration.record, indent=2, ensure_ascii=False) + "\n")
    return Calibration(calibration.judge, calibration.status, calibration.reasons, calibration.record, path)


def load_calibration(spec: JudgeSpec) -> Calibration:
    """The judge's calibration record; a missing or foreign file is one :class:`JudgeError` line."""
    from evalkit.suite import display_path

    path = spec.calibration_path
    data = read_versioned(path, CALIBRATION_FORMAT, JudgeError,
                          f"no calibration record (expected one; run: evalkit judge calibrate {spec.name})",
                          display_path(path))
    for key in ("status", "identity", "anchor_verdicts", "settings", "metrics"):
        if key not in data:
            raise JudgeError(f"{display_path(path)}: {key}: missing required field {key!r} (a corrupt record?)")
    return Calibration(spec.name, str(data["status"]), tuple(data.get("reasons", ())), data, path)


def calibrate(name: str, judges_dir: str | os.PathLike[str] = "judges", *, passes: int | None = None,
              cache: bool = False, progress: Progress | None = None, write: bool = True) -> Calibration:
    """Scores the anchors ``passes`` times (≥ 2) with the pinned judge and writes its calibration record."""
    spec = load_judge(name, judges_dir)
    anchors = load_anchors(spec.anchors, spec.verdict)
    check_rubric_variables(spec, anchors)
    count = passes or spec.calibration.passes
    if count < 2:
        raise JudgeError(f"--passes: expected at least 2 (the test-retest flip rate needs two), got {count}")
    scoring = score_anchors(spec, anchors.items, passes=count, what="calibrate",
                            padding=spec.probes.padding is not None, cache=cache, progress=progress)
    calibration = build_record(spec, anchors, scoring)
    return save_calibration(calibration, spec.calibration_path) if write else calibration
