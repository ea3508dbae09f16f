"""Traffic profiles: production logs → counts per route per hour (and per arm, served model, error class).

A profile (``"format": "evalkit.traffic/1"``) holds aggregates only — never prompt or response text — so it
can be committed or passed between CI jobs without carrying personal data. :func:`import_traffic` streams
logs through :mod:`evalkit.analysis.logs` with memory bounded by the number of distinct routes × hours, not
by the number of lines; every line it cannot count is counted as a problem and reported as
``file:line: field: expected …, got …``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evalkit.analysis.logs import (
    CsvReader,
    FieldChain,
    FieldPath,
    JsonReader,
    Problem,
    Record,
    SpanReader,
    data_suffix,
)
from evalkit.artifact import read_versioned, write_atomic
from evalkit.errors import TrafficError
from evalkit.schema import describe as _describe

PROFILE_FORMAT = "evalkit.traffic/1"
FIELDS = ("route", "arm", "model", "error", "prompt", "time")
"""What an import reads from each record; only ``route`` is required."""
MAX_VALUE_CHARS = 200
"""Longer values are refused: a route, arm or model name that long is prompt text picked by mistake."""
MAX_DISTINCT = 1000
"""Distinct values kept per field; more are counted under :data:`OTHER` (memory stays bounded)."""
OTHER = "(other)"
PROBLEM_SAMPLES = 20
"""Problem lines kept verbatim in a profile (all are counted)."""

_TIME = ("timestamp", "time", "ts", "start_time", "startTime", "created_at")
FORMATS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "csv": {"route": ("route",), "arm": ("arm", "variant"), "model": ("model", "response_model"),
            "error": ("error_type", "error_class", "error"), "prompt": ("prompt_version",), "time": _TIME},
    "jsonl": {"route": ("route", "metadata.route"), "arm": ("arm", "variant", "metadata.arm"),
              "model": ("model", "response_model", "metadata.model"),
              "error": ("error_type", "error_class", "error"), "prompt": ("prompt_version", "metadata.prompt_version"),
              "time": _TIME},
    "otel": {"route": ("evalkit.route", "route", "gen_ai.workflow.name", "gen_ai.agent.name"),
             "arm": ("feature_flag.result.variant", "feature_flag.variant", "evalkit.arm", "arm"),
             "model": ("gen_ai.response.model", "gen_ai.request.model"), "error": ("error.type", "span.status"),
             "prompt": ("evalkit.prompt_version",), "time": ("span.start",)},
    "langfuse": {"route": ("metadata.route", "tags[route:]", "name"),
                 "arm": ("metadata.arm", "metadata.variant", "tags[arm:]"), "model": ("metadata.model",),
                 "error": ("metadata.error_type", "metadata.error"), "prompt": ("version", "release"),
                 "time": ("timestamp",)},
    "litellm": {"route": ("model_group", "metadata.model_group"), "arm": ("model_id", "metadata.model_id"),
                "model": ("model",), "error": ("error_information.error_class",
                                               "metadata.error_information.error_class", "status[failure]"),
                "prompt": ("metadata.prompt_version",), "time": ("startTime", "start_time")},
}
"""Default field chains per log format: the first path that holds a value wins."""


# --- the profile -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """How often a value (a served model, a prompt version) was seen on a route, and when first and last."""

    requests: int
    first: str | None
    last: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "first": self.first, "last": self.last}


@dataclass(frozen=True)
class RouteTraffic:
    """One route's aggregates."""

    requests: int
    first: str | None = None
    last: str | None = None
    arms: Mapping[str, int] = field(default_factory=dict, hash=False)
    models: Mapping[str, Seen] = field(default_factory=dict, hash=False)
    """Served model → when it was seen."""
    errors: Mapping[str, int] = field(default_factory=dict, hash=False)
    prompts: Mapping[str, Seen] = field(default_factory=dict, hash=False)
    """Prompt (or release) version → when it was seen."""

    @property
    def last_change(self) -> tuple[str, str] | None:
        """(time, what) of the newest model or prompt version, when the route served more than one."""
        changes = [(seen.first, f"{kind} {name}") for kind, values in (("model", self.models), ("prompt", self.prompts))
                   if len(values) > 1 for name, seen in values.items() if seen.first]
        return max(changes) if changes else None

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "first": self.first, "last": self.last, "arms": dict(self.arms),
                "models": {k: v.to_dict() for k, v in self.models.items()}, "errors": dict(self.errors),
                "prompts": {k: v.to_dict() for k, v in self.prompts.items()}}


