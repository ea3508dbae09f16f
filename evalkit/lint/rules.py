"""The lint rules. Each is a function of a document (and what the engine gathered) yielding findings."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.lint import pii
from evalkit.lint.config import LintConfig, as_globs, matches
from evalkit.lint.document import Document, Section, normalise
from evalkit.lint.models import describe, load_catalog
from evalkit.providers.base import TOKEN_ESTIMATE_METHOD, estimate_tokens


@dataclass(frozen=True)
class Finding:
    """One problem at one place."""

    path: str
    line: int
    column: int
    rule: str
    severity: str
    """``error``, ``warning`` or ``note``."""
    message: str
    snippet: str = ""


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    description: str


RULES: dict[str, Rule] = {r.id: r for r in (
    Rule("required-section", "error", "A required section (heading or XML-style tag) is missing or too short."),
    Rule("removed-section", "error", "A section present in the base revision is gone or emptied (shrunk: warning)."),
    Rule("template-syntax", "error", "A jinja2 template does not parse."),
    Rule("undefined-variable", "error", "A template variable that some suite case does not supply."),
    Rule("unused-variable", "warning", "A variable suite cases supply that no template of the suite uses."),
    Rule("token-budget", "error", "The rendered prompt (longest case values) is above the configured token budget."),
    Rule("model-id", "warning", "A floating model alias, or a deprecated (warning) or retired (error) model id."),
    Rule("dangling-tool", "error", "A tool the prompt names is not in the catalog (unnamed catalog tools: warning)."),
    Rule("pii", "error", "E-mail, phone, payment card (Luhn), national id or API key in prompts or eval data."),
    Rule("forbidden-pattern", "error", "Text matching a configured forbidden regex."),
    Rule("required-pattern", "error", "A configured required regex that the file does not match."),
    Rule("file", "error", "A file that cannot be linted: missing, binary, not UTF-8 (empty: warning)."),
    Rule("suppression", "warning", "An inline suppression without a reason (it does not apply)."),
)}


@dataclass
class SuiteInfo:
    """What the variable rules need from one suite, read leniently (a broken suite still informs)."""

    path: str
    templates: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Template path (or ``suite:target.user`` for inline) → (source text, line in the suite for inline)."""
    default_vars: dict[str, Any] = field(default_factory=dict)
    cases: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(case id or index label, vars)."""
    var_lines: dict[str, int] = field(default_factory=dict)
    """Variable name → a line of the suite (or cases file) that supplies it."""


def read_suite(path: str) -> SuiteInfo | None:
    """Reads a suite for its templates and vars; None when it is not a suite at all."""
    from evalkit import schema
    from evalkit.errors import ConfigError
    from evalkit.suite import display_path, load_case_records

    try:
        raw, locate = schema.load_yaml(Path(path), path)
    except ConfigError:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("target"), dict) or "cases" not in raw:
        return None
    info = SuiteInfo(path)
    base = Path(path).parent
    for key in ("system", "user"):
        spec = raw["target"].get(key)
        if isinstance(spec, str):
            info.templates[f"{path}:target.{key}"] = (spec, locate(("target", key)) or 1)
        elif isinstance(spec, dict) and isinstance(spec.get("file"), str):
            file = Path(display_path(base / spec["file"])).as_posix()
            try:
                info.templates[file] = (Path(file).read_text("utf-8"), 1)
            except (OSError, UnicodeDecodeError):
                continue
    defaults = raw.get("defaults") or {}
    info.default_vars = dict(defaults.get("vars") or {}) if isinstance(defaults, dict) else {}
    for name in info.default_vars:
        info.var_lines.setdefault(name, locate(("defaults", "vars", name)) or 1)
    records: Any = raw["cases"]
    cases_locate = locate
    prefix: tuple[str | int, ...] = ("cases",)
    if not isinstance(records, list):
        named = records if isinstance(records, str) else records.get("file") if isinstance(records, dict) else None
        if not isinstance(named, str):
            return info
        try:
            records, cases_locate, _ = load_case_records(base / named, display_path(base / named), path)
        except ConfigError:
            return info
        prefix = ()
    for index, record in enumerate(records if isinstance(records, list) else []):
        if not isinstance(record, dict):
            continue
        values: dict[str, Any] = record["vars"] if isinstance(record.get("vars"), dict) else {}
        info.cases.append((str(record.get("id") or f"cases[{index}]"), values))
        for name in values:
            info.var_lines.setdefault(name, cases_locate((*prefix, index, "vars", name)) or 1)
    return info


@functools.cache
def _jinja() -> Any:
    import jinja2

    return jinja2.Environment()


def template_variables(text: str) -> tuple[dict[str, int], tuple[int, str] | None]:
    """Undeclared variables → first line used, found by jinja2's parser; or a syntax error (line, message)."""
    if "{{" not in text and "{%" not in text and "{#" not in text:
        return {}, None
    import jinja2
    from jinja2 import nodes

    environment = _jinja()
    try:
        ast = environment.parse(_tags_only(text))
    except jinja2.TemplateSyntaxError as exc:
        return {}, (exc.lineno or 1, exc.message or "syntax error")
    # Names read minus names the template binds itself (for-loop targets, set, macro arguments) and the
    # environment's globals. jinja2.meta.find_undeclared_variables runs the whole code generator to get
    # this, which costs more than the parse; scoping is ignored here, which can only hide a finding.
    bound = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
    bound |= {m.name for m in ast.find_all(nodes.Macro)} | set(environment.globals) | {"loop", "caller", "varargs",
                                                                                     "kwargs"}
    lines: dict[str, int] = {}
    for node in ast.find_all(nodes.Name):
        if node.ctx == "load" and node.name not in bound:
            lines.setdefault(node.name, node.lineno)
    return lines, None


