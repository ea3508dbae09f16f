"""Shared fixtures: an isolated evalkit home per test, and one embedded model server per session."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from evalkit.providers.local import LocalServer, find_model

from .postgres import postgres_server, postgres_url  # noqa: F401 -- a throwaway Postgres: session server, database per test

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own evalkit home and working directory; no key leaks in from the shell."""
    monkeypatch.setenv("EVALKIT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("EVALKIT_LOCAL_MODEL", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def model_server() -> Iterator[LocalServer]:
    """The real embedded model, served on loopback for the whole test session."""
    server = LocalServer(find_model())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def write(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Writes a dedented file under tmp_path and returns its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), "utf-8")
        return path

    return _write
