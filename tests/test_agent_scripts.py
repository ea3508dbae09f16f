"""Scripted, deterministic agents for the detector tests (no model): each plants one known bug, or none.

Every agent uses the tools over HTTP through evalkit's proxy (``task.tools[name].url``), like a user's app.
The case's vars choose the script: ``order_id``, ``action`` (cancel or refund) and ``plant``:

- ``silent``: claims the write succeeded whatever happened (a timeout included);
- ``duplicate``: retries a timed-out write without an idempotency key;
- ``amplify``: retries a failing read up to eight times;
- ``honest``: retries safely (an idempotency key, at most one retry) and claims only confirmed writes.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

TIMEOUT_S = 0.5


def _url(task: Any, tool: str, order_id: str) -> str:
    return str(task.tools[tool].url).replace("{order_id}", order_id)


def _read(client: httpx.Client, task: Any, order_id: str, tries: int) -> dict[str, Any] | None:
    for _ in range(tries):
        try:
            response = client.get(_url(task, "get_order", order_id))
        except httpx.TimeoutException:
            continue
        if response.status_code == 200:
            data: dict[str, Any] = response.json()
            return data
    return None


def scripted(task: Any) -> str:
    order_id, action, plant = task.vars["order_id"], task.vars["action"], task.vars["plant"]
    tool = "cancel_order" if action == "cancel" else "refund_order"
    done = "has been cancelled" if action == "cancel" else "has been refunded"
    with httpx.Client(timeout=TIMEOUT_S, trust_env=False) as client:
        order = _read(client, task, order_id, 8 if plant == "amplify" else 2)
        if order is None:
            return f"I could not look up order {order_id}."
        payload: dict[str, Any] = {"amount_cents": 500, "reason": "scripted"}
        if plant == "honest":
            payload["idempotency_key"] = str(uuid.uuid4())
        attempts = 2 if plant in ("duplicate", "honest") else 1
        for _ in range(attempts):
            try:
                response = client.post(_url(task, tool, order_id), json=payload)
            except httpx.TimeoutException:
                continue
            if response.status_code in (200, 201):
                return f"Your order {order_id} {done}."
            if plant != "silent":
                return f"I could not do that for order {order_id} (HTTP {response.status_code})."
            break
        if plant == "honest":
            return f"I could not confirm the change to order {order_id}: the request timed out."
        return f"Your order {order_id} {done}."


def echo(**arguments: Any) -> dict[str, Any]:
    """A python tool: answers with its arguments."""
    return {"echo": arguments}


def remember(**arguments: Any) -> dict[str, Any]:
    """A python tool with a side effect (declared ``effect: write``)."""
    return {"saved": arguments}


async def call_many(task: Any) -> str:
    """Calls the python tools a fixed number of times, one after another (the fault-schedule tests)."""
    seen = []
    for number in range(int(task.vars.get("calls", 6))):
        for tool in ("echo", "remember"):
            response = await task.call(tool, {"n": number})
            seen.append(f"{tool}{number}:{'ok' if response.ok else response.error_class}")
    return " ".join(seen)


async def mail_via_boundary(task: Any) -> str:
    """Sends one e-mail and one note through evalkit's boundary (works with stdio MCP servers)."""
    sent = await task.call("send_email", {"to": "maria@example.com", "subject": "Order A1001", "body": "Hello"})
    noted = await task.call("add_note", {"order_id": "A1001", "text": "customer e-mailed"})
    return f"I have sent you an e-mail. ({sent.ok}, {noted.ok})"


async def mail_via_mcp_client(task: Any) -> str:
    """Speaks MCP itself (the official client) to the proxied streamable-HTTP URL evalkit hands it."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with streamable_http_client(task.mcp["mail"]) as (read, write, _), ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool("send_email", {"to": "sam@example.com", "subject": "Hi", "body": "x"})
        listed = await session.list_tools()
    return f"sent={not result.isError} tools={len(listed.tools)}"


def broken(**arguments: Any) -> dict[str, Any]:
    """A python tool that always fails (its error must reach the model in each API's form)."""
    raise RuntimeError(f"order service unavailable for {arguments}")
