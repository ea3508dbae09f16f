"""Renderers: Markdown, JUnit XML, JSON, GitHub annotations and the terminal, checked against each other."""

from __future__ import annotations

import io
import json
import math
import re
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from rich.console import Console

from evalkit.compare import Comparison, GateConfig, Metric, compare
from evalkit.report import render_annotations, render_comparison, render_junit, render_markdown
from evalkit.report.cells import verdict_line
from evalkit.report.markdown import MARKER

from .test_compare import _baseline, _history, _samples, run_summary


def _comparison() -> Comparison:
    ids = [f"c{i}" for i in range(200)]
    before = _baseline(_samples({c: [True] for c in ids} | {"gone": [True]}), run_id="base")
    now = _baseline(_samples({c: [i % 4 != 0] for i, c in enumerate(ids)} | {"new": [False]},
                             rng=np.random.default_rng(1)), run_id="head")
    return compare(now, before, GateConfig())


def test_markdown_report() -> None:
    text = render_markdown(_comparison())
    assert text.startswith(MARKER + "\n## evalkit: `s` — 🔴 **regression**")
    assert "REGRESSION (pass_rate): pass rate -25.0 pts (90% CI" in text
    assert "| 🔴 regression | `pass_rate` | 200 | 100.0% | 75.0% | -25.0 pts |" in text
    assert "### Flipped cases (50 pass→fail, 0 fail→pass)" in text
    assert "| `c0` | pass→fail (1/1 → 0/1) | c0:True | c0:False |" in text
    assert "- only in the baseline (1): `gone`" in text and "- only in this run (1): `new`" in text


def test_junit_report_is_valid_xml_with_a_testcase_per_flipped_case() -> None:
    root = ET.fromstring(render_junit(_comparison()))
    metrics, cases = root.findall("testsuite")
    assert metrics.get("failures") == "1"
    failed = [tc.get("name") for tc in cases.findall("testcase") if tc.find("failure") is not None]
    assert len(failed) == 50 and "c0" in failed
    assert [tc.get("name") for tc in cases.findall("testcase") if tc.find("skipped") is not None] == ["gone"]


def test_json_report_round_trips() -> None:
    data = json.loads(json.dumps(_comparison().to_dict()))
    assert data["format"] == "evalkit.comparison/2"
    assert data["verdict"] == "regression" and data["exit_code"] == 1 and data["decided_by"] == ["pass_rate"]
    assert data["metrics"][0]["name"] == "pass_rate" and data["metrics"][0]["tests"]["lost"] == 50
    assert data["policy"] == {"source": "caller", "in_force": data["config"], "pending": [], "overrides": []}


def test_github_annotations() -> None:
    lines = render_annotations(_comparison(), file="baselines/s.json").splitlines()
    assert lines[0].startswith("::error file=baselines/s.json,title=evalkit s::REGRESSION (pass_rate): pass rate "
                               "-25.0 pts")
    assert any(line.startswith("::error file=baselines/s.json,title=pass_rate::pass_rate: regression")
               for line in lines)
    assert any(line.startswith("::warning file=baselines/s.json,title=pass→fail c0::") for line in lines)


# --- one comparison, four renderings, every number cross-checked --------------------------------------


def _rich_comparison() -> Comparison:
    """Every kind of row: a pass-rate regression, slices, a graded score, latency judged over 5 runs, an
    error rate, a pending gate change and a command-line override."""
    rng = np.random.default_rng(11)
    ids = [f"c{i}" for i in range(300)]
    tags = {c: (("billing",) if i % 3 == 0 else ("returns",)) for i, c in enumerate(ids)}
    base_scores = {c: float(rng.uniform(0.4, 1.0)) for c in ids}
    worse_scores = {c: v - 0.05 + float(rng.normal(0, 0.1)) for c, v in base_scores.items()}
    before = _baseline(_samples({c: [True] for c in ids}, tags=tags, score=base_scores), run_id="base",
                       gate={"block_on": ["pass_rate", "latency_p95"], "margins": {"pass_rate": 0.02}},
                       runs=_history([0.0981, 0.1043, 0.1002, 0.0957, 0.1016], errors=2))
    now = _baseline(_samples({c: [i % 7 != 0] for i, c in enumerate(ids)}, tags=tags, score=worse_scores),
                    run_id="head", gate={"block_on": ["pass_rate"], "alpha": 0.1},
                    runs=(run_summary("head", 0.1391, errors=9),))
    return compare(now, before, overrides={"inconclusive_blocks": False})


def _decimals(text: str) -> int:
    match = re.search(r"\.(\d+)", text)
    return len(match.group(1)) if match else 0


def _parse(metric: Metric, text: str, signed: bool) -> tuple[float, float]:
    """A rendered value back on the metric's scale, and half a unit of its last digit on that scale."""
    text = text.replace(",", "").replace(" pts", "").replace(" ms", "").strip()
    if metric.kind == "latency" and not signed:
        value = float(text.removesuffix("ms"))
        return value / 1000, 0.5 * 10 ** -_decimals(text) / 1000
    if text.endswith("%") or metric.kind in ("binary", "rate") or metric.kind == "latency":
        value = float(text.rstrip("%"))
        return value / 100, 0.5 * 10 ** -_decimals(text) / 100
    return float(text), 0.5 * 10 ** -_decimals(text)


