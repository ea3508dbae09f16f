"""The prompt linter: the structural layer between behavioural evals and production.

``lint(paths, base=..., config=...)`` reads prompt files (Markdown, text, templates of any engine, YAML/JSON
message lists), suites and eval data, runs the rules in :mod:`evalkit.lint.rules`, applies severities,
per-path overrides and inline suppressions (``evalkit: disable=<rule> <reason>``), and returns a
:class:`LintReport`. A file that cannot be read is a finding, never a crash; the other files are still
linted. Files a folder walk passes over, and templates of engines other than jinja2, are counted in the
report with the reason. Findings are sorted and contain no set iteration: the same files give the same
report under any ``PYTHONHASHSEED``.
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

__all__ = ["RULES", "Finding", "LintConfig", "LintReport", "Note", "lint"]

LINTABLE = PROMPT_SUFFIXES + STRUCTURED_SUFFIXES + DATA_SUFFIXES
PARALLEL_THRESHOLD = 400
"""From this many files on, documents are linted in a process pool (one worker per core)."""
NOT_PROMPTS = frozenset({"license", "licence", "copying", "notice", "makefile", "dockerfile", "codeowners",
                         "authors", "changelog", "gemfile", "rakefile", "procfile", "vagrantfile", "jenkinsfile"})
"""Extensionless names a folder walk passes over; other extensionless text files are read as prompts."""
MARKDOWN_LIKE = (".md", ".markdown", ".mdc", ".txt", ".prompt", "")


@dataclass(frozen=True)
class Note:
    """Something the report tells without it being a problem: a file passed over, a template not checked."""

    path: str
    message: str


@dataclass(frozen=True)
class LintReport:
    """Every finding that survived severities and suppressions, sorted by place, and what was not checked."""

    findings: tuple[Finding, ...]
    files: int
    config: str
    base: str | None = None
    skipped: tuple[Note, ...] = ()
    """Files a folder walk passed over, with the reason (``.py: not a prompt, suite or eval-data file``)."""
    notes: tuple[Note, ...] = ()
    """Linted files whose template engine is not jinja2: named, not checked as jinja2."""

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


def _kind_of_name(name: str) -> str | None:
    """Why a walk passes over a file name, or None when it is linted."""
    lower = name.lower()
    if lower.endswith(LINTABLE):
        return None
    if "." not in lower.lstrip("."):
        return None if lower not in NOT_PROMPTS else f"{name}: not a prompt (extensionless, a known project file)"
    return f"{lower[lower.rfind('.'):]}: not a prompt, suite or eval-data suffix"


def collect(paths: Sequence[str], config: LintConfig) -> tuple[list[str], list[Finding], list[Note]]:
    """Files to lint (folders are walked), a finding for each named path that does not exist, and the files a
    walk passed over with the reason."""
    problems: list[Finding] = []
    skipped: list[Note] = []
    files: list[str] = []
    wanted = list(paths) if paths else list(config.paths)
    for item in wanted:
        if not paths:  # config entries are globs
            for found in sorted(glob.glob(item, recursive=True)):
                if os.path.isfile(found):
                    reason = _kind_of_name(os.path.basename(found))
                    if reason is None:
                        files.append(found)
                    else:
                        skipped.append(Note(_posix(found), reason))
            continue
        if os.path.isdir(item):
            for root, dirs, names in os.walk(item):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if name.startswith("."):
                        continue
                    reason = _kind_of_name(name)
                    if reason is None:
                        files.append(os.path.join(root, name))
                    else:
                        skipped.append(Note(_posix(os.path.join(root, name)), reason))
        elif os.path.exists(item):
            files.append(item)
        else:
            problems.append(Finding(_posix(item), 1, 1, "file", "error", "path does not exist"))
    unique = list(dict.fromkeys(_posix(f) for f in files if os.path.isfile(f)))
    listed = set(unique)
    passed = sorted({n.path: n for n in skipped if n.path not in listed}.values(), key=lambda n: n.path)
    return unique, problems, passed


def _document(path: str, suites: dict[str, SuiteInfo], allow: frozenset[str] = frozenset()) -> Document | Finding:
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
        return Document(path, text, "suite", allow=allow)
    if suffix in PROMPT_SUFFIXES or not suffix:
        return Document(path, text, "prompt", allow=allow)
    if suffix in STRUCTURED_SUFFIXES:
        contents = _message_contents(text, suffix)
        if contents is not None:
            return Document(path, text, "messages", prompt_text="\n\n".join(contents), allow=allow)
    return Document(path, text, "data", allow=allow)


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
           base_text: str | None, base: str | None, today: dt.date) -> tuple[list[Finding], list[Note]]:
    from evalkit.lint.engines import ENGINE_NAMES, detect
    from evalkit.lint.render import compose, search_path

    found: list[Finding] = []
    notes: list[Note] = []
    jinja = False
    if doc.kind in ("prompt", "messages"):
        text = doc.prompt_text if doc.prompt_text is not None else doc.text
        name = doc.path.rsplit("/", 1)[-1]
        suffix = name[name.rfind("."):].lower() if "." in name.lstrip(".") else ""
        used_by = min((u.path for u in users), default=None)
        engine = detect(text, doc.path, config, used_by, markdown=suffix in MARKDOWN_LIKE)
        jinja = engine.checked
        search = search_path(doc.path, config)
        if jinja:
            found.extend(_rules.check_variables(doc, users))
            doc.composed = compose(text, doc.path, search)
        elif engine.name != "none":
            notes.append(Note(doc.path, f"{ENGINE_NAMES.get(engine.name, engine.name)} template ({engine.reason}): "
                                        "not checked as jinja2"))
    found.extend(_rules.check_required_sections(doc, config))
    if base is not None:
        found.extend(_rules.check_removed_sections(doc, base_text, config))
    if suite is not None:
        found.extend(_rules.check_suite_variables(doc, suite))
    if config.token_budget:
        found.extend(_rules.check_token_budget(doc, config, users, jinja, search_path(doc.path, config)))
    found.extend(_rules.check_model_ids(doc, config, today))
    found.extend(_rules.check_tools(doc, config))
    found.extend(_rules.check_pii(doc))
    found.extend(_rules.check_patterns(doc, config))
    return _settle(doc, found, config), notes


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
                               doc.snippet(suppression.line)))
        out.append(finding)
    return out


def _work(paths: list[str], suites: dict[str, SuiteInfo], users: dict[str, list[SuiteInfo]], config: LintConfig,
          base: str | None, today: dt.date) -> tuple[list[Finding], list[Note]]:
    """Reads and lints a batch of files (in a worker process when there are many: files travel as paths)."""
    findings: list[Finding] = []
    notes: list[Note] = []
    documents: list[Document] = []
    for path in paths:
        item = _document(path, suites, config.pii_allow)
        if isinstance(item, Finding):
            findings.extend(_settle(Document(path, "", "data"), [item], config))
        else:
            documents.append(item)
    base_texts: dict[str, str | None] = {}
    if base is not None:
        from evalkit.lint.gitbase import read_at

        base_texts = read_at(base, [d.path for d in documents if d.kind in ("prompt", "messages")])
    for doc in documents:
        found, noted = _check(doc, config, users.get(doc.path, []), suites.get(doc.path), base_texts.get(doc.path),
                              base, today)
        findings.extend(found)
        notes.extend(noted)
    return findings, notes


def lint(paths: Sequence[str] = (), *, base: str | None = None, config: str | os.PathLike[str] | None = None,
         today: dt.date | None = None, workers: int | None = None) -> LintReport:
    """Lints the given files and folders (or the config's ``paths``) and returns every finding."""
    settings = load_config(Path(config) if config is not None else None, list(RULES))
    if today is None:
        today = dt.date.today()
    files, findings, skipped = collect(paths, settings)
    notes: list[Note] = []
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
                found, noted = future.result()
                findings.extend(found)
                notes.extend(noted)
    else:
        found, noted = _work(files, suites, users, settings, base, today)
        findings.extend(found)
        notes.extend(noted)
    findings.sort(key=lambda f: (f.path, f.line, f.column, f.rule, f.severity, f.message, f.snippet))
    notes.sort(key=lambda n: (n.path, n.message))
    return LintReport(tuple(findings), len(files), settings.source, base, tuple(skipped), tuple(notes))
