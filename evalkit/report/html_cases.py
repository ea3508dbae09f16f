"""The cases: every case of the run (and of the baseline), for the page's filter, search and detail views.

The page's script renders them from one JSON block (``#evalkit-cases``), a page at a time, setting every
piece of text with ``textContent``. Keys are short and defaults are left out, because a 10,000-case report
carries 10,000 of them. The block's shape, which ``report.js.j2`` reads::

    {"compared": bool, "baseline": bool (a baseline's samples were given), "filter": default filter,
     "cases": [{
        "id", "tags": [...], "route",                                      (left out when empty)
        "now": "k/n" | null (not in this run), "base": "k/n" | null (left out when equal to "now"),
        "flip": "down" | "up", "flaky": 1, "err": 1, "agent": 1,          (present only when true)
        "only": "base" | "run" (an unpaired case),
        "before": baseline output, "beforeCut": characters cut, "same": 1 (the baseline's output was this
        run's first output, not repeated), "beforeChecks": [[name, passed], ...] (left out when the same
        as this run's first repeat's),
        "diff": [[op, text], ...], "afterCut"  (flipped cases: op 0 both sides, -1 baseline only, 1 this run
                                                only; then "before" and the first repeat's "out" are left out),
        "reps": [{"r" (left out when 0), "ok": 0 | 1, "out", "outCut", "error",
                  "checks": [[name, passed, score, reason]] (score and reason left out when empty),
                  "end": termination, "dur": seconds, "steps": [step, ...]}]}]}

    step: {"k": "m", "model", "lat", "ttft", "tok": [prompt, completion], "est": 1 (tokens estimated),
           "stop", "cached", "error", "attempts": [[n, class, message, status, seconds, waited]],
           "tools": [[id, name, arguments]], "out", "outCut", "inflight"}
        | {"k": "t", "tool", "id", "n": attempt, "args", "argsCut", "ok", "status", "cls", "error",
           "fault": [kind, phase, profile, detail], "res", "resCut", "lat", "fx": effect, "side"}
        | {"k": "u", "text", "textCut", "sim"}

Texts share the report's size budget. Flipped cases come first: both sides of each are shown whole up to
:data:`PRIORITY_CHARS` (less if the budget cannot hold that many flips). Every other text then gets an
equal share of what is left (water-filling: short texts whole, long ones cut to one length), never less
than :data:`MIN_CHARS`; each cut is marked with how many characters it dropped.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from evalkit.baseline import Sample
from evalkit.core.score import Score
from evalkit.core.trajectory import ToolEvent, Trajectory, UserTurn
from evalkit.providers.base import CallRecord
from evalkit.report.html import ReportData, Section, fragment
from evalkit.results import CaseResult

PRIORITY_CHARS = 20_000
"""A flipped case's outputs are shown whole up to this many characters each."""
MIN_CHARS = 60
"""No text is cut shorter than this, whatever the budget."""
JSON_SLACK = 0.95
"""Share of the budget given to the texts themselves: JSON escapes (\\n, \\", \\u003c …) take the rest."""
_TOKEN = re.compile(r"\w+\s*|[^\w\s]\s*|\s+")
"""Words and punctuation, each with the white space after it (so a lone space never anchors a match)."""


def diff_ops(before: str, after: str) -> list[list[Any]]:
    """A word-level diff (difflib): ``[[0, same], [-1, only before], [1, only after], ...]``, runs merged."""
    a, b = _TOKEN.findall(before), _TOKEN.findall(after)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=len(a) + len(b) > 8000)
    ops: list[list[Any]] = []

    def push(op: int, text: str) -> None:
        if not text:
            return
        if ops and ops[-1][0] == op:
            ops[-1][1] += text
        else:
            ops.append([op, text])

    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            push(0, "".join(a[i1:i2]))
        else:
            push(-1, "".join(a[i1:i2]))
            push(1, "".join(b[j1:j2]))
    return ops


def water_level(lengths: Sequence[int], budget: int, floor: int = MIN_CHARS) -> int:
    """The largest cap c with sum(min(length, c)) <= budget (at least ``floor``): short texts stay whole."""
    ordered = sorted(lengths)
    remaining = budget
    for i, length in enumerate(ordered):
        share = remaining // (len(ordered) - i)
        if length > share:
            return max(share, floor)
        remaining -= length
    return ordered[-1] if ordered else floor  # everything fits whole


@dataclass
class _Slot:
    """A text in the payload waiting for its share of the budget."""

    owner: dict[str, Any]
    key: str
    text: str
    priority: bool


