"""Fixtures shared by the test suite.

Kept to backend locations only: each suite decides how to open and close its stores.
PostgreSQL fixtures live in ``pg_fixtures.py`` (loaded below as a plugin): finding a
server takes more code than a file name does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_server import fresh_schema, with_options

from agent_sessions import open_store
from agent_sessions.composition import Store as EventSourcedSessionStore

pytest_plugins = ["pg_fixtures"]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file of this test alone. ``tmp_path`` is absolute, so the URL has four
    slashes (``sqlite:////tmp/...``), the form ``open_store`` reads as an absolute path."""
    return "sqlite:///" + str(tmp_path / "agent_sessions.db")


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One backend per parameter: the URL of a fresh, empty store. PostgreSQL gets a
    schema of its own, dropped afterwards, and a small pool."""
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "store.db")
    else:
        server = request.getfixturevalue("pg_server_url")
        with fresh_schema(server) as schema:
            yield with_options(server, schema=schema, pool_size=2, max_overflow=2)


@pytest.fixture(params=["sqlite", "postgres"])
def durable_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store that outlives its opening, for a second handle, another process or a
    command line that opens it anew: a SQLite file, or a PostgreSQL schema of its own
    (``memory://`` is private to one store object)."""
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "store.db")
    else:
        server = request.getfixturevalue("pg_server_url")
        with fresh_schema(server) as schema:
            yield with_options(server, schema=schema, pool_size=2, max_overflow=2)


@pytest.fixture
def store(store_url: str) -> Iterator[EventSourcedSessionStore]:
    """An open store on each backend of ``store_url``, closed after the test."""
    with open_store(store_url) as opened:
        yield opened
