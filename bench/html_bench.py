"""The HTML report of a 10,000-case comparison: its size, and how fast headless Chromium opens it.

Usage: python bench/html_bench.py [--cases 10000] [--rounds 5] [--max-mb 5] [--max-dcl 2.0] [--keep DIR]

Side by side with a bare baseline: the same cases as a minimal HTML table (id, baseline and current
outcome, the current output), no script, no charts. Each page is opened ``--rounds`` times in a new tab of
one headless Chromium (Debian's, driven by Playwright; see tests/browser.py), and the navigation timing's
DOMContentLoaded (from navigation start: reading, parsing, and the report's script drawing the first page
of cases, which runs before it) and load are read from the page. Exits 1 when the report is over --max-mb
megabytes or its median DOMContentLoaded is over --max-dcl seconds.
"""

from __future__ import annotations

import argparse
import html
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' run builders and browser helper

from evalkit import render_html
from evalkit.baseline import baseline_of
from evalkit.compare import GateConfig, compare
from tests.browser import Chromium
from tests.test_html import flipped, make_run


def bare_table(run_results: list[tuple[str, str, str, str]]) -> str:
    """The least a report of these cases could be: one table row per case, escaped."""
    rows = "\n".join(f"<tr><td>{html.escape(c)}</td><td>{b}</td><td>{n}</td><td>{html.escape(o)}</td></tr>"
                     for c, b, n, o in run_results)
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>bare</title></head><body><table>"
            f"<tr><th>case</th><th>baseline</th><th>current</th><th>output</th></tr>\n{rows}</table></body></html>")


def timings(chromium: Chromium, path: Path, rounds: int) -> tuple[list[float], list[float]]:
    dcl, load = [], []
    for _ in range(rounds):
        opened = chromium.open(path)
        if opened.problems:
            raise SystemExit(f"{path.name}: {opened.problems[:3]}")
        first, last = opened.page.evaluate("""() => { const n = performance.getEntriesByType("navigation")[0];
            return [n.domContentLoadedEventEnd, n.loadEventEnd]; }""")
        dcl.append(first / 1000)
        load.append(last / 1000)
        chromium.close(opened)
    return dcl, load


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-mb", type=float, default=5.0)
    parser.add_argument("--max-dcl", type=float, default=2.0)
    parser.add_argument("--keep", type=Path, help="Write the two pages here (default: a temporary folder).")
    args = parser.parse_args()

    # Outputs of 40 to 120 words (about 230 to 700 characters). The baseline's outputs are all different
    # texts (a sampled model says it differently each time), and 7% of the cases flip.
    run = make_run(args.cases, seed=7, fail_rate=0.2, words=(40, 120))
    other = make_run(args.cases, seed=8, fail_rate=0.2, words=(40, 120))
    redrawn = replace(run, results=tuple(replace(r, output=o.output) if r.output else r
                                         for r, o in zip(run.results, other.results, strict=True)))
    baseline = baseline_of(flipped(redrawn, down=args.cases // 20, up=args.cases // 50))
    comparison = compare(run, baseline, GateConfig())
    render_html(make_run(20), compare(make_run(20), baseline_of(make_run(20, run_id="b")), GateConfig()))  # warm
    wall, cpu = time.perf_counter(), time.process_time()
    page = render_html(run, comparison, baseline=baseline)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    before = {s.case_id: s.passed for s in baseline.samples}
    bare = bare_table([(r.case_id, "pass" if before[r.case_id] else "fail", "pass" if r.passed else "fail", r.output)
                       for r in run.results])
    folder = args.keep or Path(tempfile.mkdtemp(prefix="evalkit-html-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    report, table = folder / "report.html", folder / "bare.html"
    report.write_text(page, "utf-8")
    table.write_text(bare, "utf-8")
    outputs = sum(len(r.output) for r in run.results) + sum(len(s.output) for s in baseline.samples)
    with Chromium() as chromium:
        timings(chromium, table, 1)  # warm the browser and the file cache for both
        timings(chromium, report, 1)
        bare_dcl, bare_load = timings(chromium, table, args.rounds)
        report_dcl, report_load = timings(chromium, report, args.rounds)
    size = report.stat().st_size / 1e6
    median = statistics.median(report_dcl)
    print(f"cases: {args.cases:,} ({len(comparison.flips):,} flipped, verdict {comparison.verdict}); case outputs "
          f"{outputs / 1e6:.1f} M characters (baseline and current)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"render_html: {wall:.2f} s wall, {cpu:.2f} s CPU; peak RSS of the process {peak:.0f} MiB")
    print(f"{'page':<8} {'size MB':>8} {'DCL median s':>13} {'DCL max s':>10} {'load median s':>14}")
    for name, mb, dcl, load in (("report", size, report_dcl, report_load),
                                ("bare", table.stat().st_size / 1e6, bare_dcl, bare_load)):
        print(f"{name:<8} {mb:>8.2f} {statistics.median(dcl):>13.3f} {max(dcl):>10.3f} "
              f"{statistics.median(load):>14.3f}")
    ok = size <= args.max_mb and median <= args.max_dcl
    print(f"report / bare DOMContentLoaded (medians): {median / statistics.median(bare_dcl):.2f}x · limits "
          f"{args.max_mb:g} MB and {args.max_dcl:g} s · {'PASS' if ok else 'FAIL'} · pages in {folder}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
