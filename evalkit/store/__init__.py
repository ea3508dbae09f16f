"""The history store: every run and one row per call, in SQLite (default) or Postgres, for analysis over time.

The journal is the source of truth; the store is fed from it (after each ``evalkit run``, or by
``evalkit history ingest``) and never the other way round, so a store that fails loses nothing.
"""

from __future__ import annotations

import os

from evalkit.results import Run
from evalkit.store.backend import DEFAULT_PATH, DISABLED, ENVIRONMENT, Location, locate, redact
from evalkit.store.ingest import LADDER_FILE, LADDER_FORMAT, Outcome, ingest_directory, ingest_paths, run_directories
from evalkit.store.store import Ingested, Store, open_store

__all__ = [
    "DEFAULT_PATH",
    "ENVIRONMENT",
    "LADDER_FILE",
    "LADDER_FORMAT",
    "Ingested",
    "Location",
    "Outcome",
    "Store",
    "ingest_directory",
    "ingest_paths",
    "locate",
    "open_store",
    "record_quietly",
    "redact",
    "run_directories",
]


def record_quietly(run: Run, url: str | os.PathLike[str] | None = None, *, kind: str = "run",
                   sweep_id: str | None = None) -> str | None:
    """Records a finished run in the store; returns None, or one warning line when it could not.

    Never raises: the run directory is already complete, and ``evalkit history ingest`` can record it later.
    Recording is off when ``$EVALKIT_STORE`` is ``off``.
    """
    if url is None and os.environ.get(ENVIRONMENT, "").strip().lower() in DISABLED:
        return None
    where = str(url or os.environ.get(ENVIRONMENT) or DEFAULT_PATH)
    try:
        with open_store(url) as store:
            where = store.display
            store.ingest(run, kind=kind, sweep_id=sweep_id, source=str(run.directory) if run.directory else None)
    except Exception as exc:  # any failure at all: the run must survive it (the journal has everything)
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if where in reason:
            reason = reason.replace(f"{where}: ", "")
        return (f"evalkit: warning: not recorded in the history store {redact(where)} ({reason}); the run is "
                f"safe in {run.directory}; record it later with: evalkit history ingest {run.directory}")
    return None
