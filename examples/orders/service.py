"""The orders service of evalkit's live-tools example: HTTP (stdlib) over SQLite or PostgreSQL.

    python service.py --port 8080 --db orders.db                # SQLite (a file it opens per request)
    python service.py --port 8080 --db postgresql://u@host/db   # PostgreSQL (psycopg, a connection per request)

Routes (JSON in, JSON out): GET /health; GET /orders/{id}; GET /customers/{id}/orders;
POST /orders/{id}/cancel; POST /orders/{id}/refund {amount_cents?, reason?, idempotency_key?};
PUT /orders/{id}/address {address}; POST /admin/reset (re-seed); GET /admin/snapshot.
A connection per request means evalkit can replace the database between cases under a running service.
``--crash-after N`` exits after N requests and ``--spawn-helper`` starts a child process (both for tests).
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SEED = Path(__file__).with_name("seed.sql")
CANCELLABLE = ("placed", "processing")
REFUNDABLE = ("delivered", "cancelled")


class Store:
    """SQL over sqlite3 or psycopg, with ``?`` placeholders either way."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith(("postgres://", "postgresql://"))
        self.lock = threading.Lock()

    def connect(self) -> Any:
        if self.postgres:
            import psycopg

            return psycopg.connect(self.url)
        connection = sqlite3.connect(self.url, timeout=10)
        connection.execute("PRAGMA foreign_keys = ON")
        return connection

    def run(self, work: Any) -> Any:
        with self.lock:  # one writer at a time keeps the example simple and deterministic
            connection = self.connect()
            try:
                result = work(self._cursor(connection))
                connection.commit()
                return result
            finally:
                connection.close()

    def _cursor(self, connection: Any) -> Any:
        postgres = self.postgres

        def sql(query: str, *params: Any) -> list[dict[str, Any]]:
            if postgres:
                query = query.replace("?", "%s")
            cursor = connection.execute(query, params)
            if cursor.description is None:
                return []
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

        return sql

    def reseed(self) -> None:
        script = SEED.read_text("utf-8")
        tables = ("notes", "emails", "refunds", "orders", "customers")

        def work(sql: Any) -> None:
            for table in tables:
                sql(f"DROP TABLE IF EXISTS {table}")
            sql(script)

        if self.postgres:
            self.run(work)
        else:
            with self.lock:
                connection = sqlite3.connect(self.url)
                for table in tables:
                    connection.execute(f"DROP TABLE IF EXISTS {table}")
                connection.executescript(script)
                connection.commit()
                connection.close()


