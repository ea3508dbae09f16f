"""The gate end to end, as a user sees it: CLI compare on stored runs, and the example suite on the real model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from evalkit import ExitCode, load_suite
from evalkit.cli import main
from evalkit.results import Journal, shard_of, write_manifest

from .conftest import REPO
from .test_baseline import make_run


def _store(run_outcomes: dict[str, bool], directory: Path, run_id: str) -> Path:
    run = replace(make_run(run_outcomes), run_id=run_id, directory=directory / run_id)
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
    assert out.startswith("REGRESSION: pass rate -20.0 pts (90% CI")
    assert json.loads(Path("r.json").read_text())["verdict"] == "regression"
    assert Path("r.md").read_text().startswith("<!-- evalkit-report -->")
    assert Path("r.xml").read_text().startswith("<?xml")

    assert main(["compare", str(same), "--baseline", "baselines/demo.json", "--margin", "0.05"]) == ExitCode.OK
    assert capsys.readouterr().out.startswith("PASS: pass rate +0.0 pts")
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
    assert f"{verdict.upper()}: pass rate" in second.stdout
    assert (tmp_path / "report.md").read_text().startswith("<!-- evalkit-report -->")
