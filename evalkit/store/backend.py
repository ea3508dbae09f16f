"""Connections to the two engines behind one small interface: SQLite (a file) and Postgres (a URL).

SQL is written once with ``?`` placeholders; Postgres gets ``%s``. Every engine error that reaches the
user is one :class:`~evalkit.errors.StoreError` line naming the store (a URL never shows its password).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from evalkit.errors import PrerequisiteError, StoreError, install_hint

DEFAULT_PATH = Path(".evalkit") / "history.sqlite"
"""The embedded default, beside the run directories (``.evalkit/runs``)."""
ENVIRONMENT = "EVALKIT_STORE"
"""The environment variable naming the store (a path or a ``postgresql://`` URL)."""
DISABLED = frozenset({"off", "none", "0", "false"})
"""Values of :data:`ENVIRONMENT` that turn recording after ``evalkit run`` off."""
CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class Location:
    """Where a store is: an engine and its address."""

    engine: str
    """``sqlite`` or ``postgres``."""
    address: str
    """The file path (SQLite) or the URL (Postgres)."""

    @property
    def display(self) -> str:
        """The address as it may be printed: a URL's password is masked."""
        return redact(self.address) if self.engine == "postgres" else self.address


def redact(url: str) -> str:
    """A URL with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def locate(url: str | os.PathLike[str] | None = None) -> Location:
    """The store named by ``url``, else by ``$EVALKIT_STORE``, else ``.evalkit/history.sqlite``."""
    raw = os.fspath(url) if url is not None else os.environ.get(ENVIRONMENT) or os.fspath(DEFAULT_PATH)
    if raw.startswith(("postgresql://", "postgres://")):
        return Location("postgres", raw)
    if raw.startswith("sqlite://"):
        raw = raw.removeprefix("sqlite://")
        raw = raw[1:] if raw.startswith("//") else raw  # sqlite:////abs/path and sqlite:///rel/path
    if "://" in raw:
        scheme = raw.split("://", 1)[0]
        raise StoreError(f"--store: expected a file path, sqlite:///PATH or postgresql://URL, got a {scheme}:// URL")
    return Location("sqlite", raw)


class Connection:
    """One open connection; :meth:`transaction` groups writes so a failure leaves the store as it was."""

    def __init__(self, location: Location, raw: Any) -> None:
        self.location = location
        self.engine = location.engine
        self._raw = raw

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.engine == "postgres" else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Runs one statement; returns a cursor to fetch from."""
        cursor = self._raw.cursor()
        try:
            cursor.execute(self._sql(sql), tuple(params))
        except Exception as exc:
            raise self._error(exc) from None
        return cursor

    def query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and every row of a query."""
        cursor = self.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return names, [tuple(row) for row in cursor.fetchall()]

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Inserts rows: Postgres by COPY (the fast path), SQLite by ``executemany``."""
        try:
            if self.engine == "postgres":
                cursor = self._raw.cursor()
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" for _ in columns)
                self._raw.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
        except Exception as exc:
            raise self._error(exc) from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Commits on success, rolls back on any exception."""
        if self.engine == "postgres":
            with self._raw.transaction():
                yield
            return
        self._raw.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._raw.execute("ROLLBACK")
            raise
        self._raw.execute("COMMIT")

    def tables(self) -> set[str]:
        """Names of the tables in the store."""
        if self.engine == "postgres":
            _, rows = self.query("SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                 "current_schema()")
        else:
            _, rows = self.query("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {str(r[0]) for r in rows}

    def close(self) -> None:
        self._raw.close()

    def _error(self, exc: BaseException) -> StoreError:
        if isinstance(exc, StoreError):
            return exc
        message = " ".join(str(exc).split()) or type(exc).__name__
        return StoreError(f"{self.location.display}: {message}")


def connect(location: Location) -> Connection:
    """Opens the store's database (creating a SQLite file and its folder if needed)."""
    if location.engine == "postgres":
        return Connection(location, _connect_postgres(location))
    path = Path(location.address)
    if path.is_dir():
        raise StoreError(f"{location.address}: expected a SQLite store file, got a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        raw.execute("PRAGMA synchronous = NORMAL")
        # A file that is not a database fails here, on the first read, not at connect.
        raw.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except (sqlite3.DatabaseError, OSError) as exc:
        raise StoreError(f"{location.address}: expected an evalkit store (SQLite), got an unreadable file ({exc})") \
            from None
    return Connection(location, raw)


def _connect_postgres(location: Location) -> Any:
    try:
        import psycopg
    except ImportError:
        raise PrerequisiteError(install_hint("postgres", "psycopg (the Postgres driver)")) from None
    try:
        return psycopg.connect(location.address, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        password = urlsplit(location.address).password
        if password:
            reason = reason.replace(password, "***")
        raise StoreError(f"{location.display}: cannot connect to the Postgres store ({reason})") from None
