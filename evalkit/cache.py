"""An opt-in, content-addressed response cache for re-runs.

The key covers provider, endpoint, model, parameters, the rendered messages *and the repeat index*, so a
re-run reuses answers while the k repeats of one run stay k independent samples.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evalkit.artifact import write_atomic
from evalkit.providers.base import CallRecord


def evalkit_home() -> Path:
    """``$EVALKIT_HOME``, else ``$XDG_CACHE_HOME/evalkit``, else ``~/.cache/evalkit``."""
    home = os.environ.get("EVALKIT_HOME")
    if home:
        return Path(home)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "evalkit"


CACHE_FORMAT = "evalkit.cache/1"


def cache_key(*, provider: str, endpoint: str | None, model: str, params: Mapping[str, Any],
              messages: Any, repeat: int, index: int = 0, response_format: Any = None, tools: Any = None) -> str:
    """The content address of one call: the ``index``-th model call of a case in repeat ``repeat``."""
    body = {"format": CACHE_FORMAT, "provider": provider, "endpoint": endpoint, "model": model, "params": params,
            "messages": messages, "repeat": repeat, "index": index, "response_format": response_format}
    if tools is not None:  # only when the call offers tools, so every earlier key stays valid
        body["tools"] = tools
    payload = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache:
    """Successful call records stored one file per key under ``<home>/responses``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or evalkit_home() / "responses"

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> CallRecord | None:
        """The stored record, marked ``cached``; None on a miss, an unreadable entry or another format."""
        try:
            data = json.loads(self._path(key).read_text("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or not isinstance(data.get("record"), dict):
            return None  # written by another evalkit version (or not by evalkit): a miss, never a wrong answer
        try:
            record = CallRecord.from_dict(data["record"])
        except (TypeError, KeyError, ValueError, AttributeError):
            return None
        from dataclasses import replace

        return replace(record, cached=True)

    def put(self, key: str, record: CallRecord) -> None:
        """Stores a successful record (failures are never cached: a re-run should try again)."""
        if not record.ok:
            return
        write_atomic(self._path(key), json.dumps({"format": CACHE_FORMAT, "record": record.to_dict()},
                                                 ensure_ascii=False))
