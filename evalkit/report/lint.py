"""Lint findings as text (rich), GitHub workflow annotations, JSON and SARIF 2.1.0."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from importlib import metadata
from typing import TYPE_CHECKING, Any

from evalkit.lint import RULES, LintReport, Note

if TYPE_CHECKING:
    from rich.console import Console

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def render_lint_text(report: LintReport, console: Console) -> None:
    """``path:line:col: severity rule: message`` and the line, then a one-line summary."""
    from rich.text import Text

    colour = {"error": "red", "warning": "yellow", "note": "cyan"}
    out = Text()
    for f in report.findings:  # one Text printed once: thousands of findings render in a fraction of a second
        out.append(f"{f.path}:{f.line}:{f.column}", style="bold")
        out.append(": ")
        out.append(f.severity, style=colour[f.severity])
        out.append(" ")
        out.append(f.rule, style="dim")
        out.append(f": {f.message}\n")
        if f.snippet.strip():
            out.append(f"    {f.snippet.strip()}\n")
    if out:
        console.print(out, end="", highlight=False, soft_wrap=True)
    for line in summary_lines(report):
        console.print(line, markup=False, highlight=False, style="cyan")
    base = f" against {report.base}" if report.base else ""
    console.print(f"{report.files} files linted{base}: {report.errors} errors, {report.warnings} warnings "
                  f"(config: {report.config})", markup=False, highlight=False)


def _counted(notes: tuple[Note, ...], reason: Callable[[Note], str]) -> list[tuple[str, int, str]]:
    """(reason, how many, first path) per reason, most frequent first."""
    groups: dict[str, list[str]] = {}
    for note in notes:
        groups.setdefault(reason(note), []).append(note.path)
    return sorted(((r, len(p), p[0]) for r, p in groups.items()), key=lambda item: (-item[1], item[0]))


def summary_lines(report: LintReport) -> list[str]:
    """What was not checked, counted by reason (every file is listed in the JSON and SARIF reports)."""
    lines = []
    if report.skipped:
        lines.append(f"{len(report.skipped)} files passed over by the folder walk:")
        lines.extend(f"  {count} × {reason} (e.g. {first})"
                     for reason, count, first in _counted(report.skipped, lambda n: n.message))
    if report.notes:
        lines.append(f"{len(report.notes)} templates of other engines were linted but not checked as jinja2:")
        lines.extend(f"  {count} × {reason} (e.g. {first})"
                     for reason, count, first in _counted(report.notes, lambda n: n.message.split(" (", 1)[0]))
    return lines


def render_lint_github(report: LintReport) -> str:
    """``::error file=…,line=…,col=…,title=…::message`` per finding."""
    from evalkit.report.github import annotation

    lines = [annotation({"note": "notice"}.get(f.severity, f.severity), f.message, title=f"evalkit {f.rule}",
                        file=f.path, line=f.line, col=f.column) for f in report.findings]
    return "\n".join(lines) + ("\n" if lines else "")


def render_lint_json(report: LintReport) -> str:
    data = {"format": "evalkit.lint/1", "files": report.files, "errors": report.errors,
            "warnings": report.warnings, "base": report.base, "config": report.config,
            "findings": [f.__dict__ for f in report.findings],
            "skipped": [n.__dict__ for n in report.skipped], "notes": [n.__dict__ for n in report.notes]}
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def render_lint_sarif(report: LintReport) -> dict[str, Any]:
    """A SARIF 2.1.0 log GitHub code scanning accepts (one run, every rule described)."""
    try:
        version = metadata.version("evalkit")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        version = "0+unknown"
    rule_ids = list(RULES)
    rules = [{"id": r.id, "name": r.id.replace("-", " ").title().replace(" ", ""),
              "shortDescription": {"text": r.description}, "fullDescription": {"text": r.description},
              "defaultConfiguration": {"level": r.severity}} for r in RULES.values()]
    results = []
    for f in report.findings:
        fingerprint = hashlib.sha256(f"{f.rule}:{f.path}:{f.snippet.strip()}:{f.message}".encode()).hexdigest()[:32]
        region: dict[str, Any] = {"startLine": f.line, "startColumn": f.column}
        if f.snippet.strip():
            region["snippet"] = {"text": f.snippet}
        results.append({
            "ruleId": f.rule, "ruleIndex": rule_ids.index(f.rule), "level": f.severity,
            "message": {"text": f.message},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": f.path, "uriBaseId": "%SRCROOT%"},
                                                "region": region}}],
            "partialFingerprints": {"evalkitFindingHash/v1": fingerprint},
        })
    notifications = [{"level": "note", "message": {"text": n.message},
                      "locations": [{"physicalLocation": {"artifactLocation": {"uri": n.path,
                                                                               "uriBaseId": "%SRCROOT%"}}}]}
                     for n in (*report.skipped, *report.notes)]
    return {
        "$schema": SARIF_SCHEMA, "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "evalkit", "semanticVersion": version, "version": version,
                                      "informationUri": "https://pypi.org/project/evalkit/", "rules": rules}},
                  "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
                  "results": results, "columnKind": "unicodeCodePoints"}],
    }
