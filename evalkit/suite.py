"""Suites and cases: YAML (plus JSONL/CSV/YAML cases files) → validated, frozen records."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit import schema, scorers
from evalkit.errors import ConfigError, TemplateError
from evalkit.providers.base import ProviderSpec
from evalkit.template import Template, parse_template
from evalkit.tools.spec import NO_FAULTS, Toolkit, parse_toolkit

DEFAULT_CONCURRENCY = 4


@dataclass(frozen=True)
class Check:
    """One ``expect`` entry: a scorer name and its argument."""

    name: str
    """Registry name (``contains``) or ``scorer`` for a user scorer by dotted path."""
    arg: Any
    """The argument as written in YAML."""


@dataclass(frozen=True)
class Case:
    """One eval case with a stable id, so runs pair up across time."""

    id: str
    """Explicit, or derived from the case's vars (``c-`` + 10 hex digits of their hash)."""
    vars: Mapping[str, Any] = field(hash=False)
    """Template variables, after suite defaults are merged in."""
    tags: tuple[str, ...] = ()
    """Free labels such as a cohort or a topic."""
    route: str | None = None
    """The production route (router branch, persona, arm) this case exercises; ``defaults.route`` applies."""
    expect: tuple[Check, ...] = ()
    """Checks applied to the output; suite-level default checks come first."""
    description: str = ""
    """A human note about what the case is for."""
    source: str = ""
    """``file:line`` where the case was defined, for messages."""
    user: Template | None = None
    """Agent suites: the first user message (rendered with the vars); else the target's ``user`` template."""
    faults: str | None = None
    """Agent suites: the fault profile the case runs under (``none`` when unset)."""
    user_sim: bool = True
    """Agent suites: False turns the suite's simulated user off for this case."""


@dataclass(frozen=True)
class RateLimit:
    """Optional client-side limits."""

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None


@dataclass(frozen=True)
class Target:
    """What a case runs against: a prompt + provider/model, or a user's Python callable."""

    provider: str | None = None
    model: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    base_url: str | None = None
    api_key_env: str | None = None
    timeout: float = 60.0
    """Seconds allowed for one attempt (connect to last token)."""
    max_attempts: int = 3
    """Attempts per call, the first included; retries back off and honour ``retry-after``."""
    system: Template | None = None
    user: Template | None = None
    callable: str | None = None
    """``package.module:function`` taking the case vars and returning the output text."""
    agent: bool = False
    """True when the suite declares tools: the agent target runs it (a tool loop, or the callable with tools)."""

    @property
    def kind(self) -> str:
        """Which registered target runs it (see :data:`evalkit.targets.TARGETS`)."""
        return "agent" if self.agent else "callable" if self.callable else "prompt"

    @property
    def provider_spec(self) -> ProviderSpec:
        """The provider part of this target (what :func:`evalkit.providers.open_provider` opens)."""
        return ProviderSpec(provider=self.provider or "local", model=self.model, base_url=self.base_url,
                            api_key_env=self.api_key_env, params=self.params, timeout=self.timeout,
                            max_attempts=self.max_attempts)

    @property
    def templates(self) -> tuple[Template, ...]:
        """The prompt templates of this target, system first."""
        return tuple(t for t in (self.system, self.user) if t is not None)


@dataclass(frozen=True)
class Suite:
    """A validated suite."""

    name: str
    path: str
    """The suite file as the user named it."""
    target: Target
    cases: tuple[Case, ...]
    description: str = ""
    repeats: int = 1
    concurrency: int = DEFAULT_CONCURRENCY
    rate_limit: RateLimit = RateLimit()
    sha256: str = ""
    """Hash of the suite file and its cases file, so a changed suite is never mistaken for the same."""
    files: tuple[str, ...] = ()
    """Every file the suite reads (itself, prompt templates, cases file), as display paths."""
    gate: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """The ``gate:`` section: alpha, margins, what blocks (see :class:`evalkit.compare.GateConfig`)."""
    toolkit: Toolkit | None = None
    """Tools, services, state and fault profiles, when the suite runs an agent against live tools."""
    coverage: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """The ``coverage:`` section: traffic profile, precision, what warns or blocks (see ``evalkit coverage``)."""

    def case(self, case_id: str) -> Case:
        """The case with this id."""
        for case in self.cases:
            if case.id == case_id:
                return case
        raise KeyError(case_id)


