"""``pop_item`` is atomic across processes: two processes popping one session until
it is empty get every item exactly once between them (the SDK's SQLAlchemy session
can hand one item to both), and each pop is one marker in the log, never a gap."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai_agents_support import run
from pg_server import fresh_schema, with_options

from agent_sessions import EventType, open_async_store, open_store
from agent_sessions.adapters.openai_agents import AgentSessionsSession

WORKER = Path(__file__).with_name("openai_agents_pop_worker.py")
ITEMS = 60


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "race.db")
        return
    server = request.getfixturevalue("pg_server_url")
    with fresh_schema(server) as schema:
        yield with_options(server, schema=schema, pool_size=2, max_overflow=2)


def test_two_processes_popping_get_each_item_once(shared_url: str, tmp_path: Path) -> None:
    items = [{"role": "user", "content": f"item {i}"} for i in range(ITEMS)]

    async def fill() -> None:
        async with open_async_store(shared_url) as store:
            await AgentSessionsSession("race", store=store).add_items(items)

    run(fill())
    start = tmp_path / "start"
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), shared_url, "race", str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
    start.touch()
    got: list[list[str]] = []
    for worker in workers:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err
        got.append([line for line in out.splitlines() if line])

    assert all(got), "one process popped nothing: the two did not race"
    popped = [json.loads(line)["content"] for lines in got for line in lines]
    assert sorted(popped) == sorted(item["content"] for item in items)  # once each
    for lines in got:  # each process popped newest first
        numbers = [int(json.loads(line)["content"].split()[1]) for line in lines]
        assert numbers == sorted(numbers, reverse=True)

    with open_store(shared_url) as store:
        events = store.get_events("race")
        assert [e.sequence_number for e in events] == list(range(1, 2 * ITEMS + 1))
        markers = [e for e in events if e.type is EventType.ERROR_RECOVERED]
        assert len(markers) == ITEMS
        assert len({m.data["undoes"] for m in markers}) == ITEMS
        assert len({m.id for m in markers}) == ITEMS
