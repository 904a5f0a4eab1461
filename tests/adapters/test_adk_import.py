"""``import adk``: databases written by ADK's own ``DatabaseSessionService`` (SQLite and
PostgreSQL) and ``SqliteSessionService``, in the test itself, imported into a store;
what our session service then returns is what ADK's returned. Importing twice adds
nothing; a row that cannot be decoded is reported and skipped."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import BaseSessionService
from google.adk.sessions.database_session_service import DatabaseSessionService
from google.adk.sessions.session import Session
from google.adk.sessions.sqlite_session_service import SqliteSessionService
from google.genai import types
from pg_server import admin_connection, fresh_schema

from agent_sessions import ValidationError, open_store
from agent_sessions.adapters.adk import AgentSessionsSessionService
from agent_sessions.cli import entry
from agent_sessions.importers.adk import import_adk


def text_event(author: str, text: str, invocation: str, **fields: Any) -> Event:
    role = "user" if author == "user" else "model"
    return Event(
        invocation_id=invocation,
        author=author,
        content=types.Content(role=role, parts=[types.Part(text=text)]),
        **fields,
    )


async def populate(service: BaseSessionService) -> list[Session]:
    """Two users' sessions with events, a tool call, and every state scope."""
    first = await service.create_session(
        app_name="shop", user_id="ada", session_id="s1", state={"app:tier": "gold", "cart": []}
    )
    await service.append_event(first, text_event("user", "Find shoes", "inv1"))
    call = types.FunctionCall(id="c1", name="search", args={"q": "shoes"})
    await service.append_event(
        first,
        Event(
            invocation_id="inv1",
            author="shop_agent",
            content=types.Content(role="model", parts=[types.Part(function_call=call)]),
        ),
    )
    result = types.FunctionResponse(id="c1", name="search", response={"hits": 3})
    await service.append_event(
        first,
        Event(
            invocation_id="inv1",
            author="shop_agent",
            content=types.Content(role="user", parts=[types.Part(function_response=result)]),
            actions=EventActions(state_delta={"user:size": 38, "cart": ["s-1"]}),
        ),
    )
    await service.append_event(
        first,
        text_event(
            "shop_agent",
            "Three pairs found.",
            "inv1",
            usage_metadata=types.GenerateContentResponseUsageMetadata(
                prompt_token_count=50, candidates_token_count=5, total_token_count=55
            ),
        ),
    )
    second = await service.create_session(app_name="shop", user_id="bob", session_id="s2")
    await service.append_event(second, text_event("user", "Hello", "inv9"))
    return [first, second]


async def read_all(service: BaseSessionService) -> dict[tuple[str, str], Session | None]:
    return {
        (user, sid): await service.get_session(app_name="shop", user_id=user, session_id=sid)
        for user, sid in (("ada", "s1"), ("bob", "s2"))
    }


def written_by(service: BaseSessionService) -> dict[tuple[str, str], Session | None]:
    async def main() -> dict[tuple[str, str], Session | None]:
        await populate(service)
        sessions = await read_all(service)
        close = getattr(service, "close", None)
        if close is not None:
            await close()
        return sessions

    return asyncio.run(main())


def read_back(url: str) -> dict[tuple[str, str], Session | None]:
    async def main() -> dict[tuple[str, str], Session | None]:
        async with AgentSessionsSessionService(url) as service:
            return await read_all(service)

    return asyncio.run(main())


def assert_same(ours: dict[Any, Session | None], theirs: dict[Any, Session | None]) -> None:
    assert ours.keys() == theirs.keys()
    for key, expected in theirs.items():
        got = ours[key]
        assert expected is not None
        assert got is not None
        assert got.events == expected.events
        assert got.state == expected.state
        assert got.last_update_time == pytest.approx(expected.last_update_time, abs=1e-5)


@pytest.fixture(params=["database-sqlite", "sqlite-service", "database-postgres"])
def adk_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """(URL to import, the ADK service that wrote it)."""
    if request.param == "database-sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'adk.db'}"
        yield url, DatabaseSessionService(url)
    elif request.param == "sqlite-service":
        yield str(tmp_path / "adk-lite.db"), SqliteSessionService(str(tmp_path / "adk-lite.db"))
    else:
        server = request.getfixturevalue("pg_server_url")
        with fresh_schema(server) as schema:
            with admin_connection(server) as admin:
                admin.execute(f'CREATE SCHEMA "{schema}"')
            base = server.split("://", 1)[1].split("?", 1)[0]
            options = quote(f"-csearch_path={schema}")
            service = DatabaseSessionService(
                f"postgresql+psycopg://{base}",
                connect_args={"options": f"-csearch_path={schema}"},
            )
            yield f"postgresql://{base}?options={options}", service


def test_import_matches_what_adk_returned_and_twice_adds_nothing(
    adk_database: tuple[str, Any], sqlite_url: str
) -> None:
    source, service = adk_database
    theirs = written_by(service)
    with open_store(sqlite_url) as store:
        report = import_adk(store, source)
        assert (report.sessions, report.runs, report.events, report.skipped) == (2, 2, 5, [])
        again = import_adk(store, source)
        assert (again.sessions, again.runs, again.events) == (0, 0, 0)
        assert again.already_present == 2 + 2 + 5
    assert_same(read_back(sqlite_url), theirs)


def test_an_undecodable_row_is_reported_and_skipped(tmp_path: Path, sqlite_url: str) -> None:
    path = tmp_path / "adk.db"
    written_by(DatabaseSessionService(f"sqlite+aiosqlite:///{path}"))
    with sqlite3.connect(path) as db:
        (bad_id,) = db.execute(
            "SELECT id FROM events WHERE session_id = 's1' ORDER BY timestamp LIMIT 1"
        ).fetchone()
        db.execute("UPDATE events SET event_data = '[1, 2]' WHERE id = ?", (bad_id,))
        row = db.execute(
            "SELECT id, event_data FROM events WHERE session_id = 's1' ORDER BY timestamp"
        ).fetchall()[1]
        refused = {**json.loads(row[1]), "content": {"parts": "not a list"}}
        db.execute("UPDATE events SET event_data = ? WHERE id = ?", (json.dumps(refused), row[0]))
    cli = CliRunner()
    result = cli.invoke(entry.cli, ["--store", sqlite_url, "import", "adk", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["sessions"], report["events"]) == (2, 3)
    assert [skip["path"] for skip in report["skipped"]] == [
        f"events shop/ada/s1/{bad_id}",
        f"events shop/ada/s1/{row[0]}",
    ]
    assert "not a JSON object" in report["skipped"][0]["reason"]
    ours = read_back(sqlite_url)[("ada", "s1")]
    assert ours is not None
    assert len(ours.events) == 2
    assert ours.state["user:size"] == 38


def test_a_database_without_adk_tables_is_refused(tmp_path: Path, sqlite_url: str) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with open_store(sqlite_url) as store, pytest.raises(ValidationError) as refused:
        import_adk(store, f"sqlite:///{empty}")
    assert refused.value.code == "validation_error"
    result = CliRunner().invoke(
        entry.cli, ["--store", sqlite_url, "import", "adk", "mysql://nowhere/db"]
    )
    assert result.exit_code == 1
    assert "unsupported database URL" in result.output