@dataclass(frozen=True)
class Source:
    """One imported file."""

    file: str
    format: str
    lines: int
    records: int
    """Requests counted from this file."""
    skipped: int = 0
    """Records that are not requests (OTLP spans other than model calls)."""
    problems: int = 0


@dataclass(frozen=True)
class TrafficProfile:
    """Aggregated production traffic: what :func:`import_traffic` writes and coverage and drift read."""

    routes: Mapping[str, RouteTraffic] = field(hash=False)
    hours: Mapping[str, Mapping[str, int]] = field(default_factory=dict, hash=False)
    """UTC hour (``2025-03-03T14:00Z``) → route → requests."""
    first: str | None = None
    last: str | None = None
    untimed: int = 0
    """Requests counted without a timestamp (in ``routes``, not in ``hours``)."""
    outside_window: int = 0
    """Records left out by ``since``/``until``."""
    problems: int = 0
    """Lines or records with a problem; ``problem_kinds`` says which, ``problem_samples`` shows the first."""
    uncounted: int = 0
    """Of the problems, those whose record was not counted at all (no route, unreadable line)."""
    problem_kinds: Mapping[str, int] = field(default_factory=dict, hash=False)
    problem_samples: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    """The field chains the import used."""
    since: str | None = None
    until: str | None = None
    path: str = ""
    """Where the profile was loaded from (for messages; not written)."""

    @property
    def requests(self) -> int:
        """Requests counted on some route."""
        return sum(r.requests for r in self.routes.values())

    def arms(self) -> dict[str, int]:
        """Requests per arm over all routes."""
        total: Counter[str] = Counter()
        for route in self.routes.values():
            total.update(route.arms)
        return dict(total)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PROFILE_FORMAT, "requests": self.requests, "first": self.first, "last": self.last,
            "since": self.since, "until": self.until, "untimed": self.untimed, "outside_window": self.outside_window,
            "problems": {"total": self.problems, "uncounted": self.uncounted, "kinds": dict(self.problem_kinds),
                         "samples": list(self.problem_samples)},
            "sources": [s.__dict__ for s in self.sources],
            "fields": {k: list(v) for k, v in self.fields.items()},
            "routes": {name: r.to_dict() for name, r in sorted(self.routes.items(), key=lambda kv: -kv[1].requests)},
            "hours": {hour: dict(sorted(counts.items())) for hour, counts in sorted(self.hours.items())},
        }


def save_profile(profile: TrafficProfile, path: str | os.PathLike[str]) -> None:
    """Writes a profile atomically as JSON."""
    write_atomic(Path(path), json.dumps(profile.to_dict(), indent=1, ensure_ascii=False) + "\n")


def load_profile(path: str | os.PathLike[str]) -> TrafficProfile:
    """Reads a profile (checked against ``schemas/traffic.schema.json``); a foreign, corrupt or empty one is
    one :class:`TrafficError` line."""
    shown = str(path)
    data = read_versioned(Path(path), PROFILE_FORMAT, TrafficError,
                          "traffic profile not found (write one with: evalkit traffic import)", schema="traffic")

    def seen(values: Mapping[str, Any]) -> dict[str, Seen]:
        return {name: Seen(v["requests"], v.get("first"), v.get("last")) for name, v in values.items()}

    routes = {
        name: RouteTraffic(item["requests"], item.get("first"), item.get("last"), dict(item.get("arms", {})),
                           seen(item.get("models", {})), dict(item.get("errors", {})), seen(item.get("prompts", {})))
        for name, item in data["routes"].items()
    }
    if not any(r.requests for r in routes.values()):
        raise TrafficError(f"{shown}: routes: expected requests on at least one route, got none "
                           "(an empty profile: check the import's route field)")
    problems = data.get("problems", {})
    return TrafficProfile(
        routes=routes, hours={hour: dict(counts) for hour, counts in data.get("hours", {}).items()},
        first=data.get("first"), last=data.get("last"), untimed=data.get("untimed", 0),
        outside_window=data.get("outside_window", 0), problems=problems.get("total", 0),
        uncounted=problems.get("uncounted", 0), problem_kinds=dict(problems.get("kinds", {})),
        problem_samples=tuple(problems.get("samples", ())),
        sources=tuple(Source(s["file"], s["format"], s.get("lines", 0), s.get("records", 0), s.get("skipped", 0),
                             s.get("problems", 0)) for s in data.get("sources", [])),
        fields={k: tuple(v) for k, v in data.get("fields", {}).items()},
        since=data.get("since"), until=data.get("until"), path=shown,
    )