_TAG_SPANS = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_NOT_SYNTAX = re.compile(r"[^{}%#\n]+")


def _tags_only(text: str) -> str:
    """The template with its plain text reduced to newlines and delimiter characters.

    jinja2's lexer scans plain text with a lazy regex at every character; the parse (and so the syntax
    errors, the variables and their line numbers) depends only on the tags, the delimiters and the lines.
    """
    out = []
    position = 0
    for match in _TAG_SPANS.finditer(text):
        out.append(_NOT_SYNTAX.sub("", text[position:match.start()]))
        out.append(match.group())
        position = match.end()
    out.append(_NOT_SYNTAX.sub("", text[position:]))
    return "".join(out)


def _column(doc: Document, line: int, needle: str) -> int:
    return doc.line_text(line).find(needle) + 1 or 1


def check_required_sections(doc: Document, config: LintConfig) -> Iterator[Finding]:
    if doc.kind not in ("prompt", "messages"):
        return
    present: dict[str, Section] = {}
    for section in doc.sections:
        present.setdefault(section.name, section)
    for entry in config.required_sections:
        if not matches(doc.path, as_globs(entry["glob"])):
            continue
        aliases: Mapping[str, Sequence[str]] = {normalise(k): v for k, v in (entry.get("aliases") or {}).items()}
        for wanted in entry["sections"]:
            names = {normalise(wanted), *(normalise(a) for a in aliases.get(normalise(wanted), ()))}
            found = next((present[n] for n in names if n in present), None)
            if found is None:
                tag = normalise(wanted).replace(" ", "_")
                yield Finding(doc.path, 1, 1, "required-section", "error",
                              f"required section {wanted!r} is missing (expected a '## {wanted.title()}' heading or "
                              f"a <{tag}> tag)")
            elif len(found.body) < int(entry.get("min_chars", 1)):
                yield Finding(doc.path, found.line, 1, "required-section", "error",
                              f"section {found.title!r} has {len(found.body)} characters of text; expected at least "
                              f"{entry.get('min_chars', 1)}", doc.line_text(found.line))


