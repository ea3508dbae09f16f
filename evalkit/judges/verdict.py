"""Verdicts: one judge answer parsed into a label, or ``unscored`` with a reason — never a fail.

A judge that answers garbage, is cut off at ``max_tokens``, names a label outside its form or cannot be
reached has not said the output is bad; it has failed as an instrument. Such a verdict is kept, counted and
shown, and excluded from every denominator.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evalkit.judges.spec import Label, VerdictForm
from evalkit.providers.base import CallRecord, shorten

_FENCE = re.compile(r"```(?:json)?\s*(.*?)\s*```", re.DOTALL)


@dataclass(frozen=True)
class Parsed:
    """What one answer said: a label, or the reason there is none."""

    label: Label | None
    reasoning: str = ""
    unscored: str | None = None


@dataclass(frozen=True)
class SampleVerdict:
    """One judge call on one item: its parsed answer and the call that produced it."""

    label: Label | None
    reasoning: str
    unscored: str | None
    call: CallRecord
    sample: int = 0
    order: str = ""
    """Pairwise: ``ab`` (as given) or ``ba`` (swapped; the label is mapped back to the given order)."""

    def to_dict(self, *, call: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {"label": self.label, "reasoning": self.reasoning, "unscored": self.unscored,
                                "sample": self.sample, "order": self.order}
        if call:
            data["call"] = self.call.to_dict()
        return data


@dataclass(frozen=True)
class Verdict:
    """A judge's verdict on one item, aggregated over its samples (and, pairwise, both orders)."""

    item_id: str
    label: Label | None
    """None when unscored."""
    score: float | None
    """The mean over samples (``aggregate: mean``), else the label's value where it is a number."""
    unscored: str | None
    samples: tuple[SampleVerdict, ...]

    @property
    def scored(self) -> bool:
        return self.unscored is None

    @property
    def value(self) -> Label:
        """The label of a scored verdict (asking an unscored one is a bug)."""
        if self.label is None:
            raise ValueError(f"verdict on {self.item_id!r} is unscored: {self.unscored}")
        return self.label

    @property
    def calls(self) -> tuple[CallRecord, ...]:
        return tuple(s.call for s in self.samples)

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "label": self.label, "score": self.score, "unscored": self.unscored,
                "samples": [s.to_dict() for s in self.samples]}


def _decode(text: str) -> tuple[Any, str | None]:
    """The JSON value in an answer: as it stands, fenced in Markdown, or the first object in prose."""
    stripped = text.strip()
    fenced = _FENCE.search(stripped)
    candidates = [stripped] + ([fenced.group(1)] if fenced else [])
    start = stripped.find("{")
    error: json.JSONDecodeError | None = None
    for candidate in candidates:
        try:
            return json.loads(candidate), None
        except json.JSONDecodeError as exc:
            error = error or exc
    if start > 0:
        try:
            value, _ = json.JSONDecoder().raw_decode(stripped[start:])
            return value, None
        except json.JSONDecodeError:
            pass
    assert error is not None
    return None, f"not JSON ({error.msg} at column {error.colno}): {shorten(stripped, 80)!r}"


def parse_answer(text: str, stop_reason: str, form: VerdictForm) -> Parsed:
    """Parses one answer ``{"reasoning": ..., "verdict": ...}``; anything else is unscored with a reason."""
    if not text.strip():
        return Parsed(None, unscored="empty answer" + (" (cut off at max_tokens)" if stop_reason == "length" else ""))
    value, problem = _decode(text)
    if problem is not None:
        if stop_reason == "length":
            return Parsed(None, unscored=f"truncated: the answer hit max_tokens before it was complete "
                                         f"({shorten(text.strip(), 60)!r})")
        return Parsed(None, unscored=problem)
    if not isinstance(value, dict):
        return Parsed(None, unscored=f"expected a JSON object with reasoning and verdict, got {type(value).__name__}")
    reasoning = value.get("reasoning")
    reasoning_text = reasoning if isinstance(reasoning, str) else ""
    if "verdict" not in value:
        return Parsed(None, reasoning_text, f"no 'verdict' field in {shorten(text.strip(), 60)!r}")
    label = form.normalise(value["verdict"])
    if label is None:
        return Parsed(None, reasoning_text,
                      f"verdict {value['verdict']!r} is not one of the declared labels ({form.describe()})")
    return Parsed(label, reasoning_text)


def unscored_call(call: CallRecord) -> str:
    """The unscored reason of a call that failed after its retries."""
    return f"judge call failed: {call.error or call.error_class}"


def swap(label: Label | None) -> Label | None:
    """A pairwise label judged with the outputs swapped, mapped back to the order given."""
    return {"a": "b", "b": "a"}.get(label, label) if isinstance(label, str) else label


def aggregate(item_id: str, samples: Sequence[SampleVerdict], form: VerdictForm, how: str) -> Verdict:
    """Combines an item's samples: majority (ties: the stricter label) or, for ordinal scales, the mean.

    Pairwise: each sample's two orders are combined first; orders that disagree make a ``tie`` (the
    verdict followed position, not content). Unscored samples are left out; an item with no scored sample
    is unscored with the first reason.
    """
    units: list[Label] = []
    reasons: list[str] = []
    if form.pairwise:
        by_sample: dict[int, dict[str, SampleVerdict]] = {}
        for s in samples:
            by_sample.setdefault(s.sample, {})[s.order] = s
        for orders in by_sample.values():
            broken = [s.unscored for s in orders.values() if s.unscored]
            if broken or len(orders) < 2:
                reasons.extend(r for r in broken if r)
                continue
            first, second = orders["ab"].label, orders["ba"].label
            assert first is not None and second is not None
            units.append(first if first == second else "tie")
    else:
        for s in samples:
            if s.unscored:
                reasons.append(s.unscored)
            else:
                assert s.label is not None
                units.append(s.label)
    if not units:
        return Verdict(item_id, None, None, reasons[0] if reasons else "no answer", tuple(samples))
    if how == "mean":
        mean = sum(float(u) for u in units) / len(units)
        # Round half up onto the scale, so the label of a mean of 3.5 is 4, as a person would read it.
        label: Label = min(form.labels, key=lambda v: (abs(float(v) - mean - 1e-9), v))
        return Verdict(item_id, label, mean, None, tuple(samples))
    counts = Counter(units)
    top = max(counts.values())
    tied = [lab for lab in form.labels if counts.get(lab, 0) == top]
    label = _stricter(tied, form)
    return Verdict(item_id, label, float(label) if form.ordinal else None, None, tuple(samples))


def _stricter(tied: Sequence[Label], form: VerdictForm) -> Label:
    """Breaks a majority tie: the lower grade (binary: fail; ordinal: the median, rounded down; pairwise: tie)."""
    if len(tied) == 1:
        return tied[0]
    if form.pairwise:
        return "tie"
    ordered = sorted(tied, key=form.code)
    return ordered[(len(ordered) - 1) // 2]


def label_counts(verdicts: Mapping[str, Verdict]) -> dict[str, int]:
    """How many verdicts have each label, and how many are unscored."""
    counts = Counter("unscored" if v.label is None else str(v.label) for v in verdicts.values())
    return dict(sorted(counts.items()))
