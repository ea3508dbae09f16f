"""The real store a case changes: reset before every case, read by state checks.

- ``sqlite``: the seed (an ``.sql`` script or a ``.db`` file) is built once, then copied over the
  services' database file before each case; checks read the file with real SQL.
- ``postgres``: the seed script builds a template database once; each case gets the services' database
  recreated from it (``CREATE DATABASE … TEMPLATE …``); checks read it with real SQL (psycopg).
- ``http``: the service's own reset and snapshot endpoints.
- ``python``: a reset function (and optionally a snapshot function) named by dotted path.

Every store is shared by the services, so cases that use it run one at a time (the agent target holds a
lock per store). A query's problem (an SQL error, an unreachable endpoint) raises :class:`StateError` with
one line; the state checks turn it into a failed check with that line.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError, PrerequisiteError, ServiceError, install_hint
from evalkit.providers.base import shorten
from evalkit.tools.spec import StateSpec, expand

Snapshot = dict[str, Any]


class StateError(EvalkitError):
    """A state query or reset failed (an SQL error, a missing table, an endpoint that did not answer)."""


def _pg_params(sql: str) -> str:
    """``:name`` placeholders (sqlite's style, used in suites) → psycopg's ``%(name)s`` (``::casts`` kept)."""
    return re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", r"%(\1)s", sql.replace("%", "%%"))


def _named(sql: str) -> set[str]:
    return set(re.findall(r"(?<![:\w]):([A-Za-z_]\w*)", sql))


class Store:
    """A store's common surface; see the module docstring for the kinds."""

    kind = ""

    async def setup(self) -> None:
        """Builds the seed once, before the services start."""

    async def reset(self) -> None:
        """Puts the store back to its seed."""

    async def snapshot(self) -> Snapshot:
        """Everything in the store, canonically ordered (for ``state-unchanged``)."""
        raise StateError(f"state {self.kind}: no snapshot is available for this store")

    async def sql(self, query: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        raise StateError(f"state {self.kind}: expected an sql store (sqlite or postgres) for an sql query")

    async def http(self, request: str) -> Any:
        raise StateError(f"state {self.kind}: expected an http store for an http query")

    async def python(self, dotted: str, params: Mapping[str, Any]) -> Any:
        from evalkit.plugins import load_callable

        try:
            fn = load_callable(dotted)
            result = fn(**params)
            if asyncio.iscoroutine(result):
                result = await result
        except Exception as exc:
            raise StateError(f"{dotted}: {type(exc).__name__}: {shorten(str(exc), 160)}") from None
        return result

    def check_sql(self, query: str) -> str | None:
        """Why a query cannot run against the seed (syntax, unknown table or column), or None."""
        return None

    async def close(self) -> None:
        return None


class SqliteStore(Store):
    kind = "sqlite"

    def __init__(self, spec: StateSpec, values: Mapping[str, str]) -> None:
        self.path = Path(expand(spec.path or "", values))
        self.seed_path = Path(values["work_dir"]) / "evalkit-seed.db"
        self.spec = spec

    async def setup(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        seed = self.spec.seed
        self.seed_path.unlink(missing_ok=True)
        if seed is None:
            sqlite3.connect(self.seed_path).close()
        elif seed.endswith(".sql"):
            try:
                with sqlite3.connect(self.seed_path) as connection:
                    connection.executescript(Path(seed).read_text("utf-8"))
                connection.close()
            except sqlite3.Error as exc:
                raise ServiceError(f"{self.spec.source}.seed: the seed script failed: {exc}") from None
        else:
            shutil.copyfile(seed, self.seed_path)
        await self.reset()

    async def reset(self) -> None:
        temporary = self.path.with_name(self.path.name + ".evalkit-tmp")
        shutil.copyfile(self.seed_path, temporary)
        for suffix in ("-wal", "-shm", "-journal"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)
        os.replace(temporary, self.path)

    def _connect(self, path: Path | None = None) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{path or self.path}?mode=ro", uri=True)

    async def sql(self, query: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        try:
            connection = self._connect()
            try:
                return list(connection.execute(query, {k: params[k] for k in _named(query) if k in params}))
            finally:
                connection.close()
        except sqlite3.Error as exc:
            raise StateError(f"sql error: {exc} (in {shorten(query, 100)!r})") from None

    def check_sql(self, query: str) -> str | None:
        connection = self._connect(self.seed_path)
        try:
            connection.execute("EXPLAIN " + query, dict.fromkeys(_named(query)))
        except sqlite3.Error as exc:
            return f"sql error against the seed database: {exc}"
        finally:
            connection.close()
        return None

    async def snapshot(self) -> Snapshot:
        connection = self._connect()
        try:
            tables = [r[0] for r in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
            out: Snapshot = {}
            for table in tables:
                columns = [r[1] for r in connection.execute(f'PRAGMA table_info("{table}")')]
                rows = connection.execute(f'SELECT * FROM "{table}"').fetchall()
                out[table] = sorted((dict(zip(columns, row, strict=True)) for row in rows), key=_row_key)
            return out
        finally:
            connection.close()


def _row_key(row: Mapping[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


class PostgresStore(Store):
    kind = "postgres"

    def __init__(self, spec: StateSpec) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise PrerequisiteError(install_hint("tools", "psycopg (for postgres state)")) from None
        url = spec.url or os.environ.get(spec.url_env or "", "")
        if not url:
            raise ServiceError(f"{spec.source}.url_env: expected a postgres URL in ${spec.url_env}, got it unset")
        self.server_url = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
        self.database = spec.database or "evalkit"
        self.template = f"{self.database}_evalkit_seed"
        self.spec = spec

    def url(self, database: str | None = None) -> str:
        return f"{self.server_url}/{database or self.database}"

    def _admin(self, *statements: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            for statement in statements:
                connection.execute(statement)

    async def setup(self) -> None:
        import psycopg

        try:
            await asyncio.to_thread(self._admin, f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)',
                                    f'CREATE DATABASE "{self.template}"')
        except psycopg.Error as exc:
            raise ServiceError(f"{self.spec.source}: cannot create the template database on "
                               f"{self.server_url.split('@')[-1]}: {shorten(str(exc), 200)}") from None
        if self.spec.seed:
            script = Path(self.spec.seed).read_text("utf-8")

            def seed() -> None:
                with psycopg.connect(self.url(self.template), autocommit=True) as connection:
                    connection.execute(script)

            try:
                await asyncio.to_thread(seed)
            except psycopg.Error as exc:
                raise ServiceError(f"{self.spec.source}.seed: the seed script failed: {shorten(str(exc), 200)}") \
                    from None
        await self.reset()

    async def reset(self) -> None:
        await asyncio.to_thread(self._admin, f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)',
                                f'CREATE DATABASE "{self.database}" TEMPLATE "{self.template}"')

    def _query(self, database: str, query: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.url(database)) as connection:
            cursor = connection.execute(_pg_params(query),
                                        {k: params.get(k) for k in _named(query)})
            return list(cursor.fetchall()) if cursor.description else []

    async def sql(self, query: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            return await asyncio.to_thread(self._query, self.database, query, params)
        except psycopg.Error as exc:
            raise StateError(f"sql error: {shorten(str(exc), 160)} (in {shorten(query, 100)!r})") from None

    def check_sql(self, query: str) -> str | None:
        import psycopg

        try:
            self._query(self.template, "EXPLAIN " + query, {})
        except psycopg.Error as exc:
            return f"sql error against the seed database: {shorten(str(exc), 160)}"
        return None

    async def snapshot(self) -> Snapshot:
        def dump() -> Snapshot:
            tables = [r[0] for r in self._query(self.database, "SELECT table_name FROM information_schema.tables "
                                                "WHERE table_schema = 'public' ORDER BY table_name", {})]
            out: Snapshot = {}
            for table in tables:
                columns = [r[0] for r in self._query(
                    self.database, "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                    "'public' AND table_name = :t ORDER BY ordinal_position", {"t": table})]
                rows = self._query(self.database, f'SELECT * FROM "{table}"', {})
                out[table] = sorted((dict(zip(columns, row, strict=True)) for row in rows), key=_row_key)
            return out

        return await asyncio.to_thread(dump)

    async def close(self) -> None:
        try:
            await asyncio.to_thread(self._admin, f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
        except Exception:
            pass  # best effort: the server may already be gone


class HttpStore(Store):
    kind = "http"

    def __init__(self, spec: StateSpec, base_url: str) -> None:
        import httpx

        self.spec = spec
        self.base_url = base_url
        self._client = httpx.AsyncClient(trust_env=False, timeout=30.0)

    async def _request(self, request: str) -> Any:
        import httpx

        method, _, path = request.partition(" ")
        try:
            response = await self._client.request(method, self.base_url + path.strip())
        except httpx.HTTPError as exc:
            raise StateError(f"{request}: {type(exc).__name__}: {shorten(str(exc), 120)}") from None
        if not 200 <= response.status_code < 300:
            raise StateError(f"{request}: HTTP {response.status_code}: {shorten(response.text, 120)}")
        try:
            return response.json() if response.content else None
        except json.JSONDecodeError:
            raise StateError(f"{request}: expected JSON, got {shorten(response.text, 80)!r}") from None

    async def reset(self) -> None:
        await self._request(self.spec.reset or "")

    async def snapshot(self) -> Snapshot:
        if not self.spec.snapshot:
            return await super().snapshot()
        data = await self._request(self.spec.snapshot)
        return data if isinstance(data, dict) else {"snapshot": data}

    async def http(self, request: str) -> Any:
        return await self._request(request)

    async def close(self) -> None:
        await self._client.aclose()


class PythonStore(Store):
    kind = "python"

    def __init__(self, spec: StateSpec) -> None:
        self.spec = spec

    async def reset(self) -> None:
        await self.python(self.spec.reset or "", {})

    async def snapshot(self) -> Snapshot:
        if not self.spec.snapshot:
            return await super().snapshot()
        data = await self.python(self.spec.snapshot, {})
        return data if isinstance(data, dict) else {"snapshot": data}


def open_store(spec: StateSpec, values: Mapping[str, str], service_urls: Mapping[str, str]) -> Store:
    """The store a suite's ``state:`` declares (not yet set up)."""
    if spec.kind == "sqlite":
        return SqliteStore(spec, values)
    if spec.kind == "postgres":
        return PostgresStore(spec)
    if spec.kind == "http":
        return HttpStore(spec, service_urls.get(spec.service or "", ""))
    return PythonStore(spec)


async def run_query(store: Store | None, query: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """Runs a state query (``sql`` with ``params``, ``http`` or ``python``); the raw result."""
    if store is None:
        raise StateError("expected a suite with a 'state' section for a state query, got none")
    merged = {**params, **dict(query.get("params") or {})}
    if "sql" in query:
        rows = await store.sql(query["sql"], merged)
        return rows[0][0] if len(rows) == 1 and len(rows[0]) == 1 else [list(r) for r in rows]
    if "http" in query:
        return await store.http(query["http"])
    return await store.python(query["python"], merged)


def judge(query: Mapping[str, Any], value: Any) -> tuple[bool, str]:
    """A query result against its expectation: ``equals``, ``json-path`` + ``equals``, ``contains`` or ``rows``."""
    shown = json.dumps(value, default=str)[:80]
    if "json-path" in query:
        from evalkit.scorers.checks import parse_json_path

        for part in parse_json_path(query["json-path"]):
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                return False, f"{query['json-path']} not found in {shown}"
        shown = json.dumps(value, default=str)[:80]
    if "rows" in query:
        count = len(value) if isinstance(value, list) else (0 if value is None else 1)
        return count == query["rows"], f"{count} rows (expected {query['rows']})"
    if "contains" in query:
        ok = str(query["contains"]) in (json.dumps(value, default=str) if not isinstance(value, str) else value)
        return ok, f"{shown} {'contains' if ok else 'does not contain'} {query['contains']!r}"
    if "equals" in query:
        expected = query["equals"]
        ok = value == expected or (not isinstance(value, (list, dict)) and str(value) == str(expected))
        return ok, f"got {shown}" + ("" if ok else f", expected {json.dumps(expected, default=str)[:60]}")
    ok = bool(value) and value != [[0]]
    return ok, f"got {shown} ({'truthy' if ok else 'empty or false'})"
