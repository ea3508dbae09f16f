"""GitHub workflow commands: annotations on the run's checks page."""

from __future__ import annotations

from evalkit.compare import Comparison
from evalkit.report.cells import policy_lines, verdict_line


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape(text).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, message: str, *, title: str, file: str | None = None, line: int | None = None,
               col: int | None = None) -> str:
    """One workflow command: ``::error file=…,line=…,col=…,title=…::message`` (values escaped)."""
    properties = [f"file={_escape_property(file)}"] if file else []
    properties += [f"line={line}"] if line is not None else []
    properties += [f"col={col}"] if col is not None else []
    properties.append(f"title={_escape_property(title)}")
    return f"::{level} {','.join(properties)}::{_escape(message)}"


def render_annotations(comparison: Comparison, *, file: str | None = None) -> str:
    """``::error``/``::warning``/``::notice`` lines for the verdict, the policy, and each metric not shown to pass.

    A metric that is not comparable is annotated only when it was asked to block (it was not judged).
    """
    level = {"regression": "error", "inconclusive": "warning"}.get(comparison.verdict, "notice")
    lines = [annotation(level, verdict_line(comparison), title=f"evalkit {comparison.suite}", file=file)]
    lines += [annotation("warning", text, title="evalkit gate policy", file=file) for text in policy_lines(comparison)]
    for metric in (*comparison.metrics, *comparison.slices):
        if metric.verdict in ("regression", "inconclusive") or (metric.verdict == "not_comparable" and metric.blocking):
            kind = "error" if metric.verdict == "regression" and metric.blocking else "warning"
            detail = f"{metric.name}: {metric.verdict}" + (f" ({'; '.join(metric.notes)})" if metric.notes else "")
            lines.append(annotation(kind, detail, title=metric.name, file=file))
    for flip in comparison.flips:
        if flip.direction == "pass→fail":
            lines.append(annotation("warning", flip.after[:200], title=f"pass→fail {flip.case_id}", file=file))
    return "\n".join(lines) + "\n"
