"""The ``lint:`` section of ``evalkit.yaml``: validated, with regexes compiled and rule names checked."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit import schema
from evalkit.errors import ConfigError

DEFAULT_CONFIG = "evalkit.yaml"
SEVERITIES = ("error", "warning", "note", "off")


def as_globs(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def matches(path: str, globs: Sequence[str]) -> bool:
    """Whether a POSIX path matches any glob (``**`` spans folders)."""
    for pattern in globs:
        if fnmatch.fnmatchcase(path, pattern):
            return True
        # fnmatch's * already crosses '/', so 'prompts/**/*.md' should also match 'prompts/x.md'.
        if "**/" in pattern and fnmatch.fnmatchcase(path, pattern.replace("**/", "")):
            return True
    return False


@dataclass(frozen=True)
class Pattern:
    globs: tuple[str, ...]
    regex: re.Pattern[str]
    message: str


@dataclass(frozen=True)
class LintConfig:
    """What to lint and how; every field has a working default."""

    source: str = "(defaults)"
    paths: tuple[str, ...] = ("prompts/**/*", "suites/**/*.yaml", "judges/**/*")
    """Globs linted when no paths are given."""
    suites: tuple[str, ...] = ("suites/*.yaml", "suites/**/*.yaml")
    severity: Mapping[str, str] = field(default_factory=dict, hash=False)
    required_sections: tuple[Mapping[str, Any], ...] = ()
    shrink_warning: float = 0.5
    token_budget: tuple[Mapping[str, Any], ...] = ()
    tools: tuple[Mapping[str, Any], ...] = ()
    forbidden: tuple[Pattern, ...] = ()
    required: tuple[Pattern, ...] = ()
    model_ids: str | None = None
    overrides: tuple[Mapping[str, Any], ...] = ()
    templates: tuple[Mapping[str, Any], ...] = ()
    """``{glob, engine}``: the template engine of matching files (the last matching entry wins)."""
    template_paths: tuple[str, ...] = ()
    """Folders ``{% include %}`` names are looked up in after the including file's own folder."""
    render_seconds: float = 2.0
    render_output_chars: int = 1_000_000
    pii_allow: frozenset[str] = frozenset()
    """Values the pii rule never reports (``lint.pii.allowlist``)."""

    def severity_for(self, rule: str, path: str, default: str) -> str:
        """The rule's severity for this file: default, then config, then the last matching override."""
        level = self.severity.get(rule, default)
        for override in self.overrides:
            if matches(path, as_globs(override["glob"])) and rule in override["severity"]:
                level = override["severity"][rule]
        return level


def load_config(path: str | Path | None, known_rules: Sequence[str]) -> LintConfig:
    """Reads ``evalkit.yaml`` (absent: defaults, unless a path was named explicitly)."""
    explicit = path is not None
    target = Path(path) if path is not None else Path(DEFAULT_CONFIG)
    if not target.exists():
        if explicit:
            raise ConfigError(f"{target}: config file not found")
        return LintConfig()
    display = str(path) if explicit else DEFAULT_CONFIG
    data, locate = schema.load_yaml(target, display)
    data = data or {}
    # YAML 1.1 reads an unquoted `off` as false; in a severity map it can only mean "off".
    lint_raw = data.get("lint") if isinstance(data, dict) else None
    if isinstance(lint_raw, dict):
        maps = [lint_raw.get("severity")] + [o.get("severity") for o in lint_raw.get("overrides") or []
                                             if isinstance(o, dict)]
        for mapping in maps:
            if isinstance(mapping, dict):
                mapping.update({k: "off" for k, v in mapping.items() if v is False})
    schema.validate(data, "config", display, locate)
    lint = data.get("lint", {})

    def check_rules(mapping: Mapping[str, str], where: tuple[str | int, ...]) -> None:
        for rule in mapping:
            if rule not in known_rules:
                at = schema.where(display, locate((*where, rule)))
                raise ConfigError(f"{at}: {schema.format_path((*where, rule))}: unknown rule {rule!r}; expected one "
                                  f"of: {', '.join(sorted(known_rules))}")

    check_rules(lint.get("severity", {}), ("lint", "severity"))
    for index, override in enumerate(lint.get("overrides", [])):
        check_rules(override["severity"], ("lint", "overrides", index, "severity"))

    def patterns(key: str) -> tuple[Pattern, ...]:
        out = []
        for index, item in enumerate(lint.get(key, [])):
            try:
                regex = re.compile(item["pattern"], re.MULTILINE)
            except re.error as exc:
                at = schema.where(display, locate(("lint", key, index, "pattern")))
                raise ConfigError(f"{at}: lint.{key}[{index}].pattern: expected a valid regular expression, got "
                                  f"{item['pattern']!r} ({exc})") from None
            out.append(Pattern(as_globs(item["glob"]), regex, item.get("message", "")))
        return tuple(out)

    pii_allow: frozenset[str] = frozenset()
    allowlist = lint.get("pii", {}).get("allowlist")
    if allowlist is not None:
        from evalkit.text.pii import load_allowlist

        file = Path(allowlist) if Path(allowlist).is_absolute() else target.parent / allowlist
        try:
            pii_allow = load_allowlist(file)
        except (OSError, UnicodeDecodeError) as exc:
            at = schema.where(display, locate(("lint", "pii", "allowlist")))
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError(f"{at}: lint.pii.allowlist: expected a readable UTF-8 file, got {allowlist!r} "
                              f"({reason})") from None
    for index, entry in enumerate(lint.get("required_sections", [])):
        if entry.get("match") == "regex":
            for name in entry["sections"]:
                try:
                    re.compile(name)
                except re.error as exc:
                    at = schema.where(display, locate(("lint", "required_sections", index, "sections")))
                    raise ConfigError(f"{at}: lint.required_sections[{index}].sections: expected valid regular "
                                      f"expressions (match: regex), got {name!r} ({exc})") from None
    render = lint.get("render", {})
    return LintConfig(
        source=display,
        paths=tuple(lint["paths"]) if "paths" in lint else LintConfig.paths,
        suites=as_globs(lint["suites"]) if "suites" in lint else LintConfig.suites,
        severity=dict(lint.get("severity", {})),
        required_sections=tuple(lint.get("required_sections", ())),
        shrink_warning=float(lint.get("removed_section", {}).get("shrink_warning", 0.5)),
        token_budget=tuple(lint.get("token_budget", ())),
        tools=tuple(lint.get("tools", ())),
        forbidden=patterns("forbidden_patterns"),
        required=patterns("required_patterns"),
        model_ids=lint.get("model_ids"),
        overrides=tuple(lint.get("overrides", ())),
        templates=tuple(lint.get("templates", ())),
        template_paths=tuple(lint.get("template_paths", ())),
        render_seconds=float(render.get("seconds", 2.0)),
        render_output_chars=int(render.get("output_chars", 1_000_000)),
        pii_allow=pii_allow,
    )
