"""Simulations (numpy-vectorised, seeded): drift power and false alarms, Wilson coverage, unscored handling.

The verdicts are scripted in numpy and fed through the same statistics and decisions ``evalkit judge
check`` and ``calibrate`` use; ``tests/test_judge_calibrate.py`` drives the whole path through a scripted
provider.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evalkit.judges import agreement as ag
from evalkit.judges.drift import decide, drift_statistics
from evalkit.judges.spec import JudgeSpec, VerdictForm
from evalkit.judges.verdict import Verdict, parse_answer
from evalkit.providers.base import ProviderSpec
from evalkit.template import parse_template

SEEDS = 1000
ANCHORS = 200
BINARY = VerdictForm("binary", ("fail", "pass"))


def _make_spec() -> JudgeSpec:
    return JudgeSpec(name="sim", path="sim/judge.yaml", folder=Path("sim"), provider=ProviderSpec(), model="m",
                     rubric=parse_template("{{ output }}", "sim"), verdict=BINARY)


SPEC = _make_spec()


def _flip_probability(rate: float) -> float:
    """Per-pass flip probability q of a latent verdict such that two passes disagree at ``rate``: 2q(1 − q)."""
    return (1 - np.sqrt(1 - 2 * rate)) / 2


def _scenario(seed: int, check_flip_rate: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(human labels, calibration verdicts n×2, check verdicts) as 0/1 arrays.

    Calibration passes re-test at a 5% flip rate; the check is either one more such re-test (None) or a
    silently upgraded judge whose verdicts flip against calibration pass 1 at ``check_flip_rate``.
    """
    rng = np.random.default_rng(seed)
    q = _flip_probability(0.05)
    human = (rng.random(ANCHORS) < 0.4).astype(int)
    latent = np.where(rng.random(ANCHORS) < 0.85, human, 1 - human)
    cal = np.where(rng.random((ANCHORS, 2)) < q, 1 - latent[:, None], latent[:, None])
    # P(check differs from pass 1) = q(1 - r) + r(1 - q), solved for r.
    r = q if check_flip_rate is None else (check_flip_rate - q) / (1 - 2 * q)
    check = np.where(rng.random(ANCHORS) < r, 1 - latent, latent)
    return human, cal, check


def _status(seed: int, check_flip_rate: float | None) -> str:
    human, cal, check = _scenario(seed, check_flip_rate)
    labels = BINARY.labels
    rows = [{"id": f"a{i}", "verdicts": [labels[x] for x in cal[i]]} for i in range(ANCHORS)]
    current = {f"a{i}": Verdict(f"a{i}", labels[check[i]], None, None, ()) for i in range(ANCHORS)}

    class _Anchor:
        def __init__(self, label: str) -> None:
            self.human_label = label

    anchors = {f"a{i}": _Anchor(labels[human[i]]) for i in range(ANCHORS)}
    statistics = drift_statistics(SPEC, rows, anchors, current, level=0.95, resamples=100,  # type: ignore[arg-type]
                                  seed=seed)
    statistics["unscored"] = {"count": 0, "n": ANCHORS, "rate": 0.0}
    return decide([], statistics, 0.02, 0.05)[0]


def _pvalues(first_seed: int, check_flip_rate: float | None) -> np.ndarray:
    return np.array([ag.exchangeable_flip_test(*_scenario(s, check_flip_rate)[1:])[2]
                     for s in range(first_seed, first_seed + SEEDS)])


def test_a_silent_upgrade_from_5_to_15_percent_flips_is_flagged_drifted_in_95_percent_of_seeds() -> None:
    power = float((_pvalues(0, 0.15) < 0.05).mean())
    print(f"drift flagged in {power:.1%} of {SEEDS} seeds")
    assert power >= 0.95, power


def test_stable_reruns_are_flagged_at_most_5_percent_of_the_time() -> None:
    alarms = float((_pvalues(10_000, None) < 0.05).mean())
    print(f"stable re-runs flagged in {alarms:.1%} of {SEEDS} seeds")
    assert alarms <= 0.05, alarms


@pytest.mark.parametrize("check_flip_rate", [0.15, None])
def test_the_check_decides_exactly_as_the_test_says(check_flip_rate: float | None) -> None:
    # The whole statistics-and-decision path of `evalkit judge check`, on a subset of the same seeds.
    for seed in range(0, SEEDS, 10):
        p = ag.exchangeable_flip_test(*_scenario(seed, check_flip_rate)[1:])[2]
        assert _status(seed, check_flip_rate) == ("drifted" if p < 0.05 else "stable")


def test_wilson_tpr_and_tnr_intervals_cover_the_truth_93_to_97_percent() -> None:
    rng = np.random.default_rng(7)
    seeds = 4000
    tpr, tnr = 0.85, 0.90
    positives = rng.binomial(ANCHORS, 0.4, size=seeds)
    negatives = ANCHORS - positives
    hits_pos = rng.binomial(positives, tpr)
    hits_neg = rng.binomial(negatives, tnr)
    for hits, n, truth in ((hits_pos, positives, tpr), (hits_neg, negatives, tnr)):
        low, high = ag.wilson(hits, n, 0.95)
        coverage = float(((low <= truth) & (truth <= high)).mean())
        print(f"Wilson interval covers {truth:.2f} in {coverage:.1%} of {seeds} seeds")
        assert 0.93 <= coverage <= 0.97, coverage
    # What calibrate reports is this same interval.
    one = ag.rate(int(hits_pos[0]), int(positives[0]), 0.95)
    assert (one.interval.low, one.interval.high) == (pytest.approx(ag.wilson(hits_pos[0], positives[0], 0.95)[0]),
                                                     pytest.approx(ag.wilson(hits_pos[0], positives[0], 0.95)[1]))


def _garbage(rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    """Broken answers of every kind a judge produces: prose, truncated JSON, wrong labels, empty."""
    kinds = [
        ('{"reasoning": "The reply answers the question and', "length"),
        ("I think this reply is fine.", "complete"),
        ('{"reasoning": "ok", "verdict": "maybe"}', "complete"),
        ('{"reasoning": "ok"}', "complete"),
        ("", "length"),
        ('["pass"]', "complete"),
        ('{"reasoning": "ok", "verdict": "fail', "length"),
    ]
    return [kinds[i] for i in rng.integers(0, len(kinds), n)]


def test_five_percent_injected_parse_failures_are_unscored_never_fail() -> None:
    rng = np.random.default_rng(3)
    parse = {}  # parsing is a pure function of (text, stop reason): parse each distinct answer once
    good = ('{"reasoning": "r", "verdict": "fail"}', "complete")
    for answer in [good, *_garbage(rng, 200)]:
        parse[answer] = parse_answer(*answer, BINARY)
    injected = unscored = 0
    for seed in range(SEEDS):
        local = np.random.default_rng(seed)
        broken = local.random(ANCHORS) < 0.05
        answers = [_garbage(local, 1)[0] if b else good for b in broken]
        parsed = [parse[a] for a in answers]
        injected += int(broken.sum())
        unscored += sum(1 for p in parsed if p.unscored)
        # A broken answer is never a label, least of all "fail"; a good one always is.
        assert all(p.label is None and p.unscored for p, b in zip(parsed, broken, strict=True) if b)
        assert all(p.label == "fail" for p, b in zip(parsed, broken, strict=True) if not b)
    assert unscored == injected
