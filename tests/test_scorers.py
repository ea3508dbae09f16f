"""Deterministic scorers: a table of outputs and what each check says of them."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from evalkit.scorers import REGISTRY, Score, check_problem, parse_json_path, run_check
from evalkit.suite import Check

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

    def no_digits(output: str, case: Any, **args: Any) -> bool:
        return not any(ch.isdigit() for ch in output)

    def graded(output: str, case: Any, *, target: int) -> Score:
        return Score("graded", len(output) >= target, min(1.0, len(output) / target), f"{len(output)}/{target}")

    def broken(output: str, case: Any) -> bool:
        raise RuntimeError("boom")

    module.no_digits = no_digits  # type: ignore[attr-defined]
    module.graded = graded  # type: ignore[attr-defined]
    module.broken = broken  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "evalkit_test_checks", module)
    return "evalkit_test_checks"


def test_user_scorers_by_dotted_path(user_module: str) -> None:
    assert run_check(Check("scorer", {"name": f"{user_module}:no_digits"}), "abc").passed
    graded = run_check(Check("scorer", {"name": f"{user_module}:graded", "args": {"target": 4}}), "ab")
    assert (graded.passed, graded.score) == (False, 0.5)
    broken = run_check(Check("scorer", {"name": f"{user_module}:broken"}), "x")
    assert not broken.passed and broken.reason == "scorer raised RuntimeError: boom"
    assert "has no callable" in (check_problem(Check("scorer", {"name": f"{user_module}:absent"})) or "")


def test_registry_holds_every_documented_check() -> None:
    documented = {"equals", "contains", "icontains", "not-contains", "not-icontains", "regex", "json-valid",
                  "json-schema", "json-path", "length", "one-of", "scorer"}
    assert documented <= set(REGISTRY)
