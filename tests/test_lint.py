"""The prompt linter: every rule, bad inputs, suppressions, the diff-aware mode and the output formats."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from evalkit import ConfigError, ExitCode
from evalkit.cli import main
from evalkit.lint import lint
from evalkit.report.lint import render_lint_github, render_lint_json, render_lint_sarif
from evalkit.text.pii import luhn

from .conftest import REPO

TODAY = dt.date(2026, 11, 23)

PROMPT = """\
## Role
You are the support assistant for {{ company }}.

## Safety
Never ask for a password, a full card number or a one-time code.

## Output format
Plain text, at most 80 words.
"""


def _rules(report) -> list[tuple[str, int, str]]:  # type: ignore[no-untyped-def]
    return [(f.rule, f.line, f.severity) for f in report.findings]


def test_required_sections_headings_tags_aliases_and_length(write) -> None:
    write("evalkit.yaml", """
        lint:
          required_sections:
            - glob: "prompts/*.md"
              sections: [Role, Safety, Output format, Examples]
              aliases: {examples: [samples]}
              min_chars: 20
    """)
    write("prompts/a.md", PROMPT + "\n<samples>\nQ: hi\nA: Hi there, how can I help?\n</samples>\n")
    write("prompts/b.md", "<safety>Never share secrets with anyone at all.</safety>\n\n## Role\nShort.\n")
    report = lint(["prompts"], today=TODAY)
    assert [(f.path, f.line, f.message) for f in report.findings] == [
        ("prompts/b.md", 1, "required section 'Examples' is missing (expected a '## Examples' heading, a "
                            "<examples> tag or a 'Examples:' line)"),
        ("prompts/b.md", 1, "required section 'Output format' is missing (expected a '## Output Format' heading, "
                            "a <output_format> tag or a 'Output Format:' line)"),
        ("prompts/b.md", 3, "section 'Role' has 6 characters of text; expected at least 20"),
    ]
    assert report.exit_code == ExitCode.LINT_FAILED


def _git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=folder, check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository holding the example prompt, suite and config, committed."""
    shutil.copytree(REPO / "prompts", tmp_path / "prompts")
    shutil.copytree(REPO / "suites", tmp_path / "suites")
    shutil.copy(REPO / "evalkit.yaml", tmp_path / "evalkit.yaml")
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "base")
    return tmp_path


def test_the_example_prompt_passes_its_committed_config(repo: Path) -> None:
    report = lint(today=TODAY)
    assert report.findings == ()
    assert report.files >= 2


def test_removing_the_example_safety_section_is_caught_with_base(repo: Path) -> None:
    prompt = repo / "prompts" / "support_reply.md"
    text = prompt.read_text()
    prompt.write_text(text[:text.index("## Safety")] + text[text.index("## Output format"):])
    report = lint(base="HEAD", today=TODAY)
    assert [(f.rule, f.severity, f.message) for f in report.findings] == [
        ("removed-section", "error", "section 'Safety' (line 11 in the base, 262 characters) was removed"),
        ("required-section", "error", "required section 'Safety' is missing (expected a '## Safety' heading, a "
                                      "<safety> tag or a 'Safety:' line)"),
    ]


def test_removal_is_an_error_even_when_not_required_and_shrinking_warns(repo: Path) -> None:
    prompt = repo / "prompts" / "support_reply.md"
    text = prompt.read_text()
    policy = text[text.index("## Policy"):text.index("## Safety")]
    text = text.replace(policy, "## Policy\nBe nice.\n\n")
    prompt.write_text(text + "\n## Notes\n\n")
    (repo / "prompts" / "new.md").write_text("## Role\nA brand-new prompt with nothing in the base.\n")
    findings = [(f.path, f.rule, f.severity) for f in lint(["prompts"], base="HEAD", today=TODAY).findings]
    assert ("prompts/support_reply.md", "removed-section", "warning") in findings  # Policy shrank by > 50%
    assert not any(path == "prompts/new.md" and rule == "removed-section" for path, rule, _ in findings)
    (repo / "prompts" / "support_reply.md").write_text(text.replace("Be nice.\n", ""))
    emptied = [f.message for f in lint(["prompts/support_reply.md"], base="HEAD", today=TODAY).findings]
    assert any("section 'Policy' was emptied" in m for m in emptied)


