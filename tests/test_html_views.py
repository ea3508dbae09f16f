"""The judge, coverage and history views of the HTML report: built from real records (a scripted judge's
calibration and drift check, a run of a callable target against a traffic profile, runs in a SQLite store),
and the figures on the page are the records' own."""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from evalkit.analysis.ladder import summarise_ladder
from evalkit.analysis.traffic import save_profile
from evalkit.cli import main
from evalkit.errors import ExitCode
from evalkit.judges import load_calibration, load_judge
from evalkit.report.html_history import ladder_from_store, render_history_html
from evalkit.report.html_judge import render_judge_html
from evalkit.results import Run
from evalkit.store import open_store

from .history_runs import make_run, start
from .judge_scripted import ScriptedJudge
from .test_coverage import APP, COUNTS, profile_of, write_suite
from .test_judge_calibrate import make_judge

HOSTILE = '<script>alert(1)</script></textarea><a href="javascript:alert(2)">x</a>'


def _text(page: str) -> str:
    """The page's visible text, roughly (tags dropped, entities decoded), for assertions on figures."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


# --- judges -------------------------------------------------------------------------------------------------


def judge_pages(root: Path) -> tuple[Path, dict[str, object]]:
    """Calibrates a scripted judge whose first 12 human labels are wrong, checks it after its taste changed
    (drifted), and writes ``evalkit report --judge``. Returns the page and the calibration record."""
    saved = ScriptedJudge.accuracy, ScriptedJudge.retest_flip
    try:
        ScriptedJudge.accuracy, ScriptedJudge.retest_flip = 0.97, 0.03
        make_judge(root, human_noise=12)
        assert main(["judge", "calibrate", "quality", "-q"]) == ExitCode.OK
        ScriptedJudge.retest_flip = 0.2
        assert main(["judge", "check", "quality", "-q"]) == ExitCode.JUDGE_DRIFTED
    finally:
        ScriptedJudge.accuracy, ScriptedJudge.retest_flip = saved
    assert main(["report", "--judge", "quality", "--out", str(root / "judge.html")]) == ExitCode.OK
    return root / "judge.html", json.loads((root / "judges/quality/calibration.json").read_text())


def test_the_judge_view_shows_the_records_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page_path, record = judge_pages(tmp_path)
    assert "judge quality" in capsys.readouterr().out
    page = page_path.read_text()
    text = _text(page)
    metrics = record["metrics"]  # type: ignore[index]
    assert f"{str(record['status']).replace('_', ' ').upper()}" in text
    for reason in record["reasons"]:  # type: ignore[union-attr]
        assert str(reason) in text
    # The confusion matrix: every count of the record, in its cell.
    for i, row in enumerate(metrics["confusion"]["matrix"]):
        for j, count in enumerate(row):
            human, judge = metrics["confusion"]["labels"][i], metrics["confusion"]["labels"][j]
            assert f'aria-label="human {human}, judge {judge}: {count}' in page
    assert f"{metrics['kappa']['estimate']:.3f}" in text and metrics["kappa_kind"] in text
    tpr = metrics["tpr"]
    assert f"{tpr['estimate'] * 100:.1f}%" in text and f"({tpr['count']}/{tpr['n']}, Wilson)" in text
    assert "Krippendorff's alpha" in text
    # The anchors the judge gets wrong: the first 12 (human labels flipped) and any it missed on its own.
    wrong = [r["id"] for r in record["anchor_verdicts"] if r["verdicts"][0] not in (None, r["human"])]  # type: ignore[union-attr,index]
    assert {f"a{i:03d}" for i in range(12)} <= set(wrong)
    assert f"Anchors the judge gets wrong ({len(wrong)})" in text
    for anchor in wrong:
        assert f"<code>{anchor}</code>" in page
    # The drift check saved by `evalkit judge check`.
    assert "DRIFTED" in text and "anchors flipped against their calibration verdicts" in text
    assert 'id="judge-check"' in page and "flips vs calibration" in text


def test_the_judges_reasoning_is_inert(tmp_path: Path) -> None:
    ScriptedJudge.accuracy = 1.0
    try:
        make_judge(tmp_path, human_noise=3)
        assert main(["judge", "calibrate", "quality", "-q"]) == ExitCode.OK
    finally:
        ScriptedJudge.accuracy = 0.9
    calibration = load_calibration(load_judge("quality"))
    rows = [dict(r, reasoning=HOSTILE) for r in calibration.record["anchor_verdicts"]]
    page = render_judge_html(replace(calibration, record={**calibration.record, "anchor_verdicts": rows}))
    assert "<script>alert" not in page and "</textarea>" not in page and 'href="javascript:' not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;/textarea&gt;" in page


def test_report_judge_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_judge(tmp_path)
    assert main(["report", "--judge", "quality"]) == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "calibration.json: no calibration record" in err[0]
    assert main(["report", "run-dir", "--judge", "quality"]) == ExitCode.USAGE_ERROR
    err_text = capsys.readouterr().err
    assert "expected one of RUN_DIR, --judge NAME or --history SUITE, got RUN_DIR and --judge" in err_text


# --- coverage -----------------------------------------------------------------------------------------------


def coverage_page(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run of a callable target over three routes, reported against a five-route traffic profile."""
    (root / "coverage_app.py").write_text(APP)
    monkeypatch.syspath_prepend(str(root))
    write_suite(root / "s.yaml", {"general": (3, 5), "shipping": (18, 2), "returns": (9, 1), "loyalty": (2, 0)})
    save_profile(profile_of(COUNTS), root / "p.json")
    assert main(["run", "s.yaml", "--run-id", "r", "-q"]) == ExitCode.OK
    assert main(["report", ".evalkit/runs/r", "--traffic", "p.json", "--out", str(root / "coverage.html")]) == 0
    return root / "coverage.html"


