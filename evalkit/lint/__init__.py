"""The prompt linter: the structural layer between behavioural evals and production.

``lint(paths, base=..., config=...)`` reads prompt files (Markdown, text, jinja2 templates, YAML/JSON message
lists), suites and eval data, runs the rules in :mod:`evalkit.lint.rules`, applies severities, per-path
overrides and inline suppressions (``evalkit: disable=<rule> <reason>``), and returns a :class:`LintReport`.
A file that cannot be read is a finding, never a crash; the other files are still linted.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from evalkit.errors import ExitCode
from evalkit.lint import rules as _rules
from evalkit.lint.config import LintConfig, load_config
from evalkit.lint.document import DATA_SUFFIXES, PROMPT_SUFFIXES, STRUCTURED_SUFFIXES, Document
from evalkit.lint.rules import RULES, Finding, SuiteInfo, read_suite

__all__ = ["RULES", "Finding", "LintConfig", "LintReport", "lint"]

LINTABLE = PROMPT_SUFFIXES + STRUCTURED_SUFFIXES + DATA_SUFFIXES
PARALLEL_THRESHOLD = 400
"""From this many files on, documents are linted in a process pool (one worker per core)."""


@dataclass(frozen=True)
class LintReport:
    """Every finding that survived severities and suppressions, sorted by place."""

    findings: tuple[Finding, ...]
    files: int
    config: str
    base: str | None = None

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == "warning")

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.LINT_FAILED if self.errors else ExitCode.OK


def _posix(path: str) -> str:
    relative = os.path.relpath(path)
    return Path(relative).as_posix() if not relative.startswith("..") else Path(path).as_posix()


def collect(paths: Sequence[str], config: LintConfig) -> tuple[list[str], list[Finding]]:
    """Files to lint (folders are walked), and a finding for each named path that does not exist."""
    problems: list[Finding] = []
    files: list[str] = []
    wanted = list(paths) if paths else list(config.paths)
    for item in wanted:
        if not paths:  # config entries are globs
            files.extend(f for f in sorted(glob.glob(item, recursive=True)) if f.endswith(LINTABLE))
            continue
        if os.path.isdir(item):
            for root, dirs, names in os.walk(item):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files.extend(os.path.join(root, n) for n in sorted(names) if n.endswith(LINTABLE))
        elif os.path.exists(item):
            files.append(item)
        else:
            problems.append(Finding(_posix(item), 1, 1, "file", "error", "path does not exist"))
    unique = list(dict.fromkeys(_posix(f) for f in files if os.path.isfile(f)))
    return unique, problems


def _document(path: str, suites: dict[str, SuiteInfo]) -> Document | Finding:
    """Reads one file; an unreadable, binary, non-UTF-8 or empty file is a finding instead."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return Finding(path, 1, 1, "file", "error", f"cannot read file ({exc.strerror})")
    if b"\x00" in data[:8192]:
        return Finding(path, 1, 1, "file", "error", "binary file (NUL bytes): not linted")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return Finding(path, line, 1, "file", "error",
                       f"expected UTF-8 text, got byte 0x{data[exc.start]:02x} at offset {exc.start}: not linted")
    if not text.strip():
        return Finding(path, 1, 1, "file", "warning", "empty file")
    suffix = Path(path).suffix.lower()
    if path in suites:
        return Document(path, text, "suite")
    if suffix in PROMPT_SUFFIXES:
        return Document(path, text, "prompt")
    if suffix in STRUCTURED_SUFFIXES:
        contents = _message_contents(text, suffix)
        if contents is not None:
            return Document(path, text, "messages", prompt_text="\n\n".join(contents))
    return Document(path, text, "data")


def _message_contents(text: str, suffix: str) -> list[str] | None:
    """The contents of a YAML/JSON message list (``[{role, content}]`` or ``{messages: [...]}``), else None."""
    import yaml

    try:
        data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError):
        return None
    if isinstance(data, dict):
        data = data.get("messages")
    if isinstance(data, list) and data and all(isinstance(m, dict) and "role" in m and "content" in m for m in data):
        return [str(m["content"]) for m in data]
    return None