def test_a_base_that_does_not_exist(repo: Path) -> None:
    with pytest.raises(ConfigError) as info:
        lint(base="no-such-branch", today=TODAY)
    assert str(info.value) == "--base: expected a git revision, got 'no-such-branch' (no such commit, branch or tag)"


def test_template_variables_against_suites(write) -> None:
    write("prompts/p.md", "## Role\nHello {{ name }} about {{ topic }}.\n{% for x in items %}{{ x }}{% endfor %}\n")
    write("prompts/broken.md", "## Role\nLine two\n{% if x %}never closed\n")
    write("suites/s.yaml", """
        name: s
        target: {provider: local, user: {file: ../prompts/p.md}}
        defaults: {vars: {items: [1]}}
        cases:
          - {id: one, vars: {name: A, topic: T, extra: 1}}
          - {id: two, vars: {name: B}}
    """)
    report = lint(["prompts", "suites"], today=TODAY)
    assert [(f.path, f.rule, f.line, f.column, f.message) for f in report.findings] == [
        ("prompts/broken.md", "template-syntax", 3, 1,
         "jinja2: Unexpected end of template. Jinja was looking for the following tags: 'elif' or 'else' or "
         "'endif'. The innermost block that needs to be closed is 'if'."),
        ("prompts/p.md", "undefined-variable", 2, 27,
         "variable 'topic' is not supplied by 1 of 2 cases of suites/s.yaml (first: two) nor by its defaults.vars"),
        ("suites/s.yaml", "unused-variable", 5, 41,
         "variable 'extra' is supplied but no template of this suite uses it"),
    ]


def test_token_budget_uses_the_longest_case_values_and_names_its_method(write) -> None:
    write("evalkit.yaml", 'lint:\n  token_budget: [{glob: "prompts/*", budget: 100}]\n')
    write("prompts/p.md", "## Role\nAnswer: {{ question }}\n")
    write("suites/s.yaml", f"""
        name: s
        target: {{provider: local, user: {{file: ../prompts/p.md}}}}
        cases: [{{vars: {{question: short}}}}, {{vars: {{question: "{'word ' * 100}"}}}}]
    """)
    (finding,) = lint(["prompts"], today=TODAY).findings
    assert finding.rule == "token-budget"
    assert finding.message.startswith("rendered prompt is 1")
    assert "above the budget of 100" in finding.message
    assert "tiktoken" in finding.message  # the counting method is always named


def test_model_ids(write, tmp_path: Path) -> None:
    write("extra.yaml", """
        format: evalkit.models/1
        floating: {aliases: [house-model]}
        models: [{id: acme-2027, status: deprecated, date: 2027-03-01}]
    """)
    write("evalkit.yaml", "lint:\n  model_ids: extra.yaml\n")
    write("suites/m.yaml", "model: gpt-4o\nold: {model: text-davinci-003}\npinned: {model: gpt-4o-2024-08-06}\n"
                           "alias: {model_name: claude-3-5-sonnet-latest}\nours: {engine: house-model}\n"
                           "soon: {model: acme-2027}\nruns-on: ubuntu-latest\n")
    findings = [(f.line, f.severity, f.message) for f in lint(["suites/m.yaml"], today=TODAY).findings]
    assert findings == [
        (1, "warning", "floating model alias 'gpt-4o' moves to new snapshots without notice, so scores change "
                       "currency; pin a dated snapshot"),
        (2, "error", "model 'text-davinci-003' was retired on 2024-01-04; calls to it fail"),
        (4, "warning", "floating model alias 'claude-3-5-sonnet-latest' moves to new snapshots without notice, so "
                       "scores change currency; pin a dated snapshot"),
        (5, "warning", "floating model alias 'house-model' moves to new snapshots without notice, so scores change "
                       "currency; pin a dated snapshot"),
        (6, "warning", "model 'acme-2027' is deprecated (retires 2027-03-01); move to a current snapshot"),
    ]


