"""Judges inside suites, through the CLI: ``expect: [{judge: NAME}]``, unscored verdicts, and the gate's rule
that a judge-scored metric decides only when its judge is trusted (calibrated eligible, same identity, stable
canaries). The judge is the scripted in-process provider (tests/judge_scripted.py): what is under test is the
harness around it, not the provider path."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalkit import ExitCode
from evalkit.cli import main
from evalkit.results import load_run

from .judge_scripted import ScriptedJudge
from .test_judge_calibrate import make_judge

FLIPPED = "EVALKIT_TEST_FLIPPED"
"""Cases (comma-separated ids) whose reply the test's app makes bad: a planted regression."""


def app(vars: dict[str, Any]) -> str:
    """The system under test: a reply carrying its planted truth, which the scripted judge reads."""
    bad = vars["id"] in os.environ.get(FLIPPED, "").split(",")
    return f"reply to {vars['id']} [truth:{'fail' if bad else vars['truth']}]"


@pytest.fixture(autouse=True)
def _scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    saved = (ScriptedJudge.accuracy, ScriptedJudge.retest_flip, ScriptedJudge.garbage, ScriptedJudge.model)
    ScriptedJudge.calls.clear()
    ScriptedJudge.accuracy, ScriptedJudge.retest_flip, ScriptedJudge.garbage = 1.0, 0.0, 0.0
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent))
    yield
    (ScriptedJudge.accuracy, ScriptedJudge.retest_flip, ScriptedJudge.garbage, ScriptedJudge.model) = saved


def _suite(root: Path, cases: int = 100, check: str = "{judge: quality}", block: str = "[pass_rate]") -> Path:
    rows = [{"id": f"c{i:03d}", "vars": {"id": f"c{i:03d}", "message": f"question {i}",
                                         "truth": "fail" if i % 10 == 0 else "pass"}} for i in range(cases)]
    (root / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = root / "s.yaml"
    path.write_text("name: judged\ntarget: {callable: 'tests.test_judge_suites:app'}\n"
                    f"defaults: {{expect: [{check}]}}\n"
                    f"gate: {{margins: {{pass_rate: 0.02}}, block_on: {block}, inconclusive: block}}\n"
                    "cases: cases.jsonl\n")
    return path


def _calibrated(root: Path) -> None:
    make_judge(root)
    assert main(["judge", "calibrate", "quality", "-q"]) == ExitCode.OK
    record = json.loads((root / "judges/quality/calibration.json").read_text())
    assert record["status"] == "eligible", record["reasons"]


def _metrics(path: str) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in json.loads(Path(path).read_text())["metrics"]}


def test_a_trusted_judge_scores_the_suite_and_can_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    _calibrated(tmp_path)
    _suite(tmp_path)
    assert main(["run", "s.yaml", "--run-id", "base", "-q"]) == ExitCode.OK
    run = load_run(".evalkit/runs/base")
    trust = json.loads(Path(".evalkit/runs/base/judges.json").read_text())["judges"][0]
    assert trust["status"] == "trusted" and trust["canary_status"] == "stable" and trust["verdicts"] == 100
    score = run.results[1].scores[0]
    assert score.name == "judge:quality" and score.passed and score.details["judge_calls"]
    assert sum(r.passed for r in run.results) == 90  # the judge read every planted truth
    assert [c.provider for c in run.results[1].calls] == ["callable"]  # the judge's calls are the check's
    assert main(["baseline", "save", ".evalkit/runs/base", "--to", "b.json"]) == ExitCode.OK
    # A change that breaks 20 replies: the trusted judge's verdicts decide, and block.
    monkeypatch.setenv(FLIPPED, ",".join(f"c{i:03d}" for i in range(1, 100, 5)))
    code = main(["run", "s.yaml", "--run-id", "worse", "-q", "--baseline", "b.json", "--json", "r.json"])
    metrics = _metrics("r.json")
    assert code == ExitCode.REGRESSION
    assert metrics["pass_rate"]["verdict"] == "regression"
    assert metrics["judge:quality"]["verdict"] == "regression" and metrics["judge:quality"]["n"] == 100
    assert "judge quality: trusted" in capsys.readouterr().out


