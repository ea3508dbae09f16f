"""Production log readers: CSV, JSON Lines, JSON arrays and OTLP JSON spans, streamed record by record.

Each reader yields ``(line, record)`` where a record is a flat-ish mapping that field paths look into, or
``(line, Problem)`` for a line that cannot be read (invalid JSON, a truncated last line, a CSV row with the
wrong number of columns). Nothing is dropped silently: a problem is yielded where it happens and the
reader carries on with the next line. Files ending in ``.gz`` are decompressed on the fly.

Memory stays bounded for line-oriented files (CSV, JSON Lines, the OpenTelemetry collector's file
exporter, which writes one OTLP request per line) and for a top-level JSON array (read element by element);
only a single JSON object document (a Langfuse API page, one OTLP request pretty-printed) is read whole.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple, cast

from evalkit.schema import describe as _describe

INFERENCE_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
"""``gen_ai.operation.name`` values that are one model request each (OpenTelemetry GenAI conventions)."""
ARRAY_CHUNK = 1 << 20
ARRAY_ELEMENT_LIMIT = 64 << 20
"""Bytes one array element may take before it is reported as unreadable rather than read further."""


class Problem(NamedTuple):
    """One line that could not be counted: where, what kind, and the ``field: expected …, got …`` detail."""

    line: int
    kind: str
    """``invalid_json``, ``not_an_object``, ``truncated``, ``columns``, ``encoding``, ``missing_route`` …"""
    detail: str


Record = Mapping[str, Any]
Item = tuple[int, "Record | Problem"]


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def data_suffix(path: Path) -> str:
    """The suffix that says what a file holds, ``.gz`` skipped (``spans.jsonl.gz`` → ``.jsonl``)."""
    return Path(path.stem).suffix.lower() if path.suffix == ".gz" else path.suffix.lower()


# --- field paths ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldPath:
    """Where a value sits in a record: ``route``, ``metadata.route``, ``gen_ai.agent.name``, ``tags[route:]``.

    A key that exists as written (attribute names contain dots) wins over a dotted walk. A step ending in
    ``[prefix]`` picks the first string (of a list, or the value itself) that starts with ``prefix``, without
    the prefix unless nothing would remain: ``tags[route:]`` turns ``route:billing`` into ``billing``, and
    ``status[failure]`` keeps ``failure``. A JSON object held as a string (a CSV cell, Langfuse metadata) is
    parsed on the way.
    """

    spec: str

    def get(self, record: Record) -> Any:
        value = record.get(self.spec)
        if value is not None:
            return value
        current: Any = record
        for step in self.spec.split("."):
            prefix = None
            if step.endswith("]") and "[" in step:
                step, _, prefix = step[:-1].partition("[")
            if isinstance(current, str) and current.startswith("{"):
                try:
                    current = json.loads(current)
                except json.JSONDecodeError:
                    return None
            if not isinstance(current, dict):
                return None
            current = current.get(step)
            if prefix is not None:
                if isinstance(current, str):
                    current = [current]
                if not isinstance(current, list):
                    return None
                current = next((t[len(prefix):] or t for t in current if isinstance(t, str) and t.startswith(prefix)),
                               None)
            if current is None:
                return None
        return current


class FieldChain:
    """Paths tried in turn; calling it returns the first non-empty value (the import's hot path)."""

    def __init__(self, paths: Sequence[FieldPath]) -> None:
        self.paths = tuple(paths)
        # (key as written, the first step of a walk or None for a plain key, the path)
        self._plan = tuple((p.spec, None if "." not in p.spec and "[" not in p.spec
                            else p.spec.split(".")[0].partition("[")[0], p) for p in self.paths)

    def __call__(self, record: Record) -> Any:
        for spec, head, path in self._plan:
            value = record.get(spec)
            if value is None and head is not None and head in record:  # walk only when the walk can start
                value = path.get(record)
            if value is not None and value != "":
                return value
        return None

    def source(self, record: Record) -> str:
        """The path the value came from (for messages), or the whole chain when none holds one."""
        for path in self.paths:
            value = path.get(record)
            if value is not None and value != "":
                return path.spec
        return ", ".join(p.spec for p in self.paths)


# --- JSON: lines, arrays, documents ----------------------------------------------------------------------


class JsonReader:
    """JSON Lines, one top-level JSON array, or one JSON document, told apart by how the file starts.

    With ``unwrap`` (e.g. ``data``), an object holding a list under that key is a page of records (a Langfuse
    or LiteLLM API response) and yields its items; a top-level list yields its items too.
    """

    def __init__(self, path: Path, unwrap: str | None = None) -> None:
        self.path = path
        self.unwrap = unwrap
        self.lines = 0
        """Lines read (for JSON Lines) or in the file (arrays, documents)."""

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        with _open(self.path) as handle:
            first = handle.readline()
            start = first.lstrip()[:1]
            single = False
            if start in (b"{", b"["):
                try:
                    json.loads(first)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    single = True
            if single and start == b"[":
                yield from self._array(handle, first)
            elif single:
                yield from self._document(handle, first)
            else:
                yield from self._lines(handle, first)

    def _lines(self, handle: IO[bytes], first: bytes) -> Iterator[tuple[int, Any]]:
        number = 0
        decode = json.JSONDecoder().decode
        for number, raw in enumerate(itertools.chain((first,) if first else (), handle), start=1):
            try:
                value = decode(raw.decode("utf-8"))
            except UnicodeDecodeError:
                yield number, Problem(number, "encoding", "expected UTF-8 text, got undecodable bytes")
                continue
            except json.JSONDecodeError as exc:
                if not raw.strip():
                    continue
                if not raw.endswith(b"\n"):
                    yield number, Problem(number, "truncated", f"expected a complete JSON record, got a "
                                                               f"truncated last line ({len(raw)} bytes)")
                else:
                    yield number, Problem(number, "invalid_json",
                                          f"expected a JSON record, got invalid JSON ({exc.msg} at column {exc.colno})")
                continue
            if type(value) is dict and (self.unwrap is None or self.unwrap not in value):
                yield number, value
            else:
                yield from self._unwrapped(number, value)
        self.lines = number

    def _unwrapped(self, number: int, value: Any) -> Iterator[tuple[int, Any]]:
        items: Sequence[Any] = [value]
        if isinstance(value, list):
            items = value
        elif self.unwrap is not None and isinstance(value, dict) and isinstance(value.get(self.unwrap), list):
            items = value[self.unwrap]
        for item in items:
            yield number, item

    def _document(self, handle: IO[bytes], first: bytes) -> Iterator[tuple[int, Any]]:
        data = first + handle.read()
        self.lines = data.count(b"\n") + (not data.endswith(b"\n"))
        try:
            value = json.loads(data)
        except UnicodeDecodeError:
            yield 1, Problem(1, "encoding", "expected UTF-8 text, got undecodable bytes")
            return
        except json.JSONDecodeError as exc:
            if exc.pos >= len(data.rstrip()) - 1:
                yield exc.lineno, Problem(exc.lineno, "truncated",
                                          f"expected a complete JSON document, got one cut off ({exc.msg})")
                return
            # Not one document after all: read it line by line so that every good line still counts.
            yield from self._lines(io.BytesIO(data), b"")
            return
        yield from self._unwrapped(1, value)

    def _array(self, handle: IO[bytes], first: bytes) -> Iterator[tuple[int, Any]]:
        decoder = json.JSONDecoder()
        text = io.TextIOWrapper(io.BufferedReader(_Prefixed(first, handle)), encoding="utf-8", errors="strict")
        self._line = 1

        def read() -> str:
            try:
                return text.read(ARRAY_CHUNK)
            except UnicodeDecodeError:
                raise _Undecodable(self._line) from None

        try:
            yield from self._elements(decoder, read)
        except _Undecodable as exc:
            yield exc.line, Problem(exc.line, "encoding", "expected UTF-8 text, got undecodable bytes; the rest of "
                                                          "the file is not read")

    def _elements(self, decoder: json.JSONDecoder, read: Callable[[], str]) -> Iterator[tuple[int, Any]]:
        buffer = read()
        position = buffer.index("[") + 1
        line = self._line = 1 + buffer.count("\n", 0, position)
        eof = False
        while True:
            while True:  # skip blanks and commas between elements
                while position < len(buffer) and buffer[position] in " \t\r\n,":
                    if buffer[position] == "\n":
                        line += 1
                    position += 1
                if position < len(buffer) or eof:
                    break
                buffer, position = buffer[position:] + read(), 0
                eof = len(buffer) == 0
            if position >= len(buffer):
                yield line, Problem(line, "truncated", "expected ']' closing the JSON array, got the end of the file")
                break
            if buffer[position] == "]":
                break
            try:
                value, end = decoder.raw_decode(buffer, position)
            except json.JSONDecodeError as exc:
                if not eof and len(buffer) - position < ARRAY_ELEMENT_LIMIT:
                    more = read()
                    eof = not more
                    buffer, position = buffer[position:] + more, 0
                    continue
                kind = "truncated" if eof else "invalid_json"
                got = "the end of the file" if eof else f"invalid JSON ({exc.msg})"
                yield line, Problem(line, kind, f"expected a complete array element, got {got}")
                break
            yield line, value
            line += buffer.count("\n", position, end)
            self._line = line
            position = end
        self.lines = line


class _Undecodable(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _Prefixed(io.RawIOBase):
    """A binary stream that replays bytes already read before the rest of the handle."""

    def __init__(self, head: bytes, handle: IO[bytes]) -> None:
        self._head = head
        self._handle = handle

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


# --- CSV -----------------------------------------------------------------------------------------------


class CsvReader:
    """A CSV file with a header row; each row becomes ``{column: cell}``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = 0
        self.columns: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[Item]:
        with _open(self.path) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")
            reader = csv.reader(text, strict=True)
            try:
                header = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                yield 1, Problem(1, "columns", f"expected a CSV header row, got an unreadable line ({exc})")
                return
            self.columns = tuple(h.strip() for h in header)
            width = len(self.columns)
            previous = reader.line_num
            short: Problem | None = None  # a short row is "truncated" when it turns out to be the last one
            while True:
                start = previous + 1
                try:
                    row = next(reader)
                except StopIteration:
                    if short is not None:
                        yield short.line, short._replace(
                            kind="truncated", detail=f"{short.detail} on the last line (a truncated file?)")
                    break
                except UnicodeDecodeError:
                    row = None
                    problem = Problem(start, "encoding", "expected UTF-8 text, got undecodable bytes; the rest of "
                                                         "the file is not read")
                except csv.Error as exc:
                    row = None
                    problem = (Problem(start, "truncated", "expected a closing quote, got the end of the file "
                                                           "(a truncated file?)") if "end of data" in str(exc)
                               else Problem(start, "columns", f"expected a CSV row, got {exc}"))
                if short is not None:
                    yield short.line, short
                    short = None
                previous = reader.line_num
                if row is None:
                    yield start, problem
                    if problem.kind == "columns":
                        continue
                    break
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != width:
                    short = Problem(start, "columns", f"expected {width} columns, got {len(row)}")
                    continue
                yield start, dict(zip(self.columns, row, strict=True))
            self.lines = previous


# --- OpenTelemetry (OTLP JSON) ------------------------------------------------------------------------------


def otlp_value(value: Any) -> Any:
    """An OTLP ``AnyValue`` (``{"stringValue": "x"}``, ``{"intValue": "3"}`` …) as a plain value."""
    if not isinstance(value, Mapping):
        return value
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError):
            return value["intValue"]
    if "arrayValue" in value:
        return [otlp_value(v) for v in value["arrayValue"].get("values", [])]
    return None


def otlp_attributes(items: Any) -> dict[str, Any]:
    """An OTLP attribute list (``[{"key": k, "value": {...}}]``) as a dict."""
    out: dict[str, Any] = {}
    if isinstance(items, list):
        for item in items:
            if isinstance(item, Mapping) and isinstance(item.get("key"), str):
                out[item["key"]] = otlp_value(item.get("value"))
    return out


class SpanReader:
    """OTLP JSON trace exports (``{"resourceSpans": [...]}`` per line, or one document): one record per
    model request span.

    A request is a span whose ``gen_ai.operation.name`` is an inference operation (chat, text_completion,
    generate_content); other spans (workflows, agents, tools, HTTP) are counted in :attr:`skipped`. A request
    span's record holds its resource's attributes, then the ``inherit`` attributes of its ancestors in the
    same export batch (a route set on a workflow span reaches the model calls under it), then its own, plus
    ``span.name``, ``span.start`` (Unix nanoseconds) and ``span.status`` (``error`` when the status is ERROR).
    """

    def __init__(self, path: Path, inherit: Sequence[str] = ()) -> None:
        self.path = path
        self.inherit = tuple(inherit)
        self.skipped = 0
        self._json = JsonReader(path)

    @property
    def lines(self) -> int:
        return self._json.lines

    def __iter__(self) -> Iterator[Item]:
        for line, document in self._json:
            if isinstance(document, Problem):
                yield line, document
                continue
            if not isinstance(document, Mapping) or not isinstance(document.get("resourceSpans"), list):
                got = "an object without resourceSpans" if isinstance(document, Mapping) else _describe(document)
                yield line, Problem(line, "not_otlp", f"resourceSpans: expected an OTLP JSON trace export, got {got}")
                continue
            yield from self._batch(line, document["resourceSpans"])

    def _batch(self, line: int, resource_spans: list[Any]) -> Iterator[Item]:
        spans: list[tuple[str, Mapping[str, Any], dict[str, Any], dict[str, Any]]] = []
        context: dict[str, tuple[str, dict[str, Any]]] = {}
        for r, resource_span in enumerate(resource_spans):
            if not isinstance(resource_span, Mapping):
                yield line, Problem(line, "not_otlp", f"resourceSpans[{r}]: expected an object, got "
                                                      f"{_describe(resource_span)}")
                continue
            resource = otlp_attributes((resource_span.get("resource") or {}).get("attributes"))
            for s, scope_span in enumerate(resource_span.get("scopeSpans") or resource_span.get(
                    "instrumentationLibrarySpans") or []):
                for k, span in enumerate((scope_span or {}).get("spans") or []):
                    where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{k}]"
                    if not isinstance(span, Mapping):
                        yield line, Problem(line, "not_otlp", f"{where}: expected a span object, got {_describe(span)}")
                        continue
                    attributes = otlp_attributes(span.get("attributes"))
                    span_id = str(span.get("spanId") or "")
                    if span_id:
                        kept = {key: attributes[key] for key in self.inherit if key in attributes}
                        context[span_id] = (str(span.get("parentSpanId") or ""), kept)
                    spans.append((where, span, attributes, resource))
        for where, span, attributes, resource in spans:
            if attributes.get("gen_ai.operation.name") not in INFERENCE_OPERATIONS:
                self.skipped += 1
                continue
            record: dict[str, Any] = dict(resource)
            for ancestor in self._ancestors(str(span.get("parentSpanId") or ""), context):
                record.update(ancestor)
            record.update(attributes)
            status = span.get("status") or {}
            code = status.get("code") if isinstance(status, Mapping) else None
            record["span.name"] = span.get("name")
            record["span.start"] = span.get("startTimeUnixNano")
            record["span.status"] = "error" if code in (2, "STATUS_CODE_ERROR") else None
            record["span.where"] = where
            yield line, record

    @staticmethod
    def _ancestors(parent: str, context: Mapping[str, tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        chain: list[dict[str, Any]] = []
        seen: set[str] = set()
        while parent and parent in context and parent not in seen and len(chain) < 64:
            seen.add(parent)
            parent, kept = context[parent]
            chain.append(kept)
        return chain[::-1]  # root first, so nearer ancestors override
