"""The example suite a new user copies: generated and reproducible, seven routes, an explicit gate policy."""

from __future__ import annotations

import collections
import importlib.util
import json
import sys
from types import ModuleType

import pytest

from evalkit import load_suite
from evalkit.compare import GateConfig

from .conftest import REPO

ROUTES = {"general", "returns", "shipping", "billing", "account", "technical", "escalation"}


def _generator() -> ModuleType:
    name = "support_reply_generate"
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / "support_reply" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_committed_cases_are_what_the_seeded_generator_writes() -> None:
    generator = _generator()
    text = generator.render(generator.generate())
    assert (REPO / "suites" / "support_reply.csv").read_text("utf-8") == text
    assert generator.render(generator.generate(generator.SEED)) == text  # the same seed, the same file
    assert generator.render(generator.generate(generator.SEED + 1)) != text
    assert generator.main(["--check"]) == 0


def test_routes_and_their_mix() -> None:
    suite = load_suite(REPO / "suites" / "support_reply.yaml")
    routes = collections.Counter(case.route for case in suite.cases)
    assert set(routes) == ROUTES
    assert 300 <= len(suite.cases) <= 600
    # general is deliberately thin: the traffic example shows it carries most production traffic.
    assert routes["general"] / len(suite.cases) <= 0.10
    assert all(case.tags[0] == case.route for case in suite.cases)
    assert len({case.id for case in suite.cases}) == len(suite.cases)


def test_every_case_checks_the_greeting_and_a_point_of_policy() -> None:
    suite = load_suite(REPO / "suites" / "support_reply.yaml")
    for case in suite.cases:
        names = [check.name for check in case.expect]
        assert names[:2] == ["length", "not-icontains"]  # the suite's defaults
        greeting = next(check.arg for check in case.expect if check.name == "regex")
        assert greeting == f"^Hi {case.vars['customer_name']},"
        assert len(case.expect) == 4, case.id


def test_the_gate_policy_is_explicit_and_sized_for_the_suite() -> None:
    suite = load_suite(REPO / "suites" / "support_reply.yaml")
    assert suite.gate == {"alpha": 0.05, "margins": {"pass_rate": 0.05}, "block_on": ["pass_rate"],
                          "inconclusive": "block", "slices": "report"}
    config = GateConfig.from_mapping(suite.gate)
    assert config.margin("pass_rate") == 0.05 and config.inconclusive_blocks and not config.slices_block


def test_the_committed_baseline_is_a_full_run_of_this_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # template paths are recorded relative to where evalkit ran: the repository's root
    suite = load_suite(REPO / "suites" / "support_reply.yaml")
    baseline = json.loads((REPO / "baselines" / "support_reply.json").read_text())
    assert baseline["format"] == "evalkit.baseline/1"
    assert baseline["suite"]["name"] == suite.name
    assert baseline["suite"]["case_ids"] == [case.id for case in suite.cases]
    assert baseline["suite"]["gate"] == suite.gate
    assert baseline["suite"]["target"]["params"] == dict(suite.target.params)
    assert [s["case_id"] for s in baseline["samples"]] == [case.id for case in suite.cases]
    assert baseline["fingerprints"]["models_returned"] == ["SmolLM2-135M-Instruct"]
    assert not any(s["error_class"] for s in baseline["samples"])  # never an error-ridden baseline
    system = suite.target.system
    assert system is not None
    assert baseline["fingerprints"]["template_sha256"][system.origin] == system.sha256
