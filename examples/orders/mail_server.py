"""The e-mail and notes MCP server of evalkit's live-tools example (the official ``mcp`` SDK, FastMCP).

    python mail_server.py                 # stdio (evalkit starts it and speaks MCP over its pipes)
    python mail_server.py --http PORT     # streamable HTTP on 127.0.0.1:PORT/mcp

Writes go to the orders SQLite database named by ``$ORDERS_DB`` (tables ``emails`` and ``notes``), so
evalkit's per-case reset and state checks cover them too.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
from typing import Any

from mcp.server.fastmcp import FastMCP

mcp = FastMCP("mail", host="127.0.0.1")


def _db() -> sqlite3.Connection:
    return sqlite3.connect(os.environ["ORDERS_DB"], timeout=10)


def _next_id(connection: sqlite3.Connection, table: str, prefix: str) -> str:
    count = connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    return f"{prefix}{count + 1}"


@mcp.tool()
def send_email(to: str, subject: str, body: str) -> dict[str, Any]:
    """Send an e-mail to a customer."""
    if "@" not in to:
        raise ValueError(f"not an e-mail address: {to!r}")
    with _db() as connection:
        email_id = _next_id(connection, "emails", "E")
        connection.execute("INSERT INTO emails VALUES (?, ?, ?, ?)", (email_id, to, subject, body))
    return {"id": email_id, "to": to, "status": "sent"}


@mcp.tool()
def add_note(order_id: str, text: str) -> dict[str, Any]:
    """Add an internal note to an order."""
    with _db() as connection:
        note_id = _next_id(connection, "notes", "N")
        connection.execute("INSERT INTO notes VALUES (?, ?, ?)", (note_id, order_id, text))
    return {"id": note_id, "order_id": order_id}


@mcp.tool()
def list_notes(order_id: str) -> dict[str, Any]:
    """List the internal notes of an order."""
    with _db() as connection:
        rows = connection.execute("SELECT id, text FROM notes WHERE order_id = ? ORDER BY id", (order_id,)).fetchall()
    return {"order_id": order_id, "notes": [{"id": r[0], "text": r[1]} for r in rows]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the example's e-mail and notes MCP server")
    parser.add_argument("--http", type=int, default=None, help="serve streamable HTTP on this port")
    args = parser.parse_args()
    if args.http is not None:
        mcp.settings.port = args.http
        mcp.run("streamable-http")
    else:
        mcp.run("stdio")
