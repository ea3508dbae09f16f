"""Code the user asked evalkit to run: dotted paths (``pkg.module:function``) and installed plugins.

A plugin is a distribution with entry points in the ``evalkit`` group. Each entry point names a module or
an object: a module is imported (its ``evalkit.register(...)`` calls add scorers; ``register_provider``
adds providers); a callable is registered as a scorer under the entry point's name. Entry points are read
only when a name is not already known, so start-up stays fast.
"""

from __future__ import annotations

import functools
import importlib
import types
from collections.abc import Callable
from typing import Any

ENTRY_POINT_GROUP = "evalkit"


def _import(module_name: str) -> types.ModuleType:
    """Imports a module; every failure becomes a ValueError with a one-line reason."""
    try:
        return importlib.import_module(module_name)
    except SyntaxError as exc:
        where = f" at {exc.filename}:{exc.lineno}" if exc.filename else ""
        raise ValueError(f"cannot import module {module_name!r} (SyntaxError: {exc.msg}{where})") from None
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r} ({exc})") from None
    except Exception as exc:  # the module's own code failed while importing: the user's bug, one line
        raise ValueError(f"module {module_name!r} raised {type(exc).__name__} when imported: {exc}") from None


@functools.cache
def load_callable(dotted: str) -> Callable[..., Any]:
    """Imports ``package.module:function``; raises ValueError with a one-line reason."""
    module_name, _, attr = dotted.partition(":")
    fn = getattr(_import(module_name), attr, None)
    if not callable(fn):
        raise ValueError(f"module {module_name!r} has no callable {attr!r}")
    return fn  # type: ignore[no-any-return]


@functools.cache
def load_entry_points() -> tuple[str, ...]:
    """Loads every ``evalkit`` entry point once; returns the problems met, one line each."""
    from importlib.metadata import entry_points

    from evalkit.scorers.registry import REGISTRY, register

    problems = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = point.load()
        except Exception as exc:  # a broken plugin must not break evalkit: its problem is reported
            problems.append(f"plugin {point.name!r} ({point.value}): {type(exc).__name__}: {exc}")
            continue
        if not isinstance(loaded, types.ModuleType) and callable(loaded) and point.name not in REGISTRY:
            register(point.name)(loaded)
    return tuple(problems)
