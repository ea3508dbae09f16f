"""Re-judging a baseline's stored outputs with the current judge, so both sides of a comparison are scored in
one currency (``evalkit compare --rescore-baseline``).

When the judge changed between the baseline and the run (a new model behind the name, a new rubric, a new
calibration), the pass rates on the two sides were measured by different instruments. Re-judging the
baseline's outputs with the judge the run used splits the change in two: the **judge** share (the baseline's
pass rate as it was scored, against the same outputs re-judged now) and the **system** share (the re-judged
baseline against the run).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from evalkit.errors import ConfigError

if TYPE_CHECKING:
    from evalkit.baseline import Baseline, Sample
    from evalkit.results import Run


@dataclass(frozen=True)
class Rescored:
    """The re-judged baseline and how its pass rate moved."""

    baseline: Baseline
    judged: int
    """Baseline samples re-judged."""
    unscored: int
    """Of those, verdicts that could not be parsed (left out, like an unscored result of a run)."""
    before: float | None
    """The baseline's pass rate as stored."""
    after: float | None
    """The same outputs, re-judged by the current judge."""
    current: float | None
    """The run's pass rate."""

    def line(self) -> str:
        def pct(x: float | None) -> str:
            return "–" if x is None else f"{x * 100:.1f}%"

        judge = "–" if self.before is None or self.after is None else f"{(self.after - self.before) * 100:+.1f} pts"
        system = "–" if self.after is None or self.current is None else f"{(self.current - self.after) * 100:+.1f} pts"
        return (f"baseline re-judged by the current judge ({self.judged} outputs, {self.unscored} unscored): pass rate "
                f"{pct(self.before)} as stored → {pct(self.after)} re-judged; the run {pct(self.current)} · "
                f"judge share {judge}, system share {system}")


def _rate(samples: tuple[Sample, ...] | list[Sample]) -> float | None:
    return sum(s.passed for s in samples) / len(samples) if samples else None


def rescore_baseline(baseline: Baseline, run: Run, *, seed: int = 0) -> Rescored:
    """The baseline with every ``judge:NAME`` check of its samples re-judged by the judges ``run``'s suite uses."""
    from pathlib import Path

    from evalkit.baseline import samples_of
    from evalkit.judges.pool import judge_arg, judges_of, open_pool
    from evalkit.suite import load_suite

    suite_file = next((p for p in (run.suite.file, run.suite.path) if p and Path(p).is_file()), None)
    if suite_file is None:
        raise ConfigError(f"--rescore-baseline: expected the run's suite file at {run.suite.path}, got none")
    suite = load_suite(suite_file)
    judges = judges_of(suite)
    if not judges:
        raise ConfigError(f"--rescore-baseline: expected a suite with a judge check, got none in {suite.path}")
    cases = {c.id: c for c in suite.cases}

    async def go() -> tuple[list[Sample], int, int]:
        out: list[Sample] = []
        judged = unscored = 0
        async with open_pool(judges, seed) as pool:
            for sample in baseline.samples:
                case = cases.get(sample.case_id)
                if case is None:  # a case the suite no longer has: nothing to re-judge it against
                    out.append(sample)
                    continue
                checks = dict(sample.checks)
                scores = dict(sample.scores)
                keep = True
                for check in case.expect:
                    if check.name != "judge":
                        continue
                    name, pass_at = judge_arg(check.arg)
                    key = f"judge:{name}"
                    if key not in checks:
                        continue
                    judged += 1
                    score = await pool.verdict(name, pass_at, case, sample.output, sample.repeat)
                    if score.unscored:
                        unscored += 1
                        keep = False
                        break
                    checks[key], scores[key] = score.passed, score.score
                if keep:
                    passed = sample.error_class is None and all(checks.values())
                    out.append(replace(sample, checks=checks, scores=scores, passed=passed))
        return out, judged, unscored

    samples, judged, unscored = asyncio.run(go())
    return Rescored(replace(baseline, samples=tuple(samples)), judged, unscored, _rate(list(baseline.samples)),
                    _rate(samples), _rate(list(samples_of(run))))
