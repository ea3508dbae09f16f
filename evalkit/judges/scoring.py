"""Judging a whole anchor set: every pass, every item, journalled call by call.

Shared by calibration and drift checks. Each verdict is appended to ``calls.jsonl`` under
``.evalkit/judges/<name>/<stamp>/`` as soon as it is in (its samples with their full CallRecords), so an
interrupted calibration loses only the calls in flight.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

from evalkit.errors import ConfigError, RunInterrupted
from evalkit.judges.anchors import Anchor, AnchorSet
from evalkit.judges.judge import Identity, JudgeItem, open_judge
from evalkit.judges.spec import JudgeSpec
from evalkit.judges.verdict import Verdict
from evalkit.providers.base import CallRecord

JUDGE_RUNS = Path(".evalkit") / "judges"


class Progress(Protocol):
    """Receives progress; the CLI renders it as a progress bar."""

    def start(self, total: int) -> None: ...

    def advance(self) -> None: ...


@dataclass(frozen=True)
class Scoring:
    """What judging an anchor set produced."""

    identity: Identity
    probe_call: CallRecord
    passes: tuple[Mapping[str, Verdict], ...] = field(hash=False)
    """Per pass: anchor id → verdict."""
    padded: Mapping[str, Verdict] = field(default_factory=dict, hash=False)
    """The length-padding probe's verdicts (empty when not configured)."""
    duration_s: float = 0.0
    journal: Path | None = None

    @property
    def calls(self) -> list[CallRecord]:
        """Every judge call, the identity probe first."""
        out = [self.probe_call]
        for verdicts in (*self.passes, self.padded):
            for verdict in verdicts.values():
                out.extend(verdict.calls)
        return out


def item_of(anchor: Anchor) -> JudgeItem:
    return JudgeItem(anchor.id, anchor.vars, anchor.output, anchor.output_a, anchor.output_b, anchor.reference)


def check_rubric_variables(spec: JudgeSpec, anchors: AnchorSet) -> None:
    """Every variable the rubric reads is supplied by every anchor; checked before any call."""
    templates = [t for t in (spec.system, spec.rubric) if t is not None]
    used = frozenset().union(*(t.variables for t in templates))
    given = {"vars", "labels", *(("output_a", "output_b") if spec.verdict.pairwise else ("output",))}
    for anchor in anchors.items:
        supplied = given | set(anchor.vars) | ({"reference"} if anchor.reference is not None else set())
        missing = sorted(used - supplied)
        if missing:
            origin = next(t.origin for t in templates if missing[0] in t.variables)
            field_name = "reference" if missing[0] == "reference" else "vars"
            raise ConfigError(
                f"{anchors.path}:{anchor.line}: {field_name}: rubric variable {missing[0]!r} used in {origin} is "
                f"not supplied by anchor {anchor.id!r} (expected it in vars, got: "
                f"{', '.join(sorted(anchor.vars)) or 'none'})"
            )


class _Journal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._handle: IO[str] = path.open("a", encoding="utf-8")

    def append(self, kind: str, pass_index: int, verdict: Verdict) -> None:
        record = {"kind": kind, "pass": pass_index, **verdict.to_dict()}
        self._handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def new_journal_path(spec: JudgeSpec, what: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return JUDGE_RUNS / spec.name / f"{what}-{stamp}-{secrets.token_hex(2)}" / "calls.jsonl"


async def _score(spec: JudgeSpec, anchors: Sequence[Anchor], passes: int, padding: bool, cache: bool,
                 progress: Progress | None, journal: _Journal, stop: Callable[[Identity], bool] | None) -> Scoring:
    t0 = time.perf_counter()
    async with open_judge(spec, seed=spec.calibration.seed, cache=cache) as judge:
        identity, probe = await judge.identity()
        if stop is not None and stop(identity):
            return Scoring(identity, probe, (), {}, time.perf_counter() - t0, journal.path)
        total = len(anchors) * (passes + (1 if padding else 0))
        if progress is not None:
            progress.start(total)
        results: list[dict[str, Verdict]] = [{} for _ in range(passes)]
        padded: dict[str, Verdict] = {}

        async def one(anchor: Anchor, pass_index: int, pad: bool) -> None:
            verdict = await judge.verdict(item_of(anchor), pass_index=pass_index,
                                          padding=spec.probes.padding if pad else None)
            (padded if pad else results[pass_index])[anchor.id] = verdict
            journal.append("padded" if pad else "pass", pass_index, verdict)
            if progress is not None:
                progress.advance()

        # Pass-major order: every anchor gets its first verdict before any gets its second.
        jobs = [one(a, p, False) for p in range(passes) for a in anchors]
        if padding:
            jobs += [one(a, 0, True) for a in anchors]
        await asyncio.gather(*jobs)
    ordered = tuple({a.id: r[a.id] for a in anchors} for r in results)
    return Scoring(identity, probe, ordered, {a.id: padded[a.id] for a in anchors if a.id in padded},
                   time.perf_counter() - t0, journal.path)


def score_anchors(spec: JudgeSpec, anchors: Sequence[Anchor], *, passes: int, what: str, padding: bool = False,
                  cache: bool = False, progress: Progress | None = None,
                  stop: Callable[[Identity], bool] | None = None) -> Scoring:
    """Judges every anchor ``passes`` times (plus the padding probe), after one identity probe call.

    ``stop`` sees the identity the probe found; when it returns True no anchor is judged.
    """
    journal = _Journal(new_journal_path(spec, what))
    try:
        return asyncio.run(_score(spec, anchors, passes, padding, cache, progress, journal, stop))
    except KeyboardInterrupt:
        raise RunInterrupted(f"interrupted: the judge calls made so far are saved in {journal.path}") from None
    finally:
        journal.close()


def token_totals(calls: Sequence[CallRecord], cost_per_mtok: tuple[float, float] | None,
                 provider: str) -> dict[str, Any]:
    """Judge tokens (as reported, and estimated where the provider reports none) and their cost."""
    prompt = sum(c.prompt_tokens or 0 for c in calls)
    completion = sum(c.completion_tokens or 0 for c in calls)
    prompt_est = sum(c.prompt_tokens_est for c in calls)
    completion_est = sum(c.completion_tokens_est for c in calls)
    reported = all(c.prompt_tokens is not None for c in calls if c.ok and not c.cached)
    if provider == "local":
        cost: float | None = 0.0
    elif cost_per_mtok is not None:
        p, q = (prompt, completion) if reported else (prompt_est, completion_est)
        cost = (p * cost_per_mtok[0] + q * cost_per_mtok[1]) / 1e6
    else:
        cost = None
    return {"calls": len(calls), "prompt_tokens": prompt if reported else None,
            "completion_tokens": completion if reported else None, "prompt_tokens_est": prompt_est,
            "completion_tokens_est": completion_est, "cost_usd": cost,
            "cost_basis": "local model (no charge)" if provider == "local" else
            ("reported tokens" if reported else "estimated tokens (chars/4)") if cost is not None else
            "unknown (set cost: in judge.yaml to know it)"}


def returned(calls: Sequence[CallRecord]) -> tuple[list[str], list[str]]:
    """The distinct models and system fingerprints the provider returned."""
    models = sorted({c.model_returned for c in calls if c.model_returned})
    prints = sorted({c.system_fingerprint for c in calls if c.system_fingerprint})
    return models, prints
