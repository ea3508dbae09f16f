"""Interleaved A/B: two versions of a suite run in the same window, case by case, and compared on pairs.

A stored baseline was measured at another hour, under other load, perhaps against another provider
build; one run each side cannot separate "the change" from "this run's conditions" for latency. Here
both arms run in one window through one provider: for each case a seeded coin decides which arm goes
first and the other follows at once, so time of day, load and provider noise fall on both sides of every
pair and cancel in the paired differences.

Decisions (one-sided at the policy's alpha; the policy is arm A's ``gate:`` section):

- pass rate: the gate's paired test against the pass-rate margin (:func:`evalkit.compare.pass_rate_metric`);
- latency and TTFT: Wilcoxon signed-rank (Pratt) on the paired log ratios ``log(b / a)``, shifted by the
  relative margin ``latency_margin``: ``regression`` when B is shown slower than A by more than the margin,
  ``pass`` when shown within it (``improvement`` when also shown faster), else ``inconclusive``; the
  p95 ratio is reported with a seeded paired bootstrap interval.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import ConfigError, ExitCode

if TYPE_CHECKING:
    from evalkit.compare import Metric
    from evalkit.results import Run
    from evalkit.suite import Suite

FORMAT = "evalkit.ab/1"
ARMS = ("a", "b")


@dataclass(frozen=True)
class ABResult:
    """Both arms, the order they ran in, and a decision per metric."""

    suite: str
    arms: dict[str, str]
    """Arm → what it ran (``working tree``, ``git REF``, a prompt file)."""
    directory: str
    seed: int
    order: tuple[tuple[str, str, int], ...]
    metrics: tuple[Metric, ...]
    """The gate's metric records (:class:`evalkit.compare.Metric`); latency's ``a``/``b`` are p95 seconds."""
    alpha: float
    verdict: str
    notes: tuple[str, ...] = field(default=())

    @property
    def exit_code(self) -> ExitCode:
        return {"regression": ExitCode.REGRESSION, "inconclusive": ExitCode.INCONCLUSIVE}.get(self.verdict,
                                                                                              ExitCode.OK)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "suite": self.suite, "arms": self.arms, "directory": self.directory,
                "seed": self.seed, "alpha": self.alpha, "verdict": self.verdict,
                "metrics": [m.to_dict() for m in self.metrics], "notes": list(self.notes),
                "order": [list(item) for item in self.order]}


# --- the arms ---------------------------------------------------------------------------------------------


def suite_at_ref(path: Path, ref: str, into: Path) -> Path:
    """The suite file and every file it reads, as they are at git ``ref``, copied under ``into``.

    Read from git's objects (:mod:`evalkit.lint.gitbase`, as ``lint --base`` reads them; no checkout), each
    at its path relative to the suite's folder; returns the suite's path in the copy.
    """
    import os

    from evalkit.lint.gitbase import read_at
    from evalkit.suite import load_suite

    folder = path.resolve().parent
    current = load_suite(path)
    wanted = [Path(os.path.relpath(f, folder)).as_posix()
              for f in dict.fromkeys([path.resolve(), *(Path(f).resolve() for f in current.files)])]
    texts = read_at(ref, wanted, option="--baseline-ref", cwd=folder)
    # The copy keeps the files' places relative to the suite's folder, climbing (../) as deep as they do.
    depth = max((p.split("/").count("..") for p in wanted), default=0)
    home = into.joinpath(*(f"d{i}" for i in range(depth)))
    for relative, text in texts.items():
        if text is None:
            raise ConfigError(f"--baseline-ref: expected {relative} (from {folder}) at {ref}, got none "
                              "(the suite reads it now)")
        target = Path(os.path.normpath(home / relative))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, "utf-8")
    return home / wanted[0]


def with_system_prompt(suite: Suite, prompt: Path, option: str) -> Suite:
    """The suite with its system prompt replaced by the file ``prompt`` (checked against every case's vars)."""
    from evalkit.template import parse_template

    try:
        text = prompt.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{option}: {prompt}: expected a readable UTF-8 prompt file, got "
                          f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}") from None
    template = parse_template(text, str(prompt))
    for case in suite.cases:
        missing = sorted(template.variables - set(case.vars))
        if missing:
            raise ConfigError(f"{option}: {prompt}: variable {missing[0]!r} is not supplied by case {case.id!r} of "
                              f"{suite.path}")
    return replace(suite, target=replace(suite.target, system=template))


