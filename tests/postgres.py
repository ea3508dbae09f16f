"""A throwaway PostgreSQL server for tests: ``initdb`` and ``pg_ctl`` in a temporary folder, on a free loopback port.

Debian's ``postgresql`` package (``.ci/run`` installs it) puts the server binaries in
``/usr/lib/postgresql/<version>/bin``. ``initdb`` and ``postgres`` refuse to run as root, so when the tests
run as root (as CI does) the server runs as the unprivileged ``postgres`` user the package creates, in a
folder that user owns. The cluster trusts loopback connections only and is removed when stopped.

Use the session fixture ``postgres_server`` (one server per test session) and ``create_database()`` for a
fresh database per test or per case; ``postgres_url`` gives a test its own database.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

SERVICE_USER = "postgres"
"""The unprivileged user the server runs as when the tests run as root."""
SUPERUSER = "evalkit"
"""The cluster's superuser (trust authentication, loopback only)."""


def find_bin_dir() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres`` (the newest Debian version, else PATH)."""
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                    key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if debian:
        return Path(debian[-1]).parent
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster on 127.0.0.1; :meth:`start` it, :meth:`stop` it (which deletes it)."""

    def __init__(self, bin_dir: Path | None = None, *, durable: bool = False) -> None:
        found = bin_dir or find_bin_dir()
        if found is None:
            raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's "
                                    "postgresql package (.ci/run does)")
        self.bin_dir = found
        self.durable = durable
        """False (tests): fsync and synchronous commit off, for speed. True (benchmarks): the defaults."""
        self.port = 0
        self.root: Path | None = None
        self._account = pwd.getpwnam(SERVICE_USER) if os.geteuid() == 0 else None

    @property
    def data(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def _run(self, args: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._account is not None:
            command = ["setpriv", f"--reuid={self._account.pw_uid}", f"--regid={self._account.pw_gid}",
                       "--init-groups", "--", *command]
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment,
                              cwd=self.root, check=False)

    def start(self) -> None:
        """Creates the cluster and starts the server (retrying on another free port if one is taken)."""
        self.root = Path(tempfile.mkdtemp(prefix="evalkit-pg-"))
        if self._account is not None:
            os.chown(self.root, self._account.pw_uid, self._account.pw_gid)
        made = self._run(["initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
                          "--locale=C", "--no-sync"])
        if made.returncode != 0:
            self._remove()
            raise RuntimeError(f"initdb failed: {made.stderr.strip() or made.stdout.strip()}")
        settings = "-c listen_addresses=127.0.0.1 -c max_connections=50"
        if not self.durable:
            settings += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        for _ in range(5):
            self.port = _free_port()
            started = self._run(["pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l",
                                 str(self.root / "server.log"), "-o", f"-p {self.port} -k {self.root} {settings}"])
            if started.returncode == 0:
                return
        log = (self.root / "server.log").read_text(errors="replace")[-2000:]
        self._remove()
        raise RuntimeError(f"postgres did not start: {started.stderr.strip()}\n{log}")

    def stop(self) -> None:
        """Stops the server and deletes the cluster."""
        if self.root is None:
            return
        self._run(["pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data)])
        self._remove()

    def _remove(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def url(self, database: str = "postgres") -> str:
        """The URL of one database of this server."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """Creates a new empty database and returns its URL."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drops a database (closing its connections first)."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_server(*, durable: bool = False) -> Iterator[PostgresServer]:
    """A started server for the ``with`` block (benchmarks use this outside pytest)."""
    server = PostgresServer(durable=durable)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the test session (CI installs it; elsewhere it may be skipped)."""
    if find_bin_dir() is None:
        message = "PostgreSQL server binaries not found: install Debian's postgresql package (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with running_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database of the session's server for one test, dropped afterwards."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url.rsplit("/", 1)[1])
