"""Times rejecting one bad case in a 120,001-case suite, beside a bare C-loader parse of the same file.

The suite is generated: 120,000 valid inline cases (vars, tags, two checks each) and, last, one case whose
regex check is a list. `evalkit.load_suite` must reject it with one line; the bench runs that in a fresh
process and reports wall time, CPU time and peak RSS (from ``wait4``), side by side with a process that
only reads the file and parses it with PyYAML's C loader (the least any loader could do). Each is run
``--rounds`` times, alternating; medians are printed.

Usage: python bench/suite_load_bench.py [--cases 120000] [--rounds 3] [--limit-ratio 4] [--limit-mib 1024]
Exits 1 when the median wall-time ratio or evalkit's peak RSS exceeds its limit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUTES = ["general", "returns", "shipping", "billing", "account", "technical", "escalation"]

EVALKIT = """
import sys
from evalkit import ConfigError, load_suite
try:
    load_suite(sys.argv[1])
except ConfigError as exc:
    print(exc)
else:
    print("accepted")
"""

BARE = """
import sys, yaml
with open(sys.argv[1], encoding="utf-8") as f:
    data = yaml.load(f.read(), Loader=yaml.CSafeLoader)
print(len(data["cases"]))
"""


def write_suite(directory: Path, cases: int) -> Path:
    lines = [
        "name: big",
        "target:",
        "  provider: local",
        '  user: "Customer {{ customer_name }} writes: {{ message }}"',
        "defaults:",
        "  expect:",
        "    - length: {min: 1}",
        "cases:",
    ]
    for i in range(cases):
        lines += [
            f"  - id: case-{i:06d}",
            f"    route: {ROUTES[i % len(ROUTES)]}",
            f"    tags: [{ROUTES[i % len(ROUTES)]}, generated]",
            f'    vars: {{customer_name: "Customer {i}", message: "Question number {i} about my order."}}',
            f'    expect: [{{icontains: "customer {i}"}}, {{not-icontains: "as an ai"}}]',
        ]
    lines += [
        "  - id: the-bad-one",
        '    vars: {customer_name: Zed, message: "hello"}',
        "    expect: [{regex: [a, b]}]",
    ]
    path = directory / "big.yaml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def measure(code: str, path: Path) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds, peak RSS in MiB and the last output line of one fresh process."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    assert process.stdout is not None and process.stderr is not None
    out, err = process.stdout.read(), process.stderr.read()
    process.stdout.close()
    process.stderr.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"exit {process.returncode}: {err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=120_000, help="valid cases before the bad one")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit-ratio", type=float, default=4.0, help="evalkit wall / bare wall, median")
    parser.add_argument("--limit-mib", type=float, default=1024.0, help="evalkit peak RSS")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_suite(Path(tmp), args.cases)
        size = path.stat().st_size / 2**20
        print(f"suite: {args.cases + 1:,} cases, {size:.1f} MiB")
        rows: dict[str, list[tuple[float, float, float, str]]] = {"evalkit": [], "bare": []}
        for _ in range(args.rounds):
            rows["bare"].append(measure(BARE, path))
            rows["evalkit"].append(measure(EVALKIT, path))
    medians = {}
    for name, samples in rows.items():
        wall = statistics.median(s[0] for s in samples)
        cpu = statistics.median(s[1] for s in samples)
        peak = max(s[2] for s in samples)
        medians[name] = (wall, peak)
        print(f"{name:8} wall {wall:7.2f} s   cpu {cpu:7.2f} s   peak RSS {peak:7.1f} MiB   -> {samples[-1][3]}")
    ratio = medians["evalkit"][0] / medians["bare"][0]
    print(f"ratio (evalkit / bare C parse): {ratio:.2f}")
    ok = ratio <= args.limit_ratio and medians["evalkit"][1] <= args.limit_mib
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
