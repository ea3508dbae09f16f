"""The ``python`` runtime: a tool is a function the user named by dotted path (``pkg.module:function``)."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Mapping
from typing import Any

from evalkit.providers.base import shorten
from evalkit.tools.faults import ToolResponse
from evalkit.tools.spec import ToolSpec


class PythonRuntime:
    """Calls ``f(**arguments)`` (sync in a thread, or async); the return value is sent back as JSON."""

    async def call(self, tool: ToolSpec, arguments: Mapping[str, Any], timeout_s: float) -> ToolResponse:
        from evalkit.plugins import load_callable

        assert tool.python is not None
        fn = load_callable(tool.python)
        write = tool.effect == "write"
        try:
            if inspect.iscoroutinefunction(fn):
                result = await fn(**arguments)
            else:
                result = await asyncio.to_thread(fn, **arguments)
        except TypeError as exc:
            return ToolResponse(False, "exception", "", "client", f"{tool.python}: {shorten(str(exc), 160)}", False)
        except Exception as exc:  # the tool failing is what the agent sees, not a crashed run
            return ToolResponse(False, "exception", "", "server",
                                f"{tool.python} raised {type(exc).__name__}: {shorten(str(exc), 160)}", None)
        try:
            body = json.dumps(result, ensure_ascii=False, default=str)
        except (TypeError, ValueError) as exc:
            return ToolResponse(False, "exception", "", "bad_response",
                                f"{tool.python} returned something that is not JSON-able ({exc})", write or None)
        return ToolResponse(True, "ok", body, side_effect=write)
