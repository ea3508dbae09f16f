"""Reproduces the example suite's two verdicts in the README, and times the quickstart run.

In a scratch copy of suites/, prompts/ and baselines/, on the embedded model:

1. ``evalkit run suites/support_reply.yaml`` with the prompt as committed (the README's quickstart line): its
   wall time, CPU time (evalkit plus the model server it starts) and pass rate are printed;
2. the same prompt with a harmless edit (``--benign``: the Role's wording), gated against the committed
   baseline: expected PASS (exit 0);
3. a harmful edit (``--harmful``: the "Output format" section deleted in a "cleanup", so replies no longer greet
   the customer by name), gated against the committed baseline: expected REGRESSION (exit 1).

Each gated run prints the verdict line a user sees. ``--save-baseline`` copies run 1's baseline back into
baselines/support_reply.json (how the committed one was made). Every run is the full suite (420 cases): this is
a benchmark, not a test; the tests use shards.

Usage: python bench/example_gate.py [--only quickstart,benign,harmful] [--save-baseline] [--shard i/n]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROMPT = Path("prompts/support_reply.md")
SUITE = "suites/support_reply.yaml"
BASELINE = Path("baselines/support_reply.json")

BENIGN = ("You are the customer support assistant for Northwind Home,",
          "You are Northwind Home's customer support assistant,")
"""A harmless rewording of the Role's first line."""


def harmful(text: str) -> str:
    """The prompt with its "## Output format" section deleted (the greeting and sign-off instructions)."""
    start = text.index("## Output format")
    end = text.find("\n## ", start + 1)
    return text[:start].rstrip() + "\n" + ("" if end < 0 else text[end:])


def evalkit(work: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Runs the CLI in ``work``; returns the process, its wall seconds and the CPU seconds of it and its children
    (the model server included)."""
    before = os.times()
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "evalkit.cli", *args], cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return done, wall, cpu


def pass_rate(run_dir: Path) -> tuple[int, int]:
    results = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    results = [r for r in results if "case_id" in r]
    return sum(r["passed"] for r in results), len(results)


def gated(work: Path, name: str, shard: list[str]) -> int:
    done, wall, cpu = evalkit(work, "run", SUITE, "--run-id", name, "-q", "--baseline", str(BASELINE),
                              "--json", f"{name}.json", *shard)
    report = json.loads((work / f"{name}.json").read_text())
    metric = report["metrics"][0]
    print(f"[{name}] exit {done.returncode}, {wall:.0f} s wall, {cpu:.0f} s CPU; verdict {report['verdict']}; "
          f"n={metric['n']}, difference {metric['difference']:+.3f}, "
          f"CI [{metric['ci_low']:+.3f}, {metric['ci_high']:+.3f}], margin {metric['margin']}")
    first = done.stdout.splitlines()[0] if done.stdout else done.stderr.strip()
    print(f"[{name}] {first}")
    return done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="quickstart,benign,harmful")
    parser.add_argument("--save-baseline", action="store_true")
    parser.add_argument("--shard", help="run one shard only (i/n), for a quick look")
    args = parser.parse_args()
    steps = args.only.split(",")
    shard = ["--shard", args.shard] if args.shard else []
    codes = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for folder in ("suites", "prompts", "baselines"):
            shutil.copytree(REPO / folder, work / folder)
        original = (work / PROMPT).read_text()
        if "quickstart" in steps:
            done, wall, cpu = evalkit(work, "run", SUITE, "--run-id", "quickstart", "-q", *shard)
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            passed, total = pass_rate(work / ".evalkit" / "runs" / "quickstart")
            load = os.getloadavg()[0]
            print(f"[quickstart] {total} cases in {wall:.0f} s wall ({wall / 60:.1f} min), {cpu:.0f} s CPU "
                  f"(evalkit + model server; {os.cpu_count()} cores, load average {load:.1f} at the end); "
                  f"{passed}/{total} passed ({passed / total:.1%})")
            if args.save_baseline:
                saved, _, _ = evalkit(work, "baseline", "save", ".evalkit/runs/quickstart", "--to",
                                      str(REPO / BASELINE))
                print(f"[quickstart] {saved.stdout.strip() or saved.stderr.strip()}")
        if "benign" in steps:
            assert BENIGN[0] in original
            (work / PROMPT).write_text(original.replace(*BENIGN))
            codes["benign"] = gated(work, "benign", shard)
        if "harmful" in steps:
            (work / PROMPT).write_text(harmful(original))
            codes["harmful"] = gated(work, "harmful", shard)
    expected = {"benign": 0, "harmful": 1}
    return 0 if all(code == expected[name] for name, code in codes.items()) or shard else 1


if __name__ == "__main__":
    sys.exit(main())
