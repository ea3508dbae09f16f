"""GitHub workflow commands: annotations on the run's checks page."""

from __future__ import annotations

from evalkit.compare import Comparison, verdict_line


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape(text).replace(":", "%3A").replace(",", "%2C")


def render_annotations(comparison: Comparison, *, file: str | None = None) -> str:
    """``::error``/``::warning``/``::notice`` lines for the verdict and each metric that is not a pass."""
    where = f" file={_escape_property(file)}," if file else " "
    level = {"regression": "error", "inconclusive": "warning"}.get(comparison.verdict, "notice")
    lines = [f"::{level}{where}title={_escape_property('evalkit ' + comparison.suite)}::"
             f"{_escape(verdict_line(comparison))}"]
    for metric in (*comparison.metrics, *comparison.slices):
        if metric.verdict in ("regression", "inconclusive", "not_comparable"):
            kind = "error" if metric.verdict == "regression" and metric.blocking else "warning"
            detail = f"{metric.name}: {metric.verdict}" + (f" ({'; '.join(metric.notes)})" if metric.notes else "")
            lines.append(f"::{kind}{where}title={_escape_property(metric.name)}::{_escape(detail)}")
    for flip in comparison.flips:
        if flip.direction == "pass→fail":
            lines.append(f"::warning{where}title={_escape_property('pass→fail ' + flip.case_id)}::"
                         f"{_escape(flip.after[:200])}")
    return "\n".join(lines) + "\n"