def test_model_ids_in_prose_are_mentions_not_calls(write) -> None:
    write("prompts/about.md", "# Built on text-davinci-003\nPowered by gpt-4.5-preview. Ask o3 or gpt-4o anything;\n"
                              "the CI runs on ubuntu-latest. Answers come from sonar.\n")
    findings = [(f.line, f.column, f.severity, f.message) for f in lint(["prompts"], today=TODAY).findings]
    assert findings == [
        (1, 12, "note", "the text mentions model 'text-davinci-003', retired on 2024-01-04; a model setting naming it "
                        "fails"),
        (2, 12, "note", "the text mentions model 'gpt-4.5-preview', retired on 2025-07-14; a model setting naming it "
                        "fails"),
    ]
    write("suites/p.yaml", "model: sonar\nfallback: {model: gemini-1.5-pro}\nnext: {model: gpt-4.1.}\n")
    called = [(f.line, f.severity, f.message.split(";")[0]) for f in lint(["suites/p.yaml"], today=TODAY).findings]
    assert called == [
        (1, "warning", "floating model alias 'sonar' moves to new snapshots without notice, so scores change currency"),
        (2, "error", "model 'gemini-1.5-pro' was retired on 2025-09-24"),
        (3, "warning", "floating model alias 'gpt-4.1' moves to new snapshots without notice, so scores change "
                       "currency"),
    ]


def test_dangling_tools(write) -> None:
    write("evalkit.yaml", 'lint:\n  tools: [{glob: "prompts/*", catalog: [lookup_order, issue_refund, escalate]}]\n')
    write("prompts/p.md", "## Tools\n- `lookup_order`: find an order\n- `cancel_order`: cancel it\n\n"
                          "Call issue_refund(order_id) when eligible.\n")
    messages = [(f.severity, f.message) for f in lint(["prompts"], today=TODAY).findings]
    assert messages == [
        ("warning", "catalog tool 'escalate' is never mentioned in the prompt, so the model is never told of it"),
        ("error", "the prompt names tool 'cancel_order', which is not in the tool catalog (escalate, issue_refund, "
                  "lookup_order)"),
    ]


def test_tools_in_example_code_are_not_tools_and_prose_mentions_count(write) -> None:
    write("evalkit.yaml", 'lint:\n  tools: [{glob: "prompts/*", catalog: [TodoWrite, web_search, lookup_order]}]\n')
    write("prompts/p.md", "## Tools\nUse the TodoWrite tool to plan. Call web_search(query) for news; also the "
                          "FileDelete tool.\n\n```python\ndef parse_date(value):\n    return format_result(value)\n"
                          "```\nLook up orders with `lookup_order`.\n")
    messages = [(f.line, f.severity, f.message) for f in lint(["prompts"], today=TODAY).findings]
    assert messages == [
        (2, "error", "the prompt names tool 'FileDelete', which is not in the tool catalog (TodoWrite, lookup_order, "
                     "web_search)"),
    ]


def test_pii_is_found_redacted_and_luhn_checked(write) -> None:
    write("judges/anchors.jsonl", "\n".join([
        '{"text": "mail me at jane.roe@gmail.com (not jane.doe@example.com)"}',
        '{"text": "card 4556 7375 8689 9855 and not-a-card 4556 7375 8689 9856"}',
        '{"text": "call +44 20 7946 0958 or (415) 867-5309, not the fictional (415) 555-0132"}',
        '{"text": "ssn 536-22-1234, NI AB123456C (not the invalid sample QQ123456C)"}',
        '{"text": "key sk-proj-Zb3kQ9xW2mT7vL1pR8nY4cF6hJ0dS5aG"}',
    ]) + "\n")
    findings = lint(["judges"], today=TODAY).findings
    assert [(f.line, f.message) for f in findings] == [
        (1, "possible e-mail address (ja**************om)"),
        (2, "possible payment card number (45************55)"),
        (3, "possible phone number (+4************58)"),
        (3, "possible phone number ((4**********09)"),
        (4, "possible US social security number (53*******34)"),
        (4, "possible UK national insurance number (AB*****6C)"),
        (5, "possible OpenAI API key (sk************************************aG)"),
    ]
    assert all("jane.roe" not in f.snippet and "4556 7375 8689 9855" not in f.snippet for f in findings)
    assert luhn("4111111111111111") and not luhn("4111111111111112")


