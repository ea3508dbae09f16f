"""Renderers: Markdown, JUnit XML, JSON and GitHub annotations of one comparison."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import numpy as np

from evalkit.compare import Comparison, GateConfig, compare
from evalkit.report import render_annotations, render_junit, render_markdown
from evalkit.report.markdown import MARKER

from .test_compare import _baseline, _samples


def _comparison() -> Comparison:
    ids = [f"c{i}" for i in range(200)]
    before = _baseline(_samples({c: [True] for c in ids} | {"gone": [True]}), run_id="base")
    now = _baseline(_samples({c: [i % 4 != 0] for i, c in enumerate(ids)} | {"new": [False]},
                             rng=np.random.default_rng(1)), run_id="head")
    return compare(now, before, GateConfig())


def test_markdown_report() -> None:
    text = render_markdown(_comparison())
    assert text.startswith(MARKER + "\n## evalkit: `s` — 🔴 **regression**")
    assert "REGRESSION: pass rate -25.0 pts (90% CI" in text
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
    assert data["format"] == "evalkit.comparison/1"
    assert data["verdict"] == "regression" and data["exit_code"] == 1
    assert data["metrics"][0]["name"] == "pass_rate" and data["metrics"][0]["tests"]["lost"] == 50


def test_github_annotations() -> None:
    lines = render_annotations(_comparison(), file="baselines/s.json").splitlines()
    assert lines[0].startswith("::error file=baselines/s.json,title=evalkit s::REGRESSION: pass rate -25.0 pts")
    assert any(line.startswith("::error file=baselines/s.json,title=pass_rate::pass_rate: regression")
               for line in lines)
    assert any(line.startswith("::warning file=baselines/s.json,title=pass→fail c0::") for line in lines)