def _check(doc: Document, config: LintConfig, users: list[SuiteInfo], suite: SuiteInfo | None,
           base_text: str | None, base: str | None, today: dt.date) -> list[Finding]:
    found: list[Finding] = []
    found.extend(_rules.check_required_sections(doc, config))
    if base is not None:
        found.extend(_rules.check_removed_sections(doc, base_text, config))
    if doc.kind in ("prompt", "messages"):
        found.extend(_rules.check_variables(doc, users))
    if suite is not None:
        found.extend(_rules.check_suite_variables(doc, suite))
    found.extend(_rules.check_token_budget(doc, config, users))
    found.extend(_rules.check_model_ids(doc, config, today))
    found.extend(_rules.check_tools(doc, config))
    found.extend(_rules.check_pii(doc))
    found.extend(_rules.check_patterns(doc, config))
    return _settle(doc, found, config)


def _settle(doc: Document, found: Iterable[Finding], config: LintConfig) -> list[Finding]:
    """Applies configured severities, per-path overrides and inline suppressions."""
    out = []
    for finding in found:
        configured = config.severity_for(finding.rule, doc.path, finding.severity)
        if configured == "off":
            continue
        finding = replace(finding, severity=configured)
        suppression = doc.suppressed(finding.rule, finding.line)
        if suppression is not None:
            if suppression.reason:
                continue
            out.append(Finding(doc.path, suppression.line, 1, "suppression",
                               config.severity_for("suppression", doc.path, "warning"),
                               f"suppression of {finding.rule} needs a reason after the rule list; not applied",
                               doc.line_text(suppression.line)))
        out.append(finding)
    return out


def _work(paths: list[str], suites: dict[str, SuiteInfo], users: dict[str, list[SuiteInfo]], config: LintConfig,
          base: str | None, today: dt.date) -> list[Finding]:
    """Reads and lints a batch of files (in a worker process when there are many: files travel as paths)."""
    findings: list[Finding] = []
    documents: list[Document] = []
    for path in paths:
        item = _document(path, suites)
        if isinstance(item, Finding):
            findings.extend(_settle(Document(path, "", "data"), [item], config))
        else:
            documents.append(item)
    base_texts: dict[str, str | None] = {}
    if base is not None:
        from evalkit.lint.gitbase import read_at

        base_texts = read_at(base, [d.path for d in documents if d.kind in ("prompt", "messages")])
    for doc in documents:
        findings.extend(_check(doc, config, users.get(doc.path, []), suites.get(doc.path), base_texts.get(doc.path),
                               base, today))
    return findings


def lint(paths: Sequence[str] = (), *, base: str | None = None, config: str | os.PathLike[str] | None = None,
         today: dt.date | None = None, workers: int | None = None) -> LintReport:
    """Lints the given files and folders (or the config's ``paths``) and returns every finding."""
    settings = load_config(Path(config) if config is not None else None, list(RULES))
    if today is None:
        today = dt.date.today()
    files, findings = collect(paths, settings)
    suite_files = {_posix(p) for pattern in settings.suites for p in glob.glob(pattern, recursive=True)}
    suites: dict[str, SuiteInfo] = {}
    for path in sorted(suite_files):
        info = read_suite(path)
        if info is not None:
            suites[path] = info
    users: dict[str, list[SuiteInfo]] = {}
    for info in suites.values():
        for template in info.templates:
            users.setdefault(template, []).append(info)

    if base is not None:
        from evalkit.lint.gitbase import verify

        verify(base)  # a bad ref is one error up front, not one per worker
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count > 1 and len(files) >= PARALLEL_THRESHOLD:
        from concurrent.futures import ProcessPoolExecutor

        size = -(-len(files) // (count * 2))
        chunks = [files[i:i + size] for i in range(0, len(files), size)]
        with ProcessPoolExecutor(max_workers=count) as pool:
            futures = [pool.submit(_work, chunk, suites, users, settings, base, today) for chunk in chunks]
            for future in futures:
                findings.extend(future.result())
    else:
        findings.extend(_work(files, suites, users, settings, base, today))
    findings.sort(key=lambda f: (f.path, f.line, f.column, f.rule))
    return LintReport(tuple(findings), len(files), settings.source, base)
