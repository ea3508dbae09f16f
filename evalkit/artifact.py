"""Versioned artifacts on disk: written atomically, read back only in a format version evalkit knows."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError


def write_atomic(path: Path, text: str) -> None:
    """Writes a file so that readers see the old or the new content, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, "utf-8")
    os.replace(temporary, path)


def read_versioned(path: Path, expected: str, error: type[EvalkitError], missing: str,
                   where: str | None = None) -> dict[str, Any]:
    """A JSON object whose ``format`` is ``expected``; anything else is one ``error`` line.

    ``missing`` is the message for a file that does not exist; ``where`` names it (default: the path).
    """
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise error(f"{where or path}: {missing}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != expected:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise error(f"{path}: format: expected {expected!r}, got {got!r} (written by another evalkit version?)")
    return data