# --- timestamps ------------------------------------------------------------------------------------------


def to_epoch(value: Any) -> float:
    """Seconds since the epoch from ISO 8601 text or a Unix number in s, ms, µs or ns (told by magnitude).

    A timestamp without a zone is taken as UTC.
    """
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, str):
        text = value.strip()
        if text[4:5] == "-" or not text.replace(".", "", 1).isdigit():  # 2025-03-03…, not 1741000000[.5]
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
        value = float(text)
    if isinstance(value, int | float):
        number = float(value)
        magnitude = abs(number)
        if magnitude >= 1e17:
            return number / 1e9
        if magnitude >= 1e14:
            return number / 1e6
        if magnitude >= 1e11:
            return number / 1e3
        return number
    raise ValueError(value)


def iso(seconds: float | None) -> str | None:
    """``2025-03-03T14:22:05Z`` (UTC, whole seconds)."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hour_key(hour: int) -> str:
    """The hour ``hour`` hours after the epoch, as ``2025-03-03T14:00Z``."""
    return datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y-%m-%dT%H:00Z")


# --- import ----------------------------------------------------------------------------------------------


class _Aggregate:
    """Counters keyed by (route, value); the only state an import keeps, whatever the number of lines."""

    def __init__(self, max_distinct: int) -> None:
        self.max_distinct = max_distinct
        self.requests: Counter[str] = Counter()
        self.cells: Counter[tuple[str, int]] = Counter()
        self.span: dict[str, list[float]] = {}
        self.arms: Counter[tuple[str, str]] = Counter()
        self.errors: Counter[tuple[str, str]] = Counter()
        self.models: dict[tuple[str, str], list[float]] = {}
        self.prompts: dict[tuple[str, str], list[float]] = {}
        self.distinct: dict[str, set[str]] = {name: set() for name in FIELDS}
        self.capped: set[str] = set()
        self.untimed = 0
        self.outside = 0
        self.problems = 0
        self.uncounted = 0
        self.kinds: Counter[str] = Counter()
        self.samples: list[str] = []

    def problem(self, where: str, kind: str, detail: str, counted: bool) -> None:
        self.problems += 1
        self.uncounted += not counted
        self.kinds[kind] += 1
        if len(self.samples) < PROBLEM_SAMPLES:
            self.samples.append(f"{where}: {detail}")

    def bounded(self, name: str, value: str, shown: str, line: int, record: Record) -> str:
        """``value``, or :data:`OTHER` once ``name`` has ``max_distinct`` values (reported once, where it happens)."""
        seen = self.distinct[name]
        if value in seen:
            return value
        if len(seen) >= self.max_distinct:
            if name not in self.capped:
                self.capped.add(name)
                self.problem(_where(shown, line, record), "too_many_values", f"{name}: expected at most "
                             f"{self.max_distinct:,} distinct values, got more; further ones are counted as {OTHER!r}",
                             True)
            return OTHER
        seen.add(value)
        return value

    def add(self, route: str, when: float | None, arm: str | None, model: str | None, error: str | None,
            prompt: str | None) -> None:
        self.requests[route] += 1
        if when is None:
            self.untimed += 1
        else:
            self.cells[route, int(when // 3600)] += 1
            span = self.span.get(route)
            if span is None:
                self.span[route] = [when, when]
            elif when < span[0]:
                span[0] = when
            elif when > span[1]:
                span[1] = when
        if arm is not None:
            self.arms[route, arm] += 1
        if error is not None:
            self.errors[route, error] += 1
        for value, table in ((model, self.models), (prompt, self.prompts)):
            if value is None:
                continue
            entry = table.get((route, value))
            if entry is None:
                table[route, value] = [1, when if when is not None else -1.0, when if when is not None else -1.0]
                continue
            entry[0] += 1
            if when is not None:
                if entry[1] < 0 or when < entry[1]:
                    entry[1] = when
                if when > entry[2]:
                    entry[2] = when

    def routes(self) -> dict[str, RouteTraffic]:
        def seen(table: Mapping[tuple[str, str], list[float]], route: str) -> dict[str, Seen]:
            items = sorted(((v, e) for (r, v), e in table.items() if r == route), key=lambda kv: -kv[1][0])
            return {v: Seen(int(e[0]), iso(e[1]) if e[1] >= 0 else None, iso(e[2]) if e[2] >= 0 else None)
                    for v, e in items}

        def counts(table: Counter[tuple[str, str]], route: str) -> dict[str, int]:
            return dict(sorted(((v, c) for (r, v), c in table.items() if r == route), key=lambda kv: -kv[1]))

        out = {}
        for route, requests in self.requests.most_common():
            span = self.span.get(route)
            out[route] = RouteTraffic(requests, iso(span[0]) if span else None, iso(span[1]) if span else None,
                                      counts(self.arms, route), seen(self.models, route), counts(self.errors, route),
                                      seen(self.prompts, route))
        return out

    def hours(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for (route, hour), count in sorted(self.cells.items(), key=lambda kv: kv[0][1]):
            table.setdefault(hour_key(hour), {})[route] = count
        return table


def _scalar(value: Any) -> str | None:
    """A field value as text, or None when it is not a string or number (the caller reports it)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return None


