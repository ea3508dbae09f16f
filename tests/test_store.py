"""The history store on SQLite and on a real Postgres: ingest, idempotence, migrations, bad input, the run hook."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.errors import StoreError
from evalkit.results import RUN_FORMAT, load_run
from evalkit.store import open_store
from evalkit.store.schema import CALL_COLUMNS, MIGRATIONS

from .history_runs import make_run, start

APP = """
name: app
target: {callable: "storeapp:answer"}
cases:
  - {id: a, vars: {order: "1"}, expect: [{equals: ORDER-1}], route: billing}
  - {id: b, vars: {order: "2"}, expect: [{equals: ORDER-3}]}
  - {id: c, vars: {order: "boom"}, expect: [{equals: ORDER-boom}]}
"""


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A suite on an in-process target (the provider path is not what is under test here)."""
    (tmp_path / "storeapp.py").write_text(
        "def answer(vars):\n"
        "    if vars['order'] == 'boom':\n"
        "        raise ValueError('no such order')\n"
        "    return 'ORDER-' + vars['order']\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("storeapp", None)
    path = tmp_path / "app.yaml"
    path.write_text(APP)
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests against both engines."""
    if request.param == "sqlite":
        return str(tmp_path / "store" / "history.sqlite")
    return str(request.getfixturevalue("postgres_url"))


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_ingest_writes_one_row_per_call_and_is_idempotent(store_url: str, tmp_path: Path) -> None:
    run = make_run("r1", start(0, 14.25), [0.5, 0.6, 0.7, 0.8, 0.9], errors=[None, None, None, None, "timeout"],
                   offset_hours=2, in_flight=[1, 2, 3, 4, 4], directory=tmp_path / "runs" / "r1")
    with open_store(store_url) as store:
        assert store.ingest(run).outcome == "added"
        assert store.ingest(run).outcome == "unchanged"
        assert store.ingest(load_run(tmp_path / "runs" / "r1")).outcome == "unchanged"
        calls = store.calls("svc")
        runs = store.runs("svc")
    assert len(calls) == 5 and len(runs) == 1
    first = calls.iloc[0]
    # 14:15 UTC on Monday 3 March 2025 is 16:15 at UTC+2: the local hour is per call.
    assert (first["hour_local"], first["weekday"], round(first["hour_frac"], 4)) == (16, 0, 16.25)
    assert list(calls["in_flight_at_start"]) == [1, 2, 3, 4, 4]
    failed = calls.iloc[4]
    assert (failed["error_class_first"], failed["error_class"], failed["failed_attempts"]) == ("timeout", "timeout", 2)
    assert failed["latency_s"] != failed["latency_s"]  # NaN: a failed call has no latency
    retried = calls.iloc[3]  # failed once with a 429, then succeeded: an error before retries, none after
    assert (retried["error_class_first"], retried["attempts"]) == ("rate_limit", 2)
    assert retried["error_class"] != retried["error_class"]  # NaN: no error after retries
    assert list(calls["passed"]) == [True, True, True, True, False]
    assert runs.iloc[0]["utc_offset_s"] == 7200 and runs.iloc[0]["kind"] == "run"


def test_a_run_that_grew_replaces_itself(store_url: str) -> None:
    partial = make_run("r2", start(), [0.5, 0.6])
    grown = make_run("r2", start(), [0.5, 0.6, 0.7])
    with open_store(store_url) as store:
        store.ingest(partial)
        assert store.ingest(grown).outcome == "updated"
        assert len(store.calls()) == 3


def test_both_engines_return_the_same_table(postgres_url: str, tmp_path: Path) -> None:
    runs = [make_run(f"r{i}", start(i, 3.0 * i), [0.1 * (j + 1) for j in range(6)], offset_hours=-5,
                     errors=[None] * 5 + ["server"]) for i in range(3)]
    frames = []
    for url in (str(tmp_path / "h.sqlite"), postgres_url):
        with open_store(url) as store:
            for run in runs:
                store.ingest(run)
            frames.append(store.calls("svc"))
    import pandas as pd

    pd.testing.assert_frame_equal(frames[0], frames[1], check_dtype=False)
    assert list(frames[0].columns[: len(CALL_COLUMNS)]) == list(CALL_COLUMNS)


def test_since_and_route_filter(store_url: str) -> None:
    with open_store(store_url) as store:
        store.ingest(make_run("old", start(0), [0.5] * 4))
        store.ingest(make_run("new", start(10), [0.5] * 4))
        assert set(store.calls("svc", since=start(5))["run_id"]) == {"new"}
        assert set(store.calls("svc", route="billing")["route"]) == {"billing"}
        assert store.suites() == ["svc"]


def test_migrations_are_append_only() -> None:
    """A released migration is never edited: its statements are pinned here (add a new one instead)."""
    released = {"0001_runs_and_calls": "ecb71c6b84b6ea0b23b86b38dc358b59c89d29752cd7e5ab3cb1bec56f46837b"}
    for migration in MIGRATIONS[: len(released)]:
        assert hashlib.sha256("\n".join(migration.statements).encode()).hexdigest() == released[migration.name]
    assert len({m.name for m in MIGRATIONS}) == len(MIGRATIONS)


def test_a_store_from_a_newer_evalkit_is_refused(store_url: str) -> None:
    with open_store(store_url) as store:
        store._connection.execute(
            "INSERT INTO evalkit_migrations (name, applied_at, evalkit_version) VALUES (?, ?, ?)",
            ("0002_from_the_future", "2030-01-01T00:00:00+00:00", "9.0.0"))
    with pytest.raises(StoreError, match=r"written by a newer evalkit \(its schema has migration '0002_from_the_"
                                         r"future', unknown to evalkit .*\); upgrade evalkit"):
        open_store(store_url)


def test_bad_stores_are_one_line_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"not a database, just bytes" * 100)
    code, _, err = run_cli(["diurnal", "svc", "--store", str(corrupt)], capsys)
    assert code == 2
    assert err.splitlines() == [f"evalkit: error: {corrupt}: expected an evalkit store (SQLite), got an unreadable "
                                "file (file is not a database)"]
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE invoices (id INTEGER)")
    code, _, err = run_cli(["history", "svc", "--store", str(foreign)], capsys)
    assert (code, err.splitlines()) == (2, [f"evalkit: error: {foreign}: expected an evalkit store, got a SQLite "
                                            "database with other tables (invoices)"])
    code, _, err = run_cli(["history", "svc", "--store", "postgresql://me:s3cret@127.0.0.1:1/history"], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("evalkit: error: postgresql://me:***@127.0.0.1:1/history: cannot connect to the Postgres "
                          "store (")
    assert "s3cret" not in err
    code, _, err = run_cli(["history", "svc", "--store", "mysql://db/x"], capsys)
    assert (code, err.splitlines()) == (2, ["evalkit: error: --store: expected a file path, sqlite:///PATH or "
                                            "postgresql://URL, got a mysql:// URL"])


def test_a_run_directory_of_another_format_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_run("good", start(), [0.5] * 3, directory=tmp_path / "runs" / "good")
    other = tmp_path / "runs" / "other"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"format": "evalkit.run/9", "run_id": "other"}))
    code, out, err = run_cli(["history", "ingest", str(tmp_path / "runs")], capsys)
    assert code == 2
    assert out.splitlines() == [f"added     good (3 calls) from {tmp_path / 'runs' / 'good'}"]
    assert err.splitlines() == [
        f"evalkit: error: {other / 'manifest.json'}: format: expected {RUN_FORMAT!r}, got 'evalkit.run/9' "
        "(written by another evalkit version?)",
        "evalkit: error: 1 of 2 run directories not recorded in .evalkit/history.sqlite (see above)",
    ]
    code, out, _ = run_cli(["history", "ingest", str(tmp_path / "runs" / "good")], capsys)
    assert (code, out.split()[0]) == (0, "unchanged")


@pytest.mark.parametrize(("since", "message"), [
    ("yesterday", "--since: expected a duration like 14d, 36h, 2w, 90m or an ISO date like 2025-01-31, got "
                  "'yesterday'"),
    ("0d", "--since: expected a positive duration like 14d, got '0d'"),
    ("2999-01-01", "--since: expected a time in the past, got '2999-01-01'"),
])
def test_since_that_parses_to_nothing(since: str, message: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    with open_store(tmp_path / "h.sqlite") as store:
        store.ingest(make_run("r", start(), [0.5] * 3))
    code, _, err = run_cli(["diurnal", "svc", "--since", since, "--store", str(tmp_path / "h.sqlite")], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"evalkit: error: {message}")


def test_since_that_selects_nothing_says_when_the_newest_call_was(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with open_store(tmp_path / "h.sqlite") as store:
        store.ingest(make_run("r", start(), [0.5] * 3))
    code, _, err = run_cli(["diurnal", "svc", "--since", "14d", "--store", str(tmp_path / "h.sqlite")], capsys)
    assert code == 2
    assert err.splitlines()[0].startswith(f"evalkit: error: {tmp_path / 'h.sqlite'}: expected calls of suite 'svc' "
                                          "since ")
    assert err.rstrip().endswith("got none; its newest call is from 2025-03-03 00:00 UTC")
    code, _, err = run_cli(["diurnal", "nosuch", "--store", str(tmp_path / "h.sqlite")], capsys)
    assert (code, err.splitlines()) == (2, [
        f"evalkit: error: {tmp_path / 'h.sqlite'}: expected runs of suite 'nosuch' in the history store, got none "
        "(it has: svc); record runs with evalkit run or evalkit history ingest RUN_DIR"])


def test_every_run_is_recorded_and_a_failing_store_loses_nothing(app: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["run", str(app), "--quiet", "--run-id", "first"], capsys)
    assert code == 0 and err == ""
    with open_store() as store:  # the default: .evalkit/history.sqlite beside .evalkit/runs
        calls = store.calls("app")
    assert sorted(calls["case_id"]) == ["a", "b", "c"]
    assert calls.set_index("case_id").loc["c", "error_class"] == "client"
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"garbage" * 100)
    monkeypatch.setenv("EVALKIT_STORE", str(broken))
    code, out, err = run_cli(["run", str(app), "--quiet", "--run-id", "second"], capsys)
    directory = Path(".evalkit/runs/second")
    assert code == 0 and "results: .evalkit/runs/second" in out
    assert err.splitlines() == [
        f"evalkit: warning: not recorded in the history store {broken} (expected an evalkit store (SQLite), got an "
        f"unreadable file (file is not a database)); the run is safe in {directory}; record it later with: "
        f"evalkit history ingest {directory}"]
    assert load_run(directory).status == "complete"
    monkeypatch.setenv("EVALKIT_STORE", "off")
    code, _, err = run_cli(["run", str(app), "--quiet", "--run-id", "third"], capsys)
    assert code == 0 and err == ""
    monkeypatch.delenv("EVALKIT_STORE")
    code, out, _ = run_cli(["history", "ingest", str(directory), ".evalkit/runs/third"], capsys)
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == ["added", "added"]


def test_export_parquet_round_trips(store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    with open_store(store_url) as store:
        store.ingest(make_run("r1", start(0, 1), [0.5, 0.7, 0.9]))
        store.ingest(make_run("r2", start(1, 4), [0.4, 0.6]))
        expected = store.calls("svc", kinds=None)
    target = tmp_path / "out" / "calls.parquet"
    code, out, _ = run_cli(["history", "export", "--parquet", str(target), "--store", store_url], capsys)
    assert (code, out.strip()) == (0, f"wrote 5 calls to {target}")
    pd.testing.assert_frame_equal(pd.read_parquet(target), expected, check_dtype=False)


def test_ladder_steps_are_marked_by_their_ladder_file(tmp_path: Path) -> None:
    folder = tmp_path / "sweeps" / "svc-ladder-x"
    for k in (1, 2):
        make_run(f"svc-ladder-x-c{k}", start(0, k), [0.5] * 3, concurrency=k, directory=folder / f"svc-ladder-x-c{k}")
    (folder / "ladder.json").write_text(json.dumps({"format": "evalkit.ladder/1", "sweep_id": "svc-ladder-x",
                                                    "runs": ["svc-ladder-x-c1", "svc-ladder-x-c2"]}))
    from evalkit.store import ingest_paths

    with open_store(tmp_path / "h.sqlite") as store:
        assert all(o.ingested for o in ingest_paths(store, [folder]))
        assert store.calls("svc").empty  # ordinary runs only, by default
        ladder = store.runs("svc", kinds=("ladder",))
    assert list(ladder["sweep_id"]) == ["svc-ladder-x"] * 2 and list(ladder["concurrency"]) == [1, 2]


def test_store_time_columns_are_utc(tmp_path: Path) -> None:
    with open_store(tmp_path / "h.sqlite") as store:
        store.ingest(make_run("r", start(0, 23.5), [0.5], offset_hours=-8))
        row = store.calls().iloc[0]
    assert row["started_at"].tzinfo is not None and row["started_at"].hour == 23
    assert (row["hour_local"], row["weekday"]) == (15, 0)
    assert row["started_at"] - start(0, 23.5) < timedelta(seconds=1)
