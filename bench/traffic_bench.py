"""evalkit traffic import vs a bare json.loads loop on the same JSON Lines log, as whole processes.

Workload (issue default): 1,000,000 request log lines (timestamp, route, persona arm, served model, error,
latency, a user id and the user's message), 8 routes; plus the same import at a tenth of the lines, to show
that memory does not grow with the log. The bare loop reads each line, ``json.loads`` it and counts its
route: the least any importer must do. Rounds alternate bare / evalkit; times are medians, peak memory is
each process's max RSS (from wait4).

Exits 1 when the evalkit import takes more than --max-cpu-seconds of CPU or more than --max-ratio times the
bare loop's CPU time (CPU time, because on a shared machine wall time measures the neighbours too), or its
peak RSS exceeds --max-rss-mib, or its peak RSS at 1M lines exceeds the one at 100k lines by more than
--max-growth-mib.

Usage: python bench/traffic_bench.py [--lines 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROUTES = ("general", "shipping", "returns", "billing", "account", "technical", "order-status", "escalation")
WEIGHTS = (0.55, 0.10, 0.09, 0.085, 0.052, 0.044, 0.043, 0.028)
BARE = """
import json, sys
from collections import Counter
counts = Counter()
with open(sys.argv[1], "rb") as handle:
    for line in handle:
        counts[json.loads(line)["route"]] += 1
print(sum(counts.values()))
"""


def write_log(path: Path, lines: int, seed: int = 1) -> None:
    """A JSON Lines request log: what an application's logger might write for each model call."""
    rng = random.Random(seed)
    start = datetime(2025, 3, 3, tzinfo=UTC).timestamp()
    step = 14 * 86400 / lines
    routes = rng.choices(ROUTES, WEIGHTS, k=lines)
    arms = rng.choices(("warm", "concise", "formal"), (0.9, 0.06, 0.04), k=lines)
    message = json.dumps("Hi, I ordered a stand mixer last week and would like to know when it arrives, thanks!")
    with path.open("w", encoding="utf-8") as handle:
        for i in range(lines):
            when = datetime.fromtimestamp(start + step * i, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            error = '"timeout"' if rng.random() < 0.01 else "null"
            handle.write(f'{{"timestamp":"{when}","route":"{routes[i]}","arm":"{arms[i]}",'
                         f'"model":"gpt-4o-mini-2024-07-18","error":{error},"latency_ms":{rng.randint(200, 4000)},'
                         f'"user":"u{rng.randint(0, 99_999)}","message":{message}}}\n')


def measure(command: list[str], cwd: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one whole process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        error = process.stderr.read().decode()[-2000:] if process.stderr else ""
        raise SystemExit(f"{command[:4]} failed: {error}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-cpu-seconds", type=float, default=30.0)
    parser.add_argument("--max-ratio", type=float, default=3.0)
    parser.add_argument("--max-rss-mib", type=float, default=150.0)
    parser.add_argument("--max-growth-mib", type=float, default=10.0)
    args = parser.parse_args()

    evalkit = [sys.executable, "-m", "evalkit"]  # the evalkit of this interpreter, wherever PATH points
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        log, small = folder / "requests.jsonl", folder / "small.jsonl"
        begin = time.perf_counter()
        write_log(log, args.lines)
        write_log(small, args.lines // 10)
        size = log.stat().st_size
        print(f"log: {args.lines:,} lines, {size / 2**20:,.0f} MiB (written in {time.perf_counter() - begin:.0f} s)")
        commands = {
            "bare json.loads loop": [sys.executable, "-c", BARE, str(log)],
            "evalkit traffic import": [*evalkit, "traffic", "import", str(log), "--from", "jsonl", "--out", "p.json"],
        }
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, command in commands.items():
                results[name].append(measure(command, folder))
        profile = json.loads((folder / "p.json").read_text())
        assert profile["requests"] == args.lines, profile["requests"]
        assert "stand mixer" not in (folder / "p.json").read_text()  # aggregates only
        tenth = measure([*evalkit, "traffic", "import", str(small), "--from", "jsonl", "--out", "q.json"], folder)

    print(f"{'':24} {'wall s':>8} {'CPU s':>8} {'lines/s':>10} {'peak RSS MiB':>13}")
    medians = {}
    for name, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        rss = max(r[2] for r in runs)
        medians[name] = (wall, cpu, rss)
        print(f"{name:24} {wall:8.2f} {cpu:8.2f} {args.lines / wall:10,.0f} {rss:13.1f}")
    print(f"{'evalkit, a tenth of it':24} {tenth[0]:8.2f} {tenth[1]:8.2f} {args.lines / 10 / tenth[0]:10,.0f} "
          f"{tenth[2]:13.1f}")
    wall, cpu, rss = medians["evalkit traffic import"]
    bare_wall, bare_cpu, _ = medians["bare json.loads loop"]
    growth = rss - tenth[2]
    ok = (cpu <= args.max_cpu_seconds and cpu / bare_cpu <= args.max_ratio and rss <= args.max_rss_mib
          and growth <= args.max_growth_mib)
    print(f"ratio to the bare loop: wall {wall / bare_wall:.2f}x, CPU {cpu / bare_cpu:.2f}x · peak RSS grows "
          f"{growth:+.1f} MiB from {args.lines // 10:,} to {args.lines:,} lines · limits: {args.max_cpu_seconds:g} "
          f"CPU s, {args.max_ratio:g}x CPU, {args.max_rss_mib:g} MiB, +{args.max_growth_mib:g} MiB · "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
