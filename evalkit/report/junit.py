"""JUnit XML: one testcase per case (a failure when it flipped pass→fail), one per metric."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from evalkit.compare import Comparison


def render_junit(comparison: Comparison) -> str:
    """JUnit XML that CI systems render as tests."""
    flips = {f.case_id: f for f in comparison.flips}
    suites = ET.Element("testsuites", name=f"evalkit {comparison.suite}")
    metrics = ET.SubElement(suites, "testsuite", name=f"{comparison.suite}.metrics")
    failures = 0
    for metric in comparison.metrics:
        case = ET.SubElement(metrics, "testcase", classname=f"{comparison.suite}.metrics", name=metric.name)
        if metric.verdict == "regression" or (metric.verdict == "inconclusive" and metric.blocking
                                              and comparison.config.inconclusive_blocks):
            failures += 1
            node = ET.SubElement(case, "failure", type=metric.verdict,
                                 message=f"{metric.name}: {metric.verdict} (difference {metric.difference})")
            node.text = "; ".join(metric.notes)
    metrics.set("tests", str(len(comparison.metrics)))
    metrics.set("failures", str(failures))
    cases = ET.SubElement(suites, "testsuite", name=f"{comparison.suite}.cases")
    paired = sorted({*flips, *(f[0] for f in comparison.flaky)})
    lost = 0
    for case_id in paired:
        case = ET.SubElement(cases, "testcase", classname=f"{comparison.suite}.cases", name=case_id)
        flip = flips.get(case_id)
        if flip is not None and flip.direction == "pass→fail":
            lost += 1
            node = ET.SubElement(case, "failure", type="pass→fail",
                                 message=f"passed {flip.before_passed} before, {flip.after_passed} now")
            node.text = f"before: {flip.before}\nafter: {flip.after}"
    for case_id in comparison.unpaired_baseline:
        case = ET.SubElement(cases, "testcase", classname=f"{comparison.suite}.cases", name=case_id)
        ET.SubElement(case, "skipped", message="only in the baseline")
    cases.set("tests", str(len(paired) + len(comparison.unpaired_baseline)))
    cases.set("failures", str(lost))
    cases.set("skipped", str(len(comparison.unpaired_baseline)))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
