"""Folder walks (every prompt format, skipped files counted with a reason) and composed templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.lint import lint


def test_walks_read_every_prompt_format_and_count_what_they_pass_over(write, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a.gotmpl", "b.prompty", "c.mustache", "d.hbs", "e.mdc", "f.liquid", "g.njk", "system", "h.md"):
        write(f"prompts/{name}", "Reach me at ana.silva@gmail.com\n")
    write("prompts/tool.py", "print('hi')\n")
    write("prompts/notes.py", "x = 1\n")
    write("prompts/LICENSE", "MIT\n")
    (tmp_path / "prompts" / "logo.png").write_bytes(b"\x89PNG\x00")
    write("prompts/.hidden.md", "ana.silva@gmail.com\n")
    report = lint(["prompts"])
    assert report.files == 9
    assert sorted({f.path for f in report.findings}) == sorted(
        f"prompts/{n}" for n in ("a.gotmpl", "b.prompty", "c.mustache", "d.hbs", "e.mdc", "f.liquid", "g.njk",
                                 "system", "h.md"))
    assert [(n.path, n.message) for n in report.skipped] == [
        ("prompts/LICENSE", "LICENSE: not a prompt (extensionless, a known project file)"),
        ("prompts/logo.png", ".png: not a prompt, suite or eval-data suffix"),
        ("prompts/notes.py", ".py: not a prompt, suite or eval-data suffix"),
        ("prompts/tool.py", ".py: not a prompt, suite or eval-data suffix"),
    ]
    assert main(["lint", "prompts"]) == 4
    out = capsys.readouterr().out.splitlines()
    assert out[-5:] == [  # no notes: none of these files holds a template tag
        "4 files passed over by the folder walk:",
        "  2 × .py: not a prompt, suite or eval-data suffix (e.g. prompts/notes.py)",
        "  1 × .png: not a prompt, suite or eval-data suffix (e.g. prompts/logo.png)",
        "  1 × LICENSE: not a prompt (extensionless, a known project file) (e.g. prompts/LICENSE)",
        "9 files linted: 9 errors, 0 warnings (config: (defaults))",
    ]
    assert main(["lint", "prompts", "--format", "json"]) == 4
    data = json.loads(capsys.readouterr().out)
    assert len(data["skipped"]) == 4 and data["notes"] == []


def test_includes_are_resolved_for_sections_and_budgets(write) -> None:
    write("evalkit.yaml", """
        lint:
          template_paths: [shared]
          required_sections: [{glob: "prompts/main.j2", sections: [Role, Safety, Output format]}]
          token_budget: [{glob: "prompts/main.j2", budget: 60, max_vars: {question: 40}}]
    """)
    write("shared/safety.j2", "## Safety\nNever reveal account numbers or passwords to anyone, ever.\n" * 3)
    write("prompts/parts/role.j2", "## Role\nYou answer billing questions for {{ company }}.\n")
    write("prompts/main.j2", "{% include 'parts/role.j2' %}\n{% include 'safety.j2' %}\n## Output format\n"
                             "Plain text.\n{{ question }}\n{% include '../../etc/passwd' ignore missing %}\n")
    import jinja2

    from evalkit.text.tokens import count_tokens

    loader = jinja2.FileSystemLoader(["prompts", "shared"])
    expected = jinja2.Environment(loader=loader).get_template("main.j2").render(question="x" * 40)
    assert "## Role" in expected and expected.count("## Safety") == 3
    count = count_tokens(expected)
    findings = [(f.rule, f.message) for f in lint(["prompts"]).findings]
    assert findings == [
        ("token-budget", f"rendered prompt is {count.tokens} tokens ({count.method}; longest case values), above "
                         "the budget of 60"),
    ]


def test_an_include_outside_the_search_path_is_not_read(write) -> None:
    write("secret.md", "## Safety\nfrom outside\n")
    write("evalkit.yaml", 'lint:\n  required_sections: [{glob: "prompts/*", sections: [Safety]}]\n')
    write("prompts/p.j2", "{% include '../secret.md' %}\n")
    (finding,) = lint(["prompts"]).findings
    assert finding.message.startswith("required section 'Safety' is missing")
