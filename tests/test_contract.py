"""The built-in backends held to the ``SessionStore`` contract of ``agent_sessions.testing``.

Every built-in store can prune (``Store.prune_events``), so each declares
``supports_pruning``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pg_server import fresh_schema, with_options

from agent_sessions import SessionStore, open_store
from agent_sessions.testing import SessionStoreContract


class TestMemoryStoreContract(SessionStoreContract):
    supports_pruning = True

    @pytest.fixture
    def store(self) -> Iterator[SessionStore]:
        with open_store("memory://") as store:
            yield store


class TestSQLiteStoreContract(SessionStoreContract):
    # A file on disk can be opened again, by this process or another one.
    supports_multiple_processes = True
    supports_pruning = True

    @pytest.fixture
    def store_url(self, sqlite_url: str) -> str:
        return sqlite_url

    @pytest.fixture
    def store(self, store_url: str) -> Iterator[SessionStore]:
        with open_store(store_url) as store:
            yield store


class TestPostgresStoreContract(SessionStoreContract):
    # One schema per test on a real server; other processes reach it by URL.
    supports_multiple_processes = True
    supports_pruning = True

    @pytest.fixture
    def store_url(self, pg_server_url: str) -> Iterator[str]:
        with fresh_schema(pg_server_url) as schema:
            yield with_options(pg_server_url, schema=schema, pool_size=2, max_overflow=6)

    @pytest.fixture
    def store(self, store_url: str) -> Iterator[SessionStore]:
        with open_store(store_url) as store:
            yield store
