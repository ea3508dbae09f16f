"""``evalkit ab``: the interleaved A/B's decision (simulated) and the command end to end on loopback servers."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from evalkit import ExitCode
from evalkit.ab import interleaved_order, latency_decision
from evalkit.cli import main
from evalkit.results import load_run

from .conftest import REPO

# --- the decision, simulated -------------------------------------------------------------------------------


def _pairs(rng: np.random.Generator, n: int, slowdown: float, drift: bool) -> tuple[np.ndarray, np.ndarray]:
    """Paired latencies: each case has its own cost (lognormal, sd 0.5 in log), every call its own noise
    (sd 0.45: a shared, noisy endpoint); with ``drift`` the load doubles halfway through the window, hitting
    both calls of a pair."""
    case = rng.lognormal(np.log(0.8), 0.5, n)
    load = np.where(np.arange(n) >= n // 2, 2.0, 1.0) if drift else np.ones(n)
    a = case * load * rng.lognormal(0.0, 0.45, n)
    b = case * load * slowdown * rng.lognormal(0.0, 0.45, n)
    return a, b


@pytest.mark.parametrize("drift", [False, True], ids=["steady", "load-drift"])
def test_a_planted_slowdown_is_caught_and_identical_arms_rarely_flagged(drift: bool) -> None:
    """1,000 seeds of 200 pairs at a 10% latency margin: +30% is a regression in at least 90% of seeds, and
    identical arms are a regression in at most 5% — also when the load doubles mid-window (the pairing
    cancels it; an unpaired comparison of the two halves would not)."""
    planted = identical = size = 0
    seeds = 1000
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        a, b = _pairs(rng, 200, 1.30, drift)
        planted += latency_decision(a, b, margin=0.10, alpha=0.05)[0] == "regression"
        a, b = _pairs(rng, 200, 1.0, drift)
        identical += latency_decision(a, b, margin=0.10, alpha=0.05)[0] == "regression"
        size += latency_decision(a, b, margin=0.0, alpha=0.05)[0] == "regression"  # at a zero margin: the size
    print(f"\n{'load drift' if drift else 'steady'}: +30% caught {planted}/{seeds}, identical flagged "
          f"{identical}/{seeds} (10% margin), {size}/{seeds} (zero margin)")
    assert planted >= 0.90 * seeds
    assert identical <= 0.05 * seeds
    assert size <= 0.065 * seeds  # alpha 5%, with room for 1,000 draws' sampling error


def test_identical_arms_within_the_margin_pass_and_a_faster_arm_is_an_improvement() -> None:
    rng = np.random.default_rng(7)
    a, b = _pairs(rng, 1000, 1.0, False)
    assert latency_decision(a, b, margin=0.10, alpha=0.05)[0] == "pass"
    a, b = _pairs(rng, 1000, 0.7, False)
    verdict, p, test = latency_decision(a, b, margin=0.10, alpha=0.05)
    assert (verdict, test) == ("improvement", "wilcoxon-log-ratio: better") and p < 0.05


def test_the_order_is_interleaved_seeded_and_balanced() -> None:
    ids = [f"c{i}" for i in range(400)]
    order = interleaved_order(ids, 1, seed=3)
    assert order == interleaved_order(ids, 1, seed=3) != interleaved_order(ids, 1, seed=4)
    assert [case for _, case, _ in order[::2]] == ids == [case for _, case, _ in order[1::2]]  # pairs adjacent
    firsts = sum(arm == "a" for arm, _, _ in order[::2])
    assert 160 <= firsts <= 240  # a fair coin per case, not a fixed alternation


# --- the command, on loopback servers ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def slow_marker_server() -> Iterator[str]:
    """A 20 ms OpenAI-compatible server that answers 1.5 times slower when the messages contain SLOWPROMPT."""
    port = _free_port()
    process = subprocess.Popen([sys.executable, str(REPO / "bench" / "fixed_latency_server.py"), str(port), "20",
                                "SLOWPROMPT", "1.5"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().startswith("ready")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _suite(folder: Path, url: str, cases: int = 60) -> Path:
    (folder / "cases.jsonl").write_text("".join(json.dumps({"id": f"c{i}", "vars": {"i": i}}) + "\n"
                                                for i in range(cases)))
    (folder / "prompt.md").write_text("You answer questions.\n")
    (folder / "fast.md").write_text("You answer questions.\n")
    (folder / "slow.md").write_text("You answer questions. SLOWPROMPT\n")
    suite = folder / "s.yaml"
    suite.write_text(
        "name: abdemo\n"
        f"target: {{provider: openai, base_url: '{url}', model: bench-model, params: {{max_tokens: 16}},\n"
        "         system: {file: prompt.md}, user: 'Question number {{ i }}?'}\n"
        "concurrency: 1\n"
        "defaults: {expect: [{icontains: forty}]}\n"
        "gate: {block_on: [pass_rate, latency_p95], inconclusive: warn}\n"
        "cases: cases.jsonl\n")
    return suite


def test_a_slower_prompt_is_a_latency_regression_and_the_arms_ran_interleaved(
        tmp_path: Path, slow_marker_server: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-real")
    suite = _suite(tmp_path, slow_marker_server)
    code = main(["ab", str(suite), "--a", "fast.md", "--b", "slow.md", "--id", "slow", "--json", "ab.json",
                 "--markdown", "ab.md"])
    out = capsys.readouterr().out
    result = json.loads(Path("ab.json").read_text())
    metrics = {m["name"]: m for m in result["metrics"]}
    assert code == ExitCode.REGRESSION == 1, out
    assert result["format"] == "evalkit.ab/1" and result["verdict"] == "regression"
    assert metrics["latency_p95"]["verdict"] == "regression" and metrics["latency_p95"]["p_value"] < 0.05
    assert 1.3 < metrics["latency_p95"]["tests"]["median_ratio"] < 1.7
    assert metrics["pass_rate"]["verdict"] != "regression" and metrics["pass_rate"]["n"] == 60
    assert out.startswith("A/B REGRESSION (latency_p95): abdemo · A = fast.md, B = slow.md")
    assert "### evalkit ab: `abdemo`" in Path("ab.md").read_text()
    # Both arms are ordinary runs, and their calls started in the seeded interleaved order.
    runs = {arm: load_run(Path(".evalkit/ab/slow") / arm) for arm in ("a", "b")}
    assert all(run.status == "complete" and len(run.results) == 60 for run in runs.values())
    started = sorted((r.calls[0].started_at, arm, r.case_id) for arm, run in runs.items() for r in run.results)
    assert [(arm, case) for _, arm, case in started] == [(arm, case) for arm, case, _ in result["order"]]
    assert result["order"] == [list(item) for item in interleaved_order([f"c{i}" for i in range(60)], 1, 0)]


def test_identical_prompts_are_never_a_regression(tmp_path: Path, slow_marker_server: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-real")
    suite = _suite(tmp_path, slow_marker_server)
    code = main(["ab", str(suite), "--a", "fast.md", "--b", "fast.md", "--id", "same", "--json", "ab.json"])
    metrics = {m["name"]: m for m in json.loads(Path("ab.json").read_text())["metrics"]}
    assert code == ExitCode.OK and metrics["latency_p95"]["verdict"] in ("pass", "inconclusive")


def test_against_a_git_revision(tmp_path: Path, slow_marker_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Arm A is the suite as committed (read with git show, no checkout); arm B the working tree."""
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-real")
    suite = _suite(tmp_path, slow_marker_server, cases=40)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t.invalid"}
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, env={**env, "PATH": "/usr/bin:/bin"})
    (tmp_path / "prompt.md").write_text("You answer questions. SLOWPROMPT\n")
    assert main(["ab", str(suite), "--baseline-ref", "HEAD", "--id", "ref", "--json", "ab.json"]) == 1
    result = json.loads(Path("ab.json").read_text())
    assert result["arms"] == {"a": "git HEAD", "b": "working tree"}
    assert {m["name"]: m["verdict"] for m in result["metrics"]}["latency_p95"] == "regression"
    assert (tmp_path / "prompt.md").read_text().endswith("SLOWPROMPT\n")  # the working tree is untouched


