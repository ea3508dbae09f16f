"""Suite loading: the formats that work, and every bad input as one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit import ConfigError, TemplateError, load_suite
from evalkit.suite import derive_case_id

from .conftest import REPO

GOOD = """
name: demo
target:
  provider: local
  system: "You are terse."
  user: "Q: {{ question }}"
defaults:
  vars: {tone: plain}
  tags: [all]
  expect:
    - length: {min: 1}
cases:
  - id: one
    vars: {question: "2+2?"}
    tags: [math]
    expect: [{contains: "4"}]
  - vars: {question: "capital of France?"}
"""


def test_loads_a_valid_suite(write) -> None:
    suite = load_suite(write("demo.yaml", GOOD))
    assert suite.name == "demo"
    assert [c.id for c in suite.cases] == ["one", derive_case_id({"question": "capital of France?"})]
    first = suite.cases[0]
    assert first.vars == {"tone": "plain", "question": "2+2?"}
    assert first.tags == ("all", "math")
    assert [c.name for c in first.expect] == ["length", "contains"]
    assert first.source == "demo.yaml:12"
    assert suite.target.user is not None and suite.target.user.variables == {"question"}
    assert len(suite.sha256) == 64


def test_derived_ids_are_stable_and_content_based() -> None:
    assert derive_case_id({"a": 1, "b": "x"}) == derive_case_id({"b": "x", "a": 1})
    assert derive_case_id({"a": 1}) != derive_case_id({"a": 2})


def test_suite_hash_changes_with_the_prompt(write) -> None:
    write("p.md", "Be brief.")
    text = GOOD.replace('system: "You are terse."', "system: {file: p.md}")
    before = load_suite(write("demo.yaml", text)).sha256
    write("p.md", "Be brief and kind.")
    assert load_suite("demo.yaml").sha256 != before


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_suite(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_malformed_yaml(write) -> None:
    path = write("bad.yaml", "name: demo\ntarget: [unclosed\ncases: []\n")
    assert _error(path).startswith("bad.yaml:3:")
    assert "invalid YAML" in _error(path)


def test_wrong_type_names_file_line_field_expected_and_got(write) -> None:
    path = write("bad.yaml", GOOD.replace('expect: [{contains: "4"}]', "expect: [{regex: [a, b]}]"))
    assert _error(path) == "bad.yaml:15: cases[0].expect[0].regex: expected a string, got a list"


def test_unknown_key(write) -> None:
    path = write("bad.yaml", GOOD.replace("    tags: [math]", "    tagz: [math]"))
    assert _error(path) == (
        "bad.yaml:14: cases[0].tagz: unknown key 'tagz'; expected one of: description, expect, faults, id, route, "
        "tags, user, user_sim, vars"
    )


def test_unknown_check(write) -> None:
    path = write("bad.yaml", GOOD.replace('{contains: "4"}', '{containz: "4"}'))
    message = _error(path)
    assert message.startswith("bad.yaml:15: cases[0].expect[0].containz: unknown check; expected one of:")


def test_missing_field(write) -> None:
    path = write("bad.yaml", GOOD.replace("name: demo\n", ""))
    assert _error(path) == "bad.yaml:1: (top level): missing required field 'name'"


def test_target_needs_a_user_template_or_callable(write) -> None:
    path = write("bad.yaml", GOOD.replace('  user: "Q: {{ question }}"\n', ""))
    assert _error(path) == (
        "bad.yaml:2: target: expected either 'callable' alone, or 'provider' with a 'user' template"
    )


def test_missing_template_variable(write) -> None:
    path = write("bad.yaml", GOOD.replace('"Q: {{ question }}"', '"Q: {{ question }} for {{ customer }}"'))
    with pytest.raises(TemplateError) as info:
        load_suite(path)
    assert str(info.value) == (
        "bad.yaml:12: cases[0].vars: template variable 'customer' used in bad.yaml:target.user is not "
        "supplied (expected it in vars or defaults.vars, got: question, tone)"
    )


def test_template_syntax_error_names_the_prompt_file(write) -> None:
    write("p.md", "Hello\n{% if x %}unclosed\n")
    path = write("bad.yaml", GOOD.replace('system: "You are terse."', "system: {file: p.md}"))
    message = _error(path)
    assert message.startswith("p.md:")
    assert "template syntax error" in message


def test_duplicate_case_id(write) -> None:
    path = write("bad.yaml", GOOD.replace('  - vars: {question: "capital of France?"}',
                                          '  - id: one\n    vars: {question: "again"}'))
    assert _error(path) == (
        "bad.yaml:16: cases[1].id: expected a unique case id, got 'one' again (first defined at bad.yaml:12)"
    )


def test_missing_cases_file(write) -> None:
    text = GOOD.split("cases:")[0] + "cases: {file: nowhere.jsonl}\n"
    assert _error(write("bad.yaml", text)) == "bad.yaml:11: cases: file 'nowhere.jsonl' does not exist"


def test_missing_prompt_file(write) -> None:
    path = write("bad.yaml", GOOD.replace('system: "You are terse."', "system: {file: gone.md}"))
    assert _error(path) == "bad.yaml:4: target.system.file: file 'gone.md' does not exist"


def test_invalid_regex_is_caught_at_load(write) -> None:
    path = write("bad.yaml", GOOD.replace('{contains: "4"}', '{regex: "(unclosed"}'))
    message = _error(path)
    assert message.startswith("bad.yaml:15: cases[0].expect[0].regex: expected a valid regular expression")


def test_unimportable_user_scorer(write) -> None:
    path = write("bad.yaml", GOOD.replace('{contains: "4"}', "{scorer: {name: 'nopkg.mod:fn'}}"))
    assert "cannot import module 'nopkg.mod'" in _error(path)


def test_jsonl_cases(write) -> None:
    write("cases.jsonl", '{"id": "a", "vars": {"question": "x"}, "tags": ["t"]}\n\n{"vars": {"question": "y"}}\n')
    suite = load_suite(write("s.yaml", GOOD.split("cases:")[0] + "cases: cases.jsonl\n"))
    assert [c.id for c in suite.cases] == ["a", derive_case_id({"question": "y"})]
    assert suite.cases[1].source == "cases.jsonl:3"


def test_jsonl_schema_error_names_the_cases_file_line(write) -> None:
    write("cases.jsonl", '{"id": "a", "vars": {"question": "x"}}\n{"id": "b", "vars": "oops"}\n')
    path = write("s.yaml", GOOD.split("cases:")[0] + "cases: cases.jsonl\n")
    assert _error(path) == "cases.jsonl:2: [1].vars: expected a mapping, got a string ('oops')"


def test_jsonl_invalid_json(write) -> None:
    write("cases.jsonl", '{"id": "a", "vars": {"question": "x"}}\n{"id": \n')
    path = write("s.yaml", GOOD.split("cases:")[0] + "cases: cases.jsonl\n")
    assert _error(path).startswith("cases.jsonl:2: invalid JSON:")


def test_csv_cases(write) -> None:
    write("cases.csv", "id,question,tags,expect.contains\nq1,2+2?,\"math,easy\",4\nq2,hello?,,\n")
    suite = load_suite(write("s.yaml", GOOD.split("cases:")[0] + "cases: {file: cases.csv}\n"))
    first, second = suite.cases
    assert first.id == "q1" and first.vars["question"] == "2+2?"
    assert first.tags == ("all", "math", "easy")
    assert [c.name for c in first.expect] == ["length", "contains"]
    assert [c.name for c in second.expect] == ["length"]


def test_yaml_cases_file(write) -> None:
    write("cases.yaml", "- id: y1\n  vars: {question: one}\n- id: y2\n  vars: {question: two}\n")
    suite = load_suite(write("s.yaml", GOOD.split("cases:")[0] + "cases: cases.yaml\n"))
    assert [c.id for c in suite.cases] == ["y1", "y2"]


def test_binary_suite_file(tmp_path: Path) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"\xff\xfe\x00name")
    assert _error(path).startswith("bin.yaml: expected UTF-8 text")


def test_suite_file_not_found() -> None:
    assert _error(Path("missing.yaml")) == "missing.yaml: file not found"


def test_example_suite_has_30_route_tagged_cases() -> None:
    suite = load_suite(REPO / "suites" / "support_reply.yaml")
    assert len(suite.cases) >= 30
    routes = {"returns", "shipping", "billing", "technical", "account", "escalation", "general"}
    assert all(routes & set(case.tags) for case in suite.cases)
    assert suite.target.system is not None
    for section in ("## Role", "## Policy", "## Safety", "## Output format"):
        assert section in suite.target.system.source


def test_routes_from_defaults_cases_and_csv(write) -> None:
    write("cases.csv", "id,route,q\na,cheap,one\nb,,two\n")
    path = write("s.yaml", """
        name: s
        target: {provider: local, user: "{{ q }}"}
        defaults: {route: general}
        cases: cases.csv
    """)
    assert [(c.id, c.route) for c in load_suite(path).cases] == [("a", "cheap"), ("b", "general")]
    inline = write("t.yaml", """
        name: t
        target: {provider: local, user: "{{ q }}"}
        cases:
          - {id: a, route: expensive, vars: {q: one}}
          - {id: b, vars: {q: two}}
    """)
    assert [(c.id, c.route) for c in load_suite(inline).cases] == [("a", "expensive"), ("b", None)]


CSV_SUITE = GOOD.split("cases:")[0] + "cases: cases.csv\n"


@pytest.mark.parametrize(("rows", "message"), [
    # Were silently truncated (the extra cell dropped) or padded (the missing one read as empty).
    ("id,question,expect.contains\nq1,2+2?,4\nq2,3+3?,6,extra\n",
     "cases.csv:3: row 2: expected 3 cells (one per column: id, question, expect.contains), got 4"),
    ("id,question,expect.contains\nq1,2+2?\n",
     "cases.csv:2: row 1: expected 3 cells (one per column: id, question, expect.contains), got 2"),
    ("id,question\nq1,\"multi\nline\"\n\nq2,\"a\",b\n",
     "cases.csv:5: row 2: expected 2 cells (one per column: id, question), got 3"),
    ("id,question,id\nq1,x,y\n",
     "cases.csv:1: header: expected each column name once, got 'id' in columns 1 and 3"),
    ("id,,question\nq1,x,y\n", "cases.csv:1: header: expected a name for column 2, got an empty cell"),
    ("id,question\nq1,\"unclosed\n", "cases.csv:2: invalid CSV: unexpected end of data"),
])
def test_bad_csv_rows_are_one_line(rows: str, message: str, write) -> None:
    write("cases.csv", rows)
    assert _error(write("s.yaml", CSV_SUITE)) == message


def test_csv_lines_count_multi_line_cells_and_blank_lines(write) -> None:
    write("cases.csv", "\ufeffid,question\nq1,\"two\nlines\"\n\nq2,plain\nq3,\"x\"\n")
    suite = load_suite(write("s.yaml", CSV_SUITE))
    assert [(c.id, c.source, c.vars["question"]) for c in suite.cases] == [
        ("q1", "cases.csv:2", "two\nlines"), ("q2", "cases.csv:5", "plain"), ("q3", "cases.csv:6", "x")]


@pytest.mark.parametrize(("lines", "message"), [
    ('{"id": "a", "vars": {"question": "x"}, "id": "b"}\n',
     "cases.jsonl:1: expected each key once in a JSON object, got 'id' again"),
    ('{"vars": {"question": "x", "question": "y"}}\n',
     "cases.jsonl:1: expected each key once in a JSON object, got 'question' again"),
    ('{"id": "a", "vars": {"question": "x"}}\n\n{"vars": {"question": ' + "[" * 5000 + "]" * 5000 + "}}\n",
     "cases.jsonl:3: expected at most 100 levels of nested lists and mappings, got more"),
    ('{"vars": {"question": ' + "[" * 200 + "]" * 200 + "}}\n",
     "cases.jsonl:1: expected at most 100 levels of nested lists and mappings, got more"),
])
def test_bad_jsonl_records_are_one_line(lines: str, message: str, write) -> None:
    write("cases.jsonl", lines)
    assert _error(write("s.yaml", GOOD.split("cases:")[0] + "cases: cases.jsonl\n")) == message


@pytest.mark.parametrize(("text", "message"), [
    ("- id: a\n  vars: {question: x}\n  id: b\n",
     "cases.yaml:3: [0].id: expected each key once, got 'id' again (first at line 1)"),
    ("- id: a\n  vars: {question: x}\n- {1: x}\n", "cases.yaml:3: [1]: expected a string key, got an integer (1)"),
    ("{a: 1}\n", "cases.yaml: (top level): expected a list of cases, got a mapping"),
])
def test_bad_yaml_cases_files_are_one_line(text: str, message: str, write) -> None:
    write("cases.yaml", text)
    assert _error(write("s.yaml", GOOD.split("cases:")[0] + "cases: cases.yaml\n")) == message


def test_cases_path_that_is_a_directory(write, tmp_path: Path) -> None:
    (tmp_path / "cases.csv").mkdir()
    assert _error(write("s.yaml", CSV_SUITE)) == "s.yaml:11: cases: expected a file, got the directory 'cases.csv'"
