"""The HTML report without a browser: what it contains, its statistics, escaping, size budget and the CLI.

The builders here make runs the way the runner records them (single-turn prompt cases with retries and
errors, agent cases with tool events, faults and a simulated user) and are shared with the browser tests.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from evalkit import ExitCode
from evalkit.baseline import Baseline, baseline_of
from evalkit.cli import main
from evalkit.compare import Comparison, GateConfig, compare
from evalkit.conditions import Conditions, summarise_calls
from evalkit.core.score import Score
from evalkit.core.trajectory import Fault, ToolCall, ToolEvent, Trajectory, UserTurn
from evalkit.providers.base import Attempt, CallRecord
from evalkit.results import CaseResult, Journal, Run, SuiteIdentity, write_manifest

MODEL = "SmolLM2-135M-Instruct"
HOSTILE = ('<script>window.__pwned = 1</script></textarea></pre><img src=x onerror="window.__pwned = 2">'
           '<a href="javascript:window.__pwned = 3">click me</a> {{ 7*7 }} ${7*7}')
"""Text under test that would run if it were ever parsed as HTML (or as a template)."""
ROUTES = ("billing", "returns", "shipping")
WORDS = ("thanks for reaching out we can refund the order within 30 days of delivery please keep the receipt "
         "and the original packaging our team replies within one business day")


def conditions(hour: int = 10, **overrides: object) -> Conditions:
    base = Conditions(
        started_at_utc=f"2026-11-23T{hour:02d}:00:00+00:00", started_at_local=f"2026-11-23T{hour:02d}:00:00+00:00",
        timezone="UTC", hour_local=hour, weekday="Monday", host_platform="Linux-6.1-x86_64",
        loadavg_start=(0.42, 0.35, 0.3), concurrency_configured=4, provider="local", endpoint="127.0.0.1:8321",
        model_requested=MODEL, evalkit_version="0.1.0", python_version="3.11.2",
        versions={"openai": "1.50.0", "jinja2": "3.1.6"}, git_commit="0123456789abcdef", git_dirty=False,
        suite_sha256="ab" * 32, template_sha256={"prompts/support.md": "cd" * 32}, rendered_prompts_sha256="ef" * 32,
        rate_limit={"requests_per_minute": 600.0}, host_cpus=2, ended_at_utc=f"2026-11-23T{hour:02d}:05:00+00:00",
        ended_at_local=f"2026-11-23T{hour:02d}:05:00+00:00", duration_s=300.0, loadavg_end=(0.9, 0.5, 0.4),
        in_flight_mean=3.2, in_flight_max=4, throughput_per_s=0.4,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def text(rng: np.random.Generator, words: int) -> str:
    return " ".join(rng.choice(WORDS.split(), size=words)).capitalize() + "."


def call(output: str, rng: np.random.Generator, *, fail: str | None = None, retried: str | None = None,
         model: str = MODEL, tools: tuple[ToolCall, ...] = ()) -> CallRecord:
    """A model call as the provider layer records it: a failed attempt before success, or a failure."""
    latency, ttft = float(rng.gamma(6, 0.08)), float(rng.gamma(4, 0.02))
    attempts = []
    if retried:
        attempts.append(Attempt(1, 0.0, 0.3, retried, "HTTP 429: slow down" if retried == "rate_limit" else
                                "HTTP 503: overloaded", 429 if retried == "rate_limit" else 503, 1.0, 0.8))
    if fail:
        attempts += [Attempt(len(attempts) + 1, 1.0, 2.0, fail, f"{fail}: no answer", None, None, 0.5),
                     Attempt(len(attempts) + 2, 3.0, 2.0, fail, f"{fail}: no answer")]
        return CallRecord(provider="local", model_requested=MODEL, started_at="2026-11-23T10:00:01+00:00",
                          total_s=4.5, stop_reason="error", attempts=tuple(attempts), error_class=fail,
                          error=f"{fail}: no answer (after {len(attempts)} attempts)", in_flight_at_start=2)
    attempts.append(Attempt(len(attempts) + 1, 2.0, latency))
    return CallRecord(
        provider="local", model_requested=MODEL, started_at="2026-11-23T10:00:01+00:00", output=output,
        model_returned=model, system_fingerprint="b4321-cpu", ttft_s=ttft, latency_s=latency,
        total_s=latency + (1.1 if retried else 0.0), prompt_tokens=120, completion_tokens=len(output) // 4,
        prompt_tokens_est=118, completion_tokens_est=len(output) // 4, stop_reason_raw="stop",
        stop_reason="tool_call" if tools else "complete", tool_calls=tools, attempts=tuple(attempts),
        in_flight_at_start=int(rng.integers(1, 5)),
    )


def prompt_result(case_id: str, passed: bool, output: str, rng: np.random.Generator, *, route: str,
                  repeat: int = 0, fail: str | None = None, retried: str | None = None) -> CaseResult:
    record = call(output, rng, fail=fail, retried=retried)
    scores = (Score("icontains", passed, None, "" if passed else "expected to contain '30 days'"),
              Score("length", True, 0.8, "42 words"))
    if fail:
        scores, output = (), ""
    return CaseResult(case_id, repeat, passed and not fail, output, scores, Trajectory((record,)),
                      tags=(route, "smoke") if int(case_id[-1]) % 3 == 0 else (route,), route=route,
                      prompt_sha256="aa" * 32)


def agent_result(case_id: str, passed: bool, rng: np.random.Generator, *, fault: bool) -> CaseResult:
    """An agent loop: a tool call that fails under an injected fault and is retried, a write, a user turn."""
    args = {"order_id": "A-1001", "note": HOSTILE if case_id.endswith("7") else "refund"}
    lookup = ToolCall("call_1", "lookup_order", json.dumps({"order_id": "A-1001"}))
    refund = ToolCall("call_2", "refund_order", json.dumps(args))
    steps: list[CallRecord | ToolEvent | UserTurn] = [
        UserTurn("I want my money back for order A-1001.", simulated=True),
        call("", rng, tools=(lookup,)),
        ToolEvent("call_1", "lookup_order", {"order_id": "A-1001"}, 1, "2026-11-23T10:00:02+00:00", 0.05,
                  result='{"status": "delivered", "total": 42.5}'),
        call("", rng, tools=(refund,)),
    ]
    if fault:
        steps.append(ToolEvent("call_2", "refund_order", args, 1, "2026-11-23T10:00:03+00:00", 0.4, "write",
                               ok=False, status="503", error_class="server", error="HTTP 503 (injected)",
                               fault=Fault("server", "after", "flaky-writes", "response lost"), side_effect=True))
    steps.append(ToolEvent("call_2", "refund_order", args, 2 if fault else 1, "2026-11-23T10:00:04+00:00", 0.12,
                           "write", result='{"refunded": true}', side_effect=True))
    final = "I have refunded order A-1001; you will see the money within 5 days."
    steps.append(call(final, rng))
    scores = (Score("contains", True, None, ""),
              Score("state", passed, None, "" if passed else "expected 1 refund row for A-1001, got 2"))
    return CaseResult(case_id, 0, passed, final, scores, Trajectory(tuple(steps), "complete", 1.8),
                      tags=("agent",), route="returns")


def make_run(n: int = 30, *, seed: int = 0, run_id: str = "head", fail_rate: float = 0.2, agents: int = 0,
             repeats: int = 1, hostile: bool = False, hour: int = 10, words: tuple[int, int] = (8, 40)) -> Run:
    """A complete run of n prompt cases (and some agent cases), with retried and failed calls."""
    rng = np.random.default_rng(seed)
    results = []
    for i in range(n):
        case_id = f"case-{i:03d}"
        route = ROUTES[i % len(ROUTES)]
        for repeat in range(repeats):
            output = text(rng, int(rng.integers(*words)))
            if hostile and i == 1:
                output = f"Sure! {HOSTILE}"
            fail = "timeout" if i % 17 == 5 else None
            retried = ("rate_limit", "server")[i % 2] if i % 7 == 3 else None
            results.append(prompt_result(case_id, bool(rng.random() > fail_rate), output, rng, route=route,
                                         repeat=repeat, fail=fail, retried=retried))
    results += [agent_result(f"agent-{i:02d}", i % 3 != 1, rng, fault=i % 2 == 0) for i in range(agents)]
    ids = tuple(dict.fromkeys(r.case_id for r in results))
    summary = summarise_calls([c for r in results for c in r.calls])
    suite = SuiteIdentity("support_reply", "suites/support_reply.yaml", "ab" * 32, ids, {"provider": "local"}, {})
    returned = summary.pop("models_returned")
    if hostile:
        returned = (*returned, f"{MODEL} {HOSTILE}")
    return Run(run_id, suite, repeats, replace(conditions(hour), models_returned=returned, **summary),
               tuple(results), status="complete")


def flipped(run: Run, *, down: int, up: int, run_id: str = "base") -> Run:
    """The same run with ``down`` passing cases failing before (now they pass) … seen as a baseline."""
    results, changed_down, changed_up = [], 0, 0
    for result in run.results:
        ok = result.trajectory.calls[0].ok and len(result.trajectory.steps) == 1
        if ok and result.passed and changed_up < up:
            changed_up += 1
            result = replace(result, passed=False, output=result.output.replace("30 days", "a month") + " Maybe.",
                             scores=(replace(result.scores[0], passed=False), *result.scores[1:]))
        elif ok and not result.passed and changed_down < down:
            changed_down += 1
            result = replace(result, passed=True, output="We refund within 30 days. " + result.output,
                             scores=(replace(result.scores[0], passed=True), *result.scores[1:]))
        results.append(result)
    return replace(run, run_id=run_id, results=tuple(results))


def pair(n: int = 60, **options: object) -> tuple[Run, Baseline, Comparison]:
    """A run, its baseline (some cases flip each way) and their comparison."""
    run = make_run(n, **options)  # type: ignore[arg-type]
    baseline = baseline_of(flipped(run, down=6, up=2))
    return run, baseline, compare(run, baseline, GateConfig())


def store(run: Run, directory: Path) -> Path:
    """Writes a run directory (manifest and journal) the CLI can read."""
    run = replace(run, directory=directory)
    directory.mkdir(parents=True)
    journal = Journal(directory, run.run_id)
    for result in run.results:
        journal.append(result)
    journal.close()
    write_manifest(run)
    return directory


def _payload(page: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="evalkit-cases">(.*?)</script>', page, re.S)
    assert found is not None
    return json.loads(found.group(1))  # type: ignore[no-any-return]


def _section_ids(page: str) -> list[str]:
    return re.findall(r'<section id="([a-z-]+)"', page)


def test_pass_rates_are_statsmodels_wilson_intervals() -> None:
    from statsmodels.stats.proportion import proportion_confint

    from evalkit.report.html_run import pass_rates

    run = make_run(40, seed=3)
    rates = {(r.kind, r.name): r for r in pass_rates(run.results)}
    for (kind, name), rate in rates.items():
        members = [r for r in run.results
                   if kind == "all" or (r.route == name if kind == "route" else name in r.tags)]
        passed = sum(r.passed for r in members)
        assert (rate.passed, rate.total) == (passed, len(members))
        assert (rate.low, rate.high) == pytest.approx(proportion_confint(passed, len(members), 0.05, "wilson"))
    assert set(rates) == {("all", ""), *(("route", r) for r in ROUTES), *(("tag", r) for r in ROUTES),
                          ("tag", "smoke")}
    # A reference value: 8 of 10 has the 95% Wilson interval 0.4902 to 0.9433.
    eight = pass_rates([replace(run.results[0], passed=i < 8, tags=(), route=None) for i in range(10)])[0]
    assert (eight.low, eight.high) == pytest.approx((0.4902, 0.9433), abs=1e-4)


def test_the_page_is_self_contained_and_allows_only_its_own_script() -> None:
    import base64
    import hashlib

    from evalkit import render_html

    run, baseline, comparison = pair(40, agents=2)
    page = render_html(run, comparison, baseline=baseline)
    assert page.startswith("<!DOCTYPE html>")
    # Nothing is fetched: no src, no link element, no url() or @import, no absolute URL but SVG namespaces.
    assert not re.search(r"\ssrc=|<link\b|@import|url\((?!#)", page)
    assert set(re.findall(r"https?://[^\s\"'<)]+", page)) <= {"http://www.w3.org/2000/svg",
                                                              "http://www.w3.org/1999/xlink"}
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert policy is not None and policy.group(1).startswith("default-src 'none'; script-src 'sha256-")
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(scripts) == 1 and page.count("<script") == 2  # the code, and the JSON data block
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy.group(1)
    assert render_html(run, comparison, baseline=baseline) == page  # the same input gives the same bytes


def test_untrusted_text_is_escaped_wherever_it_lands() -> None:
    from evalkit import render_html

    run, baseline, _ = pair(30, agents=8, hostile=True)
    tagged = replace(run, results=(replace(run.results[0], tags=(HOSTILE,), route=HOSTILE,
                                           case_error=HOSTILE), *run.results[1:]))
    page = render_html(tagged, compare(tagged, baseline, GateConfig()), baseline=baseline)
    assert HOSTILE not in page
    assert page.count("<script") == 2 and "<img" not in page and "<textarea" not in page
    links = re.findall(r"<a\s[^>]*>", page)  # only the page's own in-page links
    assert links == ['<a class="skip" href="#main">', *re.findall(r'<a href="#[a-z-]+"[^>]*>', page)]
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page  # models returned, tags in tables and charts
    payload = _payload(page)
    outputs = [rep.get("out", "") for case in payload["cases"] for rep in case["reps"]]  # type: ignore[index]
    assert f"Sure! {HOSTILE}" in outputs or any(HOSTILE in "".join(t for _, t in case.get("diff", ()))
                                               for case in payload["cases"])  # type: ignore[union-attr]


def test_sections_render_only_when_their_data_is_given() -> None:
    from evalkit import render_html
    from evalkit.report.html import Section, fragment

    run = make_run(20)
    assert _section_ids(render_html(run)) == ["summary", "pass-rates", "latency", "errors", "cases", "conditions"]
    run, baseline, comparison = pair(40, agents=3)
    extra = Section("judges", "Judges", fragment("macros.html.j2"))
    assert _section_ids(render_html(run, comparison, baseline=baseline, sections=[extra])) == [
        "verdict", "metrics", "cases", "pass-rates", "latency", "errors", "agents", "conditions", "judges"]
    with pytest.raises(ValueError, match="section id: expected a new"):
        render_html(run, sections=[replace(extra, id="cases")])
    with pytest.raises(ValueError, match=r"comparison.current_run: expected 'other' \(the run\), got 'head'"):
        render_html(replace(run, run_id="other"), comparison)
    empty = replace(run, results=(), conditions=None, status="running")
    assert _section_ids(render_html(empty)) == ["summary"]


def test_word_diff_and_water_filling() -> None:
    from evalkit.report.html_cases import diff_ops, water_level

    assert diff_ops("We refund within 30 days.", "We refund within a month.") == [
        [0, "We refund within "], [-1, "30 days"], [1, "a month"], [0, "."]]
    assert diff_ops("same", "same") == [[0, "same"]]
    assert diff_ops("", "new text") == [[1, "new text"]]
    assert water_level([10, 10, 10], 100) == 10  # everything fits whole
    assert water_level([10, 500, 1000], 610) == 300  # short texts whole, the long ones cut evenly
    assert water_level([10, 500, 1000], 10, floor=200) == 200  # never below the floor


def test_flipped_cases_carry_a_diff_and_outputs_share_the_size_budget() -> None:
    from evalkit import render_html
    from evalkit.report.html_cases import MIN_CHARS

    run, baseline, comparison = pair(200)
    long = replace(run, results=tuple(replace(r, output=r.output + " padding" * 400) for r in run.results))
    comparison = compare(long, baseline, GateConfig())
    roomy = _payload(render_html(long, comparison, baseline=baseline))
    tight_page = render_html(long, comparison, baseline=baseline, size_budget=500_000)
    tight = _payload(tight_page)
    assert len(tight_page.encode()) <= 500_000 < len(render_html(long, comparison, baseline=baseline).encode())
    by_id = {c["id"]: c for c in tight["cases"]}  # type: ignore[index]
    flips = {f.case_id: f for f in comparison.flips}
    assert len(flips) == sum(1 for c in by_id.values() if "diff" in c) > 0
    for case_id, flip in flips.items():  # flipped cases are shown whole, and only once (in their diff)
        ops = by_id[case_id]["diff"]
        assert "".join(t for op, t in ops if op >= 0) == flip.after
        assert "".join(t for op, t in ops if op <= 0) == flip.before
        assert "out" not in by_id[case_id]["reps"][0] and "before" not in by_id[case_id]
    cut = [rep for c in by_id.values() if "diff" not in c for rep in c["reps"] if "outCut" in rep]
    assert cut and all(len(rep["out"]) >= MIN_CHARS for rep in cut)
    assert all("outCut" not in rep for c in roomy["cases"] for rep in c["reps"])  # type: ignore[index]
    assert tight["filter"] == "flipped" and tight["compared"] is True


def test_the_case_payload_describes_trajectories() -> None:
    from evalkit import render_html

    run = make_run(12, agents=4)
    cases = {c["id"]: c for c in _payload(render_html(run))["cases"]}  # type: ignore[index]
    agent = cases["agent-00"]
    assert agent["agent"] == 1 and agent["route"] == "returns"
    steps = agent["reps"][0]["steps"]
    assert [s["k"] for s in steps] == ["u", "m", "t", "m", "t", "t", "m"]
    failed = steps[4]
    assert failed["fault"] == ["server", "after", "flaky-writes", "response lost"]
    assert (failed["ok"], failed["side"], failed["cls"], steps[5]["n"]) == (False, True, "server", 2)
    assert steps[3]["tools"][0][1] == "refund_order" and json.loads(steps[3]["tools"][0][2])["order_id"] == "A-1001"
    assert agent["reps"][0]["dur"] == 1.8
    assert ["state", 0, None, "expected 1 refund row for A-1001, got 2"] in cases["agent-01"]["reps"][0]["checks"]
    retried = cases["case-003"]["reps"][0]["steps"][0]
    assert [a[1] for a in retried["attempts"]] == ["server", None] and retried["attempts"][0][5] == 0.8
    assert "model" not in retried  # the run's one returned model is not repeated per call
    assert cases["case-005"]["err"] == 1 and "timeout" in cases["case-005"]["reps"][0]["error"]


def test_missing_matplotlib_is_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from evalkit import PrerequisiteError, render_html

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PrerequisiteError, match=r"install it with: pip install 'evalkit\[html\]'"):
        render_html(make_run(5))


def test_cli_report_and_compare_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(80, fail_rate=0.4)
    head = store(run, tmp_path / "runs" / "head")
    base = store(flipped(run, down=25, up=0), tmp_path / "runs" / "base")
    assert main(["baseline", "save", str(base), "--to", "base.json"]) == ExitCode.OK
    capsys.readouterr()

    assert main(["report", str(head)]) == ExitCode.OK
    out = capsys.readouterr().out
    assert re.fullmatch(r"wrote report\.html \(0\.\d MB, 80 results\)\n", out), out
    assert "summary" in _section_ids(Path("report.html").read_text())

    assert main(["report", str(head), "--baseline", "base.json", "--out", "cmp.html", "--margin", "0.05"]) == 0
    assert capsys.readouterr().out.endswith(", 80 results, verdict regression)\n")
    page = Path("cmp.html").read_text()
    assert "<p class=\"big\">REGRESSION</p>" in page and "margin 5.0 pts" in page

    code = main(["compare", str(head), "--baseline", "base.json", "--html", "gate.html"])
    assert code == ExitCode.REGRESSION
    assert _section_ids(Path("gate.html").read_text())[:3] == ["verdict", "metrics", "cases"]


def test_cli_report_bad_inputs_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nope")]) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err == (f"evalkit: error: {tmp_path / 'nope'}: not a run directory "
                                       "(expected manifest.json in it)\n")
    head = store(make_run(5), tmp_path / "head")
    assert main(["report", str(head), "--baseline", "missing.json"]) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err == ("evalkit: error: missing.json: baseline file not found "
                                       "(save one with: evalkit baseline save RUN)\n")
    (tmp_path / "file").write_text("")
    assert main(["report", str(head), "--out", str(tmp_path / "file" / "r.html")]) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err == (f"evalkit report: error: Invalid value for --out: {tmp_path / 'file'}/r.html: "
                                       f"cannot write: {tmp_path / 'file'} is a file, not a folder "
                                       "(see: evalkit report --help)\n")
    assert main(["report", str(head), "--out", "new/folder/r.html"]) == ExitCode.OK  # folders are made
    assert Path("new/folder/r.html").is_file()


def test_evalkit_help_does_not_load_the_report_s_heavy_imports() -> None:
    import subprocess
    import sys

    code = ("import sys; from evalkit.cli import main; main(['--help']); "
            "print(sorted(m for m in ('matplotlib', 'numpy', 'statsmodels') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]"
    assert "report" in done.stdout
