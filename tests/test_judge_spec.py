"""Judge specs, anchor files and judge answers: every bad input is one line naming file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit import ConfigError, ExitCode
from evalkit.cli import main
from evalkit.errors import JudgeError
from evalkit.judges import load_anchors, load_judge
from evalkit.judges.spec import VerdictForm
from evalkit.judges.verdict import SampleVerdict, aggregate, parse_answer
from evalkit.providers.base import CallRecord

from .conftest import REPO

BINARY = VerdictForm("binary", ("fail", "pass"))
ORDINAL = VerdictForm("ordinal", (1, 2, 3, 4, 5), 4)
GOOD = {"id": "a1", "vars": {"message": "hi"}, "output": "hello", "human_label": "pass", "split": "test"}


def _spec(write, body: str) -> None:  # type: ignore[no-untyped-def]
    write("judges/j/judge.yaml", body)


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err.strip()


def test_a_floating_alias_is_one_line(write, capsys: pytest.CaptureFixture[str]) -> None:
    _spec(write, "provider: openai\nmodel: gpt-4o\nrubric: '{{ output }}'\nverdict: {type: binary}\n")
    assert _error(capsys, ["judge", "calibrate", "j"]) == (
        "evalkit: error: judges/j/judge.yaml:2: model: expected a pinned model snapshot, got the floating alias "
        "'gpt-4o' (it moves to new snapshots without notice, so verdicts change currency); pin a dated snapshot "
        "or set allow_floating: \"<reason>\"")


@pytest.mark.parametrize("model", ["gpt-4o", "claude-3-5-sonnet", "my-model-latest"])
def test_floating_aliases_need_a_reason(write, model: str) -> None:
    _spec(write, f"provider: openai\nmodel: {model}\nrubric: '{{{{ output }}}}'\nverdict: {{type: binary}}\n")
    with pytest.raises(ConfigError, match="floating alias"):
        load_judge("j")
    _spec(write, f"provider: openai\nmodel: {model}\nallow_floating: prototype only, never gates\n"
                 "rubric: '{{ output }}'\nverdict: {type: binary}\n")
    assert load_judge("j").allow_floating == "prototype only, never gates"


def test_a_pinned_snapshot_loads_with_the_default_params(write) -> None:  # type: ignore[no-untyped-def]
    _spec(write, "provider: openai\nmodel: gpt-4o-2024-08-06\nrubric: '{{ message }} {{ output }}'\n"
                 "verdict: {type: ordinal, min: 1, max: 5}\n")
    spec = load_judge("j")
    assert dict(spec.params) == {"temperature": 0, "seed": 0}
    assert spec.verdict.labels == (1, 2, 3, 4, 5) and spec.verdict.pass_at == 4
    schema = spec.response_format["schema"]
    assert list(schema["properties"]) == ["reasoning", "verdict"]  # reasoning before the verdict


def test_a_retired_model_is_an_error_even_with_a_reason(write) -> None:  # type: ignore[no-untyped-def]
    _spec(write, "provider: openai\nmodel: gpt-4-0314\nallow_floating: x\nrubric: '{{ output }}'\n"
                 "verdict: {type: binary}\n")
    with pytest.raises(ConfigError, match="was retired"):
        load_judge("j")


@pytest.mark.parametrize(("body", "message"), [
    ("provider: local\nrubric: '{{ output }}'\nverdict: {type: binary}\nsamplez: 3\n",
     "judges/j/judge.yaml:4: samplez: unknown key 'samplez'"),
    ("provider: local\nrubric: 'no output here'\nverdict: {type: binary}\n",
     "judges/j/judge.yaml:2: rubric: expected the rubric to show {{ output }}"),
    ("provider: local\nrubric: '{{ output }}'\nverdict: {type: ordinal, min: 1}\n",
     "judges/j/judge.yaml:3: verdict.max: expected an integer for an ordinal scale, got none"),
    ("provider: local\nrubric: '{{ output }}'\nverdict: {type: binary}\naggregate: mean\n",
     "judges/j/judge.yaml:4: aggregate: expected 'majority' for a binary verdict"),
    ("provider: local\nrubric: {file: missing.md}\nverdict: {type: binary}\n",
     "judges/j/judge.yaml:2: rubric.file: expected an existing file, got 'judges/j/missing.md'"),
    ("provider: local\nrubric: '{{ output }'\nverdict: {type: binary}\n", "template syntax error"),
    ("provider: local\nrubric: '{{ output }}'\nverdict: {type: binary}\nprobes: {position: true}\n",
     "probes.position: expected a pairwise verdict"),
])
def test_bad_specs_are_one_line(write, capsys: pytest.CaptureFixture[str], body: str, message: str) -> None:
    _spec(write, body)
    assert message in _error(capsys, ["judge", "calibrate", "j"])


def test_an_unknown_judge_names_the_ones_there_are(write, capsys: pytest.CaptureFixture[str]) -> None:
    _spec(write, "provider: local\nrubric: '{{ output }}'\nverdict: {type: binary}\n")
    assert _error(capsys, ["judge", "check", "nope"]) == (
        "evalkit: error: judges/nope/judge.yaml: file not found (expected a judge named 'nope'; judges in judges/: j)")


def _anchors(write, rows: list[object]) -> Path:  # type: ignore[no-untyped-def]
    return write("a.jsonl", "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


@pytest.mark.parametrize(("rows", "message"), [
    ([GOOD, GOOD], "a.jsonl:2: id: expected a unique anchor id, got 'a1' again (first on line 1)"),
    ([{**GOOD, "human_label": "maybe"}],
     "a.jsonl:1: human_label: expected one of the declared labels ('fail', 'pass'), got a string ('maybe')"),
    ([{**GOOD, "human_label": "Pass"}], "a.jsonl:1: human_label: expected one of the declared labels"),
    ([{**GOOD, "raters": {"kim": "ok"}}], "a.jsonl:1: raters.kim: expected one of the declared labels"),
    ([{**GOOD, "split": "train"}], "a.jsonl:1: split: expected one of ['dev', 'test', 'canary'], got a string"),
    ([GOOD, '{"id": "a2", "vars": {'], "a.jsonl:2: invalid JSON"),
    ([{k: v for k, v in GOOD.items() if k != "output"}], "a.jsonl:1: output: missing required field 'output'"),
    ([{**GOOD, "label": "pass"}], "a.jsonl:1: label: unknown key 'label'"),
    ([], "a.jsonl: (top level): expected at least one anchor, got none"),
])
def test_bad_anchor_files_are_one_line(write, rows: list[object], message: str) -> None:  # type: ignore[no-untyped-def]
    path = _anchors(write, rows)
    with pytest.raises(ConfigError) as info:
        load_anchors(path, BINARY, "a.jsonl")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_an_ordinal_label_outside_the_scale(write) -> None:  # type: ignore[no-untyped-def]
    path = _anchors(write, [{**GOOD, "human_label": 7}])
    with pytest.raises(ConfigError, match=r"a.jsonl:1: human_label: expected one of the declared labels \(an "
                                          r"integer 1–5\), got an integer \(7\)"):
        load_anchors(path, ORDINAL, "a.jsonl")


def test_the_anchor_hash_ignores_line_order_but_not_content(write) -> None:  # type: ignore[no-untyped-def]
    b = {**GOOD, "id": "b2", "human_label": "fail"}
    one = load_anchors(_anchors(write, [GOOD, b]), BINARY, "a.jsonl").sha256
    two = load_anchors(_anchors(write, [b, GOOD]), BINARY, "a.jsonl").sha256
    three = load_anchors(_anchors(write, [GOOD, {**b, "human_label": "pass"}]), BINARY, "a.jsonl").sha256
    assert one == two != three


def test_a_missing_rubric_variable_is_one_line_before_any_call(write, capsys: pytest.CaptureFixture[str]) -> None:
    _spec(write, "provider: tests.judge_scripted:ScriptedJudge\nmodel: m-1\n"
                 "rubric: 'Customer {{ customer_name }}: {{ message }} / {{ output }}'\nverdict: {type: binary}\n")
    write("judges/j/anchors.jsonl", json.dumps(GOOD) + "\n")
    assert _error(capsys, ["judge", "calibrate", "j"]) == (
        "evalkit: error: judges/j/anchors.jsonl:1: vars: rubric variable 'customer_name' used in judges/j/judge.yaml:"
        "rubric is not supplied by anchor 'a1' (expected it in vars, got: message)")
    assert not Path(".evalkit").exists()  # nothing was called, nothing half-written


def test_check_without_a_calibration_says_how_to_make_one(write, capsys: pytest.CaptureFixture[str]) -> None:
    _spec(write, "provider: tests.judge_scripted:ScriptedJudge\nmodel: m-1\nrubric: '{{ output }}'\n"
                 "verdict: {type: binary}\n")
    write("judges/j/anchors.jsonl", json.dumps(GOOD) + "\n")
    assert _error(capsys, ["judge", "check", "j"]) == (
        "evalkit: error: judges/j/calibration.json: no calibration record (expected one; run: evalkit judge "
        "calibrate j)")


def test_a_foreign_calibration_record_is_one_line(write) -> None:  # type: ignore[no-untyped-def]
    _spec(write, "provider: tests.judge_scripted:ScriptedJudge\nmodel: m-1\nrubric: '{{ output }}'\n"
                 "verdict: {type: binary}\n")
    write("judges/j/anchors.jsonl", json.dumps(GOOD) + "\n")
    write("judges/j/calibration.json", '{"format": "evalkit.calibration/9"}')
    from evalkit.judges import load_calibration

    with pytest.raises(JudgeError, match=r"format: expected 'evalkit\.calibration/1', got 'evalkit\.calibration/9'"):
        load_calibration(load_judge("j"))


@pytest.mark.parametrize(("text", "stop", "reason"), [
    ('{"reasoning": "The reply answers', "length", "truncated: the answer hit max_tokens before it was complete"),
    ("The reply is good.", "complete", "not JSON (Expecting value at column 1): 'The reply is good.'"),
    ('{"reasoning": "fine", "verdict": "acceptable"}', "complete",
     "verdict 'acceptable' is not one of the declared labels ('fail', 'pass')"),
    ('{"reasoning": "fine"}', "complete", "no 'verdict' field"),
    ('["pass"]', "complete", "expected a JSON object with reasoning and verdict, got list"),
    ("", "length", "empty answer (cut off at max_tokens)"),
])
def test_garbage_or_truncated_judge_output_is_unscored_with_a_reason(text: str, stop: str, reason: str) -> None:
    parsed = parse_answer(text, stop, BINARY)
    assert parsed.label is None and parsed.unscored is not None and parsed.unscored.startswith(reason)


@pytest.mark.parametrize(("text", "label"), [
    ('{"reasoning": "ok", "verdict": "pass"}', "pass"),
    ('```json\n{"reasoning": "ok", "verdict": "FAIL"}\n```', "fail"),
    ('Sure! {"reasoning": "ok", "verdict": "pass"} Hope that helps.', "pass"),
])
def test_answers_that_are_json_somewhere_are_read(text: str, label: str) -> None:
    assert parse_answer(text, "complete", BINARY).label == label


def test_ordinal_answers_and_aggregation() -> None:
    assert parse_answer('{"reasoning": "r", "verdict": "4"}', "complete", ORDINAL).label == 4
    assert parse_answer('{"reasoning": "r", "verdict": 6}', "complete", ORDINAL).unscored
    call = CallRecord(provider="p", model_requested="m", started_at="t")
    samples = [SampleVerdict(v, "", None, call, i) for i, v in enumerate((3, 4, 4))]
    assert aggregate("x", samples, ORDINAL, "mean").label == 4  # mean 3.67 rounds to 4
    assert aggregate("x", samples, ORDINAL, "majority").label == 4
    tie = [SampleVerdict(v, "", None, call, i) for i, v in enumerate(("pass", "fail"))]
    assert aggregate("x", tie, BINARY, "majority").label == "fail"  # a tie goes to the stricter label
    broken = [SampleVerdict(None, "", "not JSON", call, 0)]
    assert aggregate("x", broken, BINARY, "majority").unscored == "not JSON"


def test_pairwise_orders_that_disagree_are_a_tie() -> None:
    pairwise = VerdictForm("pairwise", ("a", "tie", "b"))
    call = CallRecord(provider="p", model_requested="m", started_at="t")
    consistent = [SampleVerdict("a", "", None, call, 0, "ab"), SampleVerdict("a", "", None, call, 0, "ba")]
    flipped = [SampleVerdict("a", "", None, call, 0, "ab"), SampleVerdict("b", "", None, call, 0, "ba")]
    assert aggregate("x", consistent, pairwise, "majority").label == "a"
    assert aggregate("x", flipped, pairwise, "majority").label == "tie"


def test_the_shipped_judge_and_its_anchors_load() -> None:
    spec = load_judge("support_reply_quality", REPO / "judges")
    anchors = load_anchors(spec.anchors, spec.verdict)
    assert spec.model == "SmolLM2-135M-Instruct" and len(anchors.items) >= 150
    blind = [json.loads(line) for line in (spec.folder / "double_code_blind.jsonl").read_text().splitlines()]
    assert len(blind) == 40 and all(set(row) == {"id", "vars", "output"} for row in blind)
    ids = {a.id: a for a in anchors.items}
    assert {ids[row["id"]].split for row in blind} == {"dev", "test", "canary"}
    assert {ids[row["id"]].human_label for row in blind} == {"pass", "fail"}