def test_patterns_suppressions_overrides(write) -> None:
    write("evalkit.yaml", """
        lint:
          forbidden_patterns: [{glob: "prompts/*", pattern: "(?i)\\\\bTODO\\\\b", message: unfinished note}]
          required_patterns: [{glob: "prompts/*", pattern: "Northwind"}]
          severity: {required-pattern: warning}
          overrides: [{glob: "prompts/legacy.md", severity: {forbidden-pattern: off}}]
    """)
    write("prompts/a.md", "TODO one\n<!-- evalkit: disable=forbidden-pattern tracked in TICKET-12 -->\nTODO two\n"
                          "<!-- evalkit: disable=forbidden-pattern -->\nTODO three\n")
    write("prompts/legacy.md", "TODO in legacy\n")
    findings = [(f.path, f.line, f.rule, f.severity, f.message) for f in lint(["prompts"], today=TODAY).findings]
    assert findings == [
        ("prompts/a.md", 1, "forbidden-pattern", "error", "unfinished note"),
        ("prompts/a.md", 1, "required-pattern", "warning", "does not match required pattern /Northwind/"),
        ("prompts/a.md", 4, "suppression", "warning",
         "suppression of forbidden-pattern needs a reason after the rule list; not applied"),
        ("prompts/a.md", 5, "forbidden-pattern", "error", "unfinished note"),
        ("prompts/legacy.md", 1, "required-pattern", "warning", "does not match required pattern /Northwind/"),
    ]


def test_bad_files_are_findings_and_the_rest_is_still_linted(write, tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "latin1.md").write_bytes("## Role\ncaf\xe9\n".encode("latin-1"))
    (tmp_path / "prompts" / "blob.txt").write_bytes(b"\x89PNG\x00\x00binary")
    (tmp_path / "prompts" / "empty.md").write_text("  \n")
    write("prompts/ok.md", "contact: jane.roe@outlook.com\n")
    findings = [(f.path, f.line, f.severity, f.message) for f in lint(["prompts", "missing.md"], today=TODAY).findings]
    assert findings == [
        ("missing.md", 1, "error", "path does not exist"),
        ("prompts/blob.txt", 1, "error", "binary file (NUL bytes): not linted"),
        ("prompts/empty.md", 1, "warning", "empty file"),
        ("prompts/latin1.md", 2, "error", "expected UTF-8 text, got byte 0xe9 at offset 11: not linted"),
        ("prompts/ok.md", 1, "error", "possible e-mail address (ja****************om)"),
    ]


