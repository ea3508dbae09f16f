"""The public facade: a sorted, complete ``__all__``."""

from __future__ import annotations

import evalkit


def test_all_is_sorted_and_complete() -> None:
    assert evalkit.__all__ == sorted(evalkit.__all__)
    public = {name for name in dir(evalkit) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(evalkit, name)).__name__ == "module"}
    assert public - modules == set(evalkit.__all__)