def check_removed_sections(doc: Document, base_text: str | None, config: LintConfig) -> Iterator[Finding]:
    from evalkit.lint.document import parse_sections

    if base_text is None or doc.kind not in ("prompt", "messages"):
        return
    current: dict[str, Section] = {}
    for section in doc.sections:
        current.setdefault(section.name, section)
    for old in parse_sections(base_text):
        if not old.body:
            continue
        new = current.get(old.name)
        if new is None:
            yield Finding(doc.path, 1, 1, "removed-section", "error",
                          f"section {old.title!r} (line {old.line} in the base, {len(old.body)} characters) "
                          "was removed")
        elif not new.body:
            yield Finding(doc.path, new.line, 1, "removed-section", "error",
                          f"section {old.title!r} was emptied (it had {len(old.body)} characters in the base)",
                          doc.line_text(new.line))
        elif len(new.body) < (1 - config.shrink_warning) * len(old.body):
            shrink = 1 - len(new.body) / len(old.body)
            yield Finding(doc.path, new.line, 1, "removed-section", "warning",
                          f"section {old.title!r} shrank by {shrink:.0%} (from {len(old.body)} to {len(new.body)} "
                          "characters)", doc.line_text(new.line))


def check_variables(doc: Document, users: Sequence[SuiteInfo]) -> Iterator[Finding]:
    """template-syntax and undefined-variable for a template file, against the suites that use it."""
    text = doc.prompt_text if doc.prompt_text is not None else doc.text
    used, error = template_variables(text)
    if error is not None:
        line, message = error
        yield Finding(doc.path, line, 1, "template-syntax", "error", f"jinja2: {message}", doc.line_text(line))
        return
    for suite in users:
        for name, line in sorted(used.items(), key=lambda item: item[1]):
            if name in suite.default_vars:
                continue
            missing = [case_id for case_id, values in suite.cases if name not in values]
            if missing:
                yield Finding(doc.path, line, _column(doc, line, name), "undefined-variable", "error",
                              f"variable {name!r} is not supplied by {len(missing)} of {len(suite.cases)} cases of "
                              f"{suite.path} (first: {missing[0]}) nor by its defaults.vars", doc.line_text(line))


def check_suite_variables(doc: Document, suite: SuiteInfo) -> Iterator[Finding]:
    """Inline-template problems and unused-variable, reported in the suite file."""
    used: set[str] = set()
    for origin, (text, line) in suite.templates.items():
        names, error = template_variables(text)
        if error is not None:
            if origin.startswith(f"{suite.path}:"):
                yield Finding(doc.path, line, 1, "template-syntax", "error", f"{origin}: jinja2: {error[1]}",
                              doc.line_text(line))
            return  # unused-variable is meaningless when a template does not parse
        used |= set(names)
        if origin.startswith(f"{suite.path}:"):
            for name in sorted(names):
                missing = [cid for cid, values in suite.cases if name not in values and name not in suite.default_vars]
                if missing:
                    yield Finding(doc.path, line, 1, "undefined-variable", "error",
                                  f"variable {name!r} of {origin} is not supplied by {len(missing)} of "
                                  f"{len(suite.cases)} cases (first: {missing[0]})", doc.line_text(line))
    if not suite.templates:
        return
    supplied = set(suite.default_vars) | {name for _, values in suite.cases for name in values}
    for name in sorted(supplied - used):
        line = suite.var_lines.get(name, 1)
        yield Finding(doc.path, line, _column(doc, line, name), "unused-variable", "warning",
                      f"variable {name!r} is supplied but no template of this suite uses it", doc.line_text(line))


@functools.cache
def _tiktoken() -> Any:
    try:
        import tiktoken

        return tiktoken.get_encoding("cl100k_base")
    except Exception:  # not installed, or its BPE file cannot be fetched offline: fall back to the estimate
        return None


def count_tokens(text: str) -> tuple[int, str]:
    """Token count and the method that produced it."""
    encoding = _tiktoken()
    if encoding is not None:
        return len(encoding.encode(text)), "tiktoken cl100k_base"
    return estimate_tokens(text), f"estimate {TOKEN_ESTIMATE_METHOD}, tiktoken unavailable"


