"""Template engines: which files are jinja2, and a fast parse that is exactly jinja2's."""

from __future__ import annotations

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalkit.lint import engines, lint
from evalkit.lint.config import LintConfig

DETECTED = [
    ("p.md", "Hello {{ name }}, {% if vip %}VIP{% endif %}", "jinja2"),
    ("p.md", "Use {{ x.strip() }} here", "jinja2"),
    ("p.txt", "{{- range .Messages }}{{ .Content }}{{ end }}", "go"),
    ("p.tmpl", "{{ if .System }}<|system|>{{ .System }}{{ end }}", "go"),
    ("skprompt.txt", "Hello {{$firstname}}, about {{ $topic }}", "semantic-kernel"),
    ("p.txt", "{{textmemoryskill.recall $input}}", "semantic-kernel"),
    ("p.md", "{{#each messages}}{{role \"system\"}}{{/each}}", "handlebars"),
    ("p.prompt", "{{#if user}}Hi{{else}}Bye{{/if}}", "handlebars"),
    ("p.md", "{{#items}}- {{name}}{{/items}}{{^items}}none{{/items}}", "mustache"),
    ("p.md", "Render it with {% render 'card', product: p %} and {% assign x = 1 %}", "liquid"),
    ("p.md", "{{ product.title | default: 'x' }}", "liquid"),
    ("p.md", "<a href=\"{% url 'home' %}\">{% csrf_token %}</a>", "django"),
    ("rules.mdc", "Liquid example:\n```liquid\n{% assign x = 1 %}{{ x }}\n```\nand `{{ y }}` inline", "none"),
    ("p.md", "JSX: <Chart margin={{ top: 20, right: 30 }} />", "none"),
    ("p.md", "No tags at all.", "none"),
    ("p.j2", "{{- range .Messages }}", "jinja2"),  # the suffix says jinja2: checked (and reported) as jinja2
    ("p.gotmpl", "{{ .Prompt }}", "go"),
    ("p.hbs", "{{ name }}", "handlebars"),
    ("p.mustache", "{{ name }}", "mustache"),
    ("p.liquid", "{{ name }}", "liquid"),
    ("p.njk", "{{ name }}", "nunjucks"),
    ("p.prompty", "---\nname: x\n---\nsystem:\n{{ question }}", "jinja2"),
    ("p.prompty", "---\nname: x\ntemplate: mustache\n---\n{{#q}}x{{/q}}", "mustache"),
]


@pytest.mark.parametrize(("path", "text", "engine"), DETECTED)
def test_engine_detection(path: str, text: str, engine: str) -> None:
    markdown = path.endswith((".md", ".mdc", ".txt", ".prompt"))
    assert engines.detect(text, path, LintConfig(), markdown=markdown).name == engine


def test_configuration_and_suites_decide_before_detection() -> None:
    config = LintConfig(templates=({"glob": "prompts/go/*", "engine": "go"}, {"glob": "prompts/*.md",
                                                                               "engine": "jinja2"}))
    assert engines.detect("{{ .X }}", "prompts/a.md", config).name == "jinja2"
    assert engines.detect("{{ x }}", "prompts/go/a.txt", config).reason == "lint.templates"
    assert engines.detect("{{- range .M }}", "b.txt", LintConfig(), used_by="suites/s.yaml") == \
        engines.Engine("jinja2", "rendered by suites/s.yaml")


def test_other_engines_are_noted_not_reported(write) -> None:
    write("prompts/modelfile.gotmpl", "{{- range .Messages }}{{ .Content }}{{ end }}\n")
    write("prompts/skprompt.txt", "Hello {{$name}}\n")
    write("prompts/broken.jinja2", "{% if x %}\n")
    report = lint(["prompts"])
    assert [(f.path, f.rule) for f in report.findings] == [("prompts/broken.jinja2", "template-syntax")]
    assert [(n.path, n.message) for n in report.notes] == [
        ("prompts/modelfile.gotmpl", "Go text/template template (suffix .gotmpl): not checked as jinja2"),
        ("prompts/skprompt.txt", "Semantic Kernel template (detected '{{$name}}'): not checked as jinja2"),
    ]


def _first_lines(ast: object) -> dict[str, int]:
    from jinja2 import nodes

    first: dict[str, int] = {}
    for node in sorted(ast.find_all(nodes.Name), key=lambda n: n.lineno):  # type: ignore[attr-defined]
        if node.ctx == "load":
            first.setdefault(node.name, node.lineno)
    return first


def _reference(text: str) -> tuple[str, object]:
    try:
        return "ok", _first_lines(jinja2.Environment().parse(text))
    except jinja2.TemplateSyntaxError as exc:
        return "error", (exc.lineno, exc.message)


def _ours(text: str) -> tuple[str, object]:
    engines.parse.cache_clear()
    parsed = engines.parse(text)
    if parsed.error is not None:
        return "error", parsed.error
    return "ok", parsed.names if parsed.names is not None else _first_lines(parsed.ast)


PIECES = ["{{", "}}", "{%", "%}", "{#", "#}", "{", "}", " ", "\n", "\r\n", "x", "name", "'", '"', "-", "+", "if ",
          "endif", "for ", "in ", "endfor", "raw", "endraw", "|", "(", ")", ":", ",", "$", ".", "true", "{{{"]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_the_fast_parse_gives_jinja2s_verdict_line_and_message(text: str) -> None:
    assert _ours(text) == _reference(text)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_the_fast_lexer_yields_jinja2s_tokens(text: str) -> None:
    def tokens(environment: jinja2.Environment) -> object:
        try:
            return [(t.lineno, t.type, t.value) for t in environment.lexer.tokenize(text)]
        except jinja2.TemplateSyntaxError as exc:
            return ("error", exc.lineno, exc.message)

    assert tokens(engines.environment()) == tokens(jinja2.Environment())


def test_the_tags_only_shortcut_bug_is_gone() -> None:
    # Literal braces in JSON between tags used to fuse into new delimiters ("expected token ':', got '}'").
    text = 'Example:\n{"category": "{{ex.category}}", "evidence": "{{ex.evidence}}"}\n{% for x in y %}{{x}}{% endfor %}'
    assert jinja2.Environment().parse(text) is not None
    assert engines.parse(text).error is None
    unclosed = "{% for i in x %}{{ i }}{% endfor %}\n{{question}\n"
    assert engines.parse(unclosed).error == (2, "unexpected '}'")
