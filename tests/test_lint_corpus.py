"""The linter on real prompt files from public repositories (tests/data/lint-corpus, see its MANIFEST.json).

No false alarms on clean files, verdicts identical to jinja2's own parser, every planted defect caught, and
the same findings under any hash seed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import jinja2
import pytest

from evalkit.lint import engines, lint

from .conftest import REPO

CORPUS = REPO / "tests" / "data" / "lint-corpus"
TODAY = dt.date(2026, 11, 23)
MANIFEST = json.loads((CORPUS / "MANIFEST.json").read_text())
REDISTRIBUTABLE = {"MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "CC0-1.0", "CC-BY-4.0"}


def _corpus_files() -> list[Path]:
    return sorted(CORPUS / entry["file"] for entry in MANIFEST["files"])


def test_the_manifest_names_every_file_its_source_commit_and_a_redistributable_licence() -> None:
    listed = {entry["file"] for entry in MANIFEST["files"]}
    on_disk = {p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file()}
    assert on_disk - listed == {"MANIFEST.json", *(f"LICENSES/{p.name}" for p in (CORPUS / "LICENSES").iterdir())}
    assert listed <= on_disk
    for entry in MANIFEST["files"]:
        assert entry["licence"] in REDISTRIBUTABLE, entry
        assert len(entry["commit"]) == 40 and entry["file"].endswith(entry["path"])
        notice = CORPUS / "LICENSES" / (entry["repository"].replace("/", "__") + ".txt")
        assert notice.is_file(), notice
    kinds = Counter(Path(e["path"]).suffix for e in MANIFEST["files"])
    assert len(listed) >= 200 and {".jinja2", ".prompty", ".gotmpl", ".md", ".mdc", ".txt"} <= set(kinds)


def test_no_false_alarms_on_the_clean_corpus() -> None:
    report = lint([str(CORPUS)], today=TODAY)
    by_rule = Counter((f.rule, f.severity) for f in report.findings)
    # Reviewed by hand: the one warning is true (a floating alias in a model setting); no pii, no template-syntax.
    assert by_rule == Counter({("model-id", "warning"): 1})
    (finding,) = report.findings
    assert finding.path.endswith("semantic-kernel/dotnet/src/IntegrationTests/prompts/GenerateStoryHandlebars.yaml")
    assert finding.snippet.strip() == "model_id: gpt-4"
    assert report.files == len(MANIFEST["files"]) + 1 + len(list((CORPUS / "LICENSES").iterdir()))
    engines_noted = Counter(n.message.split(" template (")[0] for n in report.notes)
    assert engines_noted == Counter({"Semantic Kernel": 31, "Go text/template": 20, "Handlebars": 1})


@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.relative_to(CORPUS).as_posix())
def test_verdicts_lines_and_variables_equal_jinja2s_own_parse(path: Path) -> None:
    text = path.read_text("utf-8")
    engines.parse.cache_clear()
    ours = engines.parse(text)
    try:
        reference = jinja2.Environment().parse(text)
    except jinja2.TemplateSyntaxError as exc:
        expected_error: tuple[int, str | None] | None = (exc.lineno, exc.message)
    else:
        expected_error = None
    assert ours.error == expected_error
    if expected_error is not None:
        return
    from jinja2 import meta, nodes

    expected = meta.find_undeclared_variables(reference) - set(jinja2.Environment().globals)
    first = {}
    for node in reference.find_all(nodes.Name):
        if node.name in expected:
            first.setdefault(node.name, node.lineno)
    # find_undeclared_variables respects scoping; ours ignores it, which can only drop a name, never add one.
    found = engines.variables(ours)
    assert set(found) <= set(first)
    assert all(found[name] == first[name] for name in found)


def _planted(tmp: Path) -> dict[str, str]:
    """Ten real files, each broken in one way a reviewer could miss; the rule expected to catch each."""
    def copy(source: str, name: str, edit) -> str:  # type: ignore[no-untyped-def]
        text = (CORPUS / source).read_text("utf-8")
        changed = edit(text)
        assert changed != text, source
        (tmp / "prompts" / name).write_text(changed, "utf-8")
        return f"prompts/{name}"

    pf = "promptflow/examples/flows"
    return {
        copy(f"{pf}/standard/web-classification/classify_with_llm.jinja2", "classify.jinja2",
             lambda t: t.replace("{% endfor %}", "")): "template-syntax",
        copy(f"{pf}/chat/chat-basic/chat.jinja2", "chat.jinja2",
             lambda t: t.replace("{{question}}", "{{question}")): "template-syntax",
        copy("fabric/data/patterns/agility_story/system.md", "agility.md",
             lambda t: t[:t.index("# OUTPUT INSTRUCTIONS")]): "required-section",
        copy("fabric/data/patterns/create_tags/system.md", "tags.md",
             lambda t: t.replace("# IDENTITY and PURPOSE", "Identity and purpose")): "required-section",
        copy(f"{pf}/integrations/continuous-monitoring-with-pipeline/flows/standard/simple-summarization/"
             "summarize_text_content.jinja2", "summarize.jinja2",
             lambda t: t + "\nBilling test: charge card 4556 7375 8689 9855 for the customer.\n"): "pii",
        copy("fabric/data/patterns/extract_recommendations/system.md", "recommend.md",
             lambda t: t.replace("# OUTPUT INSTRUCTIONS", "Escalate to maria.lopez@outlook.com.\n\n"
                                                            "# OUTPUT INSTRUCTIONS")): "pii",
        copy(f"{pf}/chat/chat-math-variant/chat.jinja2", "math.jinja2",
             lambda t: "{# key sk_live_51HqLyjWDarjtT1zdp7dcQ8 #}\n" + t): "pii",
        copy("promptflow/examples/flex-flows/chat-basic/chat.prompty", "basic.prompty",
             lambda t: t.replace("azure_deployment: gpt-4o", "model: gpt-4-32k")): "model-id",
        copy(f"{pf}/standard/customer-intent-extraction/user_intent_zero_shot.jinja2", "intent.jinja2",
             lambda t: t + "\n{{ cycler.__init__.__globals__.os.popen('touch PWNED').read() }}\n"): "token-budget",
        copy(f"{pf}/standard/basic-with-builtin-llm/hello.jinja2", "hello.jinja2",
             lambda t: t + "\nAnswer in the voice of {{ persona }}.\n"): "undefined-variable",
    }


def test_every_planted_defect_in_a_real_template_is_caught(write, tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    planted = _planted(tmp_path)
    assert len(planted) == 10
    write("evalkit.yaml", """
        lint:
          required_sections:
            - glob: ["prompts/agility.md", "prompts/tags.md"]
              sections: [Identity, Output instructions]
              match: words
          token_budget:
            - glob: "prompts/intent.jinja2"
              budget: 100000
    """)
    write("suites/hello.yaml", """
        name: hello
        target: {provider: local, user: {file: ../prompts/hello.jinja2}}
        cases: [{id: one, vars: {text: "Hi"}}]
    """)
    report = lint(["prompts", "suites"], today=TODAY)
    caught = {(f.path, f.rule) for f in report.findings if f.severity == "error"}
    missed = {path: rule for path, rule in planted.items() if (path, rule) not in caught}
    assert missed == {}
    assert not (tmp_path / "PWNED").exists()
    budget = next(f for f in report.findings if f.rule == "token-budget")
    assert budget.message.startswith("cannot measure the budget: the sandbox refused the template (access to "
                                     "attribute '__init__' of ")


def test_the_clean_originals_of_the_planted_files_pass(write, tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    sources = ["promptflow/examples/flows/standard/web-classification/classify_with_llm.jinja2",
               "fabric/data/patterns/agility_story/system.md", "fabric/data/patterns/create_tags/system.md",
               "promptflow/examples/flex-flows/chat-basic/chat.prompty"]
    for index, source in enumerate(sources):
        shutil.copy(CORPUS / source, tmp_path / "prompts" / f"{index}{Path(source).suffix}")
    write("evalkit.yaml", 'lint:\n  required_sections: [{glob: "prompts/*.md", sections: [Identity, Output '
                          'instructions]}]\n')
    assert lint(["prompts"], today=TODAY).findings == ()


def test_findings_are_the_same_under_every_hash_seed(write, tmp_path: Path) -> None:
    write("evalkit.yaml", """
        lint:
          required_sections:
            - glob: "prompts/*"
              sections: [Role, Safety, Output format, Refusals]
              aliases: {safety: [guardrails, safety rules, security], refusals: [refusal handling, declining]}
              min_chars: 30
    """)
    write("prompts/p.md", "<behavior>\n<refusal_handling>no</refusal_handling>\n</behavior>\n## Guardrails\nshort\n"
                          "## Security\nAlso short.\nmail ana.silva@gmail.com and ana@uol.com.br\n")
    shutil.copytree(CORPUS / "fabric", tmp_path / "prompts" / "fabric")
    outputs = set()
    for seed in ("0", "1", "2", "123"):
        done = subprocess.run([sys.executable, "-m", "evalkit.cli", "lint", "prompts", "--format", "json"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONHASHSEED": seed})
        assert done.returncode == 4, done.stderr
        outputs.add(done.stdout)
    assert len(outputs) == 1
    findings = json.loads(outputs.pop())["findings"]
    assert [(f["line"], f["message"]) for f in findings if f["path"] == "prompts/p.md"] == [
        (1, "required section 'Output format' is missing (expected a '## Output Format' heading, a <output_format> "
            "tag or a 'Output Format:' line)"),
        (1, "required section 'Role' is missing (expected a '## Role' heading, a <role> tag or a 'Role:' line)"),
        (2, "section 'refusal_handling' has 2 characters of text; expected at least 30"),
        (4, "section 'Guardrails' has 5 characters of text; expected at least 30"),
        (8, "possible e-mail address (an***************om)"),
        (8, "possible e-mail address (an**********br)"),
    ]


def test_required_sections_on_the_fabric_patterns_flag_only_files_that_lack_them(write, tmp_path: Path) -> None:
    shutil.copytree(CORPUS / "fabric", tmp_path / "fabric")
    write("evalkit.yaml", 'lint:\n  required_sections: [{glob: "fabric/**/system.md", sections: [Identity, '
                          'Output]}]\n')
    report = lint(["fabric"], today=TODAY)
    # Reviewed by hand: extract_domains, identify_dsrp_systems ("# Your Response") and solve_with_cot have no
    # output section, tweet has no heading at all; the other 41 have both, worded their own way ("# IDENTITY and
    # PURPOSE", "## Identity", "# OUTPUT", "# OUTPUT INSTRUCTIONS", "## Output Format"), and pass.
    assert [(Path(f.path).parent.name, f.message.split(" is missing")[0]) for f in report.findings] == [
        ("extract_domains", "required section 'Output'"),
        ("identify_dsrp_systems", "required section 'Output'"),
        ("solve_with_cot", "required section 'Output'"),
        ("tweet", "required section 'Identity'"),
        ("tweet", "required section 'Output'"),
    ]
