"""Markdown for a pull-request comment and ``$GITHUB_STEP_SUMMARY``."""

from __future__ import annotations

from evalkit.compare import Comparison, Metric
from evalkit.report.cells import metric_cells, policy_lines, too_small, verdict_line

MARKER = "<!-- evalkit-report -->"
"""Identifies evalkit's sticky PR comment, so a later run edits it instead of adding another."""
ICONS = {"regression": "🔴", "inconclusive": "🟡", "pass": "🟢", "improvement": "🟢", "not_comparable": "⚪"}
HEADER = ("| verdict | metric | n | baseline | current | Δ | CI | margin | p | decided by | blocks |\n"
          "|---|---|---:|---:|---:|---:|---|---:|---:|---|---|")


def _row(m: Metric) -> str:
    name, verdict, *rest = metric_cells(m)
    return f"| {ICONS.get(verdict, '')} {verdict} | `{name}` | " + " | ".join(_escape(c) for c in rest) + " |"


def _escape(text: str, limit: int = 300) -> str:
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def render_markdown(comparison: Comparison, *, flips: int = 20) -> str:
    """The whole report as Markdown (starts with the sticky-comment marker)."""
    c = comparison
    lines = [MARKER, f"## evalkit: `{c.suite}` — {ICONS.get(c.verdict, '')} **{c.verdict}**", "",
             _escape(verdict_line(c), limit=10_000), ""]
    for text in policy_lines(c):
        lines += [f"> ⚠️ **Gate policy:** {_escape(text, limit=10_000)}", ""]
    primary = c.metrics[0] if c.metrics else None
    if primary and primary.verdict == "inconclusive" and primary.mde is not None:
        lines += [f"> {too_small(primary)[0].upper()}{too_small(primary)[1:]}.", ""]
    lines += ["### Metrics", "", HEADER, *(_row(m) for m in c.metrics), ""]
    notes = [f"- `{m.name}`: {_escape(note, limit=1000)}" for m in (*c.metrics, *c.slices) for note in m.notes]
    if c.slices:
        lines += ["<details><summary>Per-tag slices (Benjamini-Hochberg; "
                  f"{'block' if c.config.slices_block else 'reported, do not block'})</summary>", "", HEADER,
                  *(_row(m) for m in c.slices), "", "</details>", ""]
    if c.comparability or notes:
        lines += ["### Comparability and notes", "", *(f"- {_escape(n, limit=1000)}" for n in c.comparability),
                  *notes, ""]
    lost = [f for f in c.flips if f.direction == "pass→fail"]
    gained = [f for f in c.flips if f.direction == "fail→pass"]
    if c.flips:
        lines += [f"### Flipped cases ({len(lost)} pass→fail, {len(gained)} fail→pass)", "",
                  "| case | change | before | after |", "|---|---|---|---|"]
        for flip in c.flips[:flips]:
            lines.append(f"| `{flip.case_id}` | {flip.direction} ({flip.before_passed} → {flip.after_passed}) | "
                         f"{_escape(flip.before)} | {_escape(flip.after)} |")
        if len(c.flips) > flips:
            lines.append(f"\n…and {len(c.flips) - flips} more in the JSON report.")
        lines.append("")
    if c.unpaired_baseline or c.unpaired_current:
        lines += ["### Unpaired cases", ""]
        if c.unpaired_baseline:
            lines.append(f"- only in the baseline ({len(c.unpaired_baseline)}): "
                         + ", ".join(f"`{x}`" for x in c.unpaired_baseline[:50]))
        if c.unpaired_current:
            lines.append(f"- only in this run ({len(c.unpaired_current)}): "
                         + ", ".join(f"`{x}`" for x in c.unpaired_current[:50]))
        lines.append("")
    if c.flaky:
        lines += [f"<details><summary>Flaky cases ({len(c.flaky)})</summary>", "",
                  "| case | baseline | current |", "|---|---:|---:|",
                  *(f"| `{case}` | {a} | {b} |" for case, a, b in c.flaky[:100]), "", "</details>", ""]
    lines.append(f"<sub>policy: {c.policy.source}'s gate · alpha {c.config.alpha:g} one-sided · Holm across "
                 f"blocking metrics · baseline `{c.baseline_run}` ({c.baseline_runs} run"
                 f"{'s' if c.baseline_runs != 1 else ''}) · run `{c.current_run}`</sub>")
    return "\n".join(lines) + "\n"