def test_the_coverage_view_from_a_run_and_a_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.analysis.coverage import coverage
    from evalkit.analysis.traffic import load_profile
    from evalkit.results import load_run
    from evalkit.suite import load_suite

    page = coverage_page(tmp_path, monkeypatch).read_text()
    expected = coverage(load_suite(tmp_path / "s.yaml"), load_profile(tmp_path / "p.json"),
                        load_run(tmp_path / ".evalkit/runs/r"))
    text = _text(page)
    assert 'id="coverage"' in page and "Traffic share against case share per route" in text
    w = expected.weighted
    assert w is not None and w.estimate is not None and w.low is not None and w.high is not None
    assert f"{w.estimate * 100:.1f}% {w.low * 100:.1f}% – {w.high * 100:.1f}%" in " ".join(text.split())
    assert f"head coverage {expected.head_coverage * 100:.0f}%" in " ".join(text.split())
    for r in expected.routes:
        assert f"<code>{r.route}</code>" in page
        assert f"{r.share * 100:.1f}%" in text and r.status in text
    assert "missing" in text and "unreached" in text  # billing and tail have no cases; loyalty no traffic


def test_the_gates_html_has_the_coverage_view_the_suite_asks_for(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "coverage_app.py").write_text(APP)
    monkeypatch.syspath_prepend(str(tmp_path))
    write_suite(tmp_path / "s.yaml", {"general": (3, 5), "shipping": (18, 2)}, extra="coverage: {traffic: p.json}")
    save_profile(profile_of(COUNTS), tmp_path / "p.json")
    assert main(["run", "s.yaml", "--run-id", "base", "-q"]) == ExitCode.OK
    assert main(["baseline", "save", ".evalkit/runs/base", "--to", "b.json"]) == ExitCode.OK
    assert main(["run", "s.yaml", "--run-id", "r", "-q"]) == ExitCode.OK
    main(["compare", ".evalkit/runs/r", "--baseline", "b.json", "--html", "gate.html", "--json", "gate.json"])
    page = Path("gate.html").read_text()
    head = json.loads(Path("gate.json").read_text())["coverage"]["head_coverage"]
    assert 'id="verdict"' in page and 'id="coverage"' in page
    assert f"head coverage {head * 100:.0f}%" in " ".join(_text(page).split())


def test_a_run_without_coverage_has_no_coverage_view(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "coverage_app.py").write_text(APP)
    monkeypatch.syspath_prepend(str(tmp_path))
    write_suite(tmp_path / "s.yaml", {"general": (1, 1)})
    assert main(["run", "s.yaml", "--run-id", "r", "-q"]) == ExitCode.OK
    assert main(["report", ".evalkit/runs/r", "--out", "r.html"]) == ExitCode.OK
    assert 'id="coverage"' not in Path("r.html").read_text()


# --- history ------------------------------------------------------------------------------------------------


