"""Feeding the store from run directories (the journal is the source of truth; the store follows it)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from evalkit.errors import EvalkitError, ResultsError
from evalkit.results import MANIFEST, load_run
from evalkit.store.store import Ingested, Store

LADDER_FORMAT = "evalkit.ladder/1"
LADDER_FILE = "ladder.json"
"""Written by a load ladder beside its step runs: marks them as ladder steps when they are ingested."""


@dataclass(frozen=True)
class Outcome:
    """One run directory's ingest: what it did, or the one-line reason it could not."""

    path: Path
    ingested: Ingested | None = None
    error: str | None = None


def run_directories(path: str | os.PathLike[str]) -> list[Path]:
    """``path`` if it is a run directory, else the run directories directly inside it (sorted)."""
    folder = Path(path)
    if folder.name == MANIFEST:
        return [folder.parent]
    if (folder / MANIFEST).exists() or not folder.is_dir():
        return [folder]
    found = sorted(p for p in folder.iterdir() if (p / MANIFEST).is_file())
    if not found:
        raise ResultsError(f"{folder}: expected a run directory ({MANIFEST} in it) or a folder of them, got neither")
    return found


def ladder_membership(directory: Path, run_id: str) -> str | None:
    """The sweep id when ``directory`` is a step of a load ladder (its parent's ``ladder.json`` lists it)."""
    marker = directory.parent / LADDER_FILE
    try:
        data = json.loads(marker.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != LADDER_FORMAT or run_id not in data.get("runs", ()):
        return None
    sweep = data.get("sweep_id")
    return str(sweep) if sweep else None


def ingest_directory(store: Store, directory: Path) -> Ingested:
    """Loads one run directory and records it (as a ladder step when its ladder says so)."""
    run = load_run(directory)
    sweep_id = ladder_membership(directory, run.run_id)
    return store.ingest(run, kind="ladder" if sweep_id else "run", sweep_id=sweep_id, source=str(directory))


def ingest_paths(store: Store, paths: Sequence[str | os.PathLike[str]]) -> Iterator[Outcome]:
    """Ingests every run directory under ``paths``; a bad one is reported and the others still go in."""
    for path in paths:
        try:
            directories = run_directories(path)
        except EvalkitError as exc:
            yield Outcome(Path(path), error=str(exc))
            continue
        for directory in directories:
            try:
                yield Outcome(directory, ingested=ingest_directory(store, directory))
            except EvalkitError as exc:
                yield Outcome(directory, error=str(exc))
