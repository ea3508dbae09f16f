"""Traffic coverage: statuses, the head, the traffic-weighted pass rate (against real runs of a callable
target), the command, and the coverage block in the regression gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from evalkit.analysis import proportions as P
from evalkit.analysis.coverage import CoverageConfig, coverage
from evalkit.analysis.traffic import RouteTraffic, Seen, TrafficProfile, load_profile, save_profile
from evalkit.cli import main
from evalkit.errors import ConfigError, ExitCode
from evalkit.runner import RunOptions, run_suite
from evalkit.suite import load_suite

APP = "def answer(vars):\n    return vars['reply']\n"


def write_suite(path: Path, cases: dict[str, tuple[int, int]], extra: str = "", unrouted: int = 0) -> Path:
    """A suite of ``passing, failing`` cases per route against a callable that echoes ``reply``."""
    lines = ["name: demo", 'target: {callable: "coverage_app:answer"}', extra, "cases:"]
    for route, (passing, failing) in cases.items():
        for i in range(passing + failing):
            reply = "ok" if i < passing else "no"
            lines.append(f"  - {{id: {route}-{i}, route: {route}, vars: {{reply: {reply}}}, expect: [{{equals: ok}}]}}")
    lines += [f"  - {{id: plain-{i}, vars: {{reply: ok}}, expect: [{{equals: ok}}]}}" for i in range(unrouted)]
    path.write_text("\n".join(line for line in lines if line) + "\n", "utf-8")
    return path


def profile_of(counts: dict[str, int], models: dict[str, dict[str, str]] | None = None) -> TrafficProfile:
    routes = {}
    for route, count in counts.items():
        seen = {name: Seen(1, first, first) for name, first in (models or {}).get(route, {}).items()}
        routes[route] = RouteTraffic(count, models=seen)
    return TrafficProfile(routes=routes, first="2025-03-03T00:00:00Z", last="2025-03-16T23:59:59Z", path="p.json")


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "coverage_app.py").write_text(APP)
    monkeypatch.syspath_prepend(str(tmp_path))


COUNTS = {"general": 7000, "shipping": 1500, "returns": 1000, "billing": 300, "tail": 50}
"""70% / 15% / 10% / 3% / 0.5% of 9,850 requests... plus rounding: shares below use the exact counts."""


def test_statuses_head_and_what_to_add(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path / "s.yaml", {"general": (2, 0), "shipping": (39, 1), "returns": (30, 0),
                                                          "tail": (1, 0), "loyalty": (3, 0)}, unrouted=2))
    result = coverage(suite, profile_of(COUNTS))
    rows = {r.route: r for r in result.routes}
    assert [r.route for r in result.routes] == ["general", "shipping", "returns", "billing", "tail", "loyalty"]
    assert {k: (r.status, r.head, r.add) for k, r in rows.items()} == {
        "general": ("thin", True, 37), "shipping": ("covered", True, 0), "returns": ("thin", True, 9),
        "billing": ("missing", True, 39), "tail": ("thin", False, 38), "loyalty": ("unreached", False, 0),
    }
    total = sum(COUNTS.values())
    assert rows["general"].share == pytest.approx(7000 / total)
    low, high = P.wilson_interval(7000, total)
    assert (rows["general"].share_low, rows["general"].share_high) == pytest.approx((float(low), float(high)))
    assert rows["general"].case_share == pytest.approx(2 / 76)  # of the cases with a route
    # Head coverage: the share of head traffic on covered routes (only shipping).
    assert result.head_coverage == pytest.approx(1500 / 9800)
    assert result.unrouted_cases == 2 and [r.route for r in result.unreached] == ["loyalty"]
    # The warnings apply to the head only by default; nothing blocks unless configured.
    assert {r.route for r in result.warnings} == {"general", "returns", "billing"} and result.blocking == ()
    blocking = coverage(suite, profile_of(COUNTS), config=CoverageConfig(block=("missing",), scope="all"))
    assert [r.route for r in blocking.blocking] == ["billing"]


def test_case_mix_distance_is_tvd_with_chi2_as_a_floor(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path / "s.yaml", {"general": (2, 0), "shipping": (39, 1), "returns": (30, 0),
                                                          "tail": (1, 0), "loyalty": (3, 0)}))
    result = coverage(suite, profile_of(COUNTS))
    traffic = np.array([7000, 1500, 1000, 300, 50, 0]) / 9850
    cases = np.array([2, 40, 30, 0, 1, 3]) / 76
    assert result.distance.tvd == pytest.approx(0.5 * np.abs(traffic - cases).sum())
    expected = np.array([7000, 1500, 1000, 300, 50]) / 9850 * 73
    assert result.distance.chi2_p == pytest.approx(sps.chisquare([2, 40, 30, 0, 1], expected).pvalue)
    assert result.distance.flagged and result.distance.small_expected
    # Three cases: a large TVD, but the χ² floor does not let it be called a mismatch.
    few = coverage(load_suite(write_suite(tmp_path / "f.yaml", {"shipping": (1, 0), "returns": (1, 0),
                                                                "general": (1, 0)})), profile_of(COUNTS))
    assert few.distance.tvd > 0.25 and not few.distance.flagged


def test_stale_when_the_route_changed_model_after_the_cases_were_evaluated(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path / "s.yaml", {"billing": (40, 0), "general": (40, 0)}))
    profile = profile_of({"general": 500, "billing": 500},
                         {"billing": {"gpt-4o-mini": "2025-03-03T00:00:00Z", "gpt-4.1-mini": "2025-03-12T00:52:24Z"},
                          "general": {"gpt-4o-mini": "2025-03-03T00:00:00Z"}})
    before = {r.route: r for r in coverage(suite, profile, cases_as_of="2025-03-10").routes}
    assert (before["billing"].status, before["billing"].change) == ("stale", "model gpt-4.1-mini")
    assert before["general"].status == "covered"  # one model all along: no change seen
    after = {r.route: r.status for r in coverage(suite, profile, cases_as_of="2025-03-13T00:00Z").routes}
    assert after == {"general": "covered", "billing": "covered"}
    unknown = {r.route: r.status for r in coverage(suite, profile).routes}
    assert unknown["billing"] == "covered"  # nothing dates the cases: not called stale
    with pytest.raises(ConfigError, match=r"--as-of: expected an ISO 8601 time such as 2025-03-10T00:00Z, got 'x'"):
        coverage(suite, profile, cases_as_of="x")


def test_traffic_weighted_pass_rate_from_a_real_run(tmp_path: Path, app: None) -> None:
    path = write_suite(tmp_path / "s.yaml", {"general": (3, 5), "shipping": (18, 2), "returns": (9, 1),
                                             "loyalty": (2, 0)})
    suite = load_suite(path)
    run = run_suite(path, RunOptions(out=tmp_path / "runs", run_id="r"))
    result = coverage(suite, profile_of(COUNTS), run)
    rows = {r.route: r for r in result.routes}
    assert (rows["general"].evaluated, rows["general"].passed, rows["general"].pass_rate) == (8, 3.0, 3 / 8)
    low, high = P.wilson_interval(3, 8)
    assert (rows["general"].pass_low, rows["general"].pass_high) == pytest.approx((float(low), float(high)))
    # Planning at the point of the interval nearest 0.5 (0.5 itself here).
    assert rows["general"].needed == P.cases_for_precision(0.15, 0.5)
    weighted = result.weighted
    assert weighted is not None
    reference = P.post_stratified([7000, 1500, 1000], [3, 18, 9], [8, 20, 10])
    assert (weighted.estimate, weighted.low, weighted.high) == pytest.approx(
        (float(reference.estimate), float(reference.low), float(reference.high)))
    share = 9500 / 9850
    assert weighted.evaluated_share == pytest.approx(share)
    assert (weighted.bound_low, weighted.bound_high) == pytest.approx(
        (share * float(reference.low), share * float(reference.high) + 1 - share))
    assert weighted.unweighted == pytest.approx(32 / 40) and weighted.cases == 40
    # The traffic-weighted rate is pulled down by the heavy, failing general route.
    assert weighted.estimate is not None and weighted.estimate < weighted.unweighted - 0.2
    assert result.cases_as_of is not None  # the run's start dates the evidence


def test_stale_from_the_suites_last_commit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess

    write_suite(tmp_path / "s.yaml", {"billing": (40, 0)})
    later = profile_of({"billing": 500}, {"billing": {"m1": "2025-03-03T00:00:00Z", "m2": "2099-01-01T00:00:00Z"}})
    save_profile(later, tmp_path / "p.json")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "s.yaml"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "suite"], check=True)
    capsys.readouterr()
    assert main(["coverage", "s.yaml", "--traffic", "p.json", "--json", "c.json"]) == ExitCode.OK
    route = json.loads(Path("c.json").read_text())["routes"][0]
    assert (route["status"], route["change"]) == ("stale", "model m2")
    assert "re-run: model m2 since 2099-01-01" in capsys.readouterr().out
    # An uncommitted edit: the commit no longer dates the cases, so nothing is called stale.
    Path("s.yaml").write_text(Path("s.yaml").read_text() + "# edited\n")
    assert main(["coverage", "s.yaml", "--traffic", "p.json", "--json", "c.json"]) == ExitCode.OK
    assert json.loads(Path("c.json").read_text())["routes"][0]["status"] == "covered"


def test_gate_exit_code_puts_the_run_first(tmp_path: Path) -> None:
    from evalkit.report.coverage import GateCoverage

    suite = load_suite(write_suite(tmp_path / "s.yaml", {"general": (40, 0)}))
    blocking = GateCoverage(coverage(suite, profile_of({"general": 10, "billing": 10}),
                                     config=CoverageConfig(block=("missing",))))
    assert blocking.exit_code(ExitCode.OK) == ExitCode.COVERAGE_FAILED
    assert blocking.exit_code(ExitCode.REGRESSION) == ExitCode.REGRESSION
    assert blocking.exit_code(ExitCode.INCONCLUSIVE) == ExitCode.INCONCLUSIVE
    assert blocking.annotations() == ("::error file=s.yaml,title=coverage billing::route billing carries 50%25 of "
                                      "traffic and is missing (0 cases; add 39 cases)\n")
    assert GateCoverage(None, "no profile").exit_code(ExitCode.OK) == ExitCode.OK


def test_a_suite_without_routes_is_one_line(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path / "s.yaml", {}, unrouted=3))
    with pytest.raises(ConfigError) as error:
        coverage(suite, profile_of(COUNTS))
    assert str(error.value) == ("s.yaml: cases[*].route: expected a route on at least one case (defaults.route or a "
                                "case's route:), got none on 3 cases")


def test_coverage_section_is_schema_checked(tmp_path: Path) -> None:
    path = write_suite(tmp_path / "s.yaml", {"general": (1, 0)}, extra="coverage: {traffic: p.json, block: [gone]}")
    with pytest.raises(ConfigError, match=r"s.yaml:3: coverage.block\[0\]: expected one of"):
        load_suite(path)
    good = write_suite(tmp_path / "g.yaml", {"general": (1, 0)},
                       extra="coverage: {traffic: p.json, min_precision: 0.1, block: [missing], scope: all}")
    config = CoverageConfig.from_mapping(load_suite(good).coverage)
    assert (config.traffic, config.min_precision, config.block, config.scope) == ("p.json", 0.1, ("missing",), "all")


# --- the command ---------------------------------------------------------------------------------------------


def test_cli_report_prints_the_table_and_writes_json_and_markdown(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    write_suite(tmp_path / "s.yaml", {"general": (2, 0), "shipping": (39, 1), "returns": (30, 0), "tail": (1, 0),
                                      "loyalty": (3, 0)})
    save_profile(profile_of(COUNTS), tmp_path / "p.json")
    assert main(["coverage", "s.yaml", "--traffic", "p.json"]) == ExitCode.OK
    out = [line.rstrip() for line in capsys.readouterr().out.splitlines()]
    assert out[0] == "traffic coverage · demo · p.json (9,850 requests, 2025-03-03 → 2025-03-16)"
    assert "● general       7,000   71.1% (70.2–72.0)       2     2.6%                –   thin        add 37 cases" \
        in out
    assert "● billing         300      3.0% (2.7–3.4)       0     0.0%                –   missing     add 39 cases" \
        in out
    assert out[-1] == "reports: .evalkit/coverage/s.json · .evalkit/coverage/s.md"
    assert ("head: 4 routes (general, shipping, returns, billing) carry 99% of traffic (the fewest reaching 80%, plus "
            "any ≥ 1%); head coverage 15% of head traffic (1 of 4 head routes covered)") in out
    data = json.loads(Path(".evalkit/coverage/s.json").read_text())
    assert data["format"] == "evalkit.coverage/1" and data["head"] == ["general", "shipping", "returns", "billing"]
    markdown = Path(".evalkit/coverage/s.md").read_text()
    assert markdown.startswith("## Traffic coverage: `demo`")
    assert "| **general** | 7,000 | 71.1% (70.2–72.0) | 2 | 2.6% | – | 🟡 thin | add 37 cases |" in markdown


def test_cli_report_with_a_run_and_a_blocking_status(tmp_path: Path, app: None,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    write_suite(tmp_path / "s.yaml", {"general": (3, 5), "shipping": (18, 2)},
                extra="coverage: {traffic: p.json, block: [missing]}")
    save_profile(profile_of(COUNTS), tmp_path / "p.json")
    assert main(["run", "s.yaml", "--run-id", "r", "-q"]) == ExitCode.OK
    capsys.readouterr()
    code = main(["coverage", "s.yaml", "--run", ".evalkit/runs/r", "--json", "c.json", "--markdown", "c.md"])
    assert code == ExitCode.COVERAGE_FAILED  # returns and billing carry traffic and have no cases
    out = capsys.readouterr().out
    assert "blocks: returns is missing" in out and "blocks: billing is missing" in out
    assert "3/8 38% (14–69)" in out
    assert "traffic-weighted pass rate" in out and "unweighted 75.0% (" in out
    assert json.loads(Path("c.json").read_text())["blocking"] == ["returns", "billing"]


def test_cli_report_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_suite(tmp_path / "s.yaml", {"general": (1, 0)})
    assert main(["coverage", "s.yaml"]) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err == ("evalkit: error: s.yaml: coverage.traffic: expected a traffic profile "
                                       "(--traffic PROFILE or coverage.traffic in the suite), got none\n")
    Path("empty.json").write_text(json.dumps({"format": "evalkit.traffic/1", "routes": {"a": {"requests": 0}}}))
    assert main(["coverage", "s.yaml", "--traffic", "empty.json"]) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err == ("evalkit: error: empty.json: routes: expected requests on at least one route, "
                                       "got none (an empty profile: check the import's route field)\n")
    write_suite(tmp_path / "plain.yaml", {}, unrouted=2)
    save_profile(profile_of(COUNTS), tmp_path / "p.json")
    assert main(["coverage", "plain.yaml", "--traffic", "p.json"]) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err == ("evalkit: error: plain.yaml: cases[*].route: expected a route on at least one "
                                       "case (defaults.route or a case's route:), got none on 2 cases\n")


# --- in the gate -----------------------------------------------------------------------------------------------


def test_the_gate_adds_a_coverage_block_and_blocks_only_where_configured(tmp_path: Path, app: None,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    write_suite(tmp_path / "s.yaml", {"general": (3, 5), "shipping": (18, 2)}, extra="coverage: {traffic: p.json}")
    save_profile(profile_of(COUNTS), tmp_path / "p.json")
    assert main(["run", "s.yaml", "--run-id", "base", "-q"]) == ExitCode.OK
    assert main(["baseline", "save", ".evalkit/runs/base", "--to", "b.json"]) == ExitCode.OK
    assert main(["run", "s.yaml", "--run-id", "now", "-q"]) == ExitCode.OK
    capsys.readouterr()
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code = main(["compare", ".evalkit/runs/now", "--baseline", "b.json", "--inconclusive", "warn",
                 "--markdown", "r.md", "--json", "r.json", "--github"])
    assert code == ExitCode.OK  # report-only by default
    out = capsys.readouterr().out
    assert "traffic coverage · demo · p.json (9,850 requests" in out
    assert ("::warning file=s.yaml,title=coverage general::route general carries 71%25 of traffic and is thin "
            "(8 cases; add 31 cases)") in out
    markdown = Path("r.md").read_text()
    assert markdown.startswith("<!-- evalkit-report -->") and "### Traffic coverage: `demo`" in markdown
    assert "### Traffic coverage" in summary.read_text()
    report = json.loads(Path("r.json").read_text())
    assert report["format"] == "evalkit.comparison/2" and report["coverage"]["format"] == "evalkit.coverage/1"

    # Blocking on 'missing': the gate passes on the run and fails on coverage (exit 9).
    (tmp_path / "s.yaml").write_text((tmp_path / "s.yaml").read_text().replace(
        "coverage: {traffic: p.json}", "coverage: {traffic: p.json, block: [missing]}"))
    assert main(["compare", ".evalkit/runs/now", "--baseline", "b.json", "--inconclusive", "warn"]) \
        == ExitCode.COVERAGE_FAILED
    # A profile from elsewhere (a CI artifact) through the environment; a missing one is a note, not a failure.
    monkeypatch.setenv("EVALKIT_TRAFFIC_PROFILE", "nowhere.json")
    capsys.readouterr()
    assert main(["compare", ".evalkit/runs/now", "--baseline", "b.json", "--inconclusive", "warn"]) == ExitCode.OK
    assert "traffic coverage: nowhere.json: traffic profile not found" in capsys.readouterr().out


def test_the_gate_without_a_coverage_section_is_unchanged(tmp_path: Path, app: None,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    write_suite(tmp_path / "s.yaml", {"general": (3, 5)})
    main(["run", "s.yaml", "--run-id", "base", "-q"])
    main(["baseline", "save", ".evalkit/runs/base", "--to", "b.json"])
    capsys.readouterr()
    main(["compare", ".evalkit/runs/base", "--baseline", "b.json", "--json", "r.json", "--markdown", "r.md"])
    assert "coverage" not in capsys.readouterr().out
    assert "coverage" not in json.loads(Path("r.json").read_text())
    assert "Traffic coverage" not in Path("r.md").read_text()


def test_profile_loaded_from_disk_gives_the_same_coverage(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path / "s.yaml", {"general": (2, 0), "shipping": (39, 1)}))
    save_profile(profile_of(COUNTS), tmp_path / "p.json")
    direct = coverage(suite, profile_of(COUNTS)).to_dict()
    loaded = coverage(suite, load_profile("p.json")).to_dict()
    assert direct == loaded


# --- the README's walkthrough on the example suite and its example traffic -------------------------------------


def test_readme_walkthrough(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from .conftest import REPO

    example = REPO / "examples" / "traffic"
    assert main(["traffic", "import", str(example / "traffic.csv"), "--from", "csv", "--out", "traffic.json"]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == [
        "imported 4,100 requests on 8 routes from 1 file (csv, 4,101 lines) into traffic.json",
        "window: 2025-03-03T00:00:10Z → 2025-03-16T23:59:37Z",
    ]
    assert main(["traffic", "import", str(example / "traffic.otlp.jsonl.gz"), "--from", "otel",
                 "--out", "traffic-otel.json"]) == 0
    assert load_profile("traffic-otel.json").to_dict()["routes"] == load_profile("traffic.json").to_dict()["routes"]

    suite_path = REPO / "suites" / "support_reply.yaml"
    suite = load_suite(suite_path)
    capsys.readouterr()
    code = main(["coverage", str(suite_path), "--traffic", "traffic.json"])
    if not any(case.route for case in suite.cases):  # until the example suite's cases carry routes
        assert code == ExitCode.USAGE_ERROR
        assert "cases[*].route: expected a route on at least one case" in capsys.readouterr().err
    else:
        assert code == ExitCode.OK
        result = json.loads(Path(".evalkit/coverage/support_reply.json").read_text())
        rows = {r["route"]: r for r in result["routes"]}
        general = result["routes"][0]
        assert general["route"] == "general" and general["head"]
        assert round(general["share"], 3) == 0.555 and general["case_share"] <= 0.10
        assert (rows["order-status"]["status"], rows["order-status"]["add"]) == ("missing", 39)
        assert result["distance"]["flagged"] and result["arms"]["flagged"]
        assert ("arms: warm 90% · concise 6% · formal 4% against an equal split (no weights configured): SKEWED "
                "(χ² goodness of fit p < 0.001, TVD 0.56)") in capsys.readouterr().out
        assert set(result["head"]) == {"general", "shipping", "returns", "billing", "account", "technical",
                                       "order-status", "escalation"}

    for window, bound in (("week1.json", "--until"), ("week2.json", "--since")):
        assert main(["traffic", "import", str(example / "traffic.csv"), "--from", "csv", bound, "2025-03-10",
                     "--out", window]) == 0
    capsys.readouterr()
    assert main(["coverage", "drift", "--traffic", "week1.json", "week2.json",
                 "--arm-weights", "warm=1,concise=1,formal=1"]) == 0
    assert capsys.readouterr().out.startswith("ROUTE DRIFT · ARM SKEW: week1.json (2,089 requests")
