"""``import openai-agents``: the SDK's session tables into a store. Sources are written
by the SDK itself: a ``SQLiteSession`` file, and ``SQLAlchemySession`` tables on
PostgreSQL (through SQLAlchemy's async psycopg 3 driver, in a schema of the test's own,
dropped afterwards). Every item comes over with its time, importing again adds nothing,
an undecodable row is reported and skipped, and the adapter carries on the
conversation."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest
from agents import SQLiteSession
from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession
from click.testing import CliRunner
from openai_agents_support import run
from pg_server import admin_connection, fresh_schema
from sqlalchemy.ext.asyncio import create_async_engine

from agent_sessions import AgentSessionsError, EventType, open_async_store, open_store
from agent_sessions.adapters.openai_agents import AgentSessionsSession
from agent_sessions.cli import cli
from agent_sessions.importers.openai_agents import import_openai_agents

ALICE: list[Any] = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "type": "function_call",
        "call_id": "call_1",
        "name": "weather",
        "arguments": '{"city": "Paris"}',
        "id": "fc_1",
    },
    {"type": "function_call_output", "call_id": "call_1", "output": "18°C"},
    {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "18°C and sunny.", "annotations": []}],
    },
    {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "hm"}]},
]
BOB: list[Any] = [{"role": "user", "content": "こんにちは"}, {"role": "assistant", "content": "😊"}]


def make_sqlite_source(path: Path, messages_table: str = "agent_messages") -> None:
    """A SQLiteSession file: two sessions written by the SDK, then two broken rows and
    distinct times (the SDK's CURRENT_TIMESTAMP has one-second steps)."""

    async def write() -> None:
        for session_id, items in (("alice", ALICE), ("bob", BOB)):
            session = SQLiteSession(session_id, path, messages_table=messages_table)
            await session.add_items(items)
            session.close()

    run(write())
    with sqlite3.connect(path) as db:
        db.execute(
            f"INSERT INTO {messages_table} (session_id, message_data) VALUES "
            "('bob', '{not json'), ('bob', '')"
        )
        db.execute(
            f"UPDATE {messages_table} SET created_at = '2025-01-02 03:04:' || printf('%02d', id)"
        )
        db.execute("UPDATE agent_sessions SET created_at = '2025-01-02 03:00:00'")


def test_a_sqlite_session_file_imports_once_with_its_times(store_url: str, tmp_path: Path) -> None:
    source = tmp_path / "sdk.db"
    make_sqlite_source(source)

    async def check() -> tuple[list[Any], list[Any]]:
        async with open_async_store(store_url) as facade:
            store = facade.sync_store
            report = await facade.call(lambda: import_openai_agents(store, source))
            assert (report.sessions, report.events, report.already_present) == (2, 7, 0)
            assert sorted(s.line for s in report.skipped) == [8, 9]
            assert all("bob" in s.reason and "not JSON" in s.reason for s in report.skipped)

            again = await facade.call(lambda: import_openai_agents(store, f"sqlite:///{source}"))
            assert (again.sessions, again.events, again.already_present) == (0, 0, 9)

            events = store.get_events("alice")
            assert [e.data["item"] for e in events] == ALICE
            assert [e.type for e in events] == [
                EventType.MESSAGE_SENT,
                EventType.TOOL_CALL_STARTED,
                EventType.TOOL_CALL_COMPLETED,
                EventType.MESSAGE_RECEIVED,
                EventType.MESSAGE_STREAMED,
            ]
            assert events[2].data["tool_name"] == "weather"
            assert [e.timestamp.second for e in events] == [1, 2, 3, 4, 5]
            assert events[0].timestamp == datetime(2025, 1, 2, 3, 4, 1, tzinfo=UTC)
            alice = store.get_session("alice")
            assert alice.created_at == datetime(2025, 1, 2, 3, 0, tzinfo=UTC)
            assert alice.agent_id == "openai-agents"

            # The adapter carries on the imported conversation.
            session = AgentSessionsSession("bob", store=facade)
            await session.add_items([{"role": "user", "content": "again"}])
            reference = SQLiteSession("bob", source)
            try:
                return await session.get_items(), await reference.get_items()
            finally:
                reference.close()

    ours, theirs = run(check())
    assert theirs == BOB  # the SDK skips the rows that are not JSON too
    assert ours == [*BOB, {"role": "user", "content": "again"}]


def test_custom_table_names_and_bad_sources(tmp_path: Path) -> None:
    source = tmp_path / "custom.db"
    make_sqlite_source(source, messages_table="chat_items")
    with open_store("memory://") as store:
        report = import_openai_agents(store, source, messages_table="chat_items")
        assert report.events == 7
        for bad, field in (
            ({"messages_table": "x; DROP TABLE y"}, "messages_table"),
            ({"source": tmp_path / "missing.db"}, "source"),
            ({"source": "mysql://host/db"}, "source"),
        ):
            arguments: dict[str, Any] = {"source": source, **bad}
            with pytest.raises(AgentSessionsError) as error:
                import_openai_agents(store, **arguments)
            assert error.value.code == "validation_error"
            assert error.value.details["field"] == field
        with pytest.raises(AgentSessionsError) as missing_table:
            import_openai_agents(store, source, messages_table="nope")
        assert missing_table.value.code == "storage_error"


def make_sqlalchemy_source(pg_server_url: str, schema: str) -> None:
    """``SQLAlchemySession`` tables in ``schema``, made and written by the SDK: alice's
    and bob's items, a row that is JSON but not an item (the SDK stores whatever it is
    given), and a session whose only item was popped, so it has no rows."""
    url = pg_server_url.replace("postgresql://", "postgresql+psycopg://", 1)
    # The SDK's tables are unqualified: the schema is chosen by the search path.
    engine = create_async_engine(url, connect_args={"options": f"-c search_path={schema}"})

    async def write() -> None:
        try:
            for session_id, items in (("alice", ALICE), ("bob", BOB)):
                session = SQLAlchemySession(session_id, engine=engine, create_tables=True)
                await session.add_items(items)
            bob = SQLAlchemySession("bob", engine=engine)
            await bob.add_items([cast(Any, "a string")])
            empty = SQLAlchemySession("empty", engine=engine)
            await empty.add_items([{"role": "user", "content": "gone"}])
            assert await empty.pop_item() == {"role": "user", "content": "gone"}
        finally:
            await engine.dispose()

    run(write())


def test_sqlalchemy_tables_on_postgres_through_the_cli(pg_server_url: str, tmp_path: Path) -> None:
    target = "sqlite:///" + str(tmp_path / "imported.db")
    with fresh_schema(pg_server_url) as schema:
        with admin_connection(pg_server_url) as db:
            db.execute(f'CREATE SCHEMA "{schema}"')
        make_sqlalchemy_source(pg_server_url, schema)
        source = pg_server_url.replace("postgresql://", "postgresql+asyncpg://", 1)
        options = [
            "--sessions-table",
            f"{schema}.agent_sessions",
            "--messages-table",
            f"{schema}.agent_messages",
        ]

        def cli_import() -> dict[str, Any]:
            result = CliRunner().invoke(
                cli, ["import", "openai-agents", source, *options, "--json", "--store", target]
            )
            assert result.exit_code == 0, result.output
            document: dict[str, Any] = json.loads(result.stdout)
            return document

        first = cli_import()
        assert (first["sessions"], first["events"]) == (3, 7)
        [skipped] = first["skipped"]
        assert "not a JSON object" in skipped["reason"]
        second = cli_import()
        assert (second["sessions"], second["events"], second["already_present"]) == (0, 0, 10)

        with psycopg.connect(pg_server_url) as check:
            stamp = check.execute(
                f"SELECT created_at FROM {schema}.agent_messages ORDER BY id LIMIT 1"
            ).fetchone()
        assert stamp is not None
    with open_store(target) as store:
        assert [e.data["item"] for e in store.get_events("bob")] == BOB
        first_event = store.get_events("alice")[0]
        assert first_event.timestamp == stamp[0].replace(tzinfo=UTC)
        assert store.get_events("empty") == []
        assert store.get_session("empty").agent_id == "openai-agents"


def test_the_cli_exits_1_when_nothing_is_importable(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    SQLiteSession("nobody", empty).close()  # the SDK's tables, no rows
    target = "sqlite:///" + str(tmp_path / "store.db")
    result = CliRunner().invoke(cli, ["import", "openai-agents", str(empty), "--store", target])
    assert result.exit_code == 1
    assert "nothing importable" in result.output
    missing = CliRunner().invoke(
        cli, ["import", "openai-agents", str(tmp_path / "nope.db"), "--store", target]
    )
    assert missing.exit_code != 0
    assert "no SQLite database" in missing.output
