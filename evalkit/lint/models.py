"""Known model ids: floating aliases and deprecated or retired snapshots (``evalkit/data/models.yaml``)."""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from evalkit.errors import ConfigError


@dataclass(frozen=True)
class ModelCatalog:
    aliases: frozenset[str]
    suffixes: tuple[str, ...]
    status: dict[str, tuple[str, dt.date | None]]
    """id → (deprecated | retired, date)."""
    pattern: re.Pattern[str]
    hints: tuple[str, ...]
    """Cheap prefilter (substring tests): the first characters of every known id, and the floating suffixes."""


def _read(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != "evalkit.models/1":
        raise ConfigError(f"{source}: format: expected 'evalkit.models/1', got "
                          f"{data.get('format') if isinstance(data, dict) else type(data).__name__!r}")
    return data


@functools.cache
def load_catalog(extra: str | None = None) -> ModelCatalog:
    """The packaged catalog, extended (and overridden per id) by a user file."""
    sources = [(resources.files("evalkit.data").joinpath("models.yaml").read_text("utf-8"), "evalkit/data/models.yaml")]
    if extra:
        try:
            sources.append((Path(extra).read_text("utf-8"), extra))
        except OSError as exc:
            raise ConfigError(f"lint.model_ids: cannot read {extra!r} ({exc.strerror})") from None
    aliases: set[str] = set()
    suffixes: list[str] = []
    status: dict[str, tuple[str, dt.date | None]] = {}
    for text, source in sources:
        data = _read(text, source)
        floating = data.get("floating", {})
        aliases.update(floating.get("aliases", []))
        suffixes.extend(s for s in floating.get("suffixes", []) if s not in suffixes)
        for entry in data.get("models", []):
            date = entry.get("date")
            status[str(entry["id"])] = (str(entry["status"]), date if isinstance(date, dt.date) else None)
    names = sorted({*aliases, *status}, key=len, reverse=True)
    alternatives = "|".join(re.escape(n) for n in names)
    suffix = "|".join(re.escape(s) for s in suffixes)
    pattern = re.compile(
        rf"(?<![\w.-])(?:(?P<known>{alternatives})|(?P<floating>[a-z][\w.-]*?(?:{suffix})))(?![\w.-])"
        if suffix else rf"(?<![\w.-])(?P<known>{alternatives})(?![\w.-])"
    )
    # Six characters tell the ids apart from English ("text-d", not "text"); shorter ids are used whole.
    stems = tuple(sorted({n[:6] for n in names} | set(suffixes)))
    return ModelCatalog(frozenset(aliases), tuple(suffixes), status, pattern, stems)


def describe(catalog: ModelCatalog, name: str, today: dt.date) -> tuple[str, str] | None:
    """(severity, message) for a model id found in text, or None when it is fine."""
    if name in catalog.status:
        state, date = catalog.status[name]
        if state == "retired" or (date is not None and date <= today):
            when = f" on {date.isoformat()}" if date else ""
            return "error", f"model {name!r} was retired{when}; calls to it fail"
        when = f" (retires {date.isoformat()})" if date else ""
        return "warning", f"model {name!r} is deprecated{when}; move to a current snapshot"
    if name in catalog.aliases or name.endswith(catalog.suffixes):
        return "warning", (f"floating model alias {name!r} moves to new snapshots without notice, so scores change "
                           "currency; pin a dated snapshot")
    return None
