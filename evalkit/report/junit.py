"""JUnit XML: one testcase per metric and per changed case; the numbers and the policy as properties."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from evalkit.compare import Comparison, Metric
from evalkit.report.cells import describe, policy_lines, verdict_line

METRIC_FIELDS = ("verdict", "n", "baseline", "current", "difference", "ci_low", "ci_high", "margin", "p_value",
                 "test")


def _fails(metric: Metric, comparison: Comparison) -> bool:
    return metric.blocking and (metric.verdict == "regression" or (
        metric.verdict == "inconclusive" and comparison.config.inconclusive_blocks))


def _properties(parent: ET.Element, values: list[tuple[str, object]]) -> None:
    node = ET.SubElement(parent, "properties")
    for name, value in values:
        ET.SubElement(node, "property", name=name, value="" if value is None else repr(value)
                      if isinstance(value, float) else str(value))


def render_junit(comparison: Comparison) -> str:
    """JUnit XML that CI systems render as tests (exact values in properties, readable ones in messages)."""
    c = comparison
    flips = {f.case_id: f for f in c.flips}
    suites = ET.Element("testsuites", name=f"evalkit {c.suite}")
    metrics = ET.SubElement(suites, "testsuite", name=f"{c.suite}.metrics")
    policy = [("verdict", c.verdict), ("exit_code", int(c.exit_code)), ("decided_by", ",".join(c.decided_by)),
              ("policy.source", c.policy.source),
              *((f"policy.in_force.{k}", v) for k, v in c.config.settings().items()),
              *((f"policy.pending.{p.setting}", f"{p.before} → {p.after}") for p in c.policy.pending),
              *((f"policy.override.{p.setting}", f"{p.before} → {p.after} ({p.source})") for p in c.policy.overrides)]
    _properties(metrics, [*policy, *((f"{m.name}.{f}", getattr(m, f)) for m in (*c.metrics, *c.slices)
                                     for f in METRIC_FIELDS)])
    failures = 0
    for metric in (*c.metrics, *c.slices):
        case = ET.SubElement(metrics, "testcase", classname=f"{c.suite}.metrics", name=metric.name)
        if _fails(metric, c):
            failures += 1
            node = ET.SubElement(case, "failure", type=metric.verdict, message=f"{metric.verdict}: {describe(metric)}")
            node.text = "; ".join(metric.notes)
        elif metric.verdict == "not_comparable":
            ET.SubElement(case, "skipped", message=f"not judged: {describe(metric)}")
        else:
            ET.SubElement(case, "system-out").text = f"{metric.verdict}: {describe(metric)}"
    metrics.set("tests", str(len(c.metrics) + len(c.slices)))
    metrics.set("failures", str(failures))
    ET.SubElement(metrics, "system-out").text = "\n".join([verdict_line(c), *policy_lines(c), *c.comparability])
    cases = ET.SubElement(suites, "testsuite", name=f"{c.suite}.cases")
    paired = sorted({*flips, *(f[0] for f in c.flaky)})
    lost = 0
    for case_id in paired:
        case = ET.SubElement(cases, "testcase", classname=f"{c.suite}.cases", name=case_id)
        flip = flips.get(case_id)
        if flip is not None and flip.direction == "pass→fail":
            lost += 1
            node = ET.SubElement(case, "failure", type="pass→fail",
                                 message=f"passed {flip.before_passed} before, {flip.after_passed} now")
            node.text = f"before: {flip.before}\nafter: {flip.after}"
    for case_id in c.unpaired_baseline:
        case = ET.SubElement(cases, "testcase", classname=f"{c.suite}.cases", name=case_id)
        ET.SubElement(case, "skipped", message="only in the baseline")
    cases.set("tests", str(len(paired) + len(c.unpaired_baseline)))
    cases.set("failures", str(lost))
    cases.set("skipped", str(len(c.unpaired_baseline)))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
