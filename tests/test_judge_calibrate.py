"""`evalkit judge calibrate` and `check` through the CLI, with a scripted in-process judge provider.

The provider path itself (the embedded model over HTTP, a different model behind the same name) is in
tests/test_judge_integration.py; here the judge is scripted so every statistic has a known truth.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from evalkit import ExitCode
from evalkit.cli import main
from evalkit.judges import load_calibration, load_judge

from .judge_scripted import ScriptedJudge

RUBRIC = "Customer asked: {{ message }}\nReply: {{ output }}\nJudge it."


@pytest.fixture(autouse=True)
def _scripted() -> Iterator[None]:
    saved = (ScriptedJudge.accuracy, ScriptedJudge.retest_flip, ScriptedJudge.garbage, ScriptedJudge.model,
             ScriptedJudge.position_bias)
    ScriptedJudge.calls.clear()
    yield
    (ScriptedJudge.accuracy, ScriptedJudge.retest_flip, ScriptedJudge.garbage, ScriptedJudge.model,
     ScriptedJudge.position_bias) = saved


def make_judge(root: Path, *, n: int = 200, extra: str = "", human_noise: int = 0) -> Path:
    folder = root / "judges" / "quality"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "judge.yaml").write_text(
        "provider: tests.judge_scripted:ScriptedJudge\nmodel: scripted-judge-1\n"
        f"rubric: {json.dumps(RUBRIC)}\nverdict: {{type: binary}}\ncalibration: {{bootstrap: 500}}\n{extra}",
        "utf-8")
    with (folder / "anchors.jsonl").open("w", encoding="utf-8") as handle:
        for i in range(n):
            truth = "pass" if i % 5 < 2 else "fail"
            human = truth if i >= human_noise else ("fail" if truth == "pass" else "pass")
            split = "dev" if i % 10 == 0 else "canary" if i % 10 == 1 else "test"
            handle.write(json.dumps({"id": f"a{i:03d}", "vars": {"message": f"question {i}"},
                                     "output": f"reply {i} [truth:{truth}]", "human_label": human,
                                     "split": split}) + "\n")
    return folder


def test_calibrate_writes_a_versioned_record_and_shows_the_verdict(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    ScriptedJudge.accuracy, ScriptedJudge.retest_flip = 0.97, 0.0
    make_judge(tmp_path)
    assert main(["judge", "calibrate", "quality", "-q", "--markdown", "cal.md"]) == ExitCode.OK
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "judges/quality/calibration.json").read_text())
    assert record["format"] == "evalkit.calibration/1"
    m = record["metrics"]
    assert m["evaluated_on"] == "test+canary" and m["n_evaluated"] == 180 and m["n_scored"] == 180
    assert sum(map(sum, m["confusion"]["matrix"])) == 180
    assert m["kappa"]["low"] <= m["kappa"]["estimate"] <= m["kappa"]["high"]
    assert m["flip_rate"]["count"] == 0 and m["flip_rate"]["n"] == 200
    assert m["unscored"]["count"] == 0
    ident = record["identity"]
    assert ident["models_returned"] == ["scripted-judge-1"] and ident["endpoint"] == "in-process"
    assert record["anchors"]["counts"]["all"] == {"fail": 120, "pass": 80}
    assert len(record["anchor_verdicts"]) == 200 and record["settings"]["passes"] == 2
    assert record["usage"]["calls"] == 401  # 2 passes x 200 anchors + the identity probe
    assert record["status"] in ("eligible", "use_with_care")
    assert f"judge quality: {record['status']}" in out and "confusion (rows: human, columns: judge)" in out
    assert (tmp_path / "cal.md").read_text().startswith("## evalkit judge `quality`")
    journal = Path(record["journal"])
    assert len(journal.read_text().splitlines()) == 400  # every verdict with its full call records


def test_the_anchors_a_judge_gets_wrong_are_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ScriptedJudge.accuracy = 1.0
    make_judge(tmp_path, human_noise=12)  # the first 12 human labels disagree with the planted truth
    assert main(["judge", "calibrate", "quality", "-q"]) == ExitCode.OK
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "judges/quality/calibration.json").read_text())
    wrong = [r["id"] for r in record["anchor_verdicts"] if r["verdicts"][0] != r["human"]]
    assert wrong == [f"a{i:03d}" for i in range(12)]
    assert "anchors the judge gets wrong (12)" in out and "a011" in out


def test_five_percent_garbage_is_unscored_never_fail_and_the_instrument_fails(tmp_path: Path) -> None:
    ScriptedJudge.accuracy, ScriptedJudge.garbage = 1.0, 0.05
    make_judge(tmp_path)
    assert main(["judge", "calibrate", "quality", "-q"]) == ExitCode.OK
    record = json.loads((tmp_path / "judges/quality/calibration.json").read_text())
    m = record["metrics"]
    unscored_rows = [r for r in record["anchor_verdicts"] if r["verdicts"][0] is None]
    assert unscored_rows and all(r["unscored"][0] for r in unscored_rows)
    # Accuracy is 1.0: every scored verdict is right, so no garbage answer was read as a fail.
    assert m["confusion"]["matrix"][0][1] == m["confusion"]["matrix"][1][0] == 0
    assert sum(map(sum, m["confusion"]["matrix"])) == m["n_scored"] < m["n_evaluated"]
    assert 0.02 < m["unscored"]["estimate"] < 0.09
    assert record["status"] == "ineligible"
    assert any(r.startswith("instrument failed:") for r in record["reasons"])
    assert set(m["unscored"]["reasons"]) <= {"truncated", "not JSON", "verdict 'ok' is not one of the declared labels"}


def test_check_is_stable_on_the_same_judge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ScriptedJudge.accuracy, ScriptedJudge.retest_flip = 0.95, 0.03
    make_judge(tmp_path)
    assert main(["judge", "calibrate", "quality", "-q"]) == ExitCode.OK
    code = main(["judge", "check", "quality", "-q"])
    out = capsys.readouterr().out
    assert code == ExitCode.OK, out
    assert "judge quality: stable" in out


def test_a_silent_change_of_taste_behind_the_same_model_name_is_drifted(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    ScriptedJudge.accuracy, ScriptedJudge.retest_flip = 0.95, 0.03
    make_judge(tmp_path)
    assert main(["judge", "calibrate", "quality", "-q"]) == ExitCode.OK
    ScriptedJudge.retest_flip = 0.20  # same model id, same everything: only the verdicts move
    assert main(["judge", "check", "quality", "-q", "--markdown", "check.md"]) == ExitCode.JUDGE_DRIFTED
    out = capsys.readouterr().out
    assert "judge quality: drifted" in out and "anchors flipped against their calibration verdicts" in out
    assert "**drifted**" in (tmp_path / "check.md").read_text()


def test_a_different_returned_model_is_changed_without_any_anchor_call(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    make_judge(tmp_path)
    assert main(["judge", "calibrate", "quality", "-q"]) == ExitCode.OK
    ScriptedJudge.model = "scripted-judge-2"
    ScriptedJudge.calls.clear()
    assert main(["judge", "check", "quality", "-q"]) == ExitCode.JUDGE_CHANGED
    assert sum(ScriptedJudge.calls.values()) == 1  # the identity probe, no anchor
    out = capsys.readouterr().out
    assert "model_returned: calibrated ['scripted-judge-1'], now 'scripted-judge-2'" in out


def test_an_edited_rubric_is_changed_before_any_call(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_judge(tmp_path)
    assert main(["judge", "calibrate", "quality", "-q"]) == ExitCode.OK
    spec = folder / "judge.yaml"
    spec.write_text(spec.read_text().replace("Judge it.", "Judge it strictly."))
    assert main(["judge", "check", "quality", "-q"]) == ExitCode.JUDGE_CHANGED
    assert "prompt_sha256: calibrated" in capsys.readouterr().out


def test_too_few_anchors_are_inconclusive(tmp_path: Path) -> None:
    make_judge(tmp_path, n=12)
    assert main(["judge", "calibrate", "quality", "-q"]) == ExitCode.OK
    assert main(["judge", "check", "quality", "-q"]) == ExitCode.JUDGE_INCONCLUSIVE


def test_length_padding_probe_is_measured_against_the_placebo(tmp_path: Path) -> None:
    ScriptedJudge.accuracy = 1.0
    make_judge(tmp_path, n=60, extra="probes: {length_padding: true}\n")
    assert main(["judge", "calibrate", "quality", "-q"]) == ExitCode.OK
    record = json.loads((tmp_path / "judges/quality/calibration.json").read_text())
    probe = record["probes"]["length_padding"]
    # The scripted judge reads the planted truth, which padding does not move: no effect, no flag.
    assert probe["n"] == 60 and probe["padding_only"] == 0 and not probe["significant"]
    assert record["usage"]["calls"] == 1 + 60 * 3


def test_calibration_loads_back(tmp_path: Path) -> None:
    make_judge(tmp_path, n=30)
    assert main(["judge", "calibrate", "quality", "-q"]) == ExitCode.OK
    loaded = load_calibration(load_judge("quality"))
    assert loaded.status in ("eligible", "use_with_care", "ineligible") and loaded.identity["provider"].endswith(
        "ScriptedJudge")


def _pairwise_judge(root: Path, n: int) -> None:
    folder = root / "judges" / "which"
    folder.mkdir(parents=True)
    (folder / "judge.yaml").write_text(
        "provider: tests.judge_scripted:ScriptedJudge\nmodel: scripted-judge-1\n"
        "rubric: 'A: {{ output_a }} / B: {{ output_b }}'\nverdict: {type: pairwise}\nprobes: {position: true}\n"
        "calibration: {bootstrap: 300}\n", "utf-8")
    with (folder / "anchors.jsonl").open("w", encoding="utf-8") as handle:
        for i in range(n):
            good_first = i % 2 == 0
            a, b = ("[truth:pass]", "[truth:fail]") if good_first else ("[truth:fail]", "[truth:pass]")
            handle.write(json.dumps({"id": f"p{i:03d}", "vars": {}, "output_a": f"x{i} {a}", "output_b": f"y{i} {b}",
                                     "human_label": "a" if good_first else "b", "split": "test"}) + "\n")


def test_pairwise_judging_in_both_orders_and_the_position_probe(tmp_path: Path) -> None:
    ScriptedJudge.position_bias = 0.0
    _pairwise_judge(tmp_path, 60)
    assert main(["judge", "calibrate", "which", "-q"]) == ExitCode.OK
    record = json.loads((tmp_path / "judges/which/calibration.json").read_text())
    assert record["metrics"]["raw_agreement"]["count"] == 60  # content-following: both orders agree
    assert record["usage"]["calls"] == 1 + 60 * 2 * 2  # two passes, each item in both orders
    assert not record["probes"]["position"]["significant"]


def test_a_judge_that_follows_position_is_caught_against_the_placebo(tmp_path: Path) -> None:
    ScriptedJudge.position_bias = 0.6
    _pairwise_judge(tmp_path, 80)
    assert main(["judge", "calibrate", "which", "-q"]) == ExitCode.OK
    record = json.loads((tmp_path / "judges/which/calibration.json").read_text())
    probe = record["probes"]["position"]
    assert probe["significant"] and probe["prefers_first"] > probe["prefers_second"]
    assert record["status"] in ("use_with_care", "ineligible") and probe["summary"] in record["reasons"] + [
        c["text"] for c in record["criteria"]]
    assert record["metrics"]["confusion"]["labels"] == ["a", "tie", "b"]


def test_ordinal_calibration_uses_quadratic_kappa(tmp_path: Path) -> None:
    folder = tmp_path / "judges" / "grade"
    folder.mkdir(parents=True)
    (folder / "judge.yaml").write_text(
        "provider: tests.judge_scripted:ScriptedJudge\nmodel: scripted-judge-1\nrubric: '{{ output }}'\n"
        "verdict: {type: ordinal, min: 1, max: 5, pass_at: 4}\ncalibration: {bootstrap: 300}\n", "utf-8")
    with (folder / "anchors.jsonl").open("w", encoding="utf-8") as handle:
        for i in range(50):
            grade = 1 + i % 5
            human = grade if i % 7 else min(5, grade + 1)
            handle.write(json.dumps({"id": f"g{i:03d}", "vars": {}, "output": f"r [truth:{grade}]",
                                     "human_label": human, "split": "test"}) + "\n")
    assert main(["judge", "calibrate", "grade", "-q"]) == ExitCode.OK
    m = json.loads((folder / "calibration.json").read_text())["metrics"]
    assert m["kappa_kind"] == "quadratic-weighted kappa" and m["alpha_level"] == "ordinal"
    assert m["bias"]["estimate"] < 0  # the humans graded some replies a point higher: the judge is stricter
    assert m["tpr"]["name"] == "TPR" and m["confusion"]["labels"] == [1, 2, 3, 4, 5]
