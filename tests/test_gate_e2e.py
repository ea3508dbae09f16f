"""The gate end to end, as a user sees it: CLI compare on stored runs, and the example suite on the real model."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from evalkit import ExitCode, load_suite, stats
from evalkit.cli import main
from evalkit.results import Journal, load_run, shard_of, write_manifest

from .conftest import REPO
from .test_baseline import make_run


def _store(run_outcomes: dict[str, bool], directory: Path, run_id: str, gate: dict[str, Any] | None = None,
           **kwargs: Any) -> Path:
    run = replace(make_run(run_outcomes, **kwargs), run_id=run_id, directory=directory / run_id)
    run = replace(run, suite=replace(run.suite, gate=gate or {}))
    assert run.directory is not None
    run.directory.mkdir(parents=True)
    journal = Journal(run.directory, run.run_id)
    for result in run.results:
        journal.append(result)
    journal.close()
    write_manifest(run)
    return run.directory


def test_cli_baseline_save_and_compare_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = [f"c{i}" for i in range(300)]
    base = _store(dict.fromkeys(ids, True), tmp_path / "runs", "base")
    same = _store(dict.fromkeys(ids, True), tmp_path / "runs", "same")
    worse = _store({c: i % 5 != 0 for i, c in enumerate(ids)}, tmp_path / "runs", "worse")
    assert main(["baseline", "save", str(base)]) == ExitCode.OK
    assert capsys.readouterr().out == "saved baseline baselines/demo.json (300 samples from run base)\n"

    code = main(["compare", str(worse), "--baseline", "baselines/demo.json", "--json", "r.json",
                 "--markdown", "r.md", "--junit", "r.xml"])
    out = capsys.readouterr().out
    assert code == ExitCode.REGRESSION
    assert out.startswith("REGRESSION (pass_rate): pass rate -20.0 pts (90% CI")
    assert json.loads(Path("r.json").read_text())["verdict"] == "regression"
    assert Path("r.md").read_text().startswith("<!-- evalkit-report -->")
    assert Path("r.xml").read_text().startswith("<?xml")

    assert main(["compare", str(same), "--baseline", "baselines/demo.json", "--margin", "0.05"]) == ExitCode.OK
    assert capsys.readouterr().out.startswith("PASS (pass_rate): pass rate +0.0 pts")
    assert main(["compare", str(same), "--baseline", "baselines/demo.json", "--margin", "0.001"]) \
        == ExitCode.INCONCLUSIVE
    assert main(["compare", str(same), "--baseline", "baselines/demo.json", "--margin", "0.001",
                 "--inconclusive", "warn"]) == ExitCode.OK


def test_cli_compare_with_a_missing_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _store({"a": True}, tmp_path / "runs", "r")
    assert main(["compare", str(run), "--baseline", "nope.json"]) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err == ("evalkit: error: nope.json: baseline file not found "
                                       "(save one with: evalkit baseline save RUN)\n")


def test_github_step_summary_and_annotations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    ids = [f"c{i}" for i in range(50)]
    base = _store(dict.fromkeys(ids, True), tmp_path / "runs", "b")
    worse = _store({c: i % 2 == 0 for i, c in enumerate(ids)}, tmp_path / "runs", "w")
    main(["baseline", "save", str(base), "--to", "b.json"])
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    assert main(["compare", str(worse), "--baseline", "b.json", "--github"]) == ExitCode.REGRESSION
    assert "::error file=b.json,title=evalkit demo::REGRESSION" in capsys.readouterr().out
    assert "## evalkit: `demo`" in (tmp_path / "summary.md").read_text()


@pytest.mark.integration
def test_removing_the_safety_section_on_the_embedded_model(tmp_path: Path) -> None:
    """Run the example suite, save a baseline, delete the prompt's safety section, run again with the gate.

    One shard of the suite (the whole of it is bench/example_gate.py's, not a test's).
    """
    shutil.copytree(REPO / "suites", tmp_path / "suites")
    shutil.copytree(REPO / "prompts", tmp_path / "prompts")

    def evalkit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "evalkit.cli", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=600)

    shard = ("--shard", "1/20")
    cases = [c.id for c in load_suite(tmp_path / "suites" / "support_reply.yaml").cases if shard_of(c.id, 20) == 1]
    first = evalkit("run", "suites/support_reply.yaml", "--run-id", "before", "-q", *shard)
    assert first.returncode == 0, first.stderr
    assert evalkit("baseline", "save", ".evalkit/runs/before").returncode == 0

    prompt = tmp_path / "prompts" / "support_reply.md"
    text = prompt.read_text()
    start, end = text.index("## Safety"), text.index("## Output format")
    prompt.write_text(text[:start] + text[end:])

    second = evalkit("run", "suites/support_reply.yaml", "--run-id", "after", "-q", *shard, "--baseline",
                     "baselines/support_reply.json", "--json", "report.json", "--markdown", "report.md")
    report = json.loads((tmp_path / "report.json").read_text())
    print(second.stdout)  # what a user sees; kept in the test log
    # Whatever the tiny model does, the verdict, the statistics behind it and the exit code agree. (Measured
    # here: the shorter prompt is followed *better*, so behavioural checks do not notice the deleted safety
    # clause; the diff-aware prompt linter is the layer that catches it.)
    verdict, primary = report["verdict"], report["metrics"][0]
    expected_code = {"regression": ExitCode.REGRESSION, "inconclusive": ExitCode.INCONCLUSIVE}.get(verdict, 0)
    assert second.returncode == report["exit_code"] == expected_code
    assert primary["name"] == "pass_rate" and primary["n"] == len(cases) > 10
    if verdict == "regression":
        assert primary["p_regression"] < 0.05
    elif verdict in ("pass", "improvement"):
        assert primary["p_noninferiority"] < 0.05
    else:
        assert primary["mde"] > 0 and primary["cases_needed"] > len(cases)
    assert "suite or prompts changed since the baseline (expected in a prompt change)" in report["comparability"]
    assert "pass_rate[safety]" in [s["name"] for s in report["slices"]]
    assert f"{verdict.upper()} (pass_rate): pass rate" in second.stdout
    assert (tmp_path / "report.md").read_text().startswith("<!-- evalkit-report -->")


# --- checked before any work: output paths, the baseline, the suite it belongs to ----------------------


IDS = [f"c{i}" for i in range(300)]


def test_report_paths_are_checked_before_the_comparison(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _store(dict.fromkeys(IDS, True), tmp_path / "runs", "base")
    main(["baseline", "save", str(base), "--to", "b.json"])
    capsys.readouterr()
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    for option, path, message in [
        ("--markdown", "missing/r.md", "--markdown: missing/r.md: expected an existing folder, got none at missing"),
        ("--json", "adir", "--json: adir: expected a file path, got a directory"),
        ("--junit", "afile/r.xml", "--junit: afile/r.xml: expected a folder at afile, got a file"),
    ]:
        assert main(["compare", str(base), "--baseline", "b.json", option, path]) == ExitCode.USAGE_ERROR
        out, err = capsys.readouterr()
        assert out == "" and err == f"evalkit: error: {message}\n"  # one line, before any verdict


def test_baseline_save_into_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _store({"a": True}, tmp_path / "runs", "base")
    (tmp_path / "a-file").write_text("x")
    assert main(["baseline", "save", str(base), "--to", "a-file/b.json"]) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err == ("evalkit: error: --to: a-file/b.json: expected a folder at a-file, got a file\n")
    assert main(["baseline", "save", str(base), "--to", "new/folder/b.json"]) == ExitCode.OK  # folders are made


def test_run_checks_the_baseline_before_running(tmp_path: Path, write, capsys: pytest.CaptureFixture[str]) -> None:
    write("suite.yaml", """
        description: any
        target: {callable: "os.path:basename"}
        name: demo
        cases: [{vars: {q: a}}]
    """)
    assert main(["run", "suite.yaml", "--baseline", "missing.json"]) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err == ("evalkit: error: missing.json: baseline file not found (save one with: "
                                       "evalkit baseline save RUN)\n")
    other = _store({"a": True}, tmp_path / "runs", "other", name="other")
    main(["baseline", "save", str(other), "--to", "other.json"])
    capsys.readouterr()
    assert main(["run", "suite.yaml", "--baseline", "other.json"]) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err == ("evalkit: error: other.json: suite.name: expected a baseline of suite "
                                       "'demo', got one of 'other'\n")
    assert main(["run", "suite.yaml", "--baseline", "other.json", "--markdown", "no/such/r.md"]) == 2
    assert "--markdown: no/such/r.md: expected an existing folder" in capsys.readouterr().err
    assert not (tmp_path / ".evalkit").exists()  # nothing ran


def test_a_baseline_of_another_suite_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = _store({"a": True}, tmp_path / "runs", "other", name="other")
    mine = _store({"a": True}, tmp_path / "runs", "mine")
    main(["baseline", "save", str(other), "--to", "other.json"])
    capsys.readouterr()
    assert main(["compare", str(mine), "--baseline", "other.json", "--inconclusive", "warn"]) == 2
    assert capsys.readouterr().err == ("evalkit: error: other.json: suite.name: expected a baseline of suite "
                                       "'demo', got one of 'other'\n")


def test_an_all_error_run_never_becomes_a_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    failed = _store(dict.fromkeys(IDS[:20], True), tmp_path / "runs", "down", error="connection")
    assert main(["baseline", "save", str(failed)]) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err == (f"evalkit: error: {failed}: every call failed (20 of 20: connection 20); a run "
                                       "without a single answer cannot be a baseline\n")
    assert not Path("baselines").exists()


def test_a_crash_while_rendering_leaves_no_report_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    import evalkit.report

    base = _store(dict.fromkeys(IDS, True), tmp_path / "runs", "base")
    main(["baseline", "save", str(base), "--to", "b.json"])

    def broken(*args: object) -> str:
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(evalkit.report, "render_junit", broken)
    code = main(["compare", str(base), "--baseline", "b.json", "--markdown", "r.md", "--json", "r.json", "--junit",
                 "r.xml"])
    assert code == ExitCode.INTERNAL_ERROR
    assert "RuntimeError: renderer bug" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("r.", ".r."))) == []


# --- the policy in force is the baseline's -------------------------------------------------------------


def test_a_pr_cannot_loosen_its_own_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    strict = {"margins": {"pass_rate": 0.01}, "inconclusive": "block"}
    loose = {"margins": {"pass_rate": 0.5}, "inconclusive": "warn", "alpha": 0.2}
    base = _store(dict.fromkeys(IDS, True), tmp_path / "runs", "base", gate=strict)
    worse = _store({c: i % 10 != 0 for i, c in enumerate(IDS)}, tmp_path / "runs", "worse", gate=loose)
    main(["baseline", "save", str(base), "--to", "b.json"])
    capsys.readouterr()
    pending = "alpha 0.05 → 0.2, inconclusive block → warn, margins.pass_rate 0.01 → 0.5"
    reports = ["--markdown", "r.md", "--junit", "r.xml", "--json", "r.json"]

    assert main(["compare", str(worse), "--baseline", "b.json", *reports]) == ExitCode.REGRESSION
    out = capsys.readouterr().out
    line = out.splitlines()[0]
    assert line.startswith("REGRESSION (pass_rate): ") and pending in line
    assert f"gate: gate change in this run, not in force until it is in a baseline (merged): {pending}" in out
    assert f"**Gate policy:** gate change in this run, not in force until it is in a baseline (merged): {pending}" \
        in Path("r.md").read_text()
    properties = {p.get("name"): p.get("value") for p in ET.parse("r.xml").iter("property")}
    assert properties["policy.pending.margins.pass_rate"] == "0.01 → 0.5" and properties["policy.source"] == "baseline"
    report = json.loads(Path("r.json").read_text())
    assert report["policy"]["source"] == "baseline" and report["config"]["margins"]["pass_rate"] == 0.01
    assert [c["setting"] for c in report["policy"]["pending"]] == ["alpha", "inconclusive", "margins.pass_rate"]

    assert main(["compare", str(worse), "--baseline", "b.json", "--use-run-gate", *reports]) == ExitCode.OK
    out = capsys.readouterr().out
    logged = "override in force: alpha 0.05 → 0.2 (--use-run-gate)"
    assert out.startswith("PASS (pass_rate): ") and logged in out.splitlines()[0]
    assert logged in Path("r.md").read_text()
    assert json.loads(Path("r.json").read_text())["policy"]["overrides"][0] == {
        "setting": "alpha", "before": "0.05", "after": "0.2", "source": "--use-run-gate"}
    assert "policy.override.alpha" in {p.get("name") for p in ET.parse("r.xml").iter("property")}

    assert main(["compare", str(worse), "--baseline", "b.json", "--margin", "0.3", "--json", "r.json"]) == 0
    assert "override in force: margins.pass_rate 0.01 → 0.3 (--margin)" in capsys.readouterr().out


def test_baseline_save_of_several_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = [str(_store(dict.fromkeys(IDS[:150], True), tmp_path / "runs", f"r{k}", latency=0.1 + k / 100))
            for k in range(3)]
    assert main(["baseline", "save", *runs, "--to", "b.json"]) == ExitCode.OK
    assert capsys.readouterr().out == "saved baseline b.json (150 samples from run r0, latency summaries of 3 runs)\n"
    assert json.loads(Path("b.json").read_text())["format"] == "evalkit.baseline/2"


# --- CI logs: no terminal, nothing cut -----------------------------------------------------------------


def test_ci_output_is_complete_without_a_terminal(tmp_path: Path) -> None:
    """Through the CLI as a process, stdout a pipe: long names and tiny p-values are written whole."""
    long_model = "a-very-long-provider-model-name-2026-11-23-preview-with-a-suffix-that-never-ends"
    base = _store(dict.fromkeys(IDS, True), tmp_path / "runs", "base")
    worse = _store({c: i % 5 != 0 for i, c in enumerate(IDS)}, tmp_path / "runs", "a-long-candidate-run-identifier")
    manifest = worse / "manifest.json"
    data = json.loads(manifest.read_text())
    data["conditions"]["models_returned"] = [long_model]
    manifest.write_text(json.dumps(data))
    subprocess.run([sys.executable, "-m", "evalkit.cli", "baseline", "save", str(base), "--to", "b.json"],
                   check=True, capture_output=True, cwd=tmp_path)
    for columns in (None, "60"):
        env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | ({"COLUMNS": columns} if columns else {})
        done = subprocess.run([sys.executable, "-m", "evalkit.cli", "compare", str(worse), "--baseline", "b.json",
                               "--json", "r.json"], capture_output=True, text=True, cwd=tmp_path, env=env)
        assert done.returncode == ExitCode.REGRESSION, done.stderr
        report = json.loads((tmp_path / "r.json").read_text())
        lines = done.stdout.splitlines()
        assert lines[0] == next(line for line in lines if line.startswith("REGRESSION"))
        primary = report["metrics"][0]
        row = next(line for line in lines if line.startswith("pass_rate *"))
        assert f"{primary['p_value']:.2g}" in row and primary["test"] in row and "…" not in row.replace("…-", "")
        assert any(long_model in line for line in lines)  # a model name on one line
        assert "a-long-candidate-run-identifier" in done.stdout


# --- A/A through the CLI: identical loopback servers, with and without a CPU-burning neighbour ----------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def identical_servers() -> Iterator[list[str]]:
    """Two fixed-latency (5 ms) OpenAI-compatible servers on 127.0.0.1 (bench/fixed_latency_server.py)."""
    processes: list[subprocess.Popen[str]] = []
    urls = []
    try:
        for _ in range(2):
            port = _free_port()
            server = REPO / "bench" / "fixed_latency_server.py"
            process = subprocess.Popen([sys.executable, str(server), str(port), "5"], stdout=subprocess.PIPE, text=True)
            processes.append(process)
            assert process.stdout is not None and process.stdout.readline().startswith("ready")
            urls.append(f"http://127.0.0.1:{port}/v1")
        yield urls
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def _aa_suite(folder: Path, name: str, base_url: str, cases: int) -> Path:
    (folder / "cases.jsonl").write_text("".join(json.dumps({"id": f"c{i}", "vars": {"i": i}}) + "\n"
                                                for i in range(cases)))
    suite = folder / f"{name}.yaml"
    suite.write_text(
        "name: aa\n"
        f"target: {{provider: openai, base_url: '{base_url}', model: bench-model, params: {{max_tokens: 16}},\n"
        "         user: 'Question number {{ i }}?'}\n"
        "concurrency: 4\n"
        "defaults: {expect: [{icontains: forty}]}\n"
        "gate: {block_on: [pass_rate, latency_p95, ttft_p95], inconclusive: warn}\n"
        "cases: cases.jsonl\n")
    return suite


BURN_SECONDS = 60
"""A neighbour burns one CPU for at most this long (it is stopped as soon as its run ends)."""


@pytest.mark.integration
def test_a_a_latency_never_blocks_with_or_without_a_busy_neighbour(
        tmp_path: Path, identical_servers: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """20 pairs, each a run compared with the run before it, on two identical servers in turn; every other
    candidate runs beside a process burning a CPU. One run each side, latency and TTFT are never judged
    (not_comparable, with the reason), so the exit code is the pass rate's alone. The same candidates against
    a three-run baseline are judged with the run-to-run spread; those verdicts are printed (a measurement, not
    an assertion: a run beside a neighbour is slower, and only a recorded CPU pressure tells the gate why).
    """
    suites = [_aa_suite(tmp_path, name, url, 120) for name, url in zip("ab", identical_servers, strict=True)]
    runs = tmp_path / ".evalkit" / "runs"
    for k in range(3):
        assert main(["run", str(suites[0]), "--run-id", f"base{k}", "-q"]) == ExitCode.OK
    assert main(["baseline", "save", *(str(runs / f"base{k}") for k in range(3)), "--to", "multi.json"]) == 0
    capsys.readouterr()
    previous, seen = runs / "base2", []
    for k in range(20):
        busy = k % 2 == 0
        before_run = previous
        assert main(["baseline", "save", str(before_run), "--to", "single.json"]) == ExitCode.OK
        burner = subprocess.Popen([sys.executable, "-c", "import time\nend = time.monotonic() + "
                                   f"{BURN_SECONDS}\nwhile time.monotonic() < end:\n    pass\n"]) if busy else None
        try:
            if burner is not None:
                time.sleep(0.5)  # let it take its CPU before the run starts
            single = main(["run", str(suites[(k + 1) % 2]), "--run-id", f"cand{k}", "-q", "--baseline",
                           "single.json", "--json", "single.report"])
        finally:
            if burner is not None:
                burner.kill()
                burner.wait()
        previous = runs / f"cand{k}"
        one = json.loads(Path("single.report").read_text())
        multi = main(["compare", str(previous), "--baseline", "multi.json", "--json", "multi.report"])
        three = {m["name"]: m for m in json.loads(Path("multi.report").read_text())["metrics"]}
        latency = {m["name"]: m for m in one["metrics"]}
        assert single == one["exit_code"] == ExitCode.OK, one["metrics"][0]
        assert one["metrics"][0]["verdict"] != "regression" and one["decided_by"] == ["pass_rate"]
        for name in ("latency_p95", "ttft_p95"):
            assert latency[name]["verdict"] == "not_comparable" and latency[name]["p_value"] is None
            assert latency[name]["notes"][0].startswith("1 baseline run: judging this needs")
        calls = [[r.call.latency_s for r in load_run(run).results] for run in (before_run, previous)]
        per_call = stats.mann_whitney(calls[0], calls[1]).pvalue
        seen.append((busy, single, f"{latency['latency_p95']['difference']:+.0%}", f"{per_call:.2g}", multi,
                     three["latency_p95"]["verdict"], three["latency_p95"]["test"]))
    capsys.readouterr()
    with capsys.disabled():
        print("\nA/A pairs (neighbour, exit, p95 change, per-call Mann-Whitney p as if calls were independent; "
              "three-run baseline: exit, latency verdict, test):")
        for row in seen:
            print("  ", row)