@pytest.mark.parametrize(("config", "message"), [
    ("lint:\n  severity: {piii: off}\n", "evalkit.yaml:2: lint.severity.piii: unknown rule 'piii'; expected one of: "),
    ('lint:\n  forbidden_patterns: [{glob: "*", pattern: "(unclosed"}]\n',
     "evalkit.yaml:2: lint.forbidden_patterns[0].pattern: expected a valid regular expression, got '(unclosed'"),
    ("lint:\n  pathz: []\n", "evalkit.yaml:2: lint.pathz: unknown key 'pathz'; expected one of: "),
])
def test_config_errors_are_one_line(write, config: str, message: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    write("evalkit.yaml", config)
    write("prompts/a.md", "## Role\nx\n")
    assert main(["lint", "prompts"]) == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err
    assert err.startswith("evalkit: error: " + message)
    assert err.count("\n") == 1


def test_messages_files_have_sections(write) -> None:
    write("evalkit.yaml", 'lint:\n  required_sections: [{glob: "prompts/*", sections: [Role, Safety]}]\n')
    write("prompts/chat.yaml", """
        - role: system
          content: |
            ## Role
            You help.
        - role: user
          content: "{{ question }}"
    """)
    (finding,) = lint(["prompts"], today=TODAY).findings
    assert finding.message.startswith("required section 'Safety' is missing")


def _failing_report(write):  # type: ignore[no-untyped-def]
    write("prompts/a.md", "## Role\nmail xi@proton.me, model: text-davinci-003\n")
    return lint(["prompts"], today=TODAY)


def test_sarif_is_valid_against_the_sarif_2_1_0_schema(write) -> None:
    from jsonschema import Draft4Validator

    schema = json.loads((REPO / "tests" / "data" / "sarif-2.1.0-rtm.5.json").read_text())
    sarif = render_lint_sarif(_failing_report(write))
    Draft4Validator(schema).validate(sarif)
    results = sarif["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["pii", "model-id"]
    assert results[0]["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 2, "startColumn": 6, "snippet": {"text": "mail xi********me, model: text-davinci-003"}}


def test_github_and_json_formats(write) -> None:
    report = _failing_report(write)
    assert render_lint_github(report).splitlines() == [
        "::error file=prompts/a.md,line=2,col=6,title=evalkit pii::possible e-mail address (xi********me)",
        "::error file=prompts/a.md,line=2,col=27,title=evalkit model-id::model 'text-davinci-003' was retired on "
        "2024-01-04; calls to it fail",
    ]
    data = json.loads(render_lint_json(report))
    assert (data["format"], data["errors"], data["files"]) == ("evalkit.lint/1", 2, 1)


def test_cli_text_output_and_exit_code(write, capsys: pytest.CaptureFixture[str]) -> None:
    _failing_report(write)
    assert main(["lint", "prompts"]) == ExitCode.LINT_FAILED
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "prompts/a.md:2:6: error pii: possible e-mail address (xi********me)"
    assert out[-1] == "1 files linted: 2 errors, 0 warnings (config: (defaults))"
    assert main(["lint", "prompts", "--format", "sarif", "--output", "out.sarif"]) == ExitCode.LINT_FAILED
    assert json.loads(Path("out.sarif").read_text())["version"] == "2.1.0"


def test_parallel_and_serial_agree(write) -> None:
    for i in range(30):
        write(f"prompts/p{i}.md", f"## Role\nPrompt {i} for {{{{ name }}}}; mail pat{i}@gmail.com\n")
    serial = lint(["prompts"], today=TODAY, workers=1)
    from evalkit import lint as lint_module

    original = lint_module.PARALLEL_THRESHOLD
    lint_module.PARALLEL_THRESHOLD = 10
    try:
        parallel = lint(["prompts"], today=TODAY, workers=2)
    finally:
        lint_module.PARALLEL_THRESHOLD = original
    assert parallel.findings == serial.findings and len(serial.findings) == 30


def test_the_readme_example_config_is_valid(write) -> None:
    from evalkit.lint.config import load_config
    from evalkit.lint.rules import RULES

    readme = (REPO / "README.md").read_text()
    start = readme.index("```yaml", readme.index("**Speed.**")) + len("```yaml")
    write("evalkit.yaml", readme[start:readme.index("```", start)])
    write(".evalkit-pii-allow", "ana@gmail.com\n")
    config = load_config(None, list(RULES))
    assert (config.templates[0]["engine"], config.template_paths, config.render_seconds) == ("go", ("prompts/shared",),
                                                                                              2.0)
    assert config.pii_allow == frozenset({"ana@gmail.com"})


def test_variables_an_agent_suite_feeds_its_checks_and_tools_are_used(write) -> None:
    write("suites/a.yaml", """
        name: a
        target: {provider: local, user: "Help with {{ topic }}"}
        tools:
          get_order: {http: {service: orders, path: "/orders/{order_id}"}}
        defaults:
          expect: [{state: {sql: "SELECT status FROM orders WHERE id = :order_id", equals: done}}]
        cases:
          - {id: one, vars: {topic: T, order_id: A1, note: n, to: x}, expect: [{state: {sql: "SELECT 1 WHERE :to"}}]}
          - {id: two, vars: {topic: T, order_id: A2}, user: "Cancel {{ order_ref }}"}
    """)
    findings = [(f.rule, f.message) for f in lint(["suites"], today=TODAY).findings]
    # order_id (a state query and a tool path) and to (a case's check) are used; note is not.
    assert findings == [("unused-variable", "variable 'note' is supplied but no template of this suite uses it")]
