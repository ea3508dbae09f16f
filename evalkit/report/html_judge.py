"""The judge view: can this judge be trusted to block a merge, and does it still judge as it did?

From a calibration record (``judges/<name>/calibration.json``, ``evalkit.calibration/1``): the status with
its reasons and every criterion, the confusion matrix (human rows × judge columns, counts and row shares),
agreement (kappa or quadratic-weighted kappa, Krippendorff's alpha, raw agreement) with its bootstrap
interval and TPR/TNR with Wilson intervals, each against its threshold, and the anchors the judge gets
wrong with its reasoning. From a drift check (``check.json``, ``evalkit.judge_check/1``): the status, its
reasons, the identity changes and the drift statistics. The figures are the record's own (computed by
:mod:`evalkit.judges`); this module only lays them out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.report.html import Section, fragment, render_page

if TYPE_CHECKING:
    from evalkit.judges.calibrate import Calibration
    from evalkit.judges.drift import DriftCheck
    from evalkit.report.html_charts import Chart

LOOK = {"eligible": "pass", "stable": "pass", "use_with_care": "inconclusive", "inconclusive": "inconclusive",
        "ineligible": "regression", "changed": "regression", "drifted": "regression"}
"""A judge status → the report's verdict look (colour, symbol and border style together)."""
OUTCOME_LOOK = {"pass": "pass", "care": "inconclusive", "fail": "regression"}
WRONG_LIMIT = 200
"""At most this many wrong anchors are listed (the record has them all)."""


@dataclass(frozen=True)
class Cell:
    """One cell of the confusion matrix."""

    count: int
    share: float | None
    """Of its row (the human label's anchors)."""
    agree: bool


def confusion_cells(record: Mapping[str, Any]) -> list[tuple[str, list[Cell], int]]:
    """(human label, cells by judge label, row total) per row of the record's confusion matrix."""
    confusion = record["metrics"]["confusion"]
    rows = []
    for i, (label, row) in enumerate(zip(confusion["labels"], confusion["matrix"], strict=True)):
        total = int(sum(row))
        rows.append((str(label), [Cell(int(n), n / total if total else None, i == j) for j, n in enumerate(row)],
                     total))
    return rows


def agreement_chart(record: Mapping[str, Any]) -> Chart:
    """Kappa, alpha, raw agreement, TPR and TNR with their intervals, each against its threshold."""
    from evalkit.report.html_charts import Interval, interval_chart

    m = record["metrics"]
    thresholds = record.get("settings", {}).get("thresholds", {})
    outcomes = {c["name"]: c["outcome"] for c in record.get("criteria", ())}

    def row(label: str, d: Mapping[str, Any], key: str | None, threshold: float | None, pct: bool) -> Interval:
        scale = 100.0 if pct else 1.0
        estimate = d.get("estimate")
        low, high = d.get("low"), d.get("high")
        outcome = outcomes.get(key or "", "")
        shown = "n/a" if estimate is None else (f"{estimate * 100:.1f}%" if pct else f"{estimate:.3f}")
        note = shown + (f" · {outcome}" if outcome else "")
        return Interval(label, None if estimate is None else estimate * scale, None if low is None else low * scale,
                        None if high is None else high * scale, OUTCOME_LOOK.get(outcome, "neutral"), note,
                        None if threshold is None else threshold * scale)

    rows = [
        row(m["kappa_kind"], m["kappa"], "kappa", thresholds.get("kappa_lower"), False),
        row(f"Krippendorff's alpha ({m['alpha_level']})", m["alpha"], None, None, False),
    ]
    chart_a = rows
    level = record.get("settings", {}).get("level", 0.95)
    rates = [
        row("raw agreement", m["raw_agreement"], None, None, True),
        row(f"{m['tpr']['name']} ({m['tpr']['count']}/{m['tpr']['n']})", m["tpr"], "tpr", thresholds.get("tpr_lower"),
            True),
        row(f"{m['tnr']['name']} ({m['tnr']['count']}/{m['tnr']['n']})", m["tnr"], "tnr", thresholds.get("tnr_lower"),
            True),
    ]
    # One axis for both kinds: agreement coefficients (-1 to 1) drawn times 100, rates in percent.
    def times_100(v: float | None) -> float | None:
        return None if v is None else v * 100

    scaled = [Interval(r.label, times_100(r.estimate), times_100(r.low), times_100(r.high), r.mark, r.note,
                       times_100(r.margin)) for r in chart_a]
    return interval_chart(
        [*scaled, *rates], title="Agreement with the human labels",
        description=(f"Each row is an estimate with its {level:.0%} interval (bootstrap for kappa and alpha, "
                     "Wilson for the rates), on a 0–100 scale (kappa and alpha ×100). A dashed tick marks the "
                     "threshold the judge's lower bound must reach; the hatched side is below it. The note "
                     "at the right gives the value and the criterion's outcome in words."),
        axis_label="agreement (kappa and alpha ×100; rates in %)", worse="left",
        limits=(min(0.0, *(v for r in [*scaled, *rates] for v in (r.low, r.estimate) if v is not None)), 100.0),
        header=("statistic", "estimate", "low", "high", "note"),
    )


