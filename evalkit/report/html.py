"""The HTML report: one self-contained file to look at before deciding whether a change is safe.

Everything is inline (styles, the script, SVG charts, the case data), and the page's Content-Security-Policy
forbids every network request and every script but its own (allowed by hash), so it opens from disk or from
a CI artifact and nothing in it can phone home. Text under test is untrusted: case outputs, tool results,
provider messages and model names are escaped by jinja2's autoescape on the page and set with
``textContent`` by the script; they are never parsed as HTML.

The page is a list of :class:`Section`. The built-in ones render only when their data is there (a
comparison, agent trajectories); more views are added by passing sections built with :func:`fragment`
from their own templates (a judge's calibration, coverage, history …).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

if TYPE_CHECKING:
    import jinja2

    from evalkit.baseline import Baseline
    from evalkit.compare import Comparison
    from evalkit.results import Run

SIZE_BUDGET = 4_500_000
"""Bytes the page aims to stay under: case outputs beyond what fits are shortened, each cut marked."""
PAGE_OVERHEAD = 20_000
"""Bytes of the page around its sections (head, navigation, footer), with room to spare."""
TEMPLATES = Path(__file__).with_name("html")
_SECTION_ID = re.compile(r"[a-z][a-z0-9-]*")
ICONS = {"regression": "✖", "inconclusive": "?", "pass": "✔", "improvement": "▲", "not_comparable": "–"}
"""A symbol beside every verdict word, so a verdict never rests on colour alone."""


@dataclass(frozen=True)
class Section:
    """One part of the page, with its entry in the page's navigation."""

    id: str
    """The anchor (``[a-z][a-z0-9-]*``), unique on the page."""
    title: str
    body: Markup
    """Trusted HTML: build it with :func:`fragment`, which escapes every value."""


@dataclass(frozen=True)
class ReportData:
    """What the built-in sections read."""

    run: Run
    comparison: Comparison | None = None
    baseline: Baseline | None = None
    size_budget: int = SIZE_BUDGET


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1000:,.0f} ms"


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False,
    )
    # tojson escapes <, >, & and ' as \u003c …, so the data block can never close its <script> element.
    environment.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "separators": (",", ":")}
    environment.filters.update(ms=_ms, pct=_pct)
    environment.globals["icons"] = ICONS
    return environment


def fragment(template: str, **context: Any) -> Markup:
    """Renders one of the report's templates (autoescaped) into trusted HTML for a :class:`Section`."""
    return Markup(_environment().get_template(template).render(**context))  # autoescaped: safe to mark


def _builders(data: ReportData) -> list[Callable[[ReportData], Section | None]]:
    from evalkit.report import html_agents, html_cases, html_compare, html_run

    views: list[Callable[[ReportData], Section | None]] = [
        html_run.summary_section, html_compare.verdict_section, html_compare.metrics_section,
    ]
    later = [html_run.pass_rate_section, html_run.latency_section, html_run.errors_section,
             html_agents.agents_section]
    if data.comparison is not None:  # flipped cases are what a reviewer reads right after the verdict
        return [*views, html_cases.cases_section, *later, html_run.conditions_section]
    return [*views, *later, html_cases.cases_section, html_run.conditions_section]


def render_html(run: Run, comparison: Comparison | None = None, *, baseline: Baseline | None = None,
                sections: Sequence[Section] = (), title: str | None = None,
                size_budget: int = SIZE_BUDGET) -> str:
    """The whole report as one HTML document.

    ``comparison`` (from :func:`evalkit.compare`) adds the verdict, metrics and flipped cases; ``baseline``
    (the one compared with) adds its outputs, checks and latencies beside the run's. ``sections`` are
    appended after the built-in ones. The page stays near ``size_budget`` bytes by shortening case outputs.
    """
    if comparison is not None and comparison.current_run and comparison.current_run != run.run_id:
        raise ValueError(f"comparison.current_run: expected {run.run_id!r} (the run), got {comparison.current_run!r}")
    if baseline is not None and comparison is not None and baseline.run_id != comparison.baseline_run:
        raise ValueError(f"baseline.run_id: expected {comparison.baseline_run!r} (the comparison's baseline), "
                         f"got {baseline.run_id!r}")
    from evalkit.report.html_cases import cases_section

    data = ReportData(run, comparison, baseline, size_budget)
    environment = _environment()
    script = environment.get_template("report.js.j2").render()
    style = environment.get_template("report.css.j2").render()
    # The cases are built last: their texts get whatever the rest of the page leaves of the size budget.
    builders = _builders(data)
    done = {b: b(data) for b in builders if b is not cases_section}
    used = sum(len(s.body.encode()) for s in [*done.values(), *sections] if s is not None)
    used += len(script.encode()) + len(style.encode()) + PAGE_OVERHEAD
    done[cases_section] = cases_section(replace(data, size_budget=size_budget - used))
    built = [section for builder in builders if (section := done[builder]) is not None]
    built += list(sections)
    verdict = comparison.verdict if comparison is not None else None
    heading = Markup(fragment("heading.html.j2", run=run, comparison=comparison))
    footer = Markup("suite <code>{}</code>").format(run.suite.path)
    return render_page(built, title=title or f"evalkit · {run.suite.name}" + (f" · {verdict}" if verdict else ""),
                       heading=heading, footer=footer)


def render_page(sections: Sequence[Section], *, title: str, heading: Markup | str,
                footer: Markup | str = "") -> str:
    """A page of sections (any view: a run, a judge, a history) with the report's style, script and policy.

    ``heading`` is the page's ``<h1>`` content and ``footer`` a note before the version line; plain strings
    are escaped, :class:`~markupsafe.Markup` (e.g. from :func:`fragment`) is kept as it is.
    """
    from importlib import metadata

    environment = _environment()
    script = environment.get_template("report.js.j2").render()
    style = environment.get_template("report.css.j2").render()
    seen: set[str] = set()
    for section in sections:
        if not _SECTION_ID.fullmatch(section.id) or section.id in seen:
            raise ValueError(f"section id: expected a new [a-z][a-z0-9-]* anchor, got {section.id!r}")
        seen.add(section.id)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    try:
        version = metadata.version("evalkit")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        version = "0+unknown"
    return environment.get_template("page.html.j2").render(
        title=title, heading=heading, footer=footer, sections=list(sections), style=Markup(style),
        script=Markup(script), script_hash=digest, version=version,
    )