def interleaved_order(case_ids: Sequence[str], repeats: int, seed: int) -> tuple[tuple[str, str, int], ...]:
    """Case by case (repeat-major, as runs go), both arms adjacent; a seeded coin per case and repeat decides
    which arm goes first."""
    from evalkit.core.seeds import draws

    order: list[tuple[str, str, int]] = []
    for repeat in range(repeats):
        for case_id in case_ids:
            first = "a" if draws(seed, case_id, repeat, "ab-order").random() < 0.5 else "b"
            second = "b" if first == "a" else "a"
            order += [(first, case_id, repeat), (second, case_id, repeat)]
    return tuple(order)


# --- the decision -----------------------------------------------------------------------------------------


def latency_decision(a: Any, b: Any, *, margin: float, alpha: float) -> tuple[str, float, str]:
    """(verdict, p of the deciding test, the test) for paired latencies: Wilcoxon signed-rank (Pratt) on the
    log ratios b/a against the relative margin (worse / within), and against zero (better)."""
    import numpy as np

    from evalkit import stats

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    worse = stats.latency_ratio_test(x * (1 + margin), y, alternative="greater").pvalue
    if worse < alpha:
        return "regression", worse, "wilcoxon-log-ratio: worse than margin"
    within = stats.latency_ratio_test(x * (1 + margin), y, alternative="less").pvalue
    if within < alpha:
        better = stats.latency_ratio_test(x, y, alternative="less").pvalue
        if better < alpha:
            return "improvement", better, "wilcoxon-log-ratio: better"
        return "pass", within, "wilcoxon-log-ratio: within margin"
    return "inconclusive", worse, "wilcoxon-log-ratio: undecided"


def latency_metric(name: str, a: Sequence[float], b: Sequence[float], *, margin: float, alpha: float,
                   blocking: bool, seed: int, level: float = 0.90) -> Metric:
    """Paired latencies (seconds) of the two arms: the margin-shifted Wilcoxon decisions and the p95 ratio."""
    import numpy as np

    from evalkit import stats
    from evalkit.compare import Metric
    from evalkit.core.seeds import numpy_draws

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = int(x.size)
    if n < 6:
        return Metric(name, "latency", n, None, None, None, None, None, level, margin, "inconclusive", blocking,
                      test=f"too few paired calls ({n}; the signed-rank test needs at least 6)")
    verdict, p, test = latency_decision(x, y, margin=margin, alpha=alpha)
    point, interval = stats.quantile_ratio_interval(x, y, 0.95, level, numpy_draws(seed, name, "ab-p95"))
    median = float(np.median(y / np.maximum(x, 1e-12)))
    return Metric(name, "latency", n, float(np.quantile(x, 0.95, method="inverted_cdf")),
                  float(np.quantile(y, 0.95, method="inverted_cdf")), point - 1, interval.low - 1, interval.high - 1,
                  level, margin, verdict, blocking, p_value=float(p), test=test, n_unit="pairs",
                  tests={"median_ratio": median}, notes=(f"median of the paired ratios B/A: {median:.3f}",))


