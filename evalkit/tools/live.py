"""The live state a case's checks read: the store (after the case), its snapshot from before, the toolkit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evalkit.tools.spec import Toolkit
from evalkit.tools.state import Snapshot, StateError, Store, judge, run_query


@dataclass
class LiveState:
    """``context.state`` of an agent case: query the real store, compare with how the case found it."""

    toolkit: Toolkit
    store: Store | None
    before: Snapshot | None = None
    """The store's snapshot right after the reset (taken when a ``state-unchanged`` check needs it)."""
    cache: dict[str, Any] = field(default_factory=dict)

    async def query(self, query: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
        """Runs one state query (``sql``/``http``/``python``) against the store as the case left it."""
        return await run_query(self.store, query, params)

    async def check(self, query: Mapping[str, Any], params: Mapping[str, Any]) -> tuple[bool, str]:
        """A state query and its expectation: (holds, what was found)."""
        return judge(query, await self.query(query, params))

    async def snapshot(self) -> Snapshot:
        if self.store is None:
            raise StateError("expected a suite with a 'state' section, got none")
        return await self.store.snapshot()
