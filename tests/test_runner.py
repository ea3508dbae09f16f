"""The runner end to end on the embedded model: journal, conditions, repeats, cache, shards, resume."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalkit import ConfigError, ResultsError, RunOptions, load_run, load_suite, merge_runs, resume_run, run_suite
from evalkit.providers.local import MODEL_NAME, LocalServer
from evalkit.results import per_case, read_journal
from evalkit.runner import RateLimiter

from .servers import CannedServer, FaultProxy

pytestmark = pytest.mark.integration

QUESTIONS = ["What is 2+2?", "Name a colour.", "Say hi.", "Name a fruit.", "What is the capital of France?",
             "Name an animal.", "Say bye.", "Name a planet."]


def suite_text(base_url: str, count: int = 4, extra: str = "", max_tokens: int = 12) -> str:
    cases = "\n".join(
        f"  - id: q{i}\n    vars: {{question: {json.dumps(q)}}}\n    tags: [{'even' if i % 2 == 0 else 'odd'}]"
        for i, q in enumerate(QUESTIONS[:count])
    )
    return (
        "name: tiny\n"
        "target:\n"
        "  provider: openai\n"
        f"  base_url: {base_url}\n"
        f"  model: {MODEL_NAME}\n"
        f"  params: {{max_tokens: {max_tokens}, temperature: 0.7}}\n"
        "  system: Answer in a few words.\n"
        "  user: '{{ question }}'\n"
        "concurrency: 2\n"
        "defaults:\n"
        "  expect: [{length: {min: 1}}]\n"
        f"{extra}"
        f"cases:\n{cases}\n"
    )


def test_run_writes_journal_manifest_and_conditions(write, model_server: LocalServer, tmp_path: Path) -> None:
    path = write("tiny.yaml", suite_text(model_server.base_url))
    run = run_suite(path, RunOptions(out=tmp_path / "runs", run_id="r1"))
    assert run.status == "complete"
    assert [r.case_id for r in run.results] == ["q0", "q1", "q2", "q3"]
    assert all(r.call.ok for r in run.results)
    lines = (tmp_path / "runs" / "r1" / "journal.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {"format": "evalkit.journal/2", "run_id": "r1"}
    assert len(lines) == 5
    manifest = json.loads((tmp_path / "runs" / "r1" / "manifest.json").read_text())
    assert manifest["format"] == "evalkit.run/2" and manifest["status"] == "complete"
    c = run.conditions
    assert c is not None
    assert c.provider == "openai" and c.endpoint == f"127.0.0.1:{model_server.port}"
    assert c.model_requested == MODEL_NAME and c.models_returned == (MODEL_NAME,)
    assert 0 <= c.hour_local <= 23 and c.weekday and c.timezone
    assert c.concurrency_configured == 2 and c.in_flight_max == 2 and 0 < c.in_flight_mean <= 2
    assert c.calls == 4 and c.attempts == 4 and c.errors_pre_retry == 0 and c.error_rate_post_retry == 0
    assert c.latency_p50 is not None and c.latency_p95 is not None and c.latency_p50 <= c.latency_p95
    assert c.ttft_p99 is not None and c.throughput_per_s and c.duration_s
    assert c.suite_sha256 == load_suite(path).sha256
    assert set(c.template_sha256) == {"tiny.yaml:target.system", "tiny.yaml:target.user"}
    assert len(c.rendered_prompts_sha256) == 64
    assert c.versions["openai"] and c.evalkit_version and c.python_version
    reloaded = load_run(tmp_path / "runs" / "r1")
    assert reloaded.results == run.results and reloaded.conditions == run.conditions


def test_errors_before_and_after_retries_are_reported_separately(write, model_server: LocalServer,
                                                                  tmp_path: Path) -> None:
    # 4 cases; the first 5 requests fail (429, 500, drop, 500, 500): every failure is counted before
    # retries, and whatever the retry budget could not absorb is counted after.
    with FaultProxy(model_server.base_url, ["429:0.2", "500", "drop", "500", "500"]) as proxy:
        path = write("tiny.yaml", suite_text(proxy.base_url).replace("concurrency: 2", "concurrency: 1")
                     .replace("  system:", "  max_attempts: 2\n  system:"))
        run = run_suite(path, RunOptions(out=tmp_path / "runs"))
    c = run.conditions
    assert c is not None
    assert c.errors_pre_retry == 5
    assert c.errors_post_retry == 2
    assert c.attempts == 7
    assert c.error_rate_pre_retry == pytest.approx(5 / 7)
    assert c.error_rate_post_retry == pytest.approx(2 / 4)
    assert c.errors_by_class == {"connection": 1, "rate_limit": 1, "server": 3}
    failed = [r for r in run.results if r.error]
    assert len(failed) == 2 and not any(r.passed for r in failed)


def test_repeats_are_independent_samples_with_k_of_n(write, model_server: LocalServer, tmp_path: Path) -> None:
    path = write("tiny.yaml", suite_text(model_server.base_url, count=2))
    run = run_suite(path, RunOptions(out=tmp_path / "runs", repeats=3, cache=True))
    assert sorted(r.key for r in run.results) == [(c, k) for c in ("q0", "q1") for k in range(3)]
    assert not any(r.call.cached for r in run.results)  # repeats never share a cache entry
    assert [(s.case_id, s.total) for s in per_case(run.results)] == [("q0", 3), ("q1", 3)]


def test_cache_reuses_responses_on_rerun(write, model_server: LocalServer, tmp_path: Path) -> None:
    path = write("tiny.yaml", suite_text(model_server.base_url, count=3))
    first = run_suite(path, RunOptions(out=tmp_path / "runs", cache=True))
    second = run_suite(path, RunOptions(out=tmp_path / "runs", cache=True))
    assert all(r.call.cached for r in second.results)
    assert [r.output for r in second.results] == [r.output for r in first.results]
    assert second.conditions is not None and second.conditions.cached_calls == 3
    uncached = run_suite(path, RunOptions(out=tmp_path / "runs"))
    assert not any(r.call.cached for r in uncached.results)


def test_shards_partition_the_suite_and_merge(write, model_server: LocalServer, tmp_path: Path) -> None:
    path = write("tiny.yaml", suite_text(model_server.base_url, count=8))
    shards = [run_suite(path, RunOptions(out=tmp_path / "runs", shard=(i, 2))) for i in (1, 2)]
    ids = [{r.case_id for r in s.results} for s in shards]
    assert ids[0] and ids[1] and not ids[0] & ids[1]
    assert ids[0] | ids[1] == {f"q{i}" for i in range(8)}
    merged = merge_runs([s.directory for s in shards if s.directory], tmp_path / "merged")
    assert merged.status == "complete" and len(merged.results) == 8
    assert merged.merged_from == tuple(s.run_id for s in shards)
    assert merged.conditions is not None and merged.conditions.calls == 8
    with pytest.raises(ResultsError, match="shards must not overlap"):
        merge_runs([shards[0].directory, shards[0].directory], tmp_path / "again")  # type: ignore[list-item]


def test_merge_refuses_runs_of_different_suites(write, model_server: LocalServer, tmp_path: Path) -> None:
    a = run_suite(write("a.yaml", suite_text(model_server.base_url, count=1)), RunOptions(out=tmp_path / "r"))
    b = run_suite(write("b.yaml", suite_text(model_server.base_url, count=2)), RunOptions(out=tmp_path / "r"))
    with pytest.raises(ResultsError, match="the shards ran different suites"):
        merge_runs([a.directory, b.directory], tmp_path / "m")  # type: ignore[list-item]


def test_bad_shard_and_existing_run_dir(write, model_server: LocalServer, tmp_path: Path) -> None:
    path = write("tiny.yaml", suite_text(model_server.base_url, count=1))
    with pytest.raises(ConfigError, match=r"--shard: expected i/n with 1 <= i <= n, got 3/2"):
        run_suite(path, RunOptions(shard=(3, 2)))
    run_suite(path, RunOptions(out=tmp_path / "runs", run_id="same"))
    with pytest.raises(ConfigError, match="expected a new run directory"):
        run_suite(path, RunOptions(out=tmp_path / "runs", run_id="same"))


def test_callable_target(write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "myapp.py").write_text(
        "async def answer(vars):\n    return 'ORDER-' + vars['order']\n\n"
        "def broken(vars):\n    raise ValueError('no such order')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    path = write("app.yaml", """
        name: app
        target: {callable: "myapp:answer"}
        cases:
          - {id: a, vars: {order: "1"}, expect: [{equals: ORDER-1}]}
          - {id: b, vars: {order: "2"}, expect: [{equals: ORDER-3}]}
    """)
    run = run_suite(path, RunOptions(out=tmp_path / "runs"))
    assert [(r.case_id, r.passed, r.output) for r in run.results] == [("a", True, "ORDER-1"), ("b", False, "ORDER-2")]
    path.write_text(path.read_text().replace("myapp:answer", "myapp:broken"))
    run = run_suite(path, RunOptions(out=tmp_path / "runs"))
    assert {r.error for r in run.results} == {"client: myapp:broken raised ValueError: no such order"}


def test_rate_limiter_spaces_requests() -> None:
    async def go() -> float:
        limiter = RateLimiter(requests_per_minute=600, tokens_per_minute=None)
        start = time.monotonic()
        await asyncio.gather(*(limiter.acquire(10) for _ in range(5)))
        return time.monotonic() - start

    assert asyncio.run(go()) >= 0.4 - 1e-3  # 5 requests at 600/min: slots 0.1 s apart


def _spawn(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # As from a terminal: a test run started in the background (nohup, `&`) inherits an ignored SIGINT, and
    # Python only turns SIGINT into KeyboardInterrupt when it is not ignored at start.
    return subprocess.Popen([sys.executable, "-m", "evalkit.cli", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_results(journal: Path, count: int, process: subprocess.Popen[str], limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if journal.exists() and len(journal.read_text().splitlines()) > count:
            return
        if process.poll() is not None:
            raise AssertionError(f"run ended early: {process.communicate()}")
        time.sleep(0.05)
    raise AssertionError("no results in time")


def test_kill_9_loses_only_calls_in_flight_and_resume_finishes(write, model_server: LocalServer,
                                                               tmp_path: Path) -> None:
    path = write("tiny.yaml", suite_text(model_server.base_url, count=8, max_tokens=24))
    process = _spawn(["run", str(path), "--out", "runs", "--run-id", "k", "-q", "--concurrency", "1"], tmp_path)
    journal = tmp_path / "runs" / "k" / "journal.jsonl"
    _wait_for_results(journal, 3, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = {r.key: r.call.response_id for r in read_journal(journal)}
    assert 2 <= len(before) < 8
    run = resume_run(tmp_path / "runs" / "k")
    assert run.status == "complete"
    assert sorted(r.case_id for r in run.results) == [f"q{i}" for i in range(8)]
    after = {r.key: r.call.response_id for r in run.results}
    assert all(after[key] == response for key, response in before.items())  # finished cases were not redone
    assert len(read_journal(journal)) == 8


def test_ctrl_c_saves_what_finished_and_exits_130(write, model_server: LocalServer, tmp_path: Path) -> None:
    path = write("tiny.yaml", suite_text(model_server.base_url, count=8, max_tokens=24))
    process = _spawn(["run", str(path), "--out", "runs", "--run-id", "c", "-q", "--concurrency", "1"], tmp_path)
    _wait_for_results(tmp_path / "runs" / "c" / "journal.jsonl", 2, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    lines = stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("evalkit: error: interrupted: ")
    assert lines[0].endswith("finish with: evalkit run --resume runs/c")
    run = load_run(tmp_path / "runs" / "c")
    assert run.status == "interrupted" and 2 <= len(run.results) < 8


def test_resume_refuses_a_changed_suite(write, model_server: LocalServer, tmp_path: Path) -> None:
    path = write("tiny.yaml", suite_text(model_server.base_url, count=1))
    run = run_suite(path, RunOptions(out=tmp_path / "runs"))
    path.write_text(path.read_text().replace("Answer in a few words.", "Answer briefly."))
    with pytest.raises(ResultsError, match="changed since the run started"):
        resume_run(run.directory)  # type: ignore[arg-type]


# --- runs that fail as a whole, resumes, locks, signals (no model needed: a canned loopback server) ----------


def canned_suite(base_url: str, count: int = 6, extra: str = "") -> str:
    cases = "\n".join(f"  - {{id: c{i}, vars: {{n: '{i}'}}}}" for i in range(count))
    return (f"name: canned\ntarget:\n  provider: openai\n  base_url: {base_url}\n  model: canned-model\n"
            f"  max_attempts: 2\n  user: 'Say {{{{ n }}}}'\n{extra}concurrency: 1\n"
            f"defaults: {{expect: [{{length: {{min: 1}}}}]}}\ncases:\n{cases}\n")


def _closed_port() -> int:
    from evalkit.providers.local import free_port

    return free_port()  # nothing listens there: every connection is refused


@pytest.mark.parametrize(("answer", "expected_calls", "reason"), [
    (lambda key: (401, "Incorrect API key provided"), 1, "the provider refused the credentials"),
    (lambda key: (500, "internal error"), 10, "the first 10 calls all failed after retries"),
])
def test_a_provider_that_fails_every_call_fails_the_run_early(write, tmp_path: Path, answer, expected_calls: int,
                                                               reason: str, capsys: pytest.CaptureFixture[str]) -> None:
    from evalkit.cli import main

    with CannedServer(answer) as server:
        path = write("s.yaml", canned_suite(server.base_url, count=40))
        code = main(["run", str(path), "--out", "runs", "--run-id", "f", "-q"])
        received = len(server.received)
    assert code == 5  # RUN_FAILED, not 0 after 900 attempts
    err = capsys.readouterr().err
    assert err.startswith("evalkit: error: runs/f: run failed: ") and reason in err
    # 401 is never retried; a 500 is retried once (max_attempts 2) for each of the first 10 calls.
    assert received == expected_calls * (1 if expected_calls == 1 else 2)
    run = load_run(tmp_path / "runs" / "f")
    assert run.status == "failed" and reason in (run.failure or "")
    from evalkit.baseline import save_baseline

    with pytest.raises(Exception, match="expected a complete run"):
        save_baseline(run, tmp_path / "b.json")


def test_connection_refused_on_every_call_fails_fast(write, tmp_path: Path) -> None:
    path = write("s.yaml", canned_suite(f"http://127.0.0.1:{_closed_port()}/v1", count=50))
    run = run_suite(path, RunOptions(out=tmp_path / "runs"))
    assert run.status == "failed"
    assert len(run.results) == 10 and sum(len(c.attempts) for r in run.results for c in r.calls) == 20
    assert "connection" in (run.failure or "")


def test_a_run_whose_calls_mostly_fail_but_some_succeed_is_not_failed(write, tmp_path: Path) -> None:
    answers = iter([200] + [500] * 100)
    with CannedServer(lambda key: (next(answers), "x")) as server:
        run = run_suite(write("s.yaml", canned_suite(server.base_url, count=12)), RunOptions(out=tmp_path / "r"))
    assert run.status == "complete" and sum(r.passed for r in run.results) == 1


def test_a_second_resume_and_sessions_combine(write, tmp_path: Path) -> None:
    with CannedServer(delay=0.05) as server:
        path = write("s.yaml", canned_suite(server.base_url, count=9))
        # Three sessions: a run killed after 3 results, a resume killed after 6, a resume that finishes.
        for stop_after in (3, 6):
            args = ["run", "--resume", "runs/k"] if stop_after == 6 else ["run", str(path), "--out", "runs",
                                                                          "--run-id", "k"]
            process = _spawn([*args, "-q"], tmp_path)
            _wait_for_results(tmp_path / "runs" / "k" / "journal.jsonl", stop_after, process)
            process.send_signal(signal.SIGKILL)
            process.wait()
        run = resume_run(tmp_path / "runs" / "k")
    assert run.status == "complete" and len(run.results) == 9
    assert [s.index for s in run.sessions] == [0, 1, 2]
    assert [s.status for s in run.sessions] == ["killed", "killed", "complete"]
    c = run.conditions
    assert c is not None and c.duration_s is not None and c.throughput_per_s is not None
    assert c.duration_s == pytest.approx(sum(s.duration_s or 0 for s in run.sessions), abs=0.01)
    # One call at a time, each at least 50 ms: no session, and not the whole run, can beat 20 calls/s.
    assert c.throughput_per_s <= 20 and c.in_flight_max == 1 and c.in_flight_mean is not None
    assert c.in_flight_mean <= 1.0
    assert sorted({r.session for r in run.results}) == [0, 1, 2]


def test_a_kill_after_the_last_result_is_finished_by_resume(write, tmp_path: Path) -> None:
    with CannedServer() as server:
        run = run_suite(write("s.yaml", canned_suite(server.base_url, count=3)), RunOptions(out=tmp_path / "r"))
    assert run.directory is not None
    manifest = run.directory / "manifest.json"
    data = json.loads(manifest.read_text())
    data.update(status="running", sessions=[])  # killed before the final manifest write
    manifest.write_text(json.dumps(data))
    from evalkit.baseline import save_baseline

    with pytest.raises(Exception, match="expected a complete run"):
        save_baseline(load_run(run.directory), tmp_path / "b.json")
    finished = resume_run(run.directory)
    assert finished.status == "complete" and json.loads(manifest.read_text())["status"] == "complete"
    assert [s.status for s in finished.sessions] == ["killed"]
    save_baseline(load_run(run.directory), tmp_path / "b.json")


def test_two_resumes_of_one_run_cannot_both_run(write, tmp_path: Path) -> None:
    from evalkit.results import RunLock

    with CannedServer() as server:
        run = run_suite(write("s.yaml", canned_suite(server.base_url, count=2)), RunOptions(out=tmp_path / "r"))
        assert run.directory is not None
        with RunLock(run.directory), pytest.raises(ResultsError, match=r"expected no other evalkit running this "
                                                                        r"run, got pid \d+ holding its lock"):
            resume_run(run.directory)


def test_resume_from_another_working_directory(write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with CannedServer(delay=0.05) as server:
        path = write("project/suites/s.yaml", canned_suite(server.base_url, count=6))
        monkeypatch.chdir(tmp_path / "project")
        process = _spawn(["run", "suites/s.yaml", "--out", "runs", "--run-id", "k", "-q"], tmp_path / "project")
        _wait_for_results(tmp_path / "project" / "runs" / "k" / "journal.jsonl", 2, process)
        process.send_signal(signal.SIGKILL)
        process.wait()
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        run = resume_run(tmp_path / "project" / "runs" / "k")
    assert run.status == "complete" and len(run.results) == 6
    assert path.exists()


def test_a_corrupt_journal_line_is_reported_and_its_case_redone(write, tmp_path: Path) -> None:
    from evalkit.cli import main

    with CannedServer() as server:
        run = run_suite(write("s.yaml", canned_suite(server.base_url, count=4)), RunOptions(out=tmp_path / "r"))
        assert run.directory is not None
        journal = run.directory / "journal.jsonl"
        lines = journal.read_text().splitlines()
        corrupted = lines[2][:40] + "#garbage#" + lines[2][60:]
        journal.write_text("\n".join([*lines[:2], corrupted, *lines[3:]]) + "\n")
        broken = load_run(run.directory)
        assert broken.status == "incomplete" and len(broken.results) == 3
        assert len(broken.problems) == 1 and broken.problems[0].startswith(f"{journal}:3: unreadable line")
        assert main(["show", str(run.directory)]) == 0
        from evalkit.baseline import save_baseline

        with pytest.raises(Exception, match="expected a complete run"):
            save_baseline(broken, tmp_path / "b.json")
        redone = resume_run(run.directory)
    assert redone.status == "complete" and len(redone.results) == 4
    assert len(redone.problems) == 1  # the corrupt line stays in the append-only journal, reported


def test_sigterm_saves_marks_interrupted_and_exits_143(write, tmp_path: Path) -> None:
    with CannedServer(delay=0.05) as server:
        path = write("s.yaml", canned_suite(server.base_url, count=40))
        process = _spawn(["run", str(path), "--out", "runs", "--run-id", "t", "-q"], tmp_path)
        _wait_for_results(tmp_path / "runs" / "t" / "journal.jsonl", 2, process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert stderr.strip().splitlines() == [stderr.strip()]  # one line
    assert stderr.startswith("evalkit: error: terminated: ") and "evalkit run --resume runs/t" in stderr
    run = load_run(tmp_path / "runs" / "t")
    assert run.status == "interrupted" and 2 <= len(run.results) < 40
