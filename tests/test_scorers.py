"""Deterministic scorers: a table of outputs and what each check says of them."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from evalkit import ConfigError, load_suite
from evalkit.plugins import load_callable, load_entry_points
from evalkit.scorers import REGISTRY, Score, ScoreContext, check_problem, parse_json_path, register, run_check
from evalkit.suite import Case, Check

CASES: list[tuple[str, Any, str, bool]] = [
    ("equals", "yes", "  yes\n", True),
    ("equals", "yes", "yes!", False),
    ("contains", "refund", "a full refund", True),
    ("contains", "Refund", "a full refund", False),
    ("icontains", "REFUND", "a full refund", True),
    ("not-contains", "password", "no secrets here", True),
    ("not-contains", "password", "your password", False),
    ("not-icontains", "PASSWORD", "your password", False),
    ("regex", r"\d{3}-\d{4}", "call 555-1234", True),
    ("regex", r"^Hi", "Hello", False),
    ("json-valid", True, '{"a": 1}', True),
    ("json-valid", True, '```json\n{"a": 1}\n```', True),
    ("json-valid", True, "{a: 1}", False),
    ("json-schema", {"type": "object", "required": ["a"]}, '{"a": 1}', True),
    ("json-schema", {"type": "object", "required": ["a"]}, '{"b": 1}', False),
    ("json-schema", {"type": "object"}, "not json", False),
    ("json-path", {"path": "$.order.items[1].sku", "equals": "B2"},
     '{"order": {"items": [{"sku": "A1"}, {"sku": "B2"}]}}', True),
    ("json-path", {"path": "$.order.total", "equals": 10}, '{"order": {"total": 12}}', False),
    ("json-path", {"path": "$.missing", "equals": 1}, '{"a": 1}', False),
    ("length", {"min": 2, "max": 5}, "abcd", True),
    ("length", {"max": 3}, "abcd", False),
    ("length", {"max": 2, "unit": "words"}, "one two three", False),
    ("one-of", ["billing", "shipping"], " billing ", True),
    ("one-of", ["billing", "shipping"], "returns", False),
]


@pytest.mark.parametrize(("name", "arg", "output", "expected"), CASES)
def test_builtin_checks(name: str, arg: Any, output: str, expected: bool) -> None:
    assert check_problem(Check(name, arg)) is None
    score = run_check(Check(name, arg), output)
    assert score.passed is expected
    assert score.name == name
    assert score.reason


def test_failure_reasons_say_what_was_expected() -> None:
    assert run_check(Check("equals", "yes"), "no").reason == "expected 'yes', got 'no'"
    assert run_check(Check("length", {"max": 3}), "abcd").reason == "4 chars outside [0, 3]"
    assert run_check(Check("json-path", {"path": "$.a", "equals": 1}), '{"a": 2}').reason == "$.a = 2, expected 1"


def test_problems_are_found_before_running() -> None:
    assert "valid regular expression" in (check_problem(Check("regex", "(")) or "")
    assert "valid JSON Schema" in (check_problem(Check("json-schema", {"type": 5})) or "")
    assert "min <= max" in (check_problem(Check("length", {"min": 5, "max": 1})) or "")
    assert "expected a path" in (check_problem(Check("json-path", {"path": "$..[", "equals": 1})) or "")
    assert "unknown check" in (check_problem(Check("nope", 1)) or "")


def test_json_path_parser() -> None:
    assert parse_json_path("$.a.b[2]['c d']") == ["a", "b", 2, "c d"]


@pytest.fixture
def user_module(monkeypatch: pytest.MonkeyPatch) -> str:
    module = types.ModuleType("evalkit_test_checks")

    def no_digits(output: str, args: Any, context: ScoreContext) -> bool:
        return not any(ch.isdigit() for ch in output)

    def graded(output: str, args: Any, context: ScoreContext) -> Score:
        target = args["target"]
        return Score("graded", len(output) >= target, min(1.0, len(output) / target), f"{len(output)}/{target}")

    async def mentions_name(output: str, args: Any, context: ScoreContext) -> bool:
        return str(context.vars["name"]) in output  # a scorer sees the case through its context

    def broken(output: str, args: Any, context: ScoreContext) -> bool:
        raise RuntimeError("boom")

    for fn in (no_digits, graded, mentions_name, broken):
        setattr(module, fn.__name__, fn)
    monkeypatch.setitem(sys.modules, "evalkit_test_checks", module)
    return "evalkit_test_checks"


def test_user_scorers_by_dotted_path(user_module: str) -> None:
    assert run_check(Check("scorer", {"name": f"{user_module}:no_digits"}), "abc").passed
    graded = run_check(Check("scorer", {"name": f"{user_module}:graded", "args": {"target": 4}}), "ab")
    assert (graded.passed, graded.score) == (False, 0.5)
    named = run_check(Check("scorer", {"name": f"{user_module}:mentions_name"}), "Hi Ada", Case("c", {"name": "Ada"}))
    assert named.passed and named.name == f"{user_module}:mentions_name"
    broken = run_check(Check("scorer", {"name": f"{user_module}:broken"}), "x")
    assert not broken.passed and broken.reason == "scorer raised RuntimeError: boom"
    assert "has no callable" in (check_problem(Check("scorer", {"name": f"{user_module}:absent"})) or "")


def test_a_registered_scorer_is_usable_from_yaml_with_its_own_validation(write, user_module: str) -> None:
    @register("evalkit-test-min-words", validate=lambda arg: None if isinstance(arg, int) and arg > 0
              else f"expected a positive integer, got {arg!r}")
    def min_words(output: str, arg: Any, context: ScoreContext) -> Score:
        words = len(output.split())
        return Score("min-words", words >= arg, None, f"{words} words")

    try:
        suite = load_suite(write("s.yaml", f"""
            name: s
            target: {{callable: "{user_module}:no_digits"}}
            cases: [{{id: a, vars: {{}}, expect: [{{evalkit-test-min-words: 2}}]}}]
        """))
        assert suite.cases[0].expect[0] == Check("evalkit-test-min-words", 2)
        assert run_check(suite.cases[0].expect[0], "two words").passed
        with pytest.raises(ConfigError, match=r"s2\.yaml:3: cases\[0\]\.expect\[0\]\.evalkit-test-min-words: "
                                              r"expected a positive integer, got 0"):
            load_suite(write("s2.yaml", f"""
                name: s
                target: {{callable: "{user_module}:no_digits"}}
                cases: [{{id: a, vars: {{}}, expect: [{{evalkit-test-min-words: 0}}]}}]
            """))
    finally:
        REGISTRY.pop("evalkit-test-min-words")


def test_plugins_are_found_through_the_evalkit_entry_point_group(tmp_path: Path, write,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    (site / "evalkit_demo_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "evalkit_demo_plugin-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: evalkit-demo-plugin\nVersion: 1.0\n")
    (site / "evalkit_demo_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[evalkit]\nshouts = evalkit_demo_plugin:shouts\n")
    (site / "evalkit_demo_plugin.py").write_text(
        "def shouts(output, arg, context):\n    return output.isupper()\n")
    monkeypatch.syspath_prepend(str(site))
    load_entry_points.cache_clear()
    try:
        suite = load_suite(write("s.yaml", """
            name: s
            target: {callable: "evalkit_demo_plugin:shouts"}
            cases: [{id: a, vars: {}, expect: [{shouts: true}]}]
        """))
        assert run_check(suite.cases[0].expect[0], "LOUD").passed
        assert not run_check(suite.cases[0].expect[0], "quiet").passed
    finally:
        REGISTRY.pop("shouts", None)
        load_entry_points.cache_clear()


@pytest.mark.parametrize(("source", "reason"), [
    ("def f(:\n", r"cannot import module 'evalkit_broken_scorer' \(SyntaxError: invalid syntax at .*"
                  r"evalkit_broken_scorer\.py:1\)"),
    ("raise RuntimeError('no config')\n",
     r"module 'evalkit_broken_scorer' raised RuntimeError when imported: no config"),
])
def test_a_scorer_module_that_cannot_import_is_one_line(tmp_path: Path, write, monkeypatch: pytest.MonkeyPatch,
                                                      source: str, reason: str) -> None:
    (tmp_path / "evalkit_broken_scorer.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    load_callable.cache_clear()
    path = write("s.yaml", """
        name: s
        target: {callable: "evalkit_broken_scorer:f"}
        cases: [{id: a, vars: {}, expect: [{scorer: {name: "evalkit_broken_scorer:f"}}]}]
    """)
    with pytest.raises(ConfigError) as caught:
        load_suite(path)
    message = str(caught.value)
    assert "\n" not in message
    assert re.fullmatch(r"s\.yaml:3: cases\[0\]\.expect\[0\]\.scorer: " + reason, message), message


def test_registry_holds_every_documented_check() -> None:
    documented = {"equals", "contains", "icontains", "not-contains", "not-icontains", "regex", "json-valid",
                  "json-schema", "json-path", "length", "one-of", "scorer"}
    assert documented <= set(REGISTRY)
