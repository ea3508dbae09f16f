"""A scripted in-process judge provider (``provider: tests.judge_scripted:ScriptedJudge``).

It reads the truth planted in each output (``[truth:pass]``), answers correctly with a configured
accuracy, re-tests flip at a configured rate, and a configured share of its answers are garbage or
truncated — all as seeded functions of the prompt and how many times it has been asked, so every run of a
test sees the same answers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from typing import Any, ClassVar

from evalkit.providers.base import Completion, ProviderSpec, Request

TRUTH = re.compile(r"\[truth:(\w+)\]")


def _uniform(*parts: object) -> float:
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class ScriptedJudge:
    """Answers like a judge; behaviour comes from class attributes a test sets."""

    name = "scripted"
    endpoint = "in-process"
    sdk_version = None
    accuracy: ClassVar[float] = 0.9
    retest_flip: ClassVar[float] = 0.0
    garbage: ClassVar[float] = 0.0
    model: ClassVar[str] = "scripted-judge-1"
    position_bias: ClassVar[float] = 0.0
    """Pairwise: the share of answers that pick whichever output is shown first, whatever it says."""
    calls: ClassVar[Counter[str]] = Counter()

    def __init__(self, spec: ProviderSpec | None = None) -> None:
        self.spec = spec

    async def complete(self, request: Request, timeout: float) -> Completion:
        text = "\n".join(str(m["content"]) for m in request.messages)
        key = hashlib.sha256((text + json.dumps(dict(request.params), sort_keys=True)).encode()).hexdigest()
        nth = ScriptedJudge.calls[key]
        ScriptedJudge.calls[key] += 1
        if request.response_format is None:  # the identity probe
            return Completion(text="OK", model_returned=self.model, stop_reason_raw="stop")
        labels = request.response_format["schema"]["properties"]["verdict"]["enum"]
        if "tie" in labels:  # pairwise: the better output is the one whose planted truth is "pass"
            first = TRUTH.findall(text)[:1]
            label = "a" if first == ["pass"] or _uniform(key, "position") < self.position_bias else "b"
            return Completion(text=json.dumps({"reasoning": "compared", "verdict": label}), model_returned=self.model,
                              stop_reason_raw="stop")
        found = TRUTH.search(text)
        truth = found.group(1) if found else "fail"
        if isinstance(labels[0], int):  # ordinal: the planted truth is the grade
            return Completion(text=json.dumps({"reasoning": "graded", "verdict": int(truth)}),
                              model_returned=self.model, stop_reason_raw="stop")
        label = truth if _uniform(key, "accuracy") < self.accuracy else ("fail" if truth == "pass" else "pass")
        if _uniform(key, nth, "retest") < self.retest_flip:
            label = "fail" if label == "pass" else "pass"
        if _uniform(key, nth, "garbage") < self.garbage:
            broken = ['{"reasoning": "The reply is', "The reply looks fine to me.",
                      '{"reasoning": "x", "verdict": "ok"}']
            pick = broken[int(_uniform(key, nth, "which") * len(broken))]
            return Completion(text=pick, model_returned=self.model,
                              stop_reason_raw="length" if pick.startswith('{"reasoning": "The') else "stop")
        answer: dict[str, Any] = {"reasoning": f"planted truth is {truth}", "verdict": label}
        return Completion(text=json.dumps(answer), model_returned=self.model, stop_reason_raw="stop",
                          prompt_tokens=len(text) // 4, completion_tokens=12)

    async def aclose(self) -> None:
        return None
