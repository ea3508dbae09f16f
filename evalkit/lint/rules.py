"""The lint rules. Each is a function of a document (and what the engine gathered) yielding findings."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.lint import engines
from evalkit.lint.config import LintConfig, as_globs, matches
from evalkit.lint.document import Document, Section, normalise, parse_sections
from evalkit.lint.models import describe, load_catalog
from evalkit.text.pii import has_digit


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
    Rule("template-syntax", "error", "A jinja2 template does not parse (other engines' templates are noted, not "
                                    "checked)."),
    Rule("undefined-variable", "error", "A template variable that some suite case does not supply."),
    Rule("unused-variable", "warning", "A variable suite cases supply that no template of the suite uses."),
    Rule("token-budget", "error", "The prompt rendered in the sandbox (longest case values) is above its token "
                                  "budget, or its render was stopped by the time or size limit."),
    Rule("model-id", "warning", "A model setting with a floating alias or a deprecated (warning) or retired (error) "
                                "id; a retired or deprecated id mentioned in text (note)."),
    Rule("dangling-tool", "error", "A tool the prompt names is not in the catalog (unnamed catalog tools: warning)."),
    Rule("pii", "error", "E-mail, phone, payment card, IBAN, national id, API key, token or private key in prompts or "
                         "eval data."),
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
    referenced: set[str] = field(default_factory=set)
    """Names used outside the templates: ``:name`` parameters of state queries, ``{name}`` in tool paths, and
    the like, in checks, tools and per-case user turns (an agent suite's vars feed its tools and checks)."""


_REFERENCE = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)|\{\{?\s*([A-Za-z_]\w*)")
_REFERENCING = ("expect", "tools", "state", "user", "user_sim")
"""Sections of a suite, its defaults and its cases whose strings may use case variables."""


def _references(value: Any) -> set[str]:
    """Every ``:name``, ``{name}`` or ``{{ name`` in the strings of a YAML value."""
    if isinstance(value, str):
        return {a or b for a, b in _REFERENCE.findall(value)}
    if isinstance(value, dict):
        return set().union(*(_references(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value)) if value else set()
    return set()


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
    defaults_raw: dict[str, Any] = raw["defaults"] if isinstance(raw.get("defaults"), dict) else {}
    for section in _REFERENCING:
        info.referenced |= _references(raw.get(section)) | _references(defaults_raw.get(section))
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
        for section in _REFERENCING:
            info.referenced |= _references(record.get(section))
        info.cases.append((str(record.get("id") or f"cases[{index}]"), values))
        for name in values:
            info.var_lines.setdefault(name, cases_locate((*prefix, index, "vars", name)) or 1)
    return info


def template_variables(text: str, names: bool = True) -> tuple[dict[str, int], tuple[int, str] | None]:
    """Undeclared variables → first line used, found by jinja2's parser; or a syntax error (line, message).

    ``names=False``: the verdict only (walking the tree for names costs more than the parse).
    """
    if "{{" not in text and "{%" not in text and "{#" not in text:
        return {}, None
    parsed = engines.parse(text)
    if parsed.error is not None:
        return {}, parsed.error
    return (engines.variables(parsed) if names else {}), None


def _column(doc: Document, line: int, needle: str) -> int:
    return doc.line_text(line).find(needle) + 1 or 1


def _finding(doc: Document, line: int, column: int, rule: str, severity: str, message: str) -> Finding:
    """A finding whose snippet is the line, redacted and bounded."""
    return Finding(doc.path, line, column, rule, severity, message, doc.snippet(line, column))


def _first_section(sections: Sequence[Section], wanted: str, aliases: Sequence[str], mode: str,
                   preamble_as: str | None) -> Section | None:
    """The first section (in document order) the wanted name or one of its aliases names."""
    names = [wanted, *aliases]
    patterns = [re.compile(n, re.IGNORECASE) for n in names] if mode == "regex" else []
    exact = [normalise(n) for n in names]
    # words: every word of the wanted name appears in the heading ("Security and Safety Rules" ⊇ "safety").
    wanted_words = [frozenset(n.split()) for n in exact]

    def named(section: Section) -> bool:
        if mode == "regex":
            return any(p.search(section.title) for p in patterns)
        if mode == "exact":
            return section.name in exact
        return any(bool(w) and w <= frozenset(section.name.split()) for w in wanted_words)

    for section in sections:
        if section.kind != "preamble" and named(section):
            return section
    if preamble_as is not None and normalise(preamble_as) in (normalise(n) for n in names):
        return next((s for s in sections if s.kind == "preamble"), None)
    return None


def check_required_sections(doc: Document, config: LintConfig) -> Iterator[Finding]:
    if doc.kind not in ("prompt", "messages"):
        return
    for entry in config.required_sections:
        if not matches(doc.path, as_globs(entry["glob"])):
            continue
        aliases: dict[str, list[str]] = {normalise(k): list(v) for k, v in (entry.get("aliases") or {}).items()}
        mode = entry.get("match", "words")
        for wanted in entry["sections"]:
            found = _first_section(doc.sections, wanted, aliases.get(normalise(wanted), []), mode,
                                   entry.get("preamble_as"))
            if found is None:
                tag = normalise(wanted).replace(" ", "_")
                shown = wanted if mode != "regex" else f"/{wanted}/"
                yield Finding(doc.path, 1, 1, "required-section", "error",
                              f"required section {shown!r} is missing (expected a '## {wanted.title()}' heading, a "
                              f"<{tag}> tag or a '{wanted.title()}:' line)" if mode != "regex" else
                              f"required section {shown} is missing (no heading, tag or label matches)")
            elif len(found.body) < int(entry.get("min_chars", 1)):
                yield _finding(doc, found.line, 1, "required-section", "error",
                               f"section {found.title!r} has {len(found.body)} characters of text; expected at least "
                               f"{entry.get('min_chars', 1)}")


def check_removed_sections(doc: Document, base_text: str | None, config: LintConfig) -> Iterator[Finding]:
    if base_text is None or doc.kind not in ("prompt", "messages"):
        return
    current: dict[str, Section] = {}
    for section in doc.sections:
        current.setdefault(section.name, section)
    seen: set[str] = set()
    for old in parse_sections(base_text):
        # The untitled preamble is not compared: giving a prompt a title turns its preamble into a body.
        if not old.body or old.kind == "preamble" or old.name in seen:
            continue
        seen.add(old.name)
        new = current.get(old.name)
        if new is None:
            yield Finding(doc.path, 1, 1, "removed-section", "error",
                          f"section {old.title!r} (line {old.line} in the base, {len(old.body)} characters) "
                          "was removed")
        elif not new.body:
            yield _finding(doc, new.line, 1, "removed-section", "error",
                           f"section {old.title!r} was emptied (it had {len(old.body)} characters in the base)")
        elif len(new.body) < (1 - config.shrink_warning) * len(old.body):
            shrink = 1 - len(new.body) / len(old.body)
            yield _finding(doc, new.line, 1, "removed-section", "warning",
                           f"section {old.title!r} shrank by {shrink:.0%} (from {len(old.body)} to {len(new.body)} "
                           "characters)")


def check_variables(doc: Document, users: Sequence[SuiteInfo]) -> Iterator[Finding]:
    """template-syntax and undefined-variable for a jinja2 template file, against the suites that use it."""
    text = doc.prompt_text if doc.prompt_text is not None else doc.text
    used, error = template_variables(text, names=bool(users))
    if error is not None:
        line, message = error
        yield _finding(doc, line, 1, "template-syntax", "error", f"jinja2: {message}")
        return
    for suite in users:
        for name, line in sorted(used.items(), key=lambda item: (item[1], item[0])):
            if name in suite.default_vars:
                continue
            missing = [case_id for case_id, values in suite.cases if name not in values]
            if missing:
                yield _finding(doc, line, _column(doc, line, name), "undefined-variable", "error",
                               f"variable {name!r} is not supplied by {len(missing)} of {len(suite.cases)} cases of "
                               f"{suite.path} (first: {missing[0]}) nor by its defaults.vars")


def check_suite_variables(doc: Document, suite: SuiteInfo) -> Iterator[Finding]:
    """Inline-template problems and unused-variable, reported in the suite file."""
    used: set[str] = set()
    for origin, (text, line) in sorted(suite.templates.items()):
        names, error = template_variables(text)
        if error is not None:
            if origin.startswith(f"{suite.path}:"):
                yield _finding(doc, line, 1, "template-syntax", "error", f"{origin}: jinja2: {error[1]}")
            return  # unused-variable is meaningless when a template does not parse
        used |= set(names)
        if origin.startswith(f"{suite.path}:"):
            for name in sorted(names):
                missing = [cid for cid, values in suite.cases if name not in values and name not in suite.default_vars]
                if missing:
                    yield _finding(doc, line, 1, "undefined-variable", "error",
                                   f"variable {name!r} of {origin} is not supplied by {len(missing)} of "
                                   f"{len(suite.cases)} cases (first: {missing[0]})")
    if not suite.templates:
        return
    supplied = set(suite.default_vars) | {name for _, values in suite.cases for name in values}
    for name in sorted(supplied - used - suite.referenced):
        line = suite.var_lines.get(name, 1)
        yield _finding(doc, line, _column(doc, line, name), "unused-variable", "warning",
                       f"variable {name!r} is supplied but no template of this suite uses it")


def check_token_budget(doc: Document, config: LintConfig, users: Sequence[SuiteInfo], jinja: bool,
                       search: Sequence[str] = ()) -> Iterator[Finding]:
    """Renders in the limited sandbox with the longest case values; a render that stops is a finding."""
    if doc.kind not in ("prompt", "messages"):
        return
    for entry in config.token_budget:
        if not matches(doc.path, as_globs(entry["glob"])):
            continue
        from evalkit.lint.render import render_for_budget
        from evalkit.text.tokens import count_tokens

        text = doc.prompt_text if doc.prompt_text is not None else doc.text
        longest: dict[str, str] = {}
        for suite in sorted(users, key=lambda s: s.path):
            for _, values in [("defaults", suite.default_vars), *suite.cases]:
                for name, value in values.items():
                    if len(str(value)) > len(longest.get(name, "")):
                        longest[name] = str(value)
        for name, size in (entry.get("max_vars") or {}).items():
            longest[name] = "x" * int(size)
        rendered, problem = (render_for_budget(text, longest, search, config) if jinja and
                             ("{{" in text or "{%" in text) else (text, None))
        if problem is not None:
            yield Finding(doc.path, 1, 1, "token-budget", "error", f"cannot measure the budget: {problem}")
            continue
        count = count_tokens(rendered, entry.get("model"), entry.get("encoding"))
        if count.tokens > int(entry["budget"]):
            yield Finding(doc.path, 1, 1, "token-budget", "error",
                          f"rendered prompt is {count.tokens:,} tokens ({count.method}; longest case values), above "
                          f"the budget of {int(entry['budget']):,}")


# A model id is called when it is the value of a model setting; anywhere else (a heading, prose) it is mentioned.
# An Azure deployment name is a label its owner chose (the model version behind it is pinned in Azure): not one.
_CALL_CONTEXT = re.compile(r"""(?<![A-Za-z])(?:model(?:_?name|_?id)?|engine|llm)["']?\s*[:=]\s*"""
                           r"""["']?(?:[\w.-]+/)?$""", re.IGNORECASE)


def check_model_ids(doc: Document, config: LintConfig, today: dt.date) -> Iterator[Finding]:
    catalog = load_catalog(config.model_ids)
    text = doc.text
    # Every catalogued id but a floating one carries a digit (gpt-4o, o3, claude-3-5-…): text without a digit
    # can only hold a floating alias, which names its suffix.
    if not has_digit(text) and not any(s in text for s in catalog.suffixes) and not any(
            a in text for a in catalog.bare):
        return
    if not any(stem in text for stem in catalog.hints):
        return
    for match in catalog.pattern.finditer(text):
        line, column = doc.position(match.start())
        before = doc.line_text(line)[:column - 1]
        called = bool(_CALL_CONTEXT.search(before))
        verdict = describe(catalog, match.group(), today, called=called)
        if verdict is not None:
            yield _finding(doc, line, column, "model-id", verdict[0], verdict[1])


_TOOL_CALL = re.compile(r"\b([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\(")
_TOOL_NAMED = re.compile(r"`([A-Za-z_][\w.-]*)`\s+(?:tool|function)\b|\b(?:tool|function)\s+`([A-Za-z_][\w.-]*)`"
                         r"|\bthe\s+([A-Z][a-z]+(?:[A-Z][a-z0-9]*)+|[a-z][a-z0-9]*(?:_[a-z0-9]+)+)\s+tool\b")
_BACKTICKED = re.compile(r"`([A-Za-z_][\w.-]*)`")


def check_tools(doc: Document, config: LintConfig) -> Iterator[Finding]:
    if doc.kind not in ("prompt", "messages"):
        return
    for entry in config.tools:
        if not matches(doc.path, as_globs(entry["glob"])):
            continue
        catalog = set(entry["catalog"])
        # Calls written in example code are code, not the tools the prompt offers.
        prose = _without_fences(doc.text)
        mentions: dict[str, int] = {}
        for pattern in (_TOOL_CALL, _TOOL_NAMED):
            for match in pattern.finditer(prose):
                name = next(g for g in match.groups() if g)
                mentions.setdefault(name, match.start(match.lastindex or 0))
        for section in doc.sections:
            if "tool" in section.name:
                start = prose.find(section.body)
                for match in _BACKTICKED.finditer(section.body):
                    if start >= 0:
                        mentions.setdefault(match.group(1), start + match.start(1))
        for name, offset in sorted(mentions.items(), key=lambda item: (item[1], item[0])):
            if name not in catalog:
                line, column = doc.position(offset)
                yield _finding(doc, line, column, "dangling-tool", "error",
                               f"the prompt names tool {name!r}, which is not in the tool catalog "
                               f"({', '.join(sorted(catalog)) or 'empty'})")
        for name in sorted(catalog):
            # Any mention counts: "use the TodoWrite tool", a bullet, a code sample showing the call.
            if not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", doc.text):
                yield Finding(doc.path, 1, 1, "dangling-tool", "warning",
                              f"catalog tool {name!r} is never mentioned in the prompt, so the model is never told "
                              "of it")


def _without_fences(text: str) -> str:
    """The text with fenced code blocks blanked out (same length, same line breaks, so offsets still hold)."""
    if "```" not in text and "~~~" not in text:
        return text
    return engines._FENCED.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)


def check_pii(doc: Document) -> Iterator[Finding]:
    for match in doc.pii:
        line, column = doc.position(match.start)
        yield _finding(doc, line, column, "pii", "error", f"possible {match.kind} ({match.redacted})")


def check_patterns(doc: Document, config: LintConfig) -> Iterator[Finding]:
    for pattern in config.forbidden:
        if matches(doc.path, pattern.globs):
            for match in pattern.regex.finditer(doc.text):
                line, column = doc.position(match.start())
                message = pattern.message or f"matches forbidden pattern /{pattern.regex.pattern}/"
                yield _finding(doc, line, column, "forbidden-pattern", "error", message)
    for pattern in config.required:
        if matches(doc.path, pattern.globs) and not pattern.regex.search(doc.text):
            message = pattern.message or f"does not match required pattern /{pattern.regex.pattern}/"
            yield Finding(doc.path, 1, 1, "required-pattern", "error", message)
