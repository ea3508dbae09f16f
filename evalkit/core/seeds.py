"""Seeded randomness that replays: every draw is a pure function of (seed, what it is for).

One generator shared by a whole run is consumed in completion order, so its draws depend on timing and
concurrency; the builtin ``hash`` is salted per process. A generator derived from a stable digest of
``(seed, case, repeat, purpose, call number …)`` gives the same draws in any process, at any concurrency.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

Part = str | int | None


def derive_seed(seed: int, *parts: Part) -> int:
    """A 128-bit seed from ``seed`` and the parts naming what the draws are for (canonical JSON, SHA-256)."""
    payload = json.dumps([seed, *parts], ensure_ascii=False, separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(payload.encode()).digest()[:16], "big")


def draws(seed: int, *parts: Part) -> random.Random:
    """A ``random.Random`` for one purpose, e.g. ``draws(seed, case_id, repeat, "retry", call_number)``."""
    return random.Random(derive_seed(seed, *parts))


def numpy_draws(seed: int, *parts: Part) -> np.random.Generator:
    """The numpy twin of :func:`draws` (for simulations and bootstraps)."""
    import numpy as np

    return np.random.default_rng(derive_seed(seed, *parts))
