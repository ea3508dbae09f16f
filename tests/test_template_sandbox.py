"""Prompt templates render in a limited sandbox: nothing a prompt says is executed, and nothing hangs.

Each hostile template below must stop with a clear error (never run a command, never hang, never take the
memory of the machine); the API the runner and suites use (Template, parse_template, render) is unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit import TemplateError
from evalkit.lint import lint
from evalkit.template import RenderLimits, parse_template

QUICK = RenderLimits(seconds=0.5, output_chars=100_000)

HOSTILE = {
    "popen through globals": "{{ cycler.__init__.__globals__.os.popen('touch PWNED').read() }}",
    "subclasses walk": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "huge range": "{% for i in range(10**9) %}x{% endfor %}",
    "nested loops without output": "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
    "loops over a long string": "{% set s = 'x' * 50000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
    "string repetition": "{{ 'a' * 10**9 }}",
    "huge power": "{{ 10 ** (10 ** 10) }}",
    "padding filter": "{{ 'a'|center(10**9) }}",
    "padding method": "{{ 'a'.ljust(999999999) }}",
    "format width": "{{ '%999999999d' % 1 }}",
    "format method width": "{{ '{:>999999999}'.format(1) }}",
    "lorem ipsum": "{{ lipsum(100000) }}",
    "doubling through a namespace": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
                                    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "exponential macro": "{% macro f(n) %}{{ f(n - 1) }}{{ f(n - 1) }}{% endmacro %}{{ f(60) }}",
    "endless recursion": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "indent amplification": "{{ ('a\n' * 1000)|indent(5000) }}",
    "long output": "{% for i in range(99999) %}{{ 'y' * 99 }}{% endfor %}",
}


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_templates_stop_with_an_error_and_run_nothing(source: str, tmp_path: Path) -> None:
    template = parse_template(source, "prompts/evil.md")
    with pytest.raises(TemplateError) as info:
        template.render({}, context="cases[0]", limits=QUICK)
    message = str(info.value)
    assert message.startswith("cases[0]: prompts/evil.md: ")
    assert "\n" not in message
    assert any(reason in message for reason in ("refused by the sandbox", "template stopped", "failed to render"))
    assert not (tmp_path / "PWNED").exists()


def test_limits_are_named_in_the_message() -> None:
    slow = parse_template(HOSTILE["nested loops without output"], "p.md")
    with pytest.raises(TemplateError, match=r"template stopped: render took longer than 0.5 s$"):
        slow.render({}, context="c", limits=QUICK)
    long = parse_template(HOSTILE["long output"], "p.md")
    with pytest.raises(TemplateError, match=r"template stopped: output is longer than 100,000 characters$"):
        long.render({}, context="c", limits=QUICK)


def test_ordinary_templates_render_as_before() -> None:
    template = parse_template("Hi {{ name|upper }}{% for i in range(3) %} {{ i }}{% endfor %}, {{ 'x' ~ 'y' }} "
                              "{{ 3 * 4 }} {{ range(3)|list|length }} {{ '%05.1f'|format(2.5) }}\n", "p.md")
    assert template.variables == frozenset({"name"})
    assert template.render({"name": "ana"}, context="c") == "Hi ANA 0 1 2, xy 12 3 002.5\n"


def test_strict_undefined_messages_are_unchanged() -> None:
    template = parse_template("{{ user.name }} and {{ topic }}", "prompts/p.md")
    with pytest.raises(TemplateError) as missing:
        template.render({"user": {}}, context="cases[2]")
    assert str(missing.value) == ("cases[2]: template variable 'topic' used in prompts/p.md is not supplied "
                                  "(expected it in the case's vars or defaults.vars, got: user)")
    with pytest.raises(TemplateError) as attribute:
        template.render({"user": {}, "topic": "t"}, context="cases[2]")
    assert str(attribute.value) == "cases[2]: prompts/p.md: 'dict object' has no attribute 'name'"
    with pytest.raises(TemplateError) as syntax:
        parse_template("line one\n{% if x %}", "prompts/q.md")
    assert str(syntax.value).startswith("prompts/q.md:2: template syntax error: Unexpected end of template.")


def test_lint_budget_render_of_a_hostile_prompt_is_a_finding_not_a_hang(write, tmp_path: Path) -> None:
    write("evalkit.yaml", """
        lint:
          render: {seconds: 0.5}
          token_budget: [{glob: "prompts/*", budget: 1000}]
    """)
    write("prompts/loop.md", "## Role\n" + HOSTILE["nested loops without output"] + "\n")
    write("prompts/popen.md", "## Role\n" + HOSTILE["popen through globals"] + "\n")
    write("prompts/range.md", "## Role\n" + HOSTILE["huge range"] + "\n")
    findings = [(f.path, f.rule, f.message) for f in lint(["prompts"]).findings]
    assert findings == [
        ("prompts/loop.md", "token-budget", "cannot measure the budget: the render was stopped (render took longer "
                                            "than 0.5 s)"),
        ("prompts/popen.md", "token-budget", "cannot measure the budget: the sandbox refused the template (access to "
                                             "attribute '__init__' of 'function' object is unsafe.)"),
        ("prompts/range.md", "token-budget", "cannot measure the budget: the render was stopped (Range too big. The "
                                             "sandbox blocks ranges larger than MAX_RANGE (100000).)"),
    ]
    assert not (tmp_path / "PWNED").exists()
