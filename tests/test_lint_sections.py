"""Sections as a reviewer sees them, and required sections matched the way the config asks."""

from __future__ import annotations

import json

import pytest

from evalkit.lint import lint
from evalkit.lint.sections import parse_sections

PRODUCT_PROMPT = """\
You are Claude, a helpful assistant made by a small team.

<behavior_instructions>
General rules here.
<refusal_handling>
Refuse to help with weapons.
</refusal_handling>
</behavior_instructions>

## Security and Safety Rules
Be safe.

```markdown
## Not a heading
<fake>not a tag</fake>
```

OUTPUT INSTRUCTIONS:
- Only output Markdown.

**Tone:**
Friendly and brief.

Examples:
Q: hi

<example>one</example>
<example>two</example>
Write `<code>` as code.
"""


def test_headings_tags_labels_bold_caps_and_the_preamble() -> None:
    found = [(s.kind, s.level, s.line, s.name, s.body[:30]) for s in parse_sections(PRODUCT_PROMPT)]
    assert found == [
        ("preamble", 0, 1, "preamble", "You are Claude, a helpful assi"),
        ("heading", 2, 10, "security and safety rules", "Be safe.\n\n```markdown\n## Not a"),
        ("label", 7, 18, "output instructions", "- Only output Markdown."),
        ("label", 7, 21, "tone", "Friendly and brief."),
        ("label", 7, 24, "examples", "Q: hi\n\n<example>one</example>\n"),
        ("tag", 1, 3, "behavior instructions", "General rules here.\n<refusal_h"),
        ("tag", 2, 5, "refusal handling", "Refuse to help with weapons."),
        ("tag", 1, 27, "example", "one"),
        ("tag", 1, 28, "example", "two"),
    ]


def test_a_same_name_tag_later_does_not_swallow_what_lies_between() -> None:
    text = "<rules>\nOne.\n</rules>\n<notes>\n<rules>inner</rules>\n</notes>\n<rules>\nunclosed\n"
    tags = [(s.name, s.line, s.level, s.body) for s in parse_sections(text) if s.kind == "tag"]
    assert tags == [("rules", 1, 1, "One."), ("notes", 4, 1, "<rules>inner</rules>"), ("rules", 5, 2, "inner")]


@pytest.mark.parametrize(("match", "sections", "missing"), [
    ("words", ["Safety", "Refusal handling", "Output instructions", "Tone", "Role"], ["Role"]),
    ("exact", ["Safety", "Security and safety rules", "Tone"], ["Safety"]),
    ("regex", [r"^secur", r"refus\w+", r"^role$"], [r"^role$"]),
])
def test_required_sections_match_exactly_by_words_or_by_regex(write, match: str, sections: list[str],
                                                              missing: list[str]) -> None:
    config = {"lint": {"required_sections": [{"glob": "prompts/*", "match": match, "sections": sections}]}}
    write("evalkit.yaml", json.dumps(config))
    write("prompts/p.md", PRODUCT_PROMPT)
    messages = [f.message for f in lint(["prompts"]).findings]
    assert len(messages) == len(missing)
    for wanted, message in zip(missing, messages, strict=True):
        assert wanted in message


def test_the_preamble_can_stand_for_a_section(write) -> None:
    write("evalkit.yaml", """
        lint:
          required_sections:
            - {glob: "prompts/a.md", sections: [Role, Tone], preamble_as: Role, min_chars: 10}
            - {glob: "prompts/b.md", sections: [Role]}
    """)
    write("prompts/a.md", PRODUCT_PROMPT)
    write("prompts/b.md", PRODUCT_PROMPT)
    assert [(f.path, f.message[:40]) for f in lint(["prompts"]).findings] == [
        ("prompts/b.md", "required section 'Role' is missing (expe"),
    ]


def test_headings_in_code_fences_are_examples_not_sections(write) -> None:
    write("evalkit.yaml", 'lint:\n  required_sections: [{glob: "prompts/*", sections: [Safety]}]\n')
    write("prompts/p.md", "Intro.\n\n```md\n## Safety\nThis is an example of a prompt.\n```\n")
    (finding,) = lint(["prompts"]).findings
    assert finding.message.startswith("required section 'Safety' is missing")


def test_a_bad_section_regex_is_one_clear_error(write, capsys: pytest.CaptureFixture[str]) -> None:
    from evalkit.cli import main

    write("evalkit.yaml", 'lint:\n  required_sections: [{glob: "p/*", match: regex, sections: ["(role"]}]\n')
    write("p/a.md", "x\n")
    assert main(["lint", "p"]) == 2
    assert capsys.readouterr().err.startswith("evalkit: error: evalkit.yaml:2: lint.required_sections[0].sections: "
                                              "expected valid regular expressions (match: regex), got '(role'")