def _paired(runs: dict[str, Run]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Case ids present and finished in both arms, and per arm: case id → its first repeat's result."""
    by_arm = {arm: {r.case_id: r for r in sorted(run.results, key=lambda r: r.repeat)} for arm, run in runs.items()}
    ids = [c for c in by_arm["a"] if c in by_arm["b"]]
    return ids, by_arm


def decide(runs: dict[str, Run], gate: Mapping[str, Any] | None, seed: int) -> tuple[tuple[Metric, ...], str,
                                                                                     list[str]]:
    """Per-metric decisions on the paired cases and the overall verdict (a blocking regression decides)."""
    from evalkit.compare import pass_rate_metric
    from evalkit.policy import GateConfig

    config = GateConfig.from_mapping(gate or {})
    ids, by_arm = _paired(runs)
    notes: list[str] = []
    a_res, b_res = by_arm["a"], by_arm["b"]
    metric = pass_rate_metric([float(a_res[c].passed) for c in ids], [float(b_res[c].passed) for c in ids],
                              margin=config.margin("pass_rate"), alpha=config.alpha,
                              blocking="pass_rate" in config.block_on)
    metrics = [metric]
    def latency(result: Any) -> float | None:
        return sum(c.latency_s or 0.0 for c in result.calls) or None

    def ttft(result: Any) -> float | None:
        return result.calls[0].ttft_s if result.calls else None

    for name, read in (("latency_p95", latency), ("ttft_p95", ttft)):
        measured = [(read(a_res[c]), read(b_res[c])) for c in ids
                    if all(not call.cached and call.ok for call in (*a_res[c].calls, *b_res[c].calls))]
        pairs = [(x, y) for x, y in measured if x and y]
        skipped = len(ids) - len(pairs)
        if skipped:
            notes.append(f"{name}: {skipped} pair(s) left out (an error or a cached call on either side)")
        metrics.append(latency_metric(name, [x for x, _ in pairs], [y for _, y in pairs],
                                      margin=config.latency_margin, alpha=config.alpha,
                                      blocking=name in config.block_on, seed=seed))
    blocking = [m for m in metrics if m.blocking]
    if any(m.verdict == "regression" for m in blocking):
        verdict = "regression"
    elif any(m.verdict == "inconclusive" for m in blocking) and config.inconclusive_blocks:
        verdict = "inconclusive"
    elif blocking and all(m.verdict == "improvement" for m in blocking):
        verdict = "improvement"
    else:
        verdict = "pass"
    unpaired = len(set(a_res) ^ set(b_res))
    if unpaired:
        notes.append(f"{unpaired} case(s) finished in one arm only: not compared")
    return tuple(metrics), verdict, notes


def run_ab(suite_path: str | Path, *, baseline_ref: str | None = None, prompt_a: Path | None = None,
           prompt_b: Path | None = None, out: Path = Path(".evalkit") / "ab", ab_id: str | None = None,
           seed: int = 0, concurrency: int | None = None, shard: tuple[int, int] | None = None) -> ABResult:
    """Runs arm A (the suite at ``baseline_ref``, or with ``prompt_a``) and arm B (the suite as it is, or with
    ``prompt_b``) interleaved, and decides each metric on the pairs. Both runs are ordinary run directories
    under ``out/<ab_id>/a`` and ``…/b``; ``ab.json`` beside them holds the decision. ``shard`` (i, n) keeps
    the cases whose id hashes to shard i of n, as ``evalkit run --shard`` does."""
    import secrets
    from datetime import datetime

    from evalkit.runner import RunOptions, run_interleaved
    from evalkit.suite import load_suite

    if (baseline_ref is None) == (prompt_a is None and prompt_b is None):
        raise ConfigError("evalkit ab: expected either --baseline-ref REF or both --a and --b, got "
                          + ("both" if baseline_ref is not None else "neither"))
    if baseline_ref is None and (prompt_a is None or prompt_b is None):
        raise ConfigError("evalkit ab: expected both --a and --b, got only " + ("--a" if prompt_a else "--b"))
    path = Path(suite_path)
    current = load_suite(path)
    if current.target.kind != "prompt":
        raise ConfigError(f"{path}: evalkit ab: expected a prompt target, got a {current.target.kind} target")
    with tempfile.TemporaryDirectory(prefix="evalkit-ab-") as scratch:
        if baseline_ref is not None:
            arm_a = load_suite(suite_at_ref(path, baseline_ref, Path(scratch)))
            arm_a = replace(arm_a, path=current.path)
            arm_b, described = current, {"a": f"git {baseline_ref}", "b": "working tree"}
        else:
            assert prompt_a is not None and prompt_b is not None
            arm_a = with_system_prompt(current, prompt_a, "--a")
            arm_b = with_system_prompt(current, prompt_b, "--b")
            described = {"a": str(prompt_a), "b": str(prompt_b)}
        shared = [c.id for c in arm_a.cases if c.id in {d.id for d in arm_b.cases}]
        if shard is not None:
            from evalkit.results import shard_of

            if not 1 <= shard[0] <= shard[1]:
                raise ConfigError(f"--shard: expected i/n with 1 <= i <= n, got {shard[0]}/{shard[1]}")
            shared = [c for c in shared if shard_of(c, shard[1]) == shard[0]]
        if not shared:
            raise ConfigError(f"{path}: evalkit ab: expected cases common to both arms, got none")
        ab_id = ab_id or f"{current.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        directory = out / ab_id
        if directory.exists():
            raise ConfigError(f"{directory}: expected a new A/B directory, got an existing one")
        order = interleaved_order(shared, 1, seed)
        options = RunOptions(out=directory, seed=seed, concurrency=concurrency, repeats=1)
        runs = run_interleaved([("a", arm_a), ("b", arm_b)], order, options)
    metrics, verdict, notes = decide(runs, arm_a.gate, seed)
    failed = [arm for arm, run in runs.items() if run.status != "complete"]
    if failed:
        notes.append(f"arm(s) {', '.join(failed)} did not complete: {runs[failed[0]].failure or 'see its run'}")
    policy = dict(arm_a.gate or {})
    alpha = float(policy.get("alpha", 0.05))
    result = ABResult(current.name, described, str(directory), seed, order, metrics, alpha,
                      "inconclusive" if failed else verdict, tuple(notes))
    from evalkit.artifact import write_atomic

    write_atomic(directory / "ab.json", json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")
    return result


# --- rendering --------------------------------------------------------------------------------------------


def _value(m: Metric, v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v * 100:.1f}%" if m.name == "pass_rate" else f"{v * 1000:,.0f} ms"


def _change(m: Metric) -> str:
    if m.difference is None:
        return "–"
    unit = " pts" if m.name == "pass_rate" else "%"
    ci = "" if m.ci_low is None or m.ci_high is None or math.isnan(m.ci_low) else \
        f" ({round(m.ci_level * 100)}% CI {m.ci_low * 100:+.1f} to {m.ci_high * 100:+.1f})"
    return f"{m.difference * 100:+.1f}{unit}{ci}"


def rows(result: ABResult) -> list[list[str]]:
    """The table every renderer shows: metric, A, B, change (CI), margin, verdict, p (test)."""
    out = []
    for m in result.metrics:
        margin = f"{m.margin * 100:.1f}{' pts' if m.name == 'pass_rate' else '%'}"
        p = "–" if m.p_value is None else f"{m.p_value:.3g}"
        out.append([m.name + (" (blocks)" if m.blocking else ""), _value(m, m.baseline), _value(m, m.current),
                    _change(m), margin, m.verdict, f"{p} {m.test}".strip(), str(m.n)])
    return out


HEADERS = ["metric", "A", "B", "B vs A", "margin", "verdict", "p (test)", "pairs"]


def headline(result: ABResult) -> str:
    deciding = [m.name for m in result.metrics if m.blocking and m.verdict == result.verdict] or \
        [m.name for m in result.metrics if m.blocking]
    return (f"A/B {result.verdict.upper()} ({', '.join(deciding) or 'no blocking metric'}): {result.suite} · "
            f"A = {result.arms['a']}, B = {result.arms['b']} · interleaved, seed {result.seed}")


def render_markdown(result: ABResult) -> str:
    lines = [f"### evalkit ab: `{result.suite}`", "", f"**{headline(result)}**", "",
             "| " + " | ".join(HEADERS) + " |", "|" + " --- |" * len(HEADERS)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows(result)]
    lines += [""] + [f"- {note}" for note in result.notes] + ["", f"Runs: `{result.directory}/a`, "
                                                                  f"`{result.directory}/b`", ""]
    return "\n".join(lines)
