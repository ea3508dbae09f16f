"""The journal and run directory: torn lines, versions, corrupt files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit import ResultsError, load_run
from evalkit.providers.base import Attempt, CallRecord
from evalkit.results import CaseResult, Journal, read_journal, shard_of
from evalkit.scorers import Score


def _result(case_id: str, repeat: int = 0) -> CaseResult:
    call = CallRecord(provider="p", model_requested="m", started_at="t", output="o",
                      attempts=(Attempt(1, 0.0, 0.1),))
    return CaseResult(case_id, repeat, True, "o", (Score("contains", True, None, "found"),), call, ("t",))


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
    with pytest.raises(ResultsError, match=r"format: expected 'evalkit\.journal/1', got 'other/1'"):
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