class Handler(BaseHTTPRequestHandler):
    store: Store
    server_version = "orders/1"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: without this, delayed ACKs add 40 ms
    crash_after: int | None = None
    served = 0

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write("orders: " + (format % args) + "\n")

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        Handler.served += 1
        if Handler.crash_after is not None and Handler.served >= Handler.crash_after:
            sys.stderr.write(f"orders: crashing after {Handler.served} requests (--crash-after)\n")
            sys.stderr.flush()
            import os

            os._exit(3)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        try:
            data = json.loads(self.rfile.read(length))
        except json.JSONDecodeError:
            return {}
        return data if isinstance(data, dict) else {}

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/health":
            return self._send(200, {"ok": True})
        if path == "/admin/snapshot":
            tables = ("customers", "orders", "refunds", "emails", "notes")
            snapshot = self.store.run(lambda sql: {t: sql(f"SELECT * FROM {t} ORDER BY id") for t in tables})
            return self._send(200, snapshot)
        match = re.fullmatch(r"/orders/([A-Za-z0-9-]+)", path)
        if match:
            order = self._order(match[1])
            return self._send(200, order) if order else self._send(404, {"error": f"no order {match[1]}"})
        match = re.fullmatch(r"/customers/([A-Za-z0-9-]+)/orders", path)
        if match:
            rows = self.store.run(lambda sql: sql("SELECT * FROM orders WHERE customer_id = ? ORDER BY id", match[1]))
            return self._send(200, {"orders": rows})
        return self._send(404, {"error": f"no route GET {path}"})

    def _order(self, order_id: str) -> dict[str, Any] | None:
        def work(sql: Any) -> dict[str, Any] | None:
            rows = sql("SELECT * FROM orders WHERE id = ?", order_id)
            if not rows:
                return None
            refunded = sql("SELECT COALESCE(SUM(amount_cents), 0) AS n FROM refunds WHERE order_id = ?", order_id)
            return {**rows[0], "refunded_cents": int(refunded[0]["n"])}

        return self.store.run(work)

    def do_POST(self) -> None:
        path = self.path.split("?")[0]
        if path == "/admin/reset":
            self.store.reseed()
            return self._send(200, {"ok": True})
        match = re.fullmatch(r"/orders/([A-Za-z0-9-]+)/(cancel|refund)", path)
        if not match:
            return self._send(404, {"error": f"no route POST {path}"})
        order_id, action = match[1], match[2]
        body = self._body()

        def cancel(sql: Any) -> tuple[int, Any]:
            rows = sql("SELECT status FROM orders WHERE id = ?", order_id)
            if not rows:
                return 404, {"error": f"no order {order_id}"}
            if rows[0]["status"] not in CANCELLABLE:
                return 409, {"error": f"order {order_id} is {rows[0]['status']} and cannot be cancelled"}
            sql("UPDATE orders SET status = 'cancelled' WHERE id = ?", order_id)
            return 200, {"id": order_id, "status": "cancelled"}

        def refund(sql: Any) -> tuple[int, Any]:
            rows = sql("SELECT status, total_cents FROM orders WHERE id = ?", order_id)
            if not rows:
                return 404, {"error": f"no order {order_id}"}
            key = body.get("idempotency_key")
            if key:
                existing = sql("SELECT * FROM refunds WHERE idempotency_key = ?", str(key))
                if existing:
                    return 200, existing[0]
            if rows[0]["status"] not in REFUNDABLE:
                return 409, {"error": f"order {order_id} is {rows[0]['status']}; only delivered or cancelled "
                                      "orders can be refunded"}
            refunded = int(sql("SELECT COALESCE(SUM(amount_cents), 0) AS n FROM refunds WHERE order_id = ?",
                               order_id)[0]["n"])
            left = int(rows[0]["total_cents"]) - refunded
            try:
                amount = int(body.get("amount_cents") or left)
            except (TypeError, ValueError):
                return 400, {"error": "amount_cents must be an integer"}
            if amount <= 0 or amount > left:
                return 409, {"error": f"refund of {amount} exceeds the {left} cents left on order {order_id}"}
            number = int(sql("SELECT COUNT(*) AS n FROM refunds")[0]["n"]) + 1
            refund_id = f"R{number}"
            sql("INSERT INTO refunds VALUES (?, ?, ?, ?, ?)", refund_id, order_id, amount,
                str(body.get("reason") or "customer request"), str(key) if key else None)
            return 201, {"id": refund_id, "order_id": order_id, "amount_cents": amount}

        status, payload = self.store.run(cancel if action == "cancel" else refund)
        return self._send(status, payload)

    def do_PUT(self) -> None:
        path = self.path.split("?")[0]
        match = re.fullmatch(r"/orders/([A-Za-z0-9-]+)/address", path)
        if not match:
            return self._send(404, {"error": f"no route PUT {path}"})
        order_id = match[1]
        address = str(self._body().get("address") or "").strip()

        def work(sql: Any) -> tuple[int, Any]:
            rows = sql("SELECT status FROM orders WHERE id = ?", order_id)
            if not rows:
                return 404, {"error": f"no order {order_id}"}
            if not address:
                return 400, {"error": "address must not be empty"}
            if rows[0]["status"] not in CANCELLABLE:
                return 409, {"error": f"order {order_id} is {rows[0]['status']}; the address can no longer change"}
            sql("UPDATE orders SET address = ? WHERE id = ?", address, order_id)
            return 200, {"id": order_id, "address": address}

        status, payload = self.store.run(work)
        return self._send(status, payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True, help="a SQLite file or a postgresql:// URL")
    parser.add_argument("--crash-after", type=int, default=None)
    parser.add_argument("--spawn-helper", action="store_true")
    args = parser.parse_args()
    Handler.store = Store(args.db)
    Handler.crash_after = args.crash_after
    if args.spawn_helper:  # a child in the service's process group, to show that stopping the group stops it
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "orders-helper", args.db])
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    kind = "postgres" if Handler.store.postgres else "sqlite"
    sys.stderr.write(f"orders: listening on 127.0.0.1:{args.port} ({kind})\n")
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
