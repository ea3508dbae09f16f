"""Versioned artifacts on disk: written atomically, read back only in a format version evalkit knows."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError


def write_atomic(path: Path, text: str) -> None:
    """Writes a file so that readers see the old or the new content, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, "utf-8")
    os.replace(temporary, path)


def record_problem(data: Any, schema_name: str) -> str | None:
    """``field: expected …, got …`` when a persisted record breaks its packaged schema, else None."""
    from evalkit import schema

    found = schema.problem(data, schema_name)
    if found is None:
        return None
    path, text = found
    return f"{schema.format_path(path)}: {text}"


def read_versioned(path: Path, expected: str | Sequence[str], error: type[EvalkitError], missing: str,
                   where: str | None = None, schema: str | None = None) -> dict[str, Any]:
    """A JSON object whose ``format`` is ``expected`` (or one of several); anything else is one ``error`` line.

    ``missing`` is the message for a file that does not exist; ``where`` names it (default: the path). With
    ``schema``, the record is validated against that packaged schema (fields it does not name are allowed:
    a newer evalkit may add some).
    """
    accepted = (expected,) if isinstance(expected, str) else tuple(expected)
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise error(f"{where or path}: {missing}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read ({exc})") from None
    if not isinstance(data, dict) or data.get("format") not in accepted:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise error(f"{path}: format: expected {accepted[-1]!r}, got {got!r} (written by another evalkit version?)")
    if schema is not None:
        problem = record_problem(data, schema)
        if problem is not None:
            raise error(f"{path}: {problem}")
    return data
