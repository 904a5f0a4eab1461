"""Two processes append to one ADK session at once, each through its own service and
its own (soon stale) session object: every event of both is kept, each process's
events in its own order, the sequence gap-free, and the session state holds every
delta. ADK's database service answers the same workload with "stale session" errors
(``benchmarks/adapter_adk.py`` counts them)."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from pg_server import fresh_schema, with_options

from agent_sessions import open_store
from agent_sessions.adapters.adk import AgentSessionsSessionService
from agent_sessions.adapters.adk_events import session_id_for

EVENTS_PER_PROCESS = 20


def worker(url: str, name: str, created: Path, go: Path, ready: Any) -> None:
    """One process: its own service and session object, then appends as fast as it
    can once both processes hold the session."""

    async def main() -> None:
        async with AgentSessionsSessionService(url) as service:
            session = await service.get_session(app_name="app", user_id="u", session_id="shared")
            assert session is not None
            ready.send("ready")
            while not go.exists():
                await asyncio.sleep(0.005)
            for i in range(EVENTS_PER_PROCESS):
                event = Event(
                    invocation_id=f"{name}-inv",
                    author="user",
                    actions=EventActions(state_delta={f"{name}_{i}": i, "last_writer": name}),
                )
                await service.append_event(session, event)
            ready.send(sum(e.invocation_id == f"{name}-inv" for e in session.events))

    while not created.exists():
        time.sleep(0.005)
    asyncio.run(main())


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "shared.db")
        return
    server = request.getfixturevalue("pg_server_url")
    with fresh_schema(server) as schema:
        yield with_options(server, schema=schema, pool_size=2, max_overflow=2)


def test_two_processes_appending_to_one_session_keep_every_event(
    shared_url: str, tmp_path: Path
) -> None:
    # Forked before this process opens any store (no executor thread is copied), so
    # the workers start without importing ADK again.
    created, go = tmp_path / "created", tmp_path / "go"
    fork = multiprocessing.get_context("fork")
    pipes = [fork.Pipe(duplex=False) for _ in "ab"]
    workers = [
        fork.Process(target=worker, args=(shared_url, name, created, go, sender))
        for name, (_, sender) in zip("ab", pipes, strict=True)
    ]
    for process in workers:
        process.start()

    async def create() -> None:
        async with AgentSessionsSessionService(shared_url) as service:
            await service.create_session(app_name="app", user_id="u", session_id="shared")

    asyncio.run(create())
    created.touch()
    for receiver, _ in pipes:  # both hold the session before either appends
        assert receiver.poll(60)
        assert receiver.recv() == "ready"
    go.touch()
    for receiver, _ in pipes:
        assert receiver.poll(120)
        assert receiver.recv() == EVENTS_PER_PROCESS
    for process in workers:
        process.join(60)
        assert process.exitcode == 0

    async def read() -> object:
        async with AgentSessionsSessionService(shared_url) as service:
            return await service.get_session(app_name="app", user_id="u", session_id="shared")

    session = asyncio.run(read())
    events = session.events  # type: ignore[attr-defined]
    assert len(events) == 2 * EVENTS_PER_PROCESS
    for name in ("a", "b"):
        mine = [e for e in events if e.invocation_id == f"{name}-inv"]
        assert [next(iter(e.actions.state_delta)) for e in mine] == [
            f"{name}_{i}" for i in range(EVENTS_PER_PROCESS)
        ]
    state = session.state  # type: ignore[attr-defined]
    assert all(state[f"{n}_{i}"] == i for n in "ab" for i in range(EVENTS_PER_PROCESS))
    # the writer of the last event in the log wrote the last state change
    assert state["last_writer"] == events[-1].actions.state_delta["last_writer"]
    with open_store(shared_url) as store:
        stored = store.get_events(session_id_for("app", "u", "shared"))
        assert [e.sequence_number for e in stored] == list(range(1, 2 * EVENTS_PER_PROCESS + 1))
        assert len(store.list_runs(session_id_for("app", "u", "shared"))) == 2
