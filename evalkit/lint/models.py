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
    bare: tuple[str, ...] = ()
    """Catalogued ids without a digit (``sonar``): the digit prefilter cannot rule them out."""


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
    families: list[str] = []
    status: dict[str, tuple[str, dt.date | None]] = {}
    for text, source in sources:
        data = _read(text, source)
        floating = data.get("floating", {})
        aliases.update(floating.get("aliases", []))
        suffixes.extend(s for s in floating.get("suffixes", []) if s not in suffixes)
        families.extend(f for f in floating.get("families", []) if f not in families)
        for entry in data.get("models", []):
            date = entry.get("date")
            status[str(entry["id"])] = (str(entry["status"]), date if isinstance(date, dt.date) else None)
    names = sorted({*aliases, *status}, key=len, reverse=True)
    alternatives = "|".join(re.escape(n) for n in names)
    suffix = "|".join(re.escape(s) for s in suffixes)
    # A floating suffix counts only on a model family's name: `ubuntu-latest` is a CI runner, not a model.
    family = "|".join(re.escape(f) for f in sorted(families, key=len, reverse=True)) or r"(?!)"
    # An id ends where a word ends; a full stop after it ends a sentence ("powered by gpt-4.1.").
    end = r"(?![\w-]|\.[\w])"
    pattern = re.compile(
        rf"(?<![\w.-])(?:(?P<floating>(?:{family})[\w.-]*?(?:{suffix}))|(?P<known>{alternatives})){end}"
        if suffix else rf"(?<![\w.-])(?P<known>{alternatives}){end}"
    )
    # Six characters tell the ids apart from English ("text-d", not "text"); shorter ids are used whole.
    stems = tuple(sorted({n[:6] for n in names} | set(suffixes)))
    bare = tuple(sorted(n for n in names if not any(c.isdigit() for c in n)))
    return ModelCatalog(frozenset(aliases), tuple(suffixes), status, pattern, stems, bare)


def describe(catalog: ModelCatalog, name: str, today: dt.date, called: bool = True) -> tuple[str, str] | None:
    """(severity, message) for a model id found in text, or None when it is fine.

    ``called``: the id is the value of a model setting (``model: gpt-4o``). An id only mentioned in text (a
    heading, a sentence) calls nothing: a retired or deprecated one is a note, a floating alias is fine.
    """
    if name in catalog.status:
        state, date = catalog.status[name]
        retired = state == "retired" or (date is not None and date <= today)
        if retired and called:
            when = f" on {date.isoformat()}" if date else ""
            return "error", f"model {name!r} was retired{when}; calls to it fail"
        if retired:
            when = f" on {date.isoformat()}" if date else ""
            return "note", f"the text mentions model {name!r}, retired{when}; a model setting naming it fails"
        when = f" (retires {date.isoformat()})" if date else ""
        if called:
            return "warning", f"model {name!r} is deprecated{when}; move to a current snapshot"
        return "note", f"the text mentions model {name!r}, deprecated{when}"
    if called and (name in catalog.aliases or name.endswith(catalog.suffixes)):
        return "warning", (f"floating model alias {name!r} moves to new snapshots without notice, so scores change "
                           "currency; pin a dated snapshot")
    return None