def history_runs(seed: int = 0) -> tuple[list[Run], list[Run]]:
    """24 runs over a fortnight at varied hours (latency doubles from the 13th on; afternoons are slower) and
    a five-step load ladder whose latency departs from flat at concurrency 8."""
    rng = np.random.default_rng(seed)
    runs = []
    for k in range(24):
        hour = (k * 7) % 24
        slow = (2.0 if k >= 12 else 1.0) * (1.5 if 12 <= hour < 18 else 1.0)
        latencies = list(np.exp(rng.normal(np.log(0.4), 0.15, 30)) * slow)
        runs.append(make_run(f"run-{k:02d}", start(k // 2 + (k % 2) * 0, hour), latencies,
                             model="model-a" if k < 12 else "model-b"))
    ladder = []
    for c, slowdown in ((1, 1.0), (2, 1.02), (4, 1.05), (8, 1.9), (16, 3.6)):
        latencies = list(np.exp(rng.normal(np.log(0.4), 0.1, 40)) * slowdown)
        run = make_run(f"svc-ladder-c{c}", start(20, 3), latencies, concurrency=c)
        assert run.conditions is not None
        ladder.append(replace(run, conditions=replace(run.conditions, duration_s=16 * slowdown / c)))
    return runs, ladder


def seed_store(url: Path) -> tuple[list[Run], list[Run]]:
    runs, ladder = history_runs()
    with open_store(url) as store:
        for run in runs:
            store.ingest(run)
        for run in ladder:
            store.ingest(run, kind="ladder", sweep_id="svc-ladder-1")
    return runs, ladder


def test_the_history_view_from_a_store(tmp_path: Path) -> None:
    runs, _ = seed_store(tmp_path / "h.db")
    assert main(["report", "--history", "svc", "--store", str(tmp_path / "h.db"), "--since", "3650d",
                 "--out", "history.html"]) == ExitCode.OK
    page = Path("history.html").read_text()
    text = " ".join(_text(page).split())
    assert all(f'id="{s}"' in page for s in ("history", "diurnal", "ladder"))
    # The latency change point at the 13th run, with the model change recorded there.
    assert "run-12" in text and re.search(r"▼ run run-12 \([^)]*\): [\d,]+ ms → [\d,]+ ms \(\+\d+%\)", text)
    assert "also changed: served model model-a → model-b" in text.split("▼ run run-12", 1)[1][:300]
    # The heatmap's counts per cell are the calls' (30 per run, at the run's hour and weekday).
    assert "Median latency by hour and weekday" in text and f"{30 * len(runs):,} live calls" in text
    assert "Latency percentiles by hour" in text and "knee: 8" in text


def test_the_ladder_from_the_store_is_summarise_ladders(tmp_path: Path) -> None:
    _, ladder = seed_store(tmp_path / "h.db")
    expected = summarise_ladder(ladder, sweep_id="svc-ladder-1")
    with open_store(tmp_path / "h.db") as store:
        got = ladder_from_store(store, "svc")
    assert got is not None and expected.knee == got.knee == 8 and got.best_throughput == expected.best_throughput
    for mine, theirs in zip(got.steps, expected.steps, strict=True):
        assert mine.concurrency == theirs.concurrency and mine.calls == theirs.calls
        assert mine.median_ratio == pytest.approx(theirs.median_ratio)
        assert (mine.p_value is None) == (theirs.p_value is None)
        if mine.p_value is not None:
            assert mine.p_value == pytest.approx(theirs.p_value)
        assert mine.throughput_per_s == pytest.approx(theirs.throughput_per_s)
        assert mine.latency_p95 == pytest.approx(theirs.latency_p95)
    assert got.verdict == expected.verdict


def test_history_of_an_unknown_suite_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed_store(tmp_path / "h.db")
    assert main(["report", "--history", "nope", "--store", str(tmp_path / "h.db")]) == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expected runs of suite 'nope' in the history store" in err[0]


def test_render_history_html_is_the_library_call(tmp_path: Path) -> None:
    seed_store(tmp_path / "h.db")
    page = render_history_html("svc", tmp_path / "h.db")
    assert page.startswith("<!DOCTYPE html>") and "Load ladder" in page


# --- the PR workflow ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["template", ".github/workflows/prompt-pr.yml"])
def test_the_pr_workflow_uploads_the_html_and_links_it_from_the_comment(name: str, tmp_path: Path) -> None:
    import os
    import subprocess

    import yaml

    from .test_workflows import WORKFLOWS

    steps = yaml.safe_load(WORKFLOWS[name])["jobs"]["gate"]["steps"]
    names = [s.get("name") for s in steps]
    gate = steps[names.index("Run and compare with the base branch's baselines")]
    upload = steps[names.index("Upload results")]
    comment = steps[names.index("Post or update the PR comment")]
    assert '--html "report-${name}.html"' in gate["run"]
    assert "report-*.html" in upload["with"]["path"] and upload["id"] == "upload"
    assert names.index("Upload results") < names.index("Post or update the PR comment")  # the link exists first
    assert comment["env"]["ARTIFACT_URL"] == "${{ steps.upload.outputs.artifact-url }}"
    assert comment["env"]["RUN_URL"] == ("${{ github.server_url }}/${{ github.repository }}/actions/runs/"
                                         "${{ github.run_id }}")
    # The script itself, with a stand-in `evalkit` that shows the comment it would post.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "evalkit").write_text('#!/bin/sh\ncat "$4"\n')
    (bin_dir / "evalkit").chmod(0o755)
    (tmp_path / "report.md").write_text("### suite\n")
    (tmp_path / "report-support.html").write_text("<!DOCTYPE html>")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "RUN_URL": "https://github.example/o/r/actions/runs/7", "ARTIFACT_URL": ""}
    shown = subprocess.run(["bash", "-e", "-c", comment["run"]], cwd=tmp_path, env=env, capture_output=True,
                           text=True, check=True).stdout
    assert "[download evalkit-results](https://github.example/o/r/actions/runs/7)" in shown
    (tmp_path / "report.md").write_text("### suite\n")
    env["ARTIFACT_URL"] = "https://github.example/o/r/actions/runs/7/artifacts/99"
    shown = subprocess.run(["bash", "-e", "-c", comment["run"]], cwd=tmp_path, env=env, capture_output=True,
                           text=True, check=True).stdout
    assert "[download evalkit-results](https://github.example/o/r/actions/runs/7/artifacts/99)" in shown
