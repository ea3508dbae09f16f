"""Anchor sets: human-labelled outputs a judge is calibrated against (``judges/<name>/anchors.jsonl``).

One JSON object per line: ``{id, vars, output (or output_a/output_b), human_label, raters?, split, tags?,
reference?, note?}``. ``split`` is ``dev`` (where the rubric was tuned), ``test`` (held out) or ``canary``
(the slice re-judged inside every run). ``raters`` maps a rater's name to their label on a double-coded
item: the human-human agreement is the ceiling a judge is read against. The set is hashed over canonical
JSON sorted by id, so a changed set is never mistaken for the same one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError
from evalkit.judges.spec import Label, VerdictForm
from evalkit.schema import describe

SPLITS = ("dev", "test", "canary")
_ID = re.compile(r"^[A-Za-z0-9_.:/-]+$")
_KEYS = ("id", "vars", "output", "output_a", "output_b", "reference", "human_label", "raters", "split", "tags", "note")


@dataclass(frozen=True)
class Anchor:
    """One human-labelled item."""

    id: str
    vars: Mapping[str, Any] = field(hash=False)
    human_label: Label
    split: str
    output: str | None = None
    output_a: str | None = None
    output_b: str | None = None
    reference: str | None = None
    raters: Mapping[str, Label] = field(default_factory=dict, hash=False)
    """Independent labels by name (double coding); ``human_label`` is the adjudicated one."""
    tags: tuple[str, ...] = ()
    note: str = ""
    line: int = 0
    sha256: str = ""
    """Hash of the item's canonical JSON: a re-labelled or edited item is a different item."""


@dataclass(frozen=True)
class AnchorSet:
    """A validated anchor file."""

    path: str
    items: tuple[Anchor, ...]
    sha256: str
    """Hash of the canonical JSON of every item, sorted by id."""

    def split(self, *names: str) -> tuple[Anchor, ...]:
        """The items of the named splits (all items when none are named)."""
        return tuple(a for a in self.items if not names or a.split in names)

    def counts(self) -> dict[str, dict[str, int]]:
        """Items per split and human label, plus ``all``."""
        out: dict[str, dict[str, int]] = {}
        for name in ("all", *SPLITS):
            chosen = self.items if name == "all" else self.split(name)
            if chosen:
                out[name] = {str(k): v for k, v in sorted(Counter(a.human_label for a in chosen).items(),
                                                          key=lambda kv: str(kv[0]))}
        return out

    @property
    def double_coded(self) -> tuple[Anchor, ...]:
        """Items with labels from at least two raters."""
        return tuple(a for a in self.items if len(a.raters) >= 2)


def canonical(record: Mapping[str, Any]) -> str:
    """Canonical JSON of one record (sorted keys, no spaces, UTF-8 as is)."""
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _label(value: Any, form: VerdictForm, at: str, field_name: str) -> Label:
    # Labels in anchors are written exactly (no case folding): a typo in a human label must be caught.
    ok = (isinstance(value, int) and not isinstance(value, bool)) if form.ordinal else isinstance(value, str)
    if not ok or value not in form.labels:
        raise ConfigError(f"{at}: {field_name}: expected one of the declared labels ({form.describe()}), "
                          f"got {describe(value)}")
    result: Label = value
    return result


def _text(record: Mapping[str, Any], key: str, at: str, required: bool) -> str | None:
    value = record.get(key)
    if value is None:
        if required:
            raise ConfigError(f"{at}: {key}: missing required field {key!r}")
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{at}: {key}: expected a string, got {describe(value)}")
    return value


def parse_anchor(record: Any, form: VerdictForm, at: str, line: int) -> Anchor:
    """Validates one decoded line; every problem is one :class:`ConfigError` naming the field."""
    if not isinstance(record, dict):
        raise ConfigError(f"{at}: (line): expected a JSON object per line, got {describe(record)}")
    unknown = sorted(set(record) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{at}: {unknown[0]}: unknown key {unknown[0]!r}; expected one of: "
                          f"{', '.join(sorted(_KEYS))}")
    anchor_id = record.get("id")
    if not isinstance(anchor_id, str) or not _ID.match(anchor_id):
        raise ConfigError(f"{at}: id: expected a string matching {_ID.pattern}, got {describe(anchor_id)}")
    variables = record.get("vars", {})
    if not isinstance(variables, dict):
        raise ConfigError(f"{at}: vars: expected a mapping, got {describe(variables)}")
    if "human_label" not in record:
        raise ConfigError(f"{at}: human_label: missing required field 'human_label'")
    human = _label(record["human_label"], form, at, "human_label")
    split = record.get("split")
    if split not in SPLITS:
        raise ConfigError(f"{at}: split: expected one of {list(SPLITS)}, got {describe(split)}")
    raters_raw = record.get("raters", {})
    if not isinstance(raters_raw, dict):
        raise ConfigError(f"{at}: raters: expected a mapping of rater name to label, got {describe(raters_raw)}")
    raters = {str(k): _label(v, form, at, f"raters.{k}") for k, v in raters_raw.items()}
    tags = record.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ConfigError(f"{at}: tags: expected a list of strings, got {describe(tags)}")
    note = record.get("note", "")
    if not isinstance(note, str):
        raise ConfigError(f"{at}: note: expected a string, got {describe(note)}")
    if form.pairwise:
        if "output" in record:
            raise ConfigError(f"{at}: output: expected output_a and output_b for a pairwise judge, got output")
        outputs = {"output_a": _text(record, "output_a", at, True), "output_b": _text(record, "output_b", at, True)}
    else:
        if "output_a" in record or "output_b" in record:
            key = "output_a" if "output_a" in record else "output_b"
            raise ConfigError(f"{at}: {key}: expected output for a {form.kind} judge, got {key}")
        outputs = {"output": _text(record, "output", at, True)}
    return Anchor(id=anchor_id, vars=variables, human_label=human, split=split, raters=raters,
                  reference=_text(record, "reference", at, False), tags=tuple(tags), note=note, line=line,
                  sha256=hashlib.sha256(canonical(record).encode()).hexdigest(), **outputs)


def load_anchors(path: Path, form: VerdictForm, display: str | None = None) -> AnchorSet:
    """Reads and validates an anchor file: a duplicate id or an undeclared label is one line naming it."""
    from evalkit.suite import display_path

    shown = display or display_path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{shown}: file not found (expected the judge's human-labelled anchor set)") from None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read file ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: expected UTF-8 text, got an undecodable byte at offset {exc.start}") from None
    items: list[Anchor] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        at = f"{shown}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{at}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        anchor = parse_anchor(record, form, at, number)
        if anchor.id in seen:
            raise ConfigError(f"{at}: id: expected a unique anchor id, got {anchor.id!r} again "
                              f"(first on line {seen[anchor.id]})")
        seen[anchor.id] = number
        items.append(anchor)
    if not items:
        raise ConfigError(f"{shown}: (top level): expected at least one anchor, got none")
    digest = hashlib.sha256("\n".join(a.sha256 for a in sorted(items, key=lambda a: a.id)).encode()).hexdigest()
    return AnchorSet(path=shown, items=tuple(items), sha256=digest)