@pytest.mark.parametrize(("args", "message"), [
    (["--baseline-ref", "no-such-ref"], "evalkit: error: --baseline-ref: expected a git revision, got "
                                        "'no-such-ref' (no such commit, branch or tag)\n"),
    (["--a", "fast.md", "--b", "missing.md"], "evalkit: error: --b: missing.md: expected a readable UTF-8 prompt "
                                              "file, got FileNotFoundError: No such file or directory\n"),
    (["--baseline-ref", "HEAD", "--a", "fast.md"], "evalkit: error: evalkit ab: expected either --baseline-ref "
                                                   "REF or both --a and --b, got both\n"),
    (["--a", "fast.md"], "evalkit: error: evalkit ab: expected both --a and --b, got only --a\n"),
])
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    suite = _suite(tmp_path, "http://127.0.0.1:9/v1")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    assert main(["ab", str(suite), *args]) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err == message
    assert not Path(".evalkit/ab").exists()  # nothing ran


def test_the_base_arm_is_read_from_git_with_files_outside_the_suite_folder(tmp_path: Path) -> None:
    """A suite in suites/ reading ../prompts/p.md: the copy at REF keeps that layout and holds REF's text."""
    from evalkit import load_suite
    from evalkit.ab import suite_at_ref

    (tmp_path / "suites").mkdir()
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "p.md").write_text("You answer, as committed.\n")
    (tmp_path / "suites" / "s.yaml").write_text("name: s\ntarget: {provider: local, system: {file: ../prompts/p.md}, "
                                                "user: 'Q {{ i }}'}\ncases: [{id: a, vars: {i: 1}}]\n")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t.invalid", "PATH": "/usr/bin:/bin"}
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, env=env)
    (tmp_path / "prompts" / "p.md").write_text("You answer, as edited.\n")
    copy = suite_at_ref(tmp_path / "suites" / "s.yaml", "HEAD", tmp_path / "copy")
    suite = load_suite(copy)
    assert suite.target.system is not None and suite.target.system.source == "You answer, as committed.\n"
    assert (tmp_path / "prompts" / "p.md").read_text() == "You answer, as edited.\n"