class _Texts:
    """The payload's texts, waiting for their shares of the budget."""

    def __init__(self) -> None:
        self.slots: list[_Slot] = []
        self.flips: list[tuple[dict[str, Any], str, str]] = []

    def put(self, owner: dict[str, Any], key: str, text: str | None, priority: bool = False) -> None:
        if text:
            owner[key] = ""
            self.slots.append(_Slot(owner, key, text, priority))

    def flip(self, case: dict[str, Any], before: str, after: str) -> None:
        """A flipped case: its two outputs become one diff once their share is known."""
        self.flips.append((case, before, after))

    def fill(self, budget: int) -> None:
        first = [len(t) for _, before, after in self.flips for t in (before, after)]
        first += [len(s.text) for s in self.slots if s.priority]
        cap = min(PRIORITY_CHARS, water_level(first, budget))
        used = 0
        for case, before, after in self.flips:
            case["diff"] = diff_ops(before[:cap], after[:cap])
            for key, text in (("beforeCut", before), ("afterCut", after)):
                case.pop(key, None)
                if len(text) > cap:
                    case[key] = len(text) - cap
                used += min(len(text), cap)
        used += sum(self._set(slot, cap) for slot in self.slots if slot.priority)
        rest = water_level([len(s.text) for s in self.slots if not s.priority], max(budget - used, 0))
        for slot in self.slots:
            if not slot.priority:
                self._set(slot, rest)

    @staticmethod
    def _set(slot: _Slot, cap: int) -> int:
        slot.owner[slot.key] = slot.text[:cap]
        slot.owner.pop(slot.key + "Cut", None)
        if len(slot.text) > cap:
            slot.owner[slot.key + "Cut"] = len(slot.text) - cap
        return min(cap, len(slot.text))