def display_path(path: Path) -> str:
    """A path as short as it can be shown: relative to the working directory when inside it."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def derive_case_id(vars: Mapping[str, Any]) -> str:
    """A stable id from a case's content: the same vars give the same id in every run."""
    canonical = json.dumps(vars, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return "c-" + hashlib.sha256(canonical.encode()).hexdigest()[:10]


def _read_text(path: Path, display: str, field_name: str, where: str) -> str:
    try:
        return path.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: {field_name}: file {display!r} does not exist") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: {field_name}: expected UTF-8 text in {display!r}, got binary data") from None
    except OSError as exc:
        raise ConfigError(f"{where}: {field_name}: cannot read {display!r} ({exc.strerror})") from None


def _template(spec: Any, base: Path, field_name: str, where: str, suite_display: str) -> Template:
    if isinstance(spec, str):
        return parse_template(spec, f"{suite_display}:{field_name}")
    file = base / spec["file"]
    display = display_path(file)
    return parse_template(_read_text(file, display, f"{field_name}.file", where), display)


def _parse_checks(raw: list[dict[str, Any]], source: str, locate: schema.Locator,
                  field_path: tuple[str | int, ...]) -> tuple[Check, ...]:
    checks = []
    for index, item in enumerate(raw):
        ((name, arg),) = item.items()
        check = Check(name=name, arg=arg)
        problem = scorers.check_problem(check)
        if problem:
            at = schema.where(source, locate((*field_path, index, name)))
            raise ConfigError(f"{at}: {schema.format_path((*field_path, index, name))}: {problem}")
        checks.append(check)
    return tuple(checks)


