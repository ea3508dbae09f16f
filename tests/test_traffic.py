"""Traffic import: every log format, field chains, bad input (one line each, the rest still counted),
the profile artifact, the CLI, and the committed example traffic."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from evalkit.analysis.logs import FieldPath
from evalkit.analysis.traffic import PROFILE_FORMAT, import_traffic, load_profile, save_profile, to_epoch
from evalkit.cli import main
from evalkit.errors import ExitCode, TrafficError

from .conftest import REPO

EXAMPLE = REPO / "examples" / "traffic"


def _lines(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path


def _attrs(**values: Any) -> list[dict[str, Any]]:
    out = []
    for key, value in values.items():
        typed = {"intValue": str(value)} if isinstance(value, int) else {"stringValue": value}
        out.append({"key": key.replace("__", "."), "value": typed})
    return out


# --- formats ---------------------------------------------------------------------------------------------


def test_csv_counts_routes_hours_arms_models_errors_and_first_last(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(
        "timestamp,route,arm,model,error\n"
        "2025-03-03T10:01:00Z,general,warm,m1,\n"
        "2025-03-03T10:59:59.5+00:00,general,cold,m1,timeout\n"
        "2025-03-03T13:00:00+02:00,billing,warm,m2,\n"   # 11:00 UTC
        "1741000000,general,warm,m1,\n",                  # 2025-03-03T11:06:40Z, Unix seconds
    )
    profile = import_traffic([tmp_path / "t.csv"], "csv")
    assert profile.requests == 4 and profile.problems == 0
    assert {k: v.requests for k, v in profile.routes.items()} == {"general": 3, "billing": 1}
    assert profile.hours == {"2025-03-03T10:00Z": {"general": 2}, "2025-03-03T11:00Z": {"billing": 1, "general": 1}}
    general = profile.routes["general"]
    assert general.arms == {"warm": 2, "cold": 1}
    assert general.errors == {"timeout": 1}
    assert general.models["m1"].requests == 3
    assert (general.first, general.last) == ("2025-03-03T10:01:00Z", "2025-03-03T11:06:40Z")
    assert (profile.first, profile.last) == ("2025-03-03T10:01:00Z", "2025-03-03T11:06:40Z")
    assert profile.arms() == {"warm": 3, "cold": 1}


@pytest.mark.parametrize(("value", "expected"), [
    ("2025-03-03T00:00:00Z", 1740960000.0), ("2025-03-03T01:00:00+01:00", 1740960000.0),
    ("2025-03-03 00:00:00", 1740960000.0), (1740960000, 1740960000.0), (1740960000123, 1740960000.123),
    ("1740960000000000000", 1740960000.0), (1740960000.5, 1740960000.5),
])
def test_timestamps(value: Any, expected: float) -> None:
    assert to_epoch(value) == pytest.approx(expected)


def test_field_paths() -> None:
    record = {"metadata": {"route": "billing"}, "tags": ["x", "route:returns"], "gen_ai.agent.name": "a",
              "cell": '{"route": "from-json"}', "status": "failure"}
    assert FieldPath("metadata.route").get(record) == "billing"
    assert FieldPath("tags[route:]").get(record) == "returns"
    assert FieldPath("gen_ai.agent.name").get(record) == "a"  # a literal dotted key wins over a walk
    assert FieldPath("cell.route").get(record) == "from-json"  # a JSON object held in a string
    assert FieldPath("status[failure]").get(record) == "failure"
    assert FieldPath("metadata.absent").get(record) is None
    assert FieldPath("tags[arm:]").get(record) is None


def test_jsonl_with_a_configured_route_field_and_chains(tmp_path: Path) -> None:
    path = _lines(tmp_path / "t.jsonl", [
        {"ts": "2025-03-03T10:00:00Z", "app": {"route": "general"}, "meta": {"variant": "a"}},
        {"ts": "2025-03-03T10:00:00Z", "app": {}, "fallback": "billing"},
    ])
    profile = import_traffic([path], "jsonl", route_field="app.route,fallback", fields={"arm": "meta.variant"})
    assert {k: v.requests for k, v in profile.routes.items()} == {"general": 1, "billing": 1}
    assert profile.routes["general"].arms == {"a": 1}
    assert profile.fields["route"] == ("app.route", "fallback")


def test_otlp_spans_model_calls_only_route_inherited_from_the_workflow_span(tmp_path: Path) -> None:
    spans = [
        {"traceId": "t1", "spanId": "w1", "name": "workflow", "startTimeUnixNano": "1740996000000000000",
         "attributes": _attrs(gen_ai__operation__name="invoke_workflow", gen_ai__workflow__name="returns",
                              feature_flag__variant="warm")},
        {"traceId": "t1", "spanId": "c1", "parentSpanId": "w1", "name": "chat gpt-4o",
         "startTimeUnixNano": "1740996000500000000",
         "attributes": _attrs(gen_ai__operation__name="chat", gen_ai__request__model="gpt-4o",
                              gen_ai__response__model="gpt-4o-2024-08-06")},
        {"traceId": "t1", "spanId": "x1", "parentSpanId": "w1", "name": "execute_tool lookup",
         "attributes": _attrs(gen_ai__operation__name="execute_tool")},
        {"traceId": "t2", "spanId": "c2", "name": "chat", "startTimeUnixNano": "1740996001000000000",
         "status": {"code": 2}, "attributes": _attrs(gen_ai__operation__name="chat", route="general")},
    ]
    document = {"resourceSpans": [{"resource": {"attributes": _attrs(service__name="s")},
                                   "scopeSpans": [{"scope": {"name": "x"}, "spans": spans}]}]}
    path = _lines(tmp_path / "spans.jsonl", [document])
    profile = import_traffic([path], "otel")
    assert {k: v.requests for k, v in profile.routes.items()} == {"returns": 1, "general": 1}
    assert profile.routes["returns"].arms == {"warm": 1}
    assert list(profile.routes["returns"].models) == ["gpt-4o-2024-08-06"]
    assert profile.routes["general"].errors == {"error": 1}  # status ERROR without error.type
    assert profile.sources[0].skipped == 2  # the workflow and the tool span are not model calls
    # The same export pretty-printed as one document, and gzip-compressed.
    pretty = tmp_path / "spans.json.gz"
    with gzip.open(pretty, "wt") as handle:
        json.dump(document, handle, indent=2)
    assert import_traffic([pretty], "otel").routes.keys() == profile.routes.keys()


def test_otlp_span_without_a_route_names_where_it_is(tmp_path: Path) -> None:
    spans = [{"spanId": "c1", "name": "chat", "attributes": _attrs(gen_ai__operation__name="chat")},
             {"spanId": "c2", "name": "chat", "attributes": _attrs(gen_ai__operation__name="chat", route="general")}]
    on_resource = {"resource": {"attributes": _attrs(gen_ai__agent__name="billing-agent")},
                   "scopeSpans": [{"spans": [{"spanId": "c3", "attributes": _attrs(gen_ai__operation__name="chat")}]}]}
    path = _lines(tmp_path / "s.jsonl", [{"resourceSpans": [{"scopeSpans": [{"spans": spans}]}, on_resource]}])
    profile = import_traffic([path], "otel")
    assert {k: v.requests for k, v in profile.routes.items()} == {"general": 1, "billing-agent": 1}
    assert profile.problem_samples == (
        f"{path}:1: resourceSpans[0].scopeSpans[0].spans[0]: route: expected a route name at evalkit.route, "
        "route, gen_ai.workflow.name, gen_ai.agent.name, got nothing",
    )


def test_langfuse_trace_exports_as_an_api_page_an_array_and_lines(tmp_path: Path) -> None:
    traces = [
        {"id": "1", "timestamp": "2025-03-03T10:00:00.000Z", "name": "support-chat", "tags": ["route:billing"],
         "metadata": {"arm": "warm"}, "version": "v3", "input": "PRIVATE prompt text"},
        {"id": "2", "timestamp": "2025-03-03T10:05:00.000Z", "name": "support-chat", "tags": [],
         "metadata": {"route": "returns"}, "version": "v4"},
        {"id": "3", "timestamp": "2025-03-03T11:00:00.000Z", "name": "small-talk", "tags": []},
    ]
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"data": traces, "meta": {"page": 1}}, indent=2))
    array = tmp_path / "array.json"
    array.write_text("[\n" + ",\n".join(json.dumps(t) for t in traces) + "\n]\n")
    lines = _lines(tmp_path / "lines.jsonl", traces)
    for path in (page, array, lines):
        profile = import_traffic([path], "langfuse")
        assert {k: v.requests for k, v in profile.routes.items()} == {"billing": 1, "returns": 1, "small-talk": 1}
        assert list(profile.routes["returns"].prompts) == ["v4"]
        assert "PRIVATE" not in json.dumps(profile.to_dict())  # aggregates only: no prompt text is kept


def test_litellm_spend_logs_route_by_model_group_arm_by_deployment(tmp_path: Path) -> None:
    rows = [
        {"request_id": "a", "startTime": "2025-03-03T10:00:00Z", "model": "gpt-4o-mini", "model_group": "cheap",
         "model_id": "deploy-1", "status": "success", "messages": [{"role": "user", "content": "secret"}]},
        {"request_id": "b", "startTime": 1740996000.25, "model": "gpt-4o-mini", "model_group": "cheap",
         "model_id": "deploy-2", "status": "failure",
         "metadata": {"error_information": {"error_class": "RateLimitError"}}},
        {"request_id": "c", "startTime": "2025-03-03T10:00:02Z", "model": "gpt-4o", "model_group": "smart",
         "model_id": "deploy-3", "status": "failure"},
    ]
    profile = import_traffic([_lines(tmp_path / "spend.jsonl", rows)], "litellm")
    assert profile.routes["cheap"].arms == {"deploy-1": 1, "deploy-2": 1}
    assert profile.routes["cheap"].errors == {"RateLimitError": 1}
    assert profile.routes["smart"].errors == {"failure": 1}
    (tmp_path / "spend.csv").write_text("request_id,startTime,model,model_group,model_id\n"
                                        "a,2025-03-03T10:00:00Z,gpt-4o-mini,cheap,deploy-1\n")
    assert import_traffic([tmp_path / "spend.csv"], "litellm").routes["cheap"].arms == {"deploy-1": 1}


def test_since_until_window(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("timestamp,route\n2025-03-03T00:00:00Z,a\n2025-03-09T23:59:59Z,a\n"
                                    "2025-03-10T00:00:00Z,b\n,c\n")
    first = import_traffic([tmp_path / "t.csv"], "csv", until="2025-03-10")
    assert {k: v.requests for k, v in first.routes.items()} == {"a": 2}
    assert first.outside_window == 1 and first.until == "2025-03-10T00:00:00Z"
    assert first.problem_samples == (f"{tmp_path / 't.csv'}:5: time: expected a timestamp at timestamp, time, ts, "
                                     "start_time, startTime, created_at to place the record in the window, "
                                     "got nothing",)
    assert {k: v.requests for k, v in import_traffic([tmp_path / "t.csv"], "csv", since="2025-03-10").routes.items()} \
        == {"b": 1}


# --- bad input: one clear line each, the rest still counted ------------------------------------------------


def test_missing_route_on_some_lines_truncated_and_invalid_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"route": "a"}\n{"other": 1}\nnot json\n[1, 2]\n{"route": {"x": 1}}\n'
                    '{"route": "' + "x" * 300 + '"}\n{"route": "b", "arm": ["list"]}\n{"route": "a", "ti')
    profile = import_traffic([path], "jsonl")
    assert {k: v.requests for k, v in profile.routes.items()} == {"a": 1, "b": 1}
    assert profile.problems == 8 and profile.uncounted == 7
    expected = [
        f"{path}:2: route: expected a route name at route, metadata.route, got nothing",
        f"{path}:3: expected a JSON record, got invalid JSON (Expecting value at column 1)",
        f"{path}:4: expected a jsonl record (a JSON object), got an integer (1)",
        f"{path}:4: expected a jsonl record (a JSON object), got an integer (2)",
        f"{path}:5: route: expected a route name at route, got a mapping",
        f"{path}:6: route: expected a route name at route, got 300 characters (prompt text?)",
        f"{path}:7: arm: expected a short arm name, got a list; counted without it",
        f"{path}:8: expected a complete JSON record, got a truncated last line (18 bytes)",
    ]
    assert list(profile.problem_samples) == expected
    assert profile.problem_kinds == {"missing_route": 1, "invalid_json": 1, "not_an_object": 2, "bad_route": 2,
                                     "bad_arm": 1, "truncated": 1}


def test_truncated_csv_and_json_array(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text('timestamp,route\n2025-03-03T00:00:00Z,a\n2025-03-03T00:00:01Z,"b')
    profile = import_traffic([tmp_path / "t.csv"], "csv")
    assert profile.requests == 1
    assert profile.problem_samples == (f"{tmp_path / 't.csv'}:3: expected a closing quote, got the end of the file "
                                       "(a truncated file?)",)
    (tmp_path / "short.csv").write_text("timestamp,route,arm\n2025-03-03T00:00:00Z,a,x\n2025-03-03T00:00:01Z")
    assert import_traffic([tmp_path / "short.csv"], "csv").problem_samples == (
        f"{tmp_path / 'short.csv'}:3: expected 3 columns, got 1 on the last line (a truncated file?)",)
    (tmp_path / "a.json").write_text('[\n{"name": "a"},\n{"name": "b"},\n{"name": "c", "tags": [')
    profile = import_traffic([tmp_path / "a.json"], "langfuse")
    assert profile.requests == 2
    assert profile.problem_samples == (f"{tmp_path / 'a.json'}:4: expected a complete array element, got the end "
                                       "of the file",)


def test_nothing_countable_is_one_error_naming_the_first_problem(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("timestamp,route\n2025-03-03T00:00:00Z,a\n")
    with pytest.raises(TrafficError) as error:
        import_traffic([tmp_path / "t.csv"], "otel")
    assert str(error.value) == (f"{tmp_path / 't.csv'}: expected otel records with a route, got none from 2 lines "
                                f"(2 problems) (first problem: {tmp_path / 't.csv'}:1: expected a JSON record, got "
                                "invalid JSON (Expecting value at column 1))")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(TrafficError, match=r"empty.jsonl: expected jsonl records with a route, got none from 0 lines"):
        import_traffic([tmp_path / "empty.jsonl"], "jsonl")
    with pytest.raises(TrafficError, match=r"nowhere.csv: expected a log file, got nothing there"):
        import_traffic([tmp_path / "nowhere.csv"], "csv")
    with pytest.raises(TrafficError, match=r"--from: expected one of csv, jsonl, otel, langfuse, litellm, got 'xml'"):
        import_traffic([tmp_path / "t.csv"], "xml")


def test_distinct_values_are_bounded(tmp_path: Path) -> None:
    path = _lines(tmp_path / "t.jsonl", [{"route": f"r{i}"} for i in range(12)])
    profile = import_traffic([path], "jsonl", max_distinct=10)
    assert profile.routes["(other)"].requests == 2 and len(profile.routes) == 11
    assert profile.problem_samples == (f"{path}:11: route: expected at most 10 distinct values, got more; further "
                                       "ones are counted as '(other)'",)


# --- the profile artifact ----------------------------------------------------------------------------------


def test_profile_round_trip_and_refusals(tmp_path: Path) -> None:
    profile = import_traffic([EXAMPLE / "traffic.csv"], "csv")
    save_profile(profile, tmp_path / "p.json")
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["format"] == PROFILE_FORMAT and data["requests"] == 4100
    loaded = load_profile(tmp_path / "p.json")
    assert loaded.to_dict() == profile.to_dict()
    assert loaded.routes["billing"].last_change == ("2025-03-12T00:52:24Z", "model gpt-4.1-mini-2025-04-14")

    (tmp_path / "foreign.json").write_text(json.dumps({"format": "evalkit.traffic/9"}))
    with pytest.raises(TrafficError, match=r"format: expected 'evalkit.traffic/1', got 'evalkit.traffic/9'"):
        load_profile(tmp_path / "foreign.json")
    (tmp_path / "empty.json").write_text(json.dumps({"format": PROFILE_FORMAT, "routes": {}}))
    with pytest.raises(TrafficError) as error:
        load_profile(tmp_path / "empty.json")
    assert str(error.value) == (f"{tmp_path / 'empty.json'}: routes: expected requests on at least one route, got none "
                                "(an empty profile: check the import's route field)")
    (tmp_path / "bad.json").write_text(json.dumps({"format": PROFILE_FORMAT, "routes": {"a": {"requests": "12"}}}))
    with pytest.raises(TrafficError) as error:
        load_profile(tmp_path / "bad.json")
    assert str(error.value) == f"{tmp_path / 'bad.json'}: routes.a.requests: expected an integer, got a string ('12')"
    with pytest.raises(TrafficError, match="traffic profile not found"):
        load_profile(tmp_path / "absent.json")


# --- the command ---------------------------------------------------------------------------------------------


def test_cli_import_prints_the_table_and_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "t.csv").write_text("timestamp,route,arm,model,error\n2025-03-03T10:00:00Z,general,warm,m,\n"
                                    "2025-03-03T10:00:01Z,,warm,m,\n2025-03-03T11:00:00Z,billing,cold,m,timeout\n")
    assert main(["traffic", "import", "t.csv", "--from", "csv", "--out", "p.json"]) == ExitCode.OK
    captured = capsys.readouterr()
    assert captured.out.splitlines()[:2] == [
        "imported 2 requests on 2 routes from 1 file (csv, 4 lines) into p.json",
        "window: 2025-03-03T10:00:00Z → 2025-03-03T11:00:00Z",
    ]
    assert "general          1   50.0%   warm 100%   m             0" in captured.out
    assert captured.err == ("evalkit: warning: 1 problem line (1 not counted; 1 missing_route); the first 1:\n"
                            "  t.csv:3: route: expected a route name at route, got nothing\n")
    assert load_profile("p.json").requests == 2


def test_cli_import_reports_problem_lines_as_the_readme_shows(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "logs.jsonl").write_text('{"route": "a"}\n{"other": 1}\nnot json\n' + '{"route": "b"}\n' * 4
                                         + '{"route": "a", "ti')
    assert main(["traffic", "import", "logs.jsonl", "--from", "jsonl"]) == ExitCode.OK
    assert capsys.readouterr().err == (
        "evalkit: warning: 3 problem lines (3 not counted; 1 missing_route, 1 invalid_json, 1 truncated); "
        "the first 3:\n"
        "  logs.jsonl:2: route: expected a route name at route, metadata.route, got nothing\n"
        "  logs.jsonl:3: expected a JSON record, got invalid JSON (Expecting value at column 1)\n"
        "  logs.jsonl:8: expected a complete JSON record, got a truncated last line (18 bytes)\n")
    assert load_profile("traffic.json").requests == 5
    (tmp_path / "nothing.jsonl").write_text("not json\n")
    assert main(["traffic", "import", "nothing.jsonl", "--from", "jsonl", "--out", "n.json"]) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err == (
        "evalkit: error: nothing.jsonl: expected jsonl records with a route, got none from 1 line (1 problem) "
        "(first problem: nothing.jsonl:1: expected a JSON record, got invalid JSON (Expecting value at column 1))\n")
    assert not Path("n.json").exists()


def test_cli_import_bad_arguments_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "t.csv").write_text("route\na\n")
    assert main(["traffic", "import", "t.csv", "--from", "xml"]) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err == (
        "evalkit traffic import: error: Invalid value for '--from': 'xml' is not one of 'csv', 'jsonl', 'otel', "
        "'langfuse', 'litellm'. (see: evalkit traffic import --help)\n")
    assert main(["traffic", "import", "t.csv", "--from", "csv", "--field", "arm"]) == ExitCode.USAGE_ERROR
    assert "--field: expected NAME=PATH (e.g. arm=metadata.variant), got 'arm'" in capsys.readouterr().err
    assert main(["traffic", "import", "t.csv", "--from", "csv", "--field", "colour=x"]) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err == ("evalkit: error: --field: expected one of route, arm, model, error, prompt, "
                                       "time, got 'colour'\n")
    assert main(["traffic", "import", "t.csv", "--from", "csv", "--since", "yesterday"]) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err == ("evalkit: error: --since: expected an ISO 8601 time such as 2025-03-10 or "
                                       "2025-03-10T00:00Z, got 'yesterday'\n")
    assert not Path("traffic.json").exists()


# --- the committed example -------------------------------------------------------------------------------------


def test_example_csv_and_otlp_give_the_same_profile() -> None:
    from_csv = import_traffic([EXAMPLE / "traffic.csv"], "csv").to_dict()
    from_otlp = import_traffic([EXAMPLE / "traffic.otlp.jsonl.gz"], "otel").to_dict()
    for key in ("routes", "hours", "first", "last", "requests"):
        assert from_csv[key] == from_otlp[key], key
    assert from_csv["problems"]["total"] == from_otlp["problems"]["total"] == 0


def test_example_generator_reproduces_the_committed_files(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("generate_traffic", EXAMPLE / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["generate_traffic"] = module
    try:
        spec.loader.exec_module(module)
        assert module.main(["--out-dir", str(tmp_path)]) == 0
    finally:
        del sys.modules["generate_traffic"]
    for name in ("traffic.csv", "traffic.otlp.jsonl.gz"):
        assert (tmp_path / name).read_bytes() == (EXAMPLE / name).read_bytes(), name
    # Small enough for the repository.
    assert (EXAMPLE / "traffic.csv").stat().st_size < 300_000
    assert (EXAMPLE / "traffic.otlp.jsonl.gz").stat().st_size < 150_000


def test_example_traffic_has_the_shape_the_generator_documents() -> None:
    profile = import_traffic([EXAMPLE / "traffic.csv"], "csv")
    shares = {k: v.requests / profile.requests for k, v in profile.routes.items()}
    assert max(shares, key=lambda k: shares[k]) == "general" and 0.5 < shares["general"] < 0.6
    assert set(shares) == {"general", "returns", "shipping", "billing", "account", "technical", "escalation",
                           "order-status"}
    arms = profile.arms()
    assert 0.88 < arms["warm"] / sum(arms.values()) < 0.92
    hours = [sum(c.values()) for h, c in sorted(profile.hours.items()) if h.startswith("2025-03-04")]
    assert len(hours) == 24 and max(hours) > 3 * max(min(hours), 1)  # a diurnal shape
    assert (profile.first or "").startswith("2025-03-03") and (profile.last or "").startswith("2025-03-16")
