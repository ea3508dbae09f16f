"""Reading YAML inputs: one parse with the C loader, and every hostile or ambiguous input as one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from evalkit import ConfigError, load_suite, schema
from evalkit.schema import ALIAS_BUDGET, MAX_DEPTH, parse_yaml

from .test_suite import GOOD


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "x.yaml")
    message = str(info.value)
    assert "\n" not in message and len(message) < 300
    return message


def _suite_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_suite(path)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.fixture(params=["c", "python"])
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> type[Any]:
    """Both PyYAML loaders: libyaml's where installed (the default), and the pure-Python fallback."""
    chosen: type[Any] = yaml.SafeLoader
    if request.param == "c":
        if not yaml.__with_libyaml__:
            pytest.skip("PyYAML built without libyaml")
        chosen = yaml.CSafeLoader
    monkeypatch.setattr(schema, "_loader_class", lambda: chosen)
    return chosen


def test_the_c_loader_is_used_when_libyaml_is_installed() -> None:
    assert yaml.__with_libyaml__  # the wheels on PyPI bundle libyaml
    assert schema._loader_class() is yaml.CSafeLoader


def test_a_suite_is_parsed_once(write, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    real = schema._loader_class()

    class Counting(real):  # type: ignore[misc, valid-type]
        def __init__(self, stream: str) -> None:
            made.append(stream[:10])
            super().__init__(stream)

    monkeypatch.setattr(schema, "_loader_class", lambda: Counting)
    for name in ("compose", "safe_load", "load"):
        monkeypatch.setattr(yaml, name, lambda *a, **k: pytest.fail("a second YAML parse"))
    write("cases.yaml", "- id: y1\n  vars: {question: one}\n")
    load_suite(write("s.yaml", GOOD.split("cases:")[0] + "cases: cases.yaml\n"))
    assert len(made) == 2  # the suite file and its cases file, once each


def test_duplicate_top_level_key_names_both_lines(write) -> None:
    path = write("bad.yaml", GOOD + "name: again\n")
    assert _suite_error(path) == "bad.yaml:17: name: expected each key once, got 'name' again (first at line 1)"


def test_duplicate_nested_key_names_both_lines(write) -> None:
    path = write("bad.yaml", GOOD.replace('vars: {question: "2+2?"}', 'vars: {question: one, question: two}'))
    assert _suite_error(path) == (
        "bad.yaml:13: cases[0].vars.question: expected each key once, got 'question' again (first at line 13)"
    )


def test_duplicate_key_spelled_differently_is_still_a_duplicate(loader: type[Any]) -> None:
    assert _error("a: 1\n'a': 2\n") == "x.yaml:2: a: expected each key once, got 'a' again (first at line 1)"


@pytest.mark.parametrize(("text", "got"), [
    ("1: x\n", "an integer (1)"),
    ("null: x\n", "null"),
    ("yes: x\n", "a boolean (true)"),
    ("2024-01-01: x\n", "a date (2024-01-01)"),
    ("? [a, b]\n: x\n", "a list"),
    ("? {a: b}\n: x\n", "a mapping"),
])
def test_non_string_key_is_one_line(text: str, got: str, loader: type[Any]) -> None:
    assert _error(text) == f"x.yaml:1: (top level): expected a string key, got {got}"


def test_non_string_top_level_key_in_a_suite(write) -> None:
    # Was a TypeError from sorting the unknown keys for the message.
    path = write("bad.yaml", GOOD + "3: three\n")
    assert _suite_error(path) == "bad.yaml:17: (top level): expected a string key, got an integer (3)"


@pytest.mark.parametrize("text", [
    "[" * 150 + "]" * 150,
    "[" * 3000 + "]" * 3000,  # was a 2,999-line RecursionError
    "[" * 300_000,  # libyaml's own composer overflows the C stack on this (a segfault)
    "- " * 3000 + "x\n",
    "a:\n" + "".join(" " * i + "b:\n" for i in range(1, 400)),
])
def test_deep_nesting_is_one_line(text: str, loader: type[Any]) -> None:
    if loader is yaml.SafeLoader and len(text) > 5000:
        pytest.skip("the pure-Python scanner is slow (quadratic) on deep flow nesting; no C stack to overflow")
    message = _error(text)
    assert message.startswith("x.yaml:")
    assert message.endswith(f"expected at most {MAX_DEPTH} levels of nested lists and mappings, got more")


def test_nesting_up_to_the_limit_is_fine(loader: type[Any]) -> None:
    data, _ = parse_yaml("[" * MAX_DEPTH + "]" * MAX_DEPTH, "x.yaml")
    depth = 0
    while isinstance(data, list) and data:
        data, depth = data[0], depth + 1
    assert depth == MAX_DEPTH - 1


BILLION_LAUGHS = "\n".join(
    [f'a: &a [{", ".join(["lol"] * 9)}]']
    + [f"{k}: &{k} [{', '.join([f'*{p}'] * 9)}]" for p, k in zip("abcdefgh", "bcdefghi", strict=True)]
) + "\n"


def test_alias_bomb_is_bounded_and_one_line(loader: type[Any]) -> None:
    message = _error(BILLION_LAUGHS)
    assert message.startswith("x.yaml:6: f[0]: expected aliases to expand the document to at most 100,000 values")
    assert "'*e' alone expands to" in message and "alias bomb" in message


def test_alias_bomb_in_a_suite(write) -> None:
    # Was 170 s and 2.1 GB: the expanded document was walked by validation and the locator.
    message = _suite_error(write("bad.yaml", GOOD + BILLION_LAUGHS))
    assert message.startswith("bad.yaml:22: f[0]: expected aliases to expand") and "alias bomb" in message


def test_aliases_within_budget_are_expanded(loader: type[Any]) -> None:
    text = "common: &c [{contains: a}, {length: {min: 1}}]\ncases:\n" + "".join(
        f"  - {{id: c{i}, expect: *c}}\n" for i in range(300))
    data, locate = parse_yaml(text, "x.yaml")
    assert data["cases"][299]["expect"] == [{"contains": "a"}, {"length": {"min": 1}}]
    assert locate(["cases", 299, "expect"]) == 302
    assert ALIAS_BUDGET == 100_000


@pytest.mark.parametrize(("text", "message"), [
    ("a: &a [1, *a]\n",
     "x.yaml:1: a[1]: expected an alias of a finished value, got '*a' inside the value it names (a recursive "
     "structure)"),
    ("a: *nope\n", "x.yaml:1: a: expected an anchor defined before its alias, got '*nope'"),
    ("a: 1\n---\nb: 2\n", "x.yaml:2: expected a single YAML document, got a second one"),
    ("a: !!set {x, y}\n", "x.yaml:1: a: expected a plain YAML mapping, got the tag '!!set'"),
    ("a: !!python/name:os.system x\n", "x.yaml:1: a: expected a plain YAML value, got the tag "
                                         "'!!python/name:os.system'"),
    ("c:\n  <<: 3\n", "x.yaml:2: c.<<: expected a mapping or a list of mappings to merge, got an integer (3)"),
    ("a: [unclosed\nb: 2\n", "x.yaml:2:2: invalid YAML: did not find expected ',' or ']'"),
])
def test_other_bad_yaml_is_one_line(text: str, message: str, loader: type[Any]) -> None:
    got = _error(text)
    if loader is yaml.SafeLoader and "invalid YAML" in message:
        assert got.startswith("x.yaml:2:") and "invalid YAML" in got  # the two parsers word problems differently
    else:
        assert got == message


def test_merge_keys_and_their_lines(loader: type[Any]) -> None:
    data, locate = parse_yaml("base: &b {x: 1, y: 2}\nextra: &e {z: 3, x: 9}\nc:\n  <<: [*b, *e]\n  y: 5\n",
                              "x.yaml")
    assert data["c"] == {"x": 1, "y": 5, "z": 3}
    assert locate(["c", "y"]) == 5 and locate(["c", "z"]) == 4 and locate(["c"]) == 3


def test_anchored_keys_can_be_aliased(loader: type[Any]) -> None:
    data, _ = parse_yaml("a:\n  &k question: one\nb:\n  *k : two\n", "x.yaml")
    assert data == {"a": {"question": "one"}, "b": {"question": "two"}}


def test_empty_documents(loader: type[Any]) -> None:
    assert parse_yaml("", "x.yaml")[0] is None
    assert parse_yaml("# only a comment\n", "x.yaml")[0] is None
    assert parse_yaml("---\n...\n", "x.yaml")[0] is None


def test_locator_points_at_keys_items_and_nearest_ancestors(loader: type[Any]) -> None:
    _, locate = parse_yaml("name: a\ncases:\n  - id: one\n    vars:\n      q: x\n  - {id: two}\n", "x.yaml")
    assert locate(["name"]) == 1
    assert locate(["cases", 0, "vars", "q"]) == 5
    assert locate(["cases", 0, "vars"]) == 4
    assert locate(["cases", 1]) == 6
    assert locate(["cases", 7, "id"]) == 3  # no such case: where the list starts
    assert locate([]) == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=25,
)


@settings(max_examples=100, deadline=None)
@given(value=json_values, flow=st.booleans())
def test_reads_what_yaml_dump_writes(value: Any, flow: bool) -> None:
    text = yaml.safe_dump(value, default_flow_style=flow, allow_unicode=True)
    for chosen in (yaml.CSafeLoader, yaml.SafeLoader):
        data, _ = schema._Reader(text, "x.yaml", chosen).read()
        assert json.dumps(data, sort_keys=True) == json.dumps(yaml.safe_load(text), sort_keys=True)


def test_nesting_too_deep_counts_without_recursion() -> None:
    deep: Any = 1
    for _ in range(10_000):
        deep = [deep]
    assert schema.nesting_too_deep(deep)
    assert not schema.nesting_too_deep({"a": [{"b": [1]}]}, limit=4)
    assert schema.nesting_too_deep({"a": [{"b": [1]}]}, limit=3)