def load_case_records(path: Path, display: str, where: str) -> tuple[list[Any], schema.Locator, bytes]:
    """Reads cases from JSONL, CSV or YAML; returns raw case dicts, a line locator and the file bytes.

    Every problem is one line naming the file and line: invalid JSON or CSV, a key written twice, a CSV row
    with more or fewer cells than the header has columns, nesting deeper than :data:`schema.MAX_DEPTH`.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{where}: cases: file {display!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{where}: cases: expected a file, got the directory {display!r}") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cases: cannot read {display!r} ({exc.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{display}: expected UTF-8 text, got undecodable byte at offset {exc.start}") from None
    suffix = path.suffix.lower()
    records: list[Any] = []
    lines: list[int] = []
    if suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            record = _json_record(line, f"{display}:{number}")
            if schema.nesting_too_deep(record):
                raise ConfigError(f"{display}:{number}: expected at most {schema.MAX_DEPTH} levels of nested "
                                  "lists and mappings, got more")
            records.append(record)
            lines.append(number)
    elif suffix == ".csv":
        records, lines = _csv_records(text, display)
    elif suffix in (".yaml", ".yml"):
        loaded, yaml_locate = schema.parse_yaml(text, display)
        if not isinstance(loaded, list):
            raise ConfigError(f"{display}: (top level): expected a list of cases, got {schema.describe(loaded)}")
        return loaded, yaml_locate, data
    else:
        raise ConfigError(f"{where}: cases: expected a .jsonl, .csv or .yaml file, got {display!r}")

    def locate(field: Sequence[str | int]) -> int | None:
        return lines[field[0]] if field and isinstance(field[0], int) and 0 <= field[0] < len(lines) else None

    return records, locate, data


class _DuplicateKey(Exception):
    """A JSON object names a key twice (raised from inside ``json.loads``)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _json_record(line: str, at: str) -> Any:
    """One JSONL line, with keys unique in every object."""
    try:
        return json.loads(line, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{at}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    except _DuplicateKey as exc:
        raise ConfigError(f"{at}: expected each key once in a JSON object, got {exc.args[0]!r} again") from None
    except RecursionError:
        raise ConfigError(f"{at}: expected at most {schema.MAX_DEPTH} levels of nested lists and mappings, "
                          "got more") from None


def _csv_records(text: str, display: str) -> tuple[list[dict[str, Any]], list[int]]:
    """Cases from CSV: a header of unique column names, then one case per row with exactly that many cells."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    header: list[str] | None = None
    start = 1
    try:
        for row in reader:
            # A row may span lines (a quoted cell with a newline): it starts after the previous row ended.
            row_line, start = start, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line
            if header is None:
                header = _csv_header(row, display, row_line)
                continue
            if len(row) != len(header):
                raise ConfigError(f"{display}:{row_line}: row {len(records) + 1}: expected {len(header)} cells "
                                  f"(one per column: {', '.join(header)}), got {len(row)}")
            records.append(_csv_record(header, row))
            lines.append(row_line)
    except csv.Error as exc:
        raise ConfigError(f"{display}:{reader.line_num}: invalid CSV: {exc}") from None
    return records, lines


def _csv_header(row: list[str], display: str, line: int) -> list[str]:
    header = [name.strip() for name in row]
    seen: dict[str, int] = {}
    for column, name in enumerate(header, start=1):
        if not name:
            raise ConfigError(f"{display}:{line}: header: expected a name for column {column}, got an empty cell")
        if name in seen:
            raise ConfigError(f"{display}:{line}: header: expected each column name once, got {name!r} in "
                              f"columns {seen[name]} and {column}")
        seen[name] = column
    return header


def _csv_record(header: list[str], row: list[str]) -> dict[str, Any]:
    record: dict[str, Any] = {"vars": {}}
    for key, value in zip(header, row, strict=True):
        if key == "id":
            if value:
                record["id"] = value
        elif key == "tags":
            record["tags"] = [t.strip() for t in value.split(",") if t.strip()]
        elif key == "description":
            record["description"] = value
        elif key == "route":
            if value:
                record["route"] = value
        elif key.startswith("expect."):
            if value:
                record.setdefault("expect", []).append({key.removeprefix("expect."): value})
        else:
            record["vars"][key] = value
    return record


def load_suite(path: str | os.PathLike[str]) -> Suite:
    """Loads and validates a suite; every problem raises :class:`ConfigError` with file, line and field."""
    suite_path = Path(path)
    display = display_path(suite_path)
    raw, locate = schema.load_yaml(suite_path, display)
    if not isinstance(raw, dict):
        raise ConfigError(f"{display}: (top level): expected a mapping with name, target and cases, "
                          f"got {schema.describe(raw)}")
    schema.validate(raw, "suite", display, locate)
    base = suite_path.parent
    digest = hashlib.sha256(suite_path.read_bytes())

    def at(*field_path: str | int) -> str:
        return schema.where(display, locate(field_path))

    def field_at(*field_path: str | int) -> str:
        return f"{at(*field_path)}: {schema.format_path(field_path)}"

    toolkit = parse_toolkit(raw, base, field_at)
    raw_target = raw["target"]
    if toolkit is None and "callable" not in raw_target and "user" not in raw_target:
        raise ConfigError(f"{at('target')}: target: expected either 'callable' alone, or 'provider' with a "
                          "'user' template")
    target = Target(
        provider=raw_target.get("provider"),
        model=raw_target.get("model"),
        params=dict(raw_target.get("params", {})),
        base_url=raw_target.get("base_url"),
        api_key_env=raw_target.get("api_key_env"),
        timeout=float(raw_target.get("timeout", 60.0)),
        max_attempts=int(raw_target.get("max_attempts", 3)),
        system=_template(raw_target["system"], base, "target.system", at("target", "system"), display)
        if "system" in raw_target else None,
        user=_template(raw_target["user"], base, "target.user", at("target", "user"), display)
        if "user" in raw_target else None,
        callable=raw_target.get("callable"),
        agent=toolkit is not None,
    )

    defaults = raw.get("defaults", {})
    default_vars = dict(defaults.get("vars", {}))
    default_tags = list(defaults.get("tags", []))
    default_route = defaults.get("route")
    default_faults = defaults.get("faults")
    default_checks = _parse_checks(defaults.get("expect", []), display, locate, ("defaults", "expect"))

    raw_cases = raw["cases"]
    cases_source, cases_locate = display, locate
    cases_prefix: tuple[str, ...] = ("cases",)
    if not isinstance(raw_cases, list):
        file = base / (raw_cases if isinstance(raw_cases, str) else raw_cases["file"])
        cases_source = display_path(file)
        raw_cases, cases_locate, data = load_case_records(file, cases_source, at("cases"))
        digest.update(data)
        cases_prefix = ()
        if not raw_cases:
            raise ConfigError(f"{cases_source}: (top level): expected at least one case, got none")
        schema.validate(raw_cases, "cases", cases_source, cases_locate)

    variables = frozenset().union(*(t.variables for t in target.templates))
    cases: list[Case] = []
    judges_found: set[str] = set()
    seen: dict[str, str] = {}
    for index, item in enumerate(raw_cases):
        field_path: tuple[str | int, ...] = (*cases_prefix, index)
        case_at = schema.where(cases_source, cases_locate(field_path))
        label = schema.format_path(field_path) if cases_prefix else f"case {index}"
        merged = {**default_vars, **item.get("vars", {})}
        case_id = item.get("id") or derive_case_id(item.get("vars", {}))
        if case_id in seen:
            raise ConfigError(f"{case_at}: {label}.id: expected a unique case id, got {case_id!r} "
                              f"again (first defined at {seen[case_id]})")
        seen[case_id] = case_at
        missing = sorted(variables - set(merged))
        if missing:
            used_in = next(t.origin for t in target.templates if missing[0] in t.variables)
            raise TemplateError(
                f"{case_at}: {label}.vars: template variable {missing[0]!r} used in {used_in} is not "
                f"supplied (expected it in vars or defaults.vars, got: {', '.join(sorted(merged)) or 'none'})"
            )
        checks = default_checks + _parse_checks(item.get("expect", []), cases_source, cases_locate,
                                                (*field_path, "expect"))
        user, faults = _agent_fields(item, toolkit, target, default_faults, case_at, label, cases_source, merged)
        cases.append(Case(
            id=case_id,
            vars=merged,
            tags=tuple(dict.fromkeys([*default_tags, *item.get("tags", [])])),
            route=item.get("route", default_route),
            expect=checks,
            description=item.get("description", ""),
            source=case_at,
            user=user,
            faults=faults,
            user_sim=item.get("user_sim") is not False,
        ))
        for check in checks:
            if check.name == "judge":
                _check_judge(check.arg, suite_path, case_at, label, judges_found)

    rate = raw.get("rate_limit", {})
    for template in target.templates:
        digest.update(template.source.encode())
    return Suite(
        name=raw["name"],
        path=display,
        target=target,
        cases=tuple(cases),
        description=raw.get("description", ""),
        repeats=int(raw.get("repeats", 1)),
        concurrency=int(raw.get("concurrency", DEFAULT_CONCURRENCY)),
        rate_limit=RateLimit(rate.get("requests_per_minute"), rate.get("tokens_per_minute")),
        sha256=digest.hexdigest(),
        files=tuple(dict.fromkeys([display, *(t.origin for t in target.templates if ":" not in t.origin),
                                   *([cases_source] if cases_source != display else [])])),
        gate=dict(raw.get("gate", {})),
        toolkit=toolkit,
        coverage=dict(raw.get("coverage", {})),
    )


def _check_judge(arg: Any, suite_path: Path, case_at: str, label: str, found: set[str]) -> None:
    """A ``judge`` check names a judge with ``judges/NAME/judge.yaml`` beside the suite or in a folder above it.

    ``found`` holds the names already looked up, so each judge is looked up once, not once per case.
    """
    from evalkit.judges.pool import judge_arg, judges_dir_for

    name, _ = judge_arg(arg)
    if name in found:
        return
    found.add(name)
    if judges_dir_for(suite_path, name) is None:
        raise ConfigError(f"{case_at}: {label}.expect.judge: expected a judge with judges/{name}/judge.yaml beside "
                          f"the suite or in a folder above it, got none named {name!r}")


def _agent_fields(item: Mapping[str, Any], toolkit: Toolkit | None, target: Target, default_faults: str | None,
                  case_at: str, label: str, source: str,
                  merged: Mapping[str, Any]) -> tuple[Template | None, str | None]:
    """A case's first user message and fault profile, checked against the suite's toolkit."""
    for key in ("user", "faults", "user_sim"):
        if key in item and toolkit is None:
            raise ConfigError(f"{case_at}: {label}.{key}: expected a suite with a 'tools' section, got none")
    if toolkit is None:
        return None, None
    user = parse_template(item["user"], f"{source}:{label}.user") if "user" in item else None
    if user is not None and not user.variables <= set(merged):
        name = sorted(user.variables - set(merged))[0]
        raise TemplateError(f"{case_at}: {label}.user: template variable {name!r} is not supplied (expected it in "
                            f"vars or defaults.vars, got: {', '.join(sorted(merged)) or 'none'})")
    if user is None and target.user is None and target.callable is None:
        raise ConfigError(f"{case_at}: {label}.user: expected the first user message (or a target.user template), "
                          "got none")
    faults = item.get("faults", default_faults)
    if faults is not None and faults not in toolkit.faults:
        raise ConfigError(f"{case_at}: {label}.faults: expected one of the fault profiles "
                          f"({', '.join(sorted(toolkit.faults))}), got {faults!r}")
    return user, faults if faults != NO_FAULTS else None


def affected_suites(suite_paths: Sequence[str | os.PathLike[str]], changed: Sequence[str]) -> list[Suite]:
    """The suites that read any of the changed files (paths relative to the working directory)."""
    changed_set = {os.path.normpath(c) for c in changed}
    out = []
    for path in suite_paths:
        suite = load_suite(path)
        if changed_set & {os.path.normpath(f) for f in suite.files}:
            out.append(suite)
    return out