def _chains(log_format: str, route_field: str | None,
            fields: Mapping[str, str] | None) -> dict[str, tuple[FieldPath, ...]]:
    chains = {name: tuple(FieldPath(p) for p in paths) for name, paths in FORMATS[log_format].items()}
    for name, spec in {**(fields or {}), **({"route": route_field} if route_field else {})}.items():
        if name not in FIELDS:
            raise TrafficError(f"--field: expected one of {', '.join(FIELDS)}, got {name!r}")
        chains[name] = tuple(FieldPath(p.strip()) for p in spec.split(",") if p.strip())
    return chains


def _reader(path: Path, log_format: str, chains: Mapping[str, tuple[FieldPath, ...]]) -> Any:
    if log_format == "otel":
        inherit = [p.spec for name in ("route", "arm") for p in chains[name]]
        return SpanReader(path, inherit)
    if log_format == "csv" or (log_format in ("langfuse", "litellm") and data_suffix(path) == ".csv"):
        return CsvReader(path)
    return JsonReader(path, unwrap="data")  # a Langfuse or LiteLLM API page holds its records under "data"


def import_traffic(files: Sequence[str | os.PathLike[str]], log_format: str, *, route_field: str | None = None,
                   fields: Mapping[str, str] | None = None, since: str | None = None, until: str | None = None,
                   max_distinct: int = MAX_DISTINCT) -> TrafficProfile:
    """Streams log files into a :class:`TrafficProfile`.

    ``route_field`` (and ``fields`` for arm, model, error, prompt, time) replaces the format's default chain
    with one path or a comma-separated chain. ``since``/``until`` keep requests in [since, until).
    Raises :class:`TrafficError` only when a file cannot be opened or nothing at all could be counted.
    """
    if log_format not in FORMATS:
        raise TrafficError(f"--from: expected one of {', '.join(FORMATS)}, got {log_format!r}")
    chains = _chains(log_format, route_field, fields)
    low = _bound(since, "--since")
    high = _bound(until, "--until")
    aggregate = _Aggregate(max_distinct)
    sources = []
    for name in files:
        path = Path(name)
        shown = str(name)
        if not path.is_file():
            got = "a directory" if path.is_dir() else "nothing there"
            raise TrafficError(f"{shown}: expected a log file, got {got}")
        before = (sum(aggregate.requests.values()), aggregate.problems)
        reader = _reader(path, log_format, chains)
        try:
            _consume(reader, shown, log_format, chains, aggregate, low, high)
        except OSError as exc:  # a gzip file that is not gzip, a read error
            aggregate.problem(shown, "unreadable", f"expected a readable {log_format} file, got {exc}", False)
        sources.append(Source(shown, log_format, int(getattr(reader, "lines", 0)),
                              sum(aggregate.requests.values()) - before[0], int(getattr(reader, "skipped", 0)),
                              aggregate.problems - before[1]))
    routes = aggregate.routes()
    if not routes:
        first = f" (first problem: {aggregate.samples[0]})" if aggregate.samples else ""
        window = " in the --since/--until window" if aggregate.outside else ""
        lines = sum(s.lines for s in sources)
        raise TrafficError(f"{', '.join(str(f) for f in files)}: expected {log_format} records with a route"
                           f"{window}, got none from {lines:,} line{'s' if lines != 1 else ''}"
                           f" ({aggregate.problems:,} problem{'s' if aggregate.problems != 1 else ''}){first}")
    spans = list(aggregate.span.values())
    return TrafficProfile(
        routes=routes, hours=aggregate.hours(),
        first=iso(min(s[0] for s in spans)) if spans else None, last=iso(max(s[1] for s in spans)) if spans else None,
        untimed=aggregate.untimed, outside_window=aggregate.outside, problems=aggregate.problems,
        uncounted=aggregate.uncounted, problem_kinds=dict(aggregate.kinds), problem_samples=tuple(aggregate.samples),
        sources=tuple(sources), fields={k: tuple(p.spec for p in v) for k, v in chains.items()},
        since=iso(low), until=iso(high),
    )


