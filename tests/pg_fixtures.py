"""Pytest fixtures for PostgreSQL, loaded by conftest.py as a plugin."""

from __future__ import annotations

import pytest
from pg_server import can_start_cluster, configured_url, missing_server


@pytest.fixture(scope="session")
def pg_server_url(request: pytest.FixtureRequest) -> str:
    """The URL of a reachable server (see pg_server.py for the search order)."""
    url = configured_url()
    if url:
        return url
    if can_start_cluster():
        proc = request.getfixturevalue("postgresql_proc")
        return f"postgresql://{proc.user}@{proc.host}:{proc.port}/postgres"
    missing_server("nothing answers on 127.0.0.1:5432 and pg_ctl cannot start a cluster here")
    raise AssertionError("unreachable")
