"""``AgentSessionsSessionService`` beside ADK's own session services on the same work.

Every service gets a fresh SQLite file in the same temporary folder (ADK's in-memory
service none) and does the same things: append ``--events`` events to one session in
turns of four (the user's message, a function call, its response, the answer; one
invocation per turn; each agent event with a session-state delta, the answer also with
an ``app:`` and a ``user:`` one), read the whole session ``--reads`` times, read it with
``GetSessionConfig(num_recent_events=20)`` ``--reads`` times, then race ``--races``
pairs of appends from two stale copies of the session (what two workers holding the
same session do). Throughput per second, each baseline beside ours, and the ratio ours /
baseline (above 1: we are faster); the race row counts the events kept (ADK's database
service refuses the stale writer: "modified in storage").

ADK's ``DatabaseSessionService`` needs SQLAlchemy (ADK's ``db`` extra); without it that
column is left out. ``SqliteSessionService`` and ``InMemorySessionService`` ship with ADK.

    .venv/bin/python benchmarks/adapter_adk.py [--events 400] [--reads 20] [--races 10]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from google.adk.sessions.sqlite_session_service import SqliteSessionService
from google.genai import types

from agent_sessions.adapters.adk import AgentSessionsSessionService

WINDOW = 20
APP, USER = "bench", "ada"


def turn_event(n: int) -> Event:
    """Event ``n``: four per turn, as a runner with one tool call produces them."""
    invocation = f"inv-{n // 4}"
    step = n % 4
    if step == 0:
        part = types.Part(text=f"Question {n}: what is the weather in Paris?")
        return Event(invocation_id=invocation, author="user", content=_content("user", part))
    if step == 1:
        call = types.FunctionCall(id=f"call_{n}", name="weather", args={"city": "Paris"})
        part = types.Part(function_call=call)
    elif step == 2:
        response = types.FunctionResponse(
            id=f"call_{n - 1}", name="weather", response={"forecast": "18C, sunny"}
        )
        part = types.Part(function_response=response)
    else:
        part = types.Part(text="It is 18C and sunny in Paris.")
    delta: dict[str, Any] = {"last_step": n}
    if step == 3:  # the answer: what an output_key and a tool's state writes leave
        delta.update({"turns": n // 4 + 1, "app:answers": n // 4 + 1, "user:city": "Paris"})
    return Event(
        invocation_id=invocation,
        author="forecaster",
        content=_content("model" if step != 2 else "user", part),
        actions=EventActions(state_delta=delta),
    )


def _content(role: str, part: types.Part) -> types.Content:
    return types.Content(role=role, parts=[part])


async def _rate(count: int, work: Callable[[int], Any]) -> float:
    start = time.perf_counter()
    for i in range(count):
        await work(i)
    return count / (time.perf_counter() - start)


async def figures(service: BaseSessionService, events: int, reads: int, races: int) -> list[float]:
    """[appends/s, full reads/s, recent-window reads/s, race events kept]."""
    session = await service.create_session(app_name=APP, user_id=USER)
    batch = [turn_event(n) for n in range(events)]

    async def append(i: int) -> None:
        await service.append_event(session, batch[i])

    async def read_all(_: int) -> None:
        await service.get_session(app_name=APP, user_id=USER, session_id=session.id)

    async def read_recent(_: int) -> None:
        await service.get_session(
            app_name=APP,
            user_id=USER,
            session_id=session.id,
            config=GetSessionConfig(num_recent_events=WINDOW),
        )

    appends = await _rate(events, append)
    full = await _rate(reads, read_all)
    recent = await _rate(reads, read_recent)
    kept = 0
    for k in range(races):
        latest = await service.get_session(app_name=APP, user_id=USER, session_id=session.id)
        assert latest is not None
        copies = [latest.model_copy(deep=True) for _ in range(2)]
        outcomes = await asyncio.gather(
            *(
                service.append_event(copy, Event(invocation_id=f"race-{k}", author="user"))
                for copy in copies
            ),
            return_exceptions=True,
        )
        kept += sum(not isinstance(outcome, BaseException) for outcome in outcomes)
    return [appends, full, recent, float(kept)]


@contextlib.asynccontextmanager
async def _closing(service: Any) -> AsyncIterator[BaseSessionService]:
    try:
        yield service
    finally:
        close = getattr(service, "close", None)
        if close is not None:
            await close()


def _database_service(path: Path) -> BaseSessionService | None:
    try:
        from google.adk.sessions.database_session_service import DatabaseSessionService

        return DatabaseSessionService(f"sqlite+aiosqlite:///{path}")
    except (ImportError, ValueError):
        print("(ADK's DatabaseSessionService needs SQLAlchemy, ADK's `db` extra: skipped)")
        return None


def _pg_url(server: str | None) -> tuple[str, Callable[[], None]] | None:
    if not server:
        return None
    try:
        import psycopg

        admin = psycopg.connect(server, autocommit=True, connect_timeout=2)
    except Exception:
        print(f"(PostgreSQL at {server} does not answer: skipped)")
        return None
    schema = f"bench_{uuid.uuid4().hex[:8]}"

    def drop() -> None:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()

    return f"{server}?schema={schema}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--reads", type=int, default=20)
    parser.add_argument("--races", type=int, default=10)
    parser.add_argument("--postgres", default=None, metavar="URL")
    args = parser.parse_args()
    columns: list[tuple[str, list[float]]] = []

    async def measure(name: str, service: BaseSessionService | None) -> None:
        if service is None:
            return
        async with _closing(service) as opened:
            columns.append((name, await figures(opened, args.events, args.reads, args.races)))

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        asyncio.run(
            measure("ours sqlite", AgentSessionsSessionService(f"sqlite:///{folder / 'ours.db'}"))
        )
        pg = _pg_url(args.postgres)
        if pg is not None:
            try:
                asyncio.run(measure("ours postgres", AgentSessionsSessionService(pg[0])))
            finally:
                pg[1]()
        asyncio.run(measure("ADK Database", _database_service(folder / "adk-db.db")))
        asyncio.run(measure("ADK Sqlite", SqliteSessionService(str(folder / "adk-lite.db"))))
        asyncio.run(measure("ADK InMemory", InMemorySessionService()))

    ours = columns[0][1]
    rows = [
        ("append_event /s", 0),
        ("get_session (all) /s", 1),
        (f"get_session (last {WINDOW}) /s", 2),
        (f"stale race: kept of {2 * args.races}", 3),
    ]
    print(
        f"{args.events} events in one session (turns of 4, state in 3 scopes), "
        f"{args.reads} reads, {args.races} races of 2 stale appends"
    )
    head = f"{'':<26}" + "".join(f"{name:>15}" for name, _ in columns)
    head += "".join(
        f"{'ours/' + name.split()[1]:>15}" for name, _ in columns[1:] if name.startswith("ADK")
    )
    print(head)
    print("-" * len(head))
    for label, index in rows:
        line = f"{label:<26}" + "".join(f"{values[index]:>15.0f}" for _, values in columns)
        for name, values in columns[1:]:
            if name.startswith("ADK"):
                ratio = ours[index] / values[index] if values[index] else float("inf")
                line += f"{ratio:>15.3g}"
        print(line)


if __name__ == "__main__":
    main()
