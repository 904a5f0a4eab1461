"""LangGraph's own conformance suite (``langgraph-checkpoint-conformance``) against
``AgentSessionsSaver``, every capability it has, on SQLite and PostgreSQL.

The suite is meant to be run by registering an async factory with
``checkpointer_test`` and awaiting ``validate``; it builds a fresh saver per
capability. Each test here does that for one backend and fails with the report's
failures when any test of any capability fails or a capability is not detected.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from langgraph.checkpoint.conformance.report import ProgressCallbacks
from pg_server import fresh_schema, with_options

from agent_sessions import open_async_store
from agent_sessions.adapters.langgraph import AgentSessionsSaver


@pytest.fixture(params=["sqlite", "postgres"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "conformance.db")
    else:
        server = request.getfixturevalue("pg_server_url")
        with fresh_schema(server) as schema:
            yield with_options(server, schema=schema, pool_size=2, max_overflow=2)


def test_the_saver_passes_every_capability_of_the_conformance_suite(backend_url: str) -> None:
    async def factory() -> AsyncGenerator[AgentSessionsSaver, None]:
        async with open_async_store(backend_url) as store:
            yield AgentSessionsSaver(store)

    registered = checkpointer_test(name="AgentSessionsSaver")(factory)
    report = asyncio.run(validate(registered, progress=ProgressCallbacks.quiet()))

    results = report.results
    assert set(results) == {capability.value for capability in ALL_CAPABILITIES}
    failures = {
        name: result.failures for name, result in results.items() if result.passed is not True
    }
    assert not failures, failures
    assert all(result.detected for result in results.values())
    assert sum(result.tests_passed for result in results.values()) >= 70
    assert report.passed_all()