@pytest.mark.parametrize("how", ["changed", "ineligible"])
def test_an_untrusted_judge_never_blocks_nor_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    _calibrated(tmp_path)
    _suite(tmp_path)
    assert main(["run", "s.yaml", "--run-id", "base", "-q"]) == ExitCode.OK
    assert main(["baseline", "save", ".evalkit/runs/base", "--to", "b.json"]) == ExitCode.OK
    if how == "changed":
        ScriptedJudge.model = "scripted-judge-2"  # the provider now answers with another model
        expected = "judge_changed"
    else:
        ScriptedJudge.accuracy = 0.7
        assert main(["judge", "calibrate", "quality", "-q"]) == ExitCode.OK  # recalibrated: ineligible
        ScriptedJudge.accuracy = 1.0
        expected = "judge_uncalibrated"
    for flipped, label in (("", "same"), (",".join(f"c{i:03d}" for i in range(1, 100, 5)), "worse")):
        monkeypatch.setenv(FLIPPED, flipped)
        code = main(["run", "s.yaml", "--run-id", label, "-q", "--baseline", "b.json", "--json", f"{label}.json"])
        metrics = _metrics(f"{label}.json")
        assert code == ExitCode.INCONCLUSIVE, (label, metrics["pass_rate"])
        for name in ("pass_rate", "judge:quality"):
            assert metrics[name]["verdict"] == "inconclusive" and metrics[name]["test"].endswith(expected)
    assert f"judge quality: {expected}" in capsys.readouterr().out


def test_garbage_answers_are_unscored_never_fail_and_the_instrument_fails(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    _calibrated(tmp_path)
    _suite(tmp_path, cases=200)
    ScriptedJudge.garbage = 0.05
    assert main(["run", "s.yaml", "--run-id", "g"]) == ExitCode.OK
    run = load_run(".evalkit/runs/g")
    unscored = [r for r in run.results if r.unscored]
    assert 3 <= len(unscored) <= 20
    assert all(r.scores[0].reason.startswith("unscored: ") for r in unscored)
    truly_bad = {f"c{i:03d}" for i in range(0, 200, 10)}
    assert {r.case_id for r in run.results if not r.passed and not r.unscored} <= truly_bad  # never a fail
    out = capsys.readouterr().out
    assert f"unscored: {len(unscored)} of 200 results" in out
    assert "judge quality: the instrument failed" in out
    trust = json.loads(Path(".evalkit/runs/g/judges.json").read_text())["judges"][0]
    assert trust["unscored"] == len(unscored) and trust["verdicts"] == 200


def test_an_unknown_judge_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _suite(tmp_path, cases=3, check="{judge: nosuch}")
    assert main(["run", "s.yaml"]) == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expect.judge: expected a judge with judges/nosuch/judge.yaml" in err


def test_rescore_baseline_splits_the_change_into_judge_and_system(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The baseline was scored by a judge that read every planted truth; the judge now errs on some replies.
    Re-judging the baseline's stored outputs with the current judge puts both sides in one currency: the same
    outputs get the same verdicts, so the whole move is the judge's and none is the system's."""
    _calibrated(tmp_path)
    _suite(tmp_path)
    assert main(["run", "s.yaml", "--run-id", "base", "-q"]) == ExitCode.OK
    assert main(["baseline", "save", ".evalkit/runs/base", "--to", "b.json"]) == ExitCode.OK
    ScriptedJudge.accuracy = 0.8  # a new taste behind the same name
    main(["run", "s.yaml", "--run-id", "now", "-q"])
    capsys.readouterr()
    main(["compare", ".evalkit/runs/now", "--baseline", "b.json", "--rescore-baseline", "--markdown", "r.md"])
    out = capsys.readouterr().out
    now = load_run(".evalkit/runs/now")
    rate = sum(r.passed for r in now.results) / len(now.results)
    assert rate < 0.9
    line = next(x for x in out.splitlines() if x.startswith("baseline re-judged by the current judge"))
    assert line == (f"baseline re-judged by the current judge (100 outputs, 0 unscored): pass rate 90.0% as stored "
                    f"→ {rate * 100:.1f}% re-judged; the run {rate * 100:.1f}% · judge share "
                    f"{(rate - 0.9) * 100:+.1f} pts, system share +0.0 pts")
    assert line in Path("r.md").read_text()
    print(line)