def _check(metric: Metric, text: str, expected: float | None, signed: bool = False) -> None:
    if expected is None:
        assert text in ("–", "")
        return
    value, half_unit = _parse(metric, text, signed)
    assert abs(value - expected) <= half_unit + 1e-12, (metric.name, text, expected)


def _check_interval(metric: Metric, text: str, joint: str) -> None:
    if metric.ci_low is None:
        assert text == "–"
        return
    low, high = re.split(re.escape(joint), text)
    _check(metric, low, metric.ci_low, True)
    _check(metric, high, metric.ci_high, True)


def _check_p(text: str, expected: float | None) -> None:
    if expected is None:
        assert text == "–"
    else:
        assert float(text) == pytest.approx(expected, rel=0.05, abs=1e-300)


def test_terminal_markdown_junit_and_json_agree_on_every_number() -> None:
    comparison = _rich_comparison()
    data = json.loads(json.dumps(comparison.to_dict()))
    metrics = {m.name: m for m in (*comparison.metrics, *comparison.slices)}
    assert set(metrics) >= {"pass_rate", "pass_rate[billing]", "pass_rate[returns]", "score:graded", "latency_p95",
                            "error_rate"}
    assert {m["name"] for m in (*data["metrics"], *data["slices"])} == set(metrics)
    assert data["policy"]["pending"] and data["policy"]["overrides"]

    # JSON carries the numbers themselves.
    for row in (*data["metrics"], *data["slices"]):
        m = metrics[row["name"]]
        for key in ("verdict", "n", "baseline", "current", "difference", "ci_low", "ci_high", "margin", "p_value",
                    "test"):
            assert row[key] == getattr(m, key)

    # JUnit: exact values in properties, the same verdict line in system-out.
    root = ET.fromstring(render_junit(comparison))
    suite = root.find("testsuite")
    assert suite is not None
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    for name, m in metrics.items():
        for key in ("baseline", "current", "difference", "ci_low", "ci_high", "margin", "p_value"):
            value = getattr(m, key)
            assert properties[f"{name}.{key}"] == ("" if value is None else repr(value))
        assert properties[f"{name}.verdict"] == m.verdict and properties[f"{name}.test"] == m.test
    assert properties["verdict"] == data["verdict"] and properties["exit_code"] == str(data["exit_code"])
    for change in data["policy"]["pending"]:
        assert properties[f"policy.pending.{change['setting']}"] == f"{change['before']} → {change['after']}"
    for change in data["policy"]["overrides"]:
        assert properties[f"policy.override.{change['setting']}"] == (
            f"{change['before']} → {change['after']} ({change['source']})")
    line = verdict_line(comparison)
    system_out = suite.find("system-out")
    assert system_out is not None and system_out.text is not None and system_out.text.splitlines()[0] == line

    # Markdown: one row per metric, every cell parsed back.
    markdown = render_markdown(comparison)
    assert line.replace("|", "\\|") in markdown
    rows = {re.search(r"`([^`]+)`", r).group(1): r for r in markdown.splitlines()  # type: ignore[union-attr]
            if r.startswith("| ") and "`" in r.split("|")[2]}
    for name, m in metrics.items():
        cells = [c.strip() for c in rows[name].strip("|").split(" | ")]
        assert cells[0].endswith(m.verdict)
        assert cells[2] == (f"{m.n} run{'s' if m.n != 1 else ''}" if m.n_unit == "runs" else str(m.n))
        _check(m, cells[3], m.baseline)
        _check(m, cells[4], m.current)
        _check(m, cells[5], m.difference, True)
        _check_interval(m, cells[6], " … ")
        _check(m, cells[7], m.margin, True)
        _check_p(cells[8], m.p_value)
        assert cells[9] == m.test.replace("|", "\\|")

    # Terminal (80 columns, no terminal): one line per metric, nothing cut.
    out = io.StringIO()
    render_comparison(comparison, Console(file=out, width=80, force_terminal=False))
    text = out.getvalue()
    assert "…" not in text.replace("…+", "").replace("…-", "")  # the interval's joint is the only ellipsis
    assert text.splitlines()[0] == line
    for name, m in metrics.items():
        label = name.removeprefix("pass_rate[").removesuffix("]") if name.startswith("pass_rate[") else name
        row = next(r for r in text.splitlines() if re.match(rf"{re.escape(label)}( \*)?\s{{2,}}", r))
        cells = re.split(r"\s{2,}", row.strip())
        assert cells[1] == m.verdict.replace("_", " ")
        _check(m, cells[3], m.baseline)
        _check(m, cells[4], m.current)
        _check(m, cells[5], m.difference, True)
        _check_interval(m, cells[6], "…")
        _check(m, cells[7], m.margin, True)
        _check_p(cells[8], m.p_value)
        assert cells[9] == m.test
    for change in comparison.policy.pending:
        assert str(change) in text and str(change) in markdown and str(change) in line


def test_latency_values_are_written_whole() -> None:
    metric = Metric("latency_p95", "latency", 5, 0.0061234, 0.0073, 0.19213, 0.0123, 0.4, 0.9, 0.1, "regression",
                    True, p_value=7.5e-05)
    from evalkit.report.cells import format_p, format_value

    assert format_value(metric, metric.baseline, compact=True) == "6.12ms"
    assert format_value(metric, 2.5, compact=True) == "2,500ms"
    assert format_value(metric, metric.difference, True) == "+19.2%"
    assert format_p(metric.p_value) == "7.5e-05" and not math.isnan(metric.margin)