def script_json(value: Any) -> str:
    """JSON for a ``<script type="application/json">`` block: ``<``, ``>`` and ``&`` escaped, so no text can
    close the element or open a comment; other characters as they are (jinja's ``tojson`` also escapes
    every apostrophe, six bytes each)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _step(step: CallRecord | ToolEvent | UserTurn, texts: _Texts, model: str | None, multi: bool) -> dict[str, Any]:
    if isinstance(step, ToolEvent):
        tool: dict[str, Any] = {"k": "t", "tool": step.tool, "id": step.intent, "n": step.attempt, "ok": step.ok,
                                "lat": round(step.latency_s, 4), "fx": step.effect}
        texts.put(tool, "args", json.dumps(dict(step.arguments), ensure_ascii=False, sort_keys=True))
        texts.put(tool, "res", step.result)
        for key, value in (("status", step.status), ("cls", step.error_class), ("error", step.error),
                           ("side", step.side_effect)):
            if value is not None:
                tool[key] = value
        if step.fault is not None:
            tool["fault"] = [step.fault.kind, step.fault.phase, step.fault.profile, step.fault.detail]
        return tool
    if isinstance(step, UserTurn):
        user: dict[str, Any] = {"k": "u", "sim": step.simulated}
        texts.put(user, "text", step.content)
        return user
    call: dict[str, Any] = {"k": "m"}
    returned = step.model_returned or step.model_requested
    if returned != model:
        call["model"] = returned
    if step.latency_s is not None:
        call["lat"] = round(step.latency_s, 3)
    if step.ttft_s is not None:
        call["ttft"] = round(step.ttft_s, 3)
    if step.prompt_tokens is not None or step.completion_tokens is not None:
        call["tok"] = [step.prompt_tokens, step.completion_tokens]
    else:
        call["tok"], call["est"] = [step.prompt_tokens_est, step.completion_tokens_est], 1
    if step.stop_reason != "complete":
        call["stop"] = step.stop_reason
    if step.cached:
        call["cached"] = 1
    if step.error:
        call["error"] = step.error
    if step.in_flight_at_start is not None and multi:
        call["inflight"] = step.in_flight_at_start
    if len(step.attempts) > 1 or step.error:
        call["attempts"] = [[a.number, a.error_class, a.error, a.status, round(a.duration_s, 3), round(a.waited_s, 3)]
                            for a in step.attempts]
    if step.tool_calls:
        call["tools"] = [[t.id, t.name, t.arguments] for t in step.tool_calls]
    if multi:
        texts.put(call, "out", step.output)
    return call


def is_agent(trajectory: Trajectory) -> bool:
    """Whether a case ran a loop (tools, a user, several model turns) rather than one prompt."""
    return len(trajectory.steps) > 1 or any(not isinstance(s, CallRecord) for s in trajectory.steps)


def _check(score: Score) -> list[Any]:
    item: list[Any] = [score.name, int(score.passed)]
    if score.score is not None or not score.passed:
        item.append(score.score)
    if not score.passed and score.reason:
        item.append(score.reason)
    return item


def _repeat(result: CaseResult, texts: _Texts, model: str | None, priority: bool, output: bool) -> dict[str, Any]:
    trajectory = result.trajectory
    multi = is_agent(trajectory)
    rep: dict[str, Any] = {"ok": int(result.passed), "checks": [_check(s) for s in result.scores],
                           "steps": [_step(s, texts, model, multi) for s in trajectory.steps]}
    if result.repeat:
        rep["r"] = result.repeat
    if output:  # a flipped case's first output travels in its diff
        texts.put(rep, "out", result.output, priority)
    if result.error:
        rep["error"] = result.error
    if trajectory.termination != "complete":
        rep["end"] = trajectory.termination
    if trajectory.duration_s is not None and multi:
        rep["dur"] = round(trajectory.duration_s, 3)
    return rep


def case_payload(data: ReportData) -> dict[str, Any]:
    """The JSON the page's case views read (see the module docstring), within the report's size budget."""
    run, comparison, baseline = data.run, data.comparison, data.baseline
    conditions = run.conditions
    model = conditions.models_returned[0] if conditions and len(conditions.models_returned) == 1 else None
    flips = {f.case_id: f for f in comparison.flips} if comparison else {}
    flaky = {case for case, _, _ in comparison.flaky} if comparison else set()
    before: dict[str, list[Sample]] = {}
    for sample in baseline.samples if baseline is not None else ():
        before.setdefault(sample.case_id, []).append(sample)
    mine: dict[str, list[CaseResult]] = {}
    for result in run.results:
        mine.setdefault(result.case_id, []).append(result)
    only = dict.fromkeys(comparison.unpaired_baseline, "base") if comparison else {}
    only.update(dict.fromkeys(comparison.unpaired_current, "run") if comparison else {})
    texts = _Texts()
    cases: list[dict[str, Any]] = []
    order = list(mine) + [case for case in before if case not in mine]
    if comparison is not None:
        order += [case for case in comparison.unpaired_baseline if case not in mine and case not in before]
    for case_id in order:
        results, samples, flip = mine.get(case_id, []), before.get(case_id, []), flips.get(case_id)
        first = results[0] if results else None
        case: dict[str, Any] = {"id": case_id}
        tags = first.tags if first else samples[0].tags if samples else ()
        if tags:
            case["tags"] = list(tags)
        if first is not None and first.route:
            case["route"] = first.route
        now = f"{sum(r.passed for r in results)}/{len(results)}" if results else None
        base = f"{sum(s.passed for s in samples)}/{len(samples)}" if samples else flip.before_passed if flip else None
        case["now"] = now
        if base != now or baseline is None:
            case["base"] = base
        if flip is not None:
            case["flip"] = "down" if flip.direction == "pass→fail" else "up"
        if case_id in flaky or (results and 0 < sum(r.passed for r in results) < len(results)):
            case["flaky"] = 1
        if any(r.error for r in results):
            case["err"] = 1
        if any(is_agent(r.trajectory) for r in results):
            case["agent"] = 1
        if case_id in only:
            case["only"] = only[case_id]
        case["reps"] = [_repeat(r, texts, model, flip is not None, output=flip is None or i > 0)
                        for i, r in enumerate(results)]
        if samples:
            checks = [[name, int(ok)] for name, ok in samples[0].checks.items()]
            if first is None or [ok for _, ok in checks] != [int(s.passed) for s in first.scores]:
                case["beforeChecks"] = checks
        if flip is not None:
            texts.flip(case, flip.before, flip.after)
        elif samples and first is not None and samples[0].output == first.output:
            case["same"] = 1
        elif samples:
            texts.put(case, "before", samples[0].output)
        cases.append(case)
    default = "all"
    if flips:
        default = "flipped"
    elif any(not r.passed for r in run.results):
        default = "failing"
    payload = {"compared": comparison is not None, "baseline": baseline is not None, "filter": default,
               "cases": cases}
    structure = len(script_json(payload).encode())
    budget = int((data.size_budget - structure) * JSON_SLACK)
    texts.fill(budget)
    over = len(script_json(payload).encode()) - data.size_budget
    if over > 0:  # the cut marks and the diffs' brackets: once more, with that much less
        texts.fill(budget - over)
    return payload


def cases_section(data: ReportData) -> Section | None:
    payload = case_payload(data)
    if not payload["cases"]:
        return None
    cases = payload["cases"]
    counts = {"all": len(cases), "flipped": sum(1 for c in cases if "flip" in c),
              "down": sum(1 for c in cases if c.get("flip") == "down"),
              "up": sum(1 for c in cases if c.get("flip") == "up"),
              "failing": sum(1 for c in cases if any(not r["ok"] for r in c["reps"])),
              "err": sum(1 for c in cases if "err" in c), "flaky": sum(1 for c in cases if "flaky" in c),
              "agent": sum(1 for c in cases if "agent" in c),
              "base-only": sum(1 for c in cases if c.get("only") == "base"),
              "run-only": sum(1 for c in cases if c.get("only") == "run")}
    labels = sorted({f"tag:{t}" for c in cases for t in c.get("tags", ())}
                    | {f"route:{c['route']}" for c in cases if "route" in c})
    return Section("cases", "Cases", fragment("cases.html.j2", payload=payload, data=Markup(script_json(payload)),
                                              counts=counts, labels=labels))
