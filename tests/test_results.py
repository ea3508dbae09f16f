"""The journal and run directory: torn lines, versions, corrupt files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit import ResultsError, load_run
from evalkit.core.trajectory import Trajectory
from evalkit.providers.base import Attempt, CallRecord
from evalkit.results import CaseResult, Journal, read_journal, scan_journal, shard_of
from evalkit.scorers import Score


def _result(case_id: str, repeat: int = 0) -> CaseResult:
    call = CallRecord(provider="p", model_requested="m", started_at="t", output="o",
                      attempts=(Attempt(1, 0.0, 0.1),))
    return CaseResult(case_id, repeat, True, "o", (Score("contains", True, None, "found"),), Trajectory((call,)),
                      ("t",))


def test_journal_round_trip_and_torn_tail(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "r")
    journal.append(_result("a"))
    journal.append(_result("b"))
    journal.close()
    with (tmp_path / "journal.jsonl").open("a") as handle:
        handle.write('{"case_id": "c", "rep')  # a kill mid-write
    assert [r.case_id for r in read_journal(tmp_path / "journal.jsonl")] == ["a", "b"]
    again = Journal(tmp_path, "r")  # a resume appends after repairing the torn line
    again.append(_result("c"))
    again.close()
    assert [r.case_id for r in read_journal(tmp_path / "journal.jsonl")] == ["a", "b", "c"]
    assert read_journal(tmp_path / "journal.jsonl")[0] == _result("a")


def test_journal_of_another_format(tmp_path: Path) -> None:
    (tmp_path / "journal.jsonl").write_text(json.dumps({"format": "other/1"}) + "\n")
    with pytest.raises(ResultsError, match=r"format: expected 'evalkit\.journal/2', got 'other/1'"):
        read_journal(tmp_path / "journal.jsonl")


def test_corrupt_manifest(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ResultsError, match=r"manifest.json:1: invalid JSON"):
        load_run(tmp_path)


def test_shards_are_stable_and_cover_everything() -> None:
    ids = [f"case-{i}" for i in range(200)]
    shards = [shard_of(i, 4) for i in ids]
    assert set(shards) == {1, 2, 3, 4}
    assert shards == [shard_of(i, 4) for i in ids]


def _manifest(tmp_path: Path, **changes: object) -> Path:
    data: dict[str, object] = {
        "format": "evalkit.run/2", "run_id": "r", "status": "complete", "repeats": 1, "shard": None,
        "options": {}, "suite": {"name": "s", "path": "s.yaml", "sha256": "x", "case_ids": ["a"], "target": {}},
        "conditions": None,
    }
    data.update(changes)
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    return tmp_path


def test_readers_ignore_fields_they_do_not_know(tmp_path: Path) -> None:
    from evalkit.conditions import Conditions

    journal = Journal(tmp_path, "r")
    journal.append(_result("a"))
    journal.close()
    path = tmp_path / "journal.jsonl"
    lines = path.read_text().splitlines()
    record = json.loads(lines[1])
    record["from_the_future"] = {"x": 1}
    record["trajectory"]["steps"][0]["new_call_field"] = 3
    path.write_text("\n".join([lines[0], json.dumps(record)]) + "\n")
    assert read_journal(path) == [_result("a")]
    conditions = {"started_at_utc": "2026-11-23T10:00:00+00:00", "started_at_local": "x", "timezone": "UTC",
                  "hour_local": 10, "weekday": "Monday", "host_platform": "Linux", "loadavg_start": None,
                  "concurrency_configured": 1, "provider": "p", "endpoint": None, "model_requested": "m",
                  "evalkit_version": "0", "python_version": "3", "versions": {}, "git_commit": None,
                  "git_dirty": None, "suite_sha256": "x", "template_sha256": {}, "rendered_prompts_sha256": "",
                  "a_field_from_a_newer_evalkit": True}
    run = load_run(_manifest(tmp_path, conditions=conditions, something_new=[1, 2]))
    assert isinstance(run.conditions, Conditions) and run.conditions.hour_local == 10


@pytest.mark.parametrize(("changes", "message"), [
    ({"suite": None}, r"manifest\.json: suite: expected a mapping, got null"),
    ({"repeats": "two"}, r"manifest\.json: repeats: expected an integer, got a string \('two'\)"),
    ({"suite": {"name": "s", "path": "s.yaml", "sha256": "x"}}, r"manifest\.json: suite: missing required field "
                                                                 r"'case_ids'"),
])
def test_a_broken_manifest_is_one_line(tmp_path: Path, changes: dict[str, object], message: str) -> None:
    with pytest.raises(ResultsError, match=message):
        load_run(_manifest(tmp_path, **changes))


def test_a_manifest_without_a_suite_is_one_line(tmp_path: Path) -> None:
    path = _manifest(tmp_path)
    data = json.loads((path / "manifest.json").read_text())
    del data["suite"]
    (path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ResultsError, match=r"manifest\.json: \(top level\): missing required field 'suite'"):
        load_run(path)


def test_a_bad_journal_record_is_reported_with_its_line_not_dropped(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "r")
    for case in ("a", "b", "c"):
        journal.append(_result(case))
    journal.close()
    path = tmp_path / "journal.jsonl"
    lines = path.read_text().splitlines()
    bad = json.loads(lines[2])
    bad["repeat"] = "zero"
    path.write_text("\n".join([lines[0], lines[1], json.dumps(bad), lines[3]]) + "\n")
    read = scan_journal(path)
    assert [r.case_id for r in read.results] == ["a", "c"]
    assert read.problems == (f"{path}:3: repeat: expected an integer, got a string ('zero'); its case runs again "
                             "on resume",)


def test_a_version_1_journal_is_still_read(tmp_path: Path) -> None:
    call = {"provider": "p", "model_requested": "m", "started_at": "2026-11-23T10:00:00.000+00:00", "output": "o",
            "latency_s": 0.1, "total_s": 0.1, "tool_calls": ["search"],
            "attempts": [{"number": 1, "started_at": 0.0, "duration_s": 0.1}]}
    (tmp_path / "journal.jsonl").write_text(
        json.dumps({"format": "evalkit.journal/1", "run_id": "r"}) + "\n"
        + json.dumps({"case_id": "a", "repeat": 0, "passed": True, "output": "o", "tags": [],
                      "scores": [{"name": "contains", "passed": True, "score": None, "reason": "found"}],
                      "call": call}) + "\n")
    (result,) = read_journal(tmp_path / "journal.jsonl")
    assert result.call.output == "o" and result.call.tool_calls[0].name == "search" and result.calls == (result.call,)


def test_the_response_cache_is_versioned(tmp_path: Path) -> None:
    from evalkit.cache import ResponseCache

    cache = ResponseCache(tmp_path)
    record = _result("a").call
    cache.put("ab" * 32, record)
    assert cache.get("ab" * 32) is not None and cache.get("ab" * 32).cached  # type: ignore[union-attr]
    # An entry of evalkit 0.1 (no format) or of a newer format is a miss, never a wrong answer.
    path = tmp_path / "ab" / f"{'ab' * 32}.json"
    path.write_text(json.dumps(record.to_dict()))
    assert cache.get("ab" * 32) is None
    path.write_text(json.dumps({"format": "evalkit.cache/9", "record": record.to_dict()}))
    assert cache.get("ab" * 32) is None
