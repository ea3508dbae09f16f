"""evalkit run vs a bare AsyncOpenAI loop, as whole processes, side by side on one fixed-latency server.

Workload (issue default): 1,000 cases, concurrency 50, 50 ms server latency, streamed calls.
Rounds alternate bare / evalkit so drift in machine load hits both alike; the ratio is of medians.
Peak memory is each process's max RSS (from wait4). Exits 1 when the ratio exceeds --max-ratio or the
peak RSS exceeds --max-rss-mib.

Usage: python bench/run_bench.py [--cases 1000] [--concurrency 50] [--latency-ms 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CPU_SECONDS: list[float] = []
"""CPU time of each measured process, in order: less sensitive than wall time to a noisy neighbour."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one whole process (its CPU seconds go to CPU_SECONDS)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{command[:3]} failed with {process.returncode}: {process.stderr.read().decode()[-2000:]}"
                         if process.stderr else "failed")
    CPU_SECONDS.append(usage.ru_utime + usage.ru_stime)
    return wall, usage.ru_maxrss / 1024


def write_suite(folder: Path, base_url: str, cases: int, concurrency: int) -> Path:
    with (folder / "cases.jsonl").open("w") as handle:
        for i in range(cases):
            handle.write(json.dumps({"id": f"c{i}", "vars": {"i": i}, "tags": [f"route{i % 5}"]}) + "\n")
    suite = folder / "bench.yaml"
    suite.write_text(
        "name: bench\n"
        "target:\n"
        "  provider: openai\n"
        f"  base_url: {base_url}\n"
        "  model: bench-model\n"
        "  params: {max_tokens: 16}\n"
        "  system: You are a benchmark.\n"
        "  user: 'Question number {{ i }}?'\n"
        f"concurrency: {concurrency}\n"
        "defaults:\n"
        "  expect: [{icontains: answer}]\n"
        "cases: cases.jsonl\n"
    )
    return suite


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-ratio", type=float, default=1.15)
    parser.add_argument("--max-rss-mib", type=float, default=120)
    args = parser.parse_args()

    evalkit = shutil.which("evalkit") or sys.exit("evalkit is not installed in this environment")
    port = free_port()
    server = subprocess.Popen([sys.executable, str(HERE / "fixed_latency_server.py"), str(port), str(args.latency_ms)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().startswith("ready")
        base_url = f"http://127.0.0.1:{port}/v1"
        with tempfile.TemporaryDirectory() as temporary:
            folder = Path(temporary)
            suite = write_suite(folder, base_url, args.cases, args.concurrency)
            bare_cmd = [sys.executable, str(HERE / "bare_loop.py"), base_url, str(args.cases), str(args.concurrency)]
            bare, ours, bare_rss, our_rss, bare_cpu, our_cpu = [], [], [], [], [], []
            for round_number in range(args.rounds):
                wall, rss = measure(bare_cmd, folder)
                bare.append(wall)
                bare_rss.append(rss)
                bare_cpu.append(CPU_SECONDS[-1])
                wall, rss = measure([evalkit, "run", str(suite), "--out", str(folder / "runs"),
                                     "--run-id", f"r{round_number}"], folder)
                ours.append(wall)
                our_rss.append(rss)
                our_cpu.append(CPU_SECONDS[-1])
                print(f"round {round_number + 1}: bare {bare[-1]:.2f} s ({bare_rss[-1]:.0f} MiB) · "
                      f"evalkit {ours[-1]:.2f} s ({our_rss[-1]:.0f} MiB)", flush=True)
            unstreamed, _ = measure([*bare_cmd, "--no-stream"], folder)
            manifest = json.loads((folder / "runs" / f"r{args.rounds - 1}" / "manifest.json").read_text())
    finally:
        server.terminate()
        server.wait()

    ratio = statistics.median(ours) / statistics.median(bare)
    peak = max(our_rss)
    conditions = manifest["conditions"]
    print(f"workload: {args.cases} cases, concurrency {args.concurrency}, {args.latency_ms:g} ms latency, "
          f"{args.rounds} rounds, {os.cpu_count()} CPUs")
    print(f"bare AsyncOpenAI loop (streamed): median {statistics.median(bare):.2f} s, peak {max(bare_rss):.0f} MiB"
          f" (unstreamed reference: {unstreamed:.2f} s)")
    print(f"evalkit run:                      median {statistics.median(ours):.2f} s, peak {peak:.0f} MiB "
          f"(achieved concurrency mean {conditions['in_flight_mean']}, max {conditions['in_flight_max']})")
    print(f"CPU seconds (user+sys), medians: bare {statistics.median(bare_cpu):.2f}, evalkit "
          f"{statistics.median(our_cpu):.2f}, ratio {statistics.median(our_cpu) / statistics.median(bare_cpu):.3f}")
    verdict = ratio <= args.max_ratio and peak <= args.max_rss_mib
    print(f"ratio evalkit/bare: {ratio:.3f} (limit {args.max_ratio}) · peak RSS {peak:.0f} MiB "
          f"(limit {args.max_rss_mib:g}) · {'PASS' if verdict else 'FAIL'}")
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
