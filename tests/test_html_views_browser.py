"""The judge, coverage and history views in a real browser (Debian's headless Chromium, via Playwright):
each page loads with no console error, page error, dialog or request; its key elements are there; every
chart is described; screenshots in light and dark go to ``$EVALKIT_SCREENSHOTS``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from .browser import Chromium, Opened
from .test_html_browser import _charts_are_described, _shot
from .test_html_views import coverage_page, judge_pages, seed_store

pytestmark = pytest.mark.integration
T = TypeVar("T")


def _apart(make: Callable[..., T], *args: Any) -> T:
    """Runs ``make`` in its own thread: Playwright's sync API holds this thread's event loop, and making the
    records (a judge's calibration, a run) runs one of its own."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(make, *args).result()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    with Chromium() as browser:
        yield browser


def _open(chromium: Chromium, path: Path, scheme: str = "light") -> Opened:
    opened = chromium.open(path, color_scheme=scheme)
    assert opened.problems == []
    return opened


def test_judge_view(chromium: Chromium, tmp_path: Path) -> None:
    path, record = _apart(judge_pages, tmp_path)
    opened = _open(chromium, path)
    p = opened.page
    assert [a.inner_text() for a in p.locator("nav a").all()] == [
        "Judge quality", "Drift check", f"Anchors the judge gets wrong ({p.locator('table.wrong tbody tr').count()})"]
    labels = record["metrics"]["confusion"]["labels"]  # type: ignore[index]
    assert p.locator("table.confusion tbody tr").count() == len(labels)
    assert p.locator("table.confusion td.agree").count() == len(labels)
    assert p.inner_text("#judge .banner .big") == str(record["status"]).replace("_", " ").upper()
    assert p.inner_text("#judge-check .banner .big") == "DRIFTED"
    assert _charts_are_described(opened) == 1
    _shot(opened, "judge-light")
    _shot(opened, "judge-confusion", "#judge")
    dark = _open(chromium, path, "dark")
    assert dark.page.evaluate("getComputedStyle(document.documentElement).backgroundColor") == "rgb(13, 17, 23)"
    _shot(dark, "judge-dark")


def test_coverage_view(chromium: Chromium, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened = _open(chromium, _apart(coverage_page, tmp_path, monkeypatch))
    p = opened.page
    assert "Traffic coverage" in [a.inner_text() for a in p.locator("nav a").all()]
    assert p.locator("#coverage table.routes tbody tr").count() == 6  # five routes with traffic, one without
    assert p.locator("#coverage .tile").count() == 4
    assert _charts_are_described(opened) >= 4  # the run's charts and the share chart
    _shot(opened, "coverage", "#coverage")
    _shot(_open(chromium, tmp_path / "coverage.html", "dark"), "coverage-dark", "#coverage")


def test_history_view(chromium: Chromium, tmp_path: Path) -> None:
    from evalkit.report.html_history import render_history_html

    seed_store(tmp_path / "h.db")
    path = tmp_path / "history.html"
    path.write_text(render_history_html("svc", tmp_path / "h.db"), "utf-8")
    opened = _open(chromium, path)
    p = opened.page
    assert [a.inner_text() for a in p.locator("nav a").all()] == ["Runs over time", "Time of day", "Load ladder"]
    assert p.locator("#history ol.changes li").count() >= 2  # p95 latency and TTFT both shift at run-12
    assert _charts_are_described(opened) == 4 + 2 + 1  # four series, heatmap and bands, the ladder
    assert "knee: 8" in p.inner_text("#ladder")
    _shot(opened, "history-series", "#history")
    _shot(opened, "history-diurnal", "#diurnal")
    _shot(opened, "history-ladder", "#ladder")
    dark = _open(chromium, path, "dark")
    _shot(dark, "history-dark", "#diurnal")