def _wrong(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    from evalkit.report.judge import wrong_anchors

    return wrong_anchors(record)


def calibration_sections(calibration: Calibration) -> list[Section]:
    """The calibration as report sections: verdict, confusion and agreement, the anchors it gets wrong."""
    from evalkit.report.judge import metric_rows

    r = calibration.record
    wrong = _wrong(r)
    return [
        Section("judge", f"Judge {r['judge']}", fragment(
            "judge.html.j2", r=r, look=LOOK.get(r["status"], "not_comparable"), outcome_look=OUTCOME_LOOK,
            cells=confusion_cells(r), chart=agreement_chart(r), rows=metric_rows(r),
            labels=[str(x) for x in r["metrics"]["confusion"]["labels"]])),
        Section("judge-wrong", f"Anchors the judge gets wrong ({len(wrong)})", fragment(
            "judge_wrong.html.j2", wrong=wrong[:WRONG_LIMIT], more=max(len(wrong) - WRONG_LIMIT, 0),
            passes=r.get("settings", {}).get("passes", 1))),
    ]


def check_section(check: Mapping[str, Any]) -> Section:
    """A drift check (``check.json``'s record, or :attr:`DriftCheck.record`) as a report section."""
    from evalkit.report.judge import _check_rows

    return Section("judge-check", "Drift check", fragment(
        "judge_check.html.j2", c=check, look=LOOK.get(check["status"], "not_comparable"), rows=_check_rows(check)))


def latest_check(name: str) -> Path | None:
    """The newest ``check.json`` that ``evalkit judge check NAME`` saved under ``.evalkit/judges/NAME``."""
    from evalkit.judges.scoring import JUDGE_RUNS

    found = sorted((JUDGE_RUNS / name).glob("check-*/check.json"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def load_check(path: Path) -> dict[str, Any]:
    """A saved drift check; a missing or foreign file is one :class:`~evalkit.errors.JudgeError` line."""
    from evalkit.artifact import read_versioned
    from evalkit.errors import JudgeError
    from evalkit.judges.drift import CHECK_FORMAT

    return read_versioned(path, CHECK_FORMAT, JudgeError, "no such drift check (expected the check.json that "
                          "evalkit judge check writes)")


def render_judge_html(calibration: Calibration, check: DriftCheck | Mapping[str, Any] | None = None, *,
                      sections: Sequence[Section] = ()) -> str:
    """A judge's report as one self-contained HTML page: its calibration, and a drift check when given."""
    built = calibration_sections(calibration)
    if check is not None:
        record = check if isinstance(check, Mapping) else check.record
        if record.get("judge") != calibration.judge:
            raise ValueError(f"check.judge: expected {calibration.judge!r} (the calibration's), got "
                             f"{record.get('judge')!r}")
        built.insert(1, check_section(record))
    r = calibration.record
    from markupsafe import Markup

    heading = Markup("judge <code>{}</code> <span class=\"sub\">{} · anchors <code>{}</code></span>").format(
        r["judge"], r["status"].replace("_", " "), str(r["anchors"]["sha256"])[:12])
    footer = Markup("calibration <code>{}</code>").format(
        str(calibration.path) if calibration.path else json.dumps(r.get("created_at")))
    return render_page([*built, *sections], title=f"evalkit · judge {r['judge']} · {r['status']}", heading=heading,
                       footer=footer)