def _bound(value: str | None, option: str) -> float | None:
    if value is None:
        return None
    try:
        return to_epoch(value)
    except ValueError:
        raise TrafficError(f"{option}: expected an ISO 8601 time such as 2025-03-10 or 2025-03-10T00:00Z, "
                           f"got {value!r}") from None


def _consume(reader: Iterable[tuple[int, Record | Problem]], shown: str, log_format: str,
             chains: Mapping[str, tuple[FieldPath, ...]], aggregate: _Aggregate, low: float | None,
             high: float | None) -> None:
    route_of, time_of = FieldChain(chains["route"]), FieldChain(chains["time"])
    optional = [(name, FieldChain(chains[name])) for name in ("arm", "model", "error", "prompt")]
    windowed = low is not None or high is not None
    add, bounded = aggregate.add, aggregate.bounded
    for line, record in reader:
        if type(record) is not dict:
            where = f"{shown}:{line}" if line else shown
            if isinstance(record, Problem):
                aggregate.problem(where, record.kind, record.detail, False)
            else:
                aggregate.problem(where, "not_an_object", f"expected a {log_format} record (a JSON object), "
                                  f"got {_describe(record)}", False)
            continue
        raw = route_of(record)
        route = raw.strip() if type(raw) is str else _scalar(raw)
        if not route or len(route) > MAX_VALUE_CHARS:
            got = ("nothing" if raw is None or raw == "" else f"{len(route):,} characters (prompt text?)"
                   if route else _describe(raw))
            aggregate.problem(_where(shown, line, record), "missing_route" if raw is None or raw == "" else
                              "bad_route", f"route: expected a route name at {route_of.source(record)}, got {got}",
                              False)
            continue
        when = None
        raw_time = time_of(record)
        if raw_time is not None:
            try:
                when = to_epoch(raw_time)
            except (ValueError, OverflowError, OSError):
                aggregate.problem(_where(shown, line, record), "bad_time", f"{time_of.source(record)}: expected an "
                                  f"ISO 8601 time or a Unix timestamp, got {_describe(raw_time)}", not windowed)
        if windowed:
            if when is None:
                if raw_time is None:
                    aggregate.problem(_where(shown, line, record), "untimed", f"time: expected a timestamp at "
                                      f"{time_of.source(record)} to place the record in the window, got nothing",
                                      False)
                continue
            if (low is not None and when < low) or (high is not None and when >= high):
                aggregate.outside += 1
                continue
        values: list[str | None] = []
        for name, chain in optional:
            raw_value = chain(record)
            if raw_value is None:
                values.append(None)
                continue
            value = raw_value.strip() if type(raw_value) is str else _scalar(raw_value)
            if value is None or len(value) > MAX_VALUE_CHARS:
                got = f"{len(value):,} characters" if value else _describe(raw_value)
                aggregate.problem(_where(shown, line, record), f"bad_{name}", f"{chain.source(record)}: expected a "
                                  f"short {name} name, got {got}; counted without it", True)
                value = None
            values.append(bounded(name, value, shown, line, record) if value else None)
        add(bounded("route", route, shown, line, record), when, *values)


def _where(shown: str, line: int, record: Record) -> str:
    where = f"{shown}:{line}" if line else shown
    span = record.get("span.where")
    return f"{where}: {span}" if span else where
