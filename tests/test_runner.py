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

from .servers import FaultProxy

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
    assert json.loads(lines[0]) == {"format": "evalkit.journal/1", "run_id": "r1"}
    assert len(lines) == 5
    manifest = json.loads((tmp_path / "runs" / "r1" / "manifest.json").read_text())
    assert manifest["format"] == "evalkit.run/1" and manifest["status"] == "complete"
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
    return subprocess.Popen([sys.executable, "-m", "evalkit.cli", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


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