def check_token_budget(doc: Document, config: LintConfig, users: Sequence[SuiteInfo]) -> Iterator[Finding]:
    if doc.kind not in ("prompt", "messages"):
        return
    for entry in config.token_budget:
        if not matches(doc.path, as_globs(entry["glob"])):
            continue
        text = doc.prompt_text if doc.prompt_text is not None else doc.text
        longest: dict[str, str] = {}
        for suite in users:
            for _, values in [("defaults", suite.default_vars), *suite.cases]:
                for name, value in values.items():
                    if len(str(value)) > len(longest.get(name, "")):
                        longest[name] = str(value)
        for name, size in (entry.get("max_vars") or {}).items():
            longest[name] = "x" * int(size)
        rendered = text
        if "{{" in text or "{%" in text:  # a template that does not parse falls back to its raw text below
            try:
                rendered = _jinja().from_string(text).render(**longest)
            except Exception:  # a template that cannot render is template-syntax's finding, not this rule's
                rendered = text
        tokens, method = count_tokens(rendered)
        if tokens > int(entry["budget"]):
            yield Finding(doc.path, 1, 1, "token-budget", "error",
                          f"rendered prompt is {tokens:,} tokens ({method}; longest case values), above the budget "
                          f"of {int(entry['budget']):,}")


def check_model_ids(doc: Document, config: LintConfig, today: dt.date) -> Iterator[Finding]:
    catalog = load_catalog(config.model_ids)
    text = doc.text
    # Every catalogued id but a floating one carries a digit (gpt-4o, o3, claude-3-5-…): text without a digit
    # can only hold a floating alias, which names its suffix.
    if not pii.has_digit(text) and not any(s in text for s in catalog.suffixes):
        return
    if not any(stem in text for stem in catalog.hints):
        return
    for match in catalog.pattern.finditer(text):
        verdict = describe(catalog, match.group(), today)
        if verdict is not None:
            line, column = doc.position(match.start())
            yield Finding(doc.path, line, column, "model-id", verdict[0], verdict[1], doc.line_text(line))


_TOOL_CALL = re.compile(r"\b([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\(")
_TOOL_NAMED = re.compile(r"`([A-Za-z_][\w.-]*)`\s+(?:tool|function)\b|\b(?:tool|function)\s+`([A-Za-z_][\w.-]*)`")
_BACKTICKED = re.compile(r"`([A-Za-z_][\w.-]*)`")


def check_tools(doc: Document, config: LintConfig) -> Iterator[Finding]:
    if doc.kind not in ("prompt", "messages"):
        return
    for entry in config.tools:
        if not matches(doc.path, as_globs(entry["glob"])):
            continue
        catalog = set(entry["catalog"])
        mentions: dict[str, int] = {}
        for pattern in (_TOOL_CALL, _TOOL_NAMED):
            for match in pattern.finditer(doc.text):
                name = next(g for g in match.groups() if g)
                mentions.setdefault(name, match.start())
        for section in doc.sections:
            if "tool" in section.name:
                start = doc.text.find(section.body)
                for match in _BACKTICKED.finditer(section.body):
                    mentions.setdefault(match.group(1), max(start, 0) + match.start())
        for name, offset in sorted(mentions.items(), key=lambda item: item[1]):
            if name not in catalog:
                line, column = doc.position(offset)
                yield Finding(doc.path, line, column, "dangling-tool", "error",
                              f"the prompt names tool {name!r}, which is not in the tool catalog "
                              f"({', '.join(sorted(catalog)) or 'empty'})", doc.line_text(line))
        for name in sorted(catalog - set(mentions)):
            yield Finding(doc.path, 1, 1, "dangling-tool", "warning",
                          f"catalog tool {name!r} is never mentioned in the prompt, so the model is never told of it")


def check_pii(doc: Document) -> Iterator[Finding]:
    for match in pii.find(doc.text):
        line, column = doc.position(match.start)
        snippet = doc.line_text(line)
        raw = doc.text[match.start:match.end]
        yield Finding(doc.path, line, column, "pii", "error", f"possible {match.kind} ({match.redacted})",
                      snippet.replace(raw, match.redacted))


def check_patterns(doc: Document, config: LintConfig) -> Iterator[Finding]:
    for pattern in config.forbidden:
        if matches(doc.path, pattern.globs):
            for match in pattern.regex.finditer(doc.text):
                line, column = doc.position(match.start())
                message = pattern.message or f"matches forbidden pattern /{pattern.regex.pattern}/"
                yield Finding(doc.path, line, column, "forbidden-pattern", "error", message, doc.line_text(line))
    for pattern in config.required:
        if matches(doc.path, pattern.globs) and not pattern.regex.search(doc.text):
            message = pattern.message or f"does not match required pattern /{pattern.regex.pattern}/"
            yield Finding(doc.path, 1, 1, "required-pattern", "error", message)
