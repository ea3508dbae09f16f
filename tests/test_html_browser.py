"""The HTML report in a real browser (Debian's headless Chromium, driven by Playwright).

Each report loads with no console error, no page error, no dialog and no network request; its views work
(filters, search, pages, detail views, dark mode); text under test stays inert. Screenshots of every view
go to ``$EVALKIT_SCREENSHOTS`` (default ``.evalkit/screenshots`` in the repository) to be looked at.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.sync_api import expect

from evalkit import render_html
from evalkit.compare import GateConfig, compare
from evalkit.providers.local import MODEL_NAME, LocalServer

from .browser import Chromium, Opened
from .conftest import REPO
from .test_html import HOSTILE, make_run, pair

pytestmark = pytest.mark.integration

SHOTS = Path(os.environ.get("EVALKIT_SCREENSHOTS") or REPO / ".evalkit" / "screenshots")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    with Chromium() as browser:
        yield browser


def _open(chromium: Chromium, page: str, where: Path, *, scheme: str = "light") -> Opened:
    where.write_text(page, "utf-8")
    opened = chromium.open(where, color_scheme=scheme)
    assert opened.problems == []
    return opened


def _shot(opened: Opened, name: str, selector: str | None = None) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    if selector is None:
        opened.page.evaluate("window.scrollTo(0, 0)")  # else the sticky header is drawn mid-page
        opened.page.screenshot(path=SHOTS / f"{name}.png", full_page=True)
    else:  # a section taller than the window is captured in pieces: keep the sticky header out of them
        opened.page.evaluate("document.querySelector('header.top').style.position = 'static'")
        opened.page.locator(selector).screenshot(path=SHOTS / f"{name}.png")
        opened.page.evaluate("document.querySelector('header.top').style.position = ''")


def _charts_are_described(opened: Opened) -> int:
    """Every chart: role img, a title and a description, a caption and its data as a table. Returns how many."""
    return int(opened.page.evaluate("""() => {
        const charts = [...document.querySelectorAll("svg.chart-svg")];
        for (const svg of charts) {
            const figure = svg.closest("figure");
            if (svg.getAttribute("role") !== "img" || !svg.querySelector("title").textContent.trim()
                || !svg.querySelector("desc").textContent.trim() || !figure.querySelector("figcaption")
                || figure.querySelectorAll("table tbody tr").length === 0) return -1;
        }
        return charts.length;
    }"""))


def test_comparison_report(chromium: Chromium, tmp_path: Path) -> None:
    run, baseline, comparison = pair(80, agents=4)
    page = render_html(run, comparison, baseline=baseline)
    opened = _open(chromium, page, tmp_path / "comparison.html")
    p = opened.page
    assert p.inner_text("#verdict .banner .big") == comparison.verdict.upper()
    assert p.locator("#metrics table.metrics").first.locator("tbody tr").count() == len(comparison.metrics)
    assert _charts_are_described(opened) >= 5
    assert [a.inner_text() for a in p.locator("nav a").all()] == [
        "Verdict", "Metrics", "Cases", "Pass rates", "Latency and TTFT", "Errors", "Agent trajectories", "Conditions"]

    # The flipped cases come first, pass→fail before fail→pass, each open with its outputs side by side.
    flips = {f.case_id: f for f in comparison.flips}
    cards = p.locator("#case-list > li")
    assert cards.count() == len(flips) == 8
    assert [c.get_attribute("class") for c in cards.all()] == ["down"] * 6 + ["up"] * 2
    first = cards.first
    flip = flips[first.get_attribute("data-case") or ""]
    before, after = first.locator(".side pre.out").all()[:2]
    assert (before.inner_text(), after.inner_text()) == (flip.before, flip.after)
    assert before.locator("del").all_inner_texts() == ["We refund within 30 days. "]
    assert after.locator("ins").count() == 0 and "✖ icontains — expected to contain '30 days'" in first.inner_text()
    _shot(opened, "comparison-light")

    p.select_option("#case-filter", "all")
    assert p.inner_text("#case-count") == "Showing 1–25 of 84 matching cases (84 in all)."
    p.click("#case-next")
    assert p.inner_text("#case-page") == "page 2 of 4" and cards.first.get_attribute("data-case") == "case-025"
    p.fill("#case-search", "case-042")
    expect(p.locator("#case-count")).to_have_text(re.compile("^Showing 1–1 of 1 "))  # after the search's debounce
    p.fill("#case-search", "")
    p.select_option("#case-label", "route:billing")
    expect(p.locator("#case-count")).to_have_text(re.compile("^Showing 1–25 of 27 "))
    p.click("#verdict a[data-filter='up']")  # the verdict's links filter the cases
    assert p.input_value("#case-filter") == "up" and cards.count() == 1  # up, and still only route billing
    assert opened.problems == []

    dark = _open(chromium, page, tmp_path / "comparison-dark.html", scheme="dark")
    colours = dark.page.evaluate("""() => [getComputedStyle(document.documentElement).backgroundColor,
        getComputedStyle(document.querySelector("svg.chart-svg text")).fill]""")
    light = p.evaluate("""() => [getComputedStyle(document.documentElement).backgroundColor,
        getComputedStyle(document.querySelector("svg.chart-svg text")).fill]""")
    assert light == ["rgb(255, 255, 255)", "rgb(31, 35, 40)"] and colours == ["rgb(13, 17, 23)", "rgb(230, 237, 243)"]
    _shot(dark, "comparison-dark")
    for part in ("verdict", "metrics", "pass-rates", "latency", "errors", "conditions"):
        _shot(dark if part in ("metrics", "latency") else opened, f"comparison-{part}", f"#{part}")


def test_run_report(chromium: Chromium, tmp_path: Path) -> None:
    run = make_run(45, agents=3, seed=4)
    opened = _open(chromium, render_html(run), tmp_path / "run.html")
    p = opened.page
    assert p.locator("#verdict, #metrics").count() == 0
    assert p.inner_text("#summary .tile .k >> nth=0") == "PASS RATE"  # upper-cased by the stylesheet
    # all, 3 routes, 5 tags (one per route, smoke, agent)
    assert p.locator("#pass-rates > .scroll tbody tr").count() == 1 + 3 + 5
    assert _charts_are_described(opened) == 4  # pass rates, latency, TTFT, errors
    failing = sum(1 for c in {r.case_id for r in run.results} if any(
        not r.passed for r in run.results if r.case_id == c))
    assert p.input_value("#case-filter") == "failing"
    assert p.inner_text("#case-count").startswith(f"Showing 1–{min(failing, 25)} of {failing} matching")
    assert all(re.match(r"(✖ fail|⚠ error)", t) for t in p.locator("#case-list > li summary").all_inner_texts())
    _shot(opened, "run-light")


def test_agent_trajectories(chromium: Chromium, tmp_path: Path) -> None:
    opened = _open(chromium, render_html(make_run(6, agents=4)), tmp_path / "agents.html")
    p = opened.page
    assert p.locator("#agents table tbody tr").all_inner_texts()[1].split("\t")[:6] == [
        "refund_order", "1", "6", "2", "2", "2"]
    p.click("#agents a[data-filter='agent']")
    assert p.locator("#case-list > li").count() == 4
    p.click("#case-list > li >> nth=0 >> summary")  # the detail is drawn on the toggle event
    steps = p.locator("#case-list > li >> nth=0 >> ol.traj > li")
    expect(steps).to_have_count(8)
    assert [s.get_attribute("class") for s in steps.all()] == [
        "user", "model", "tool", "model", "tool fault", "tool", "model", "end"]
    texts = steps.all_inner_texts()
    assert texts[0] == "User (simulated)\nI want my money back for order A-1001."
    assert texts[1].startswith("Model turn 1 · latency ") and "stopped: tool_call" in texts[1]
    assert 'asks for tool lookup_order (call_1) with:\n{"order_id":"A-1001"}' in texts[1]
    assert texts[4].startswith("Tool refund_order · attempt 1 · write · ✖ failed · status 503 · server · 400 ms")
    assert "⚡ fault injected: server (after the side effect, profile flaky-writes) — response lost" in texts[4]
    assert "⚠ the write happened although the agent saw an error" in texts[4]
    assert texts[5].startswith("Tool refund_order · attempt 2 (retry) · write · ✔ ok")
    assert texts[7] == "ended: complete after 1.80 s"
    p.click("#case-list > li >> nth=1 >> summary")
    expect(p.locator("#case-list > li >> nth=1")).to_contain_text("✖ state — expected 1 refund row for A-1001, got 2")
    _shot(opened, "agent-trajectory", "#case-list > li >> nth=0")
    assert opened.problems == []


@pytest.mark.parametrize("policy", ["kept", "removed"])
def test_untrusted_text_stays_inert(chromium: Chromium, tmp_path: Path, policy: str) -> None:
    """Escaping alone keeps it inert (the page's Content-Security-Policy removed), and with the policy too."""
    run, baseline, _ = pair(30, agents=8, hostile=True)
    run = replace(run, results=(replace(run.results[0], tags=(HOSTILE,), route=HOSTILE, case_error=HOSTILE),
                                *run.results[1:]))
    page = render_html(run, compare(run, baseline, GateConfig()), baseline=baseline)
    if policy == "removed":
        page, found = re.subn(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
        assert found == 1
    opened = _open(chromium, page, tmp_path / "hostile.html")
    p = opened.page
    p.select_option("#case-filter", "all")
    p.fill("#case-search", "pwned")  # outputs, errors, tags, routes and tool arguments are searched
    expect(p.locator("#case-count")).to_have_text(re.compile("^Showing 1–3 of 3 "))
    for summary in p.locator("#case-list > li summary").all():
        summary.click()
    expect(p.locator("#case-list .detail")).to_have_count(3)
    cards = {c.get_attribute("data-case"): c for c in p.locator("#case-list > li").all()}
    assert set(cards) == {"case-000", "case-001", "agent-07"}
    assert cards["case-000"].locator(".chip").all_inner_texts()[:2] == [f"route: {HOSTILE}", HOSTILE]
    assert f"⚠ {HOSTILE}" in cards["case-000"].inner_text()
    assert f"Sure! {HOSTILE}" in cards["case-001"].locator("pre.out").all_inner_texts()
    arguments = cards["agent-07"].locator("li.tool pre.out").all_inner_texts()
    assert f'"note": "{HOSTILE.replace(chr(34), chr(92) + chr(34))}",' in arguments[2]  # as JSON, indented
    assert HOSTILE in p.inner_text("#conditions")  # a model name the provider returned
    assert HOSTILE in p.inner_text("#pass-rates > .scroll table")  # a tag
    assert p.evaluate("""() => [window.__pwned === undefined, document.scripts.length,
        document.querySelectorAll("img, textarea, iframe, object, embed").length,
        document.querySelectorAll("a[href^='javascript:']").length]""") == [True, 2, 0, 0]
    assert opened.problems == []  # no CSP violation reported, no dialog, no error, no request
    _shot(opened, f"untrusted-text-policy-{policy}")


def test_a_real_run_on_the_embedded_model(chromium: Chromium, model_server: LocalServer, tmp_path: Path) -> None:
    """Two runs of a small suite on the real model, the second compared with the first, reported by the CLI."""
    cases = "\n".join(f"  - id: q{i}\n    tags: [{'math' if i < 2 else 'words'}]\n    vars: {{question: {q!r}}}"
                      for i, q in enumerate(["What is 2+2?", "What is 3+3?", "Name a colour.", "Say hello."]))
    (tmp_path / "tiny.yaml").write_text(
        "name: tiny\n"
        f"target:\n  provider: openai\n  base_url: {model_server.base_url}\n  model: {MODEL_NAME}\n"
        "  params: {max_tokens: 16, temperature: 0.7}\n"
        "  user: 'Answer briefly: {{ question }}'\n"
        "concurrency: 2\ndefaults:\n  expect:\n    - length: {max: 200}\n    - not-icontains: sorry\n"
        f"cases:\n{cases}\n", "utf-8")

    def evalkit(*args: str) -> str:  # a process of its own: Playwright's sync API holds this thread's event loop
        done = subprocess.run([sys.executable, "-m", "evalkit.cli", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    evalkit("run", "tiny.yaml", "--run-id", "base", "-q", "--seed", "1")
    evalkit("baseline", "save", ".evalkit/runs/base", "--to", "base.json")
    evalkit("run", "tiny.yaml", "--run-id", "head", "-q", "--seed", "2")
    assert evalkit("report", ".evalkit/runs/head", "--baseline", "base.json", "--out", "real.html").startswith(
        "wrote real.html (")
    opened = chromium.open(tmp_path / "real.html")
    assert opened.problems == []
    p = opened.page
    assert p.locator("section").evaluate_all("s => s.map(x => x.id)") == [
        "verdict", "metrics", "cases", "pass-rates", "latency", "errors", "conditions"]
    assert p.inner_text("#conditions").count(MODEL_NAME) >= 2
    p.select_option("#case-filter", "all")
    assert p.locator("#case-list > li").count() == 4
    p.click("#case-list > li >> nth=0 >> summary")
    expect(p.locator("#case-list > li >> nth=0")).to_contain_text("Model turn 1 · ")
    _shot(opened, "real-run")
