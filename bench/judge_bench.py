"""Judge statistics and judge overhead, side by side against bare baselines.

1. Bootstrap intervals of kappa and Krippendorff's alpha on N anchors × B resamples: evalkit's batched
   confusion matrices against calling scikit-learn's ``cohen_kappa_score`` and ``krippendorff.alpha`` once
   per resample (the obvious way), checked to agree on every resample.
2. Judging N items in-process with an instant provider: ``Judge.verdict`` (render the rubric, call with
   retries and a CallRecord, parse, aggregate) against calling the provider's ``complete`` directly.

Usage: python bench/judge_bench.py [--anchors 200] [--resamples 2000] [--items 2000]
Prints the times and ratios; exits 1 when the batched bootstrap is not at least 10× faster than the loop,
or when judging adds more than 5 ms per item over the bare provider calls (a real judge call takes from
hundreds of milliseconds to seconds, so the ratio against an instant provider only bounds our own cost).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np


def bootstrap_bench(anchors: int, resamples: int) -> float:
    import krippendorff
    from sklearn.metrics import cohen_kappa_score

    from evalkit.judges import agreement as ag

    rng = np.random.default_rng(1)
    human = rng.integers(0, 5, anchors)
    judge = np.where(rng.random(anchors) < 0.6, human, rng.integers(0, 5, anchors))
    weights = ag.resample_counts(anchors, resamples, np.random.default_rng(2))

    t0 = time.perf_counter()
    matrices = ag.batch_confusion(weights, human, judge, 5)
    kappas = ag.kappa(matrices, quadratic=True)
    alphas = ag.alpha_from_coincidences(ag.pair_coincidences(matrices), [1, 2, 3, 4, 5], "ordinal")
    batched = time.perf_counter() - t0

    t0 = time.perf_counter()
    loop_k, loop_a = [], []
    for b in range(resamples):
        index = np.repeat(np.arange(anchors), weights[b].astype(int))
        loop_k.append(cohen_kappa_score(human[index], judge[index], labels=list(range(5)), weights="quadratic"))
        loop_a.append(krippendorff.alpha(reliability_data=np.vstack([human[index] + 1, judge[index] + 1]),
                                         value_domain=[1, 2, 3, 4, 5], level_of_measurement="ordinal"))
    loop = time.perf_counter() - t0
    assert np.allclose(kappas, loop_k, atol=1e-9) and np.allclose(alphas, loop_a, atol=1e-9)
    ratio = loop / batched
    print(f"bootstrap ({anchors} anchors x {resamples} resamples, QWK + ordinal alpha): batched {batched:.3f} s, "
          f"scikit-learn/krippendorff loop {loop:.2f} s, {ratio:.0f}x faster, identical to 1e-9")
    return ratio


class _Instant:
    name = "instant"
    endpoint = "in-process"
    sdk_version = None

    async def complete(self, request, timeout):  # type: ignore[no-untyped-def]
        from evalkit.providers.base import Completion

        return Completion(text='{"reasoning": "fine", "verdict": "pass"}', model_returned="m", stop_reason_raw="stop")

    async def aclose(self) -> None:
        return None


def overhead_bench(items: int) -> float:
    """Seconds judging adds per item over bare provider calls."""
    from evalkit.judges.judge import Judge, JudgeItem
    from evalkit.judges.spec import JudgeSpec, VerdictForm
    from evalkit.providers.base import ProviderSpec, Request
    from evalkit.template import parse_template

    spec = JudgeSpec(name="bench", path="bench", folder=Path("."), provider=ProviderSpec(params={"temperature": 0}),
                     model="m", rubric=parse_template("Q: {{ message }}\nA: {{ output }}\nJudge it.", "bench"),
                     verdict=VerdictForm("binary", ("fail", "pass")), concurrency=64)
    provider = _Instant()
    data = [JudgeItem(f"i{n}", {"message": f"question {n}"}, output=f"answer {n}") for n in range(items)]

    async def bare() -> None:
        for item in data:
            request = Request(({"role": "user", "content": f"Q: {item.vars['message']}\nA: {item.output}"},), "m",
                              {"temperature": 0}, response_format=spec.response_format)
            json.loads((await provider.complete(request, 60)).text)

    async def judged() -> None:
        judge = Judge(spec, provider)
        await asyncio.gather(*(judge.verdict(item) for item in data))

    times = {}
    for name, fn in (("bare", bare), ("judge", judged)):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            asyncio.run(fn())
            best = min(best, time.perf_counter() - t0)
        times[name] = best
    ratio = times["judge"] / times["bare"]
    print(f"judging {items} items in-process: bare provider calls {times['bare']:.3f} s, Judge.verdict "
          f"{times['judge']:.3f} s ({ratio:.1f}x: rubric rendering, retries and CallRecords, parsing, aggregation; "
          f"{1e6 * (times['judge'] - times['bare']) / items:.0f} µs per item)")
    return (times["judge"] - times["bare"]) / items


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--anchors", type=int, default=200)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--items", type=int, default=2000)
    args = parser.parse_args()
    speedup = bootstrap_bench(args.anchors, args.resamples)
    overhead = overhead_bench(args.items)
    return 0 if speedup >= 10 and overhead <= 0.005 else 1


if __name__ == "__main__":
    sys.exit(main())
