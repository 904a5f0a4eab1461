"""Finding a real PostgreSQL server for the tests, and giving each test its own schema.

Order (issue 3): ``$AGENT_SESSIONS_TEST_PG_URL``; the server on 127.0.0.1:5432 (database
``test``, trust auth); otherwise a throwaway cluster started by ``pytest-postgresql``
when ``pg_ctl`` is installed. With ``CI=true`` a missing server fails the tests that
need it instead of skipping them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode, urlsplit, urlunsplit

import psycopg
import pytest

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/test"


def answers(url: str) -> bool:
    try:
        with psycopg.connect(_conninfo(url), connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def _conninfo(url: str) -> str:
    """A libpq URL without our own query options (schema, pool_size, ...)."""
    parts = urlsplit(url)
    scheme = "postgresql"
    return urlunsplit((scheme, parts.netloc, parts.path, "", ""))


def configured_url() -> str | None:
    """The first server that answers, or ``None`` (then try pytest-postgresql)."""
    explicit = os.environ.get("AGENT_SESSIONS_TEST_PG_URL")
    if explicit:
        return explicit
    return LOCAL_URL if answers(LOCAL_URL) else None


def can_start_cluster() -> bool:
    return shutil.which("pg_ctl") is not None and os.geteuid() != 0


def missing_server(reason: str) -> None:
    """Fail under CI (a missing Postgres is never a silent skip there), else skip."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"PostgreSQL is required when CI=true: {reason}")
    pytest.skip(f"no PostgreSQL server: {reason}")


def with_options(url: str, **options: object) -> str:
    parts = urlsplit(url)
    query = urlencode({k: str(v) for k, v in options.items()})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


@contextmanager
def fresh_schema(server_url: str) -> Iterator[str]:
    """A unique schema name, dropped with everything in it afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        yield schema
    finally:
        with psycopg.connect(_conninfo(server_url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def admin_connection(server_url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(_conninfo(server_url), autocommit=True)
