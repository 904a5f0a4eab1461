"""``import langgraph``: databases made by LangGraph's own ``SqliteSaver`` and
``PostgresSaver`` in the test, imported into a store; the imported threads read back
through ``AgentSessionsSaver`` exactly as the source saver reads them, and the graph
carries on from them. Undecodable rows are reported and skipped; a second import adds
nothing."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command
from langgraph_support import graph, run_to_the_end
from pg_server import admin_connection, fresh_schema, with_options

from agent_sessions import ValidationError, open_store
from agent_sessions.adapters.langgraph import AgentSessionsSaver
from agent_sessions.cli import cli
from agent_sessions.importers.langgraph import import_langgraph

BAD_ROW = (
    "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,"
    " type, checkpoint, metadata) VALUES ('broken', '', 'c-1', NULL, 'msgpack', {blob}, '{{}}')"
)


@contextmanager
def sqlite_source(tmp_path: Path) -> Iterator[tuple[str, BaseCheckpointSaver[Any]]]:
    path = tmp_path / "langgraph.sqlite"
    with SqliteSaver.from_conn_string(str(path)) as saver:
        saver.setup()
        yield "sqlite:///" + str(path), saver


@contextmanager
def postgres_source(server: str) -> Iterator[tuple[str, BaseCheckpointSaver[Any]]]:
    with fresh_schema(server) as schema:
        with admin_connection(server) as admin:
            admin.execute(f'CREATE SCHEMA "{schema}"')
        url = with_options(server, options=f"-csearch_path={schema}")
        with PostgresSaver.from_conn_string(url) as saver:
            saver.setup()
            yield url, saver


@pytest.fixture(params=["sqlite", "postgres"])
def source(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, BaseCheckpointSaver[Any]]]:
    opened: AbstractContextManager[tuple[str, BaseCheckpointSaver[Any]]]
    if request.param == "sqlite":
        opened = sqlite_source(tmp_path)
    else:
        opened = postgres_source(request.getfixturevalue("pg_server_url"))
    with opened as made:
        yield made


def break_rows(saver: BaseCheckpointSaver[Any]) -> None:
    """A checkpoint and a pending write the serde cannot read."""
    conn: Any = saver.conn  # type: ignore[attr-defined]
    if isinstance(saver, SqliteSaver):
        conn.execute(BAD_ROW.format(blob="x'c1c1c1'"))
        conn.execute(
            "INSERT INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path,"
            " idx, channel, type, value) SELECT thread_id, checkpoint_ns, checkpoint_id, 'bad',"
            " '', 0, 'notes', 'msgpack', x'c1' FROM checkpoints WHERE thread_id = 'one' LIMIT 1"
        )
        conn.commit()
    else:
        conn.execute(
            "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, checkpoint,"
            " metadata)"
            ' VALUES (\'broken\', \'\', \'c-1\', \'{"v": 1, "id": "c-1", "ts": "x",'
            ' "channel_versions": {"notes": "9"}, "versions_seen": {}}\', \'{}\')'
        )
        conn.execute(
            "INSERT INTO checkpoint_blobs VALUES ('broken', '', 'notes', '9', 'msgpack', '\\xc1')"
        )
        conn.execute(
            "INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx,"
            " channel, type, blob) SELECT thread_id, checkpoint_ns, checkpoint_id, 'bad', 0,"
            " 'notes', 'msgpack', '\\xc1' FROM checkpoints WHERE thread_id = 'one' LIMIT 1"
        )


def listed(saver: BaseCheckpointSaver[Any], thread_id: str) -> list[Any]:
    return [
        (t.config, t.checkpoint, t.metadata, t.parent_config, t.pending_writes)
        for t in saver.list({"configurable": {"thread_id": thread_id}})
    ]


def test_a_langgraph_database_imports_whole_once_and_the_graph_carries_on(
    source: tuple[str, BaseCheckpointSaver[Any]], tmp_path: Path
) -> None:
    url, original = source
    app = graph(original)
    run_to_the_end(app, "one", "yes")
    app.invoke({"notes": ["two"]}, {"configurable": {"thread_id": "two"}})  # left waiting
    expected = {t: listed(original, t) for t in ("one", "two")}
    break_rows(original)

    with open_store("sqlite:///" + str(tmp_path / "store.db")) as store:
        report = import_langgraph(store, url)
        assert (report.sessions, report.runs) == (2, 0)
        stored_writes = sum(len(x[4] or []) for rows in expected.values() for x in rows)
        checkpoints = sum(len(rows) for rows in expected.values())
        assert report.events == checkpoints + stored_writes
        skipped = sorted((s.path.split()[1], s.reason.split(":")[0]) for s in report.skipped)
        assert skipped == [
            ("broken", "cannot decode the checkpoint"),
            ("one", "cannot decode the pending write"),
        ]
        assert all(s.line > 0 for s in report.skipped)

        saver = AgentSessionsSaver(store)
        for thread_id, rows in expected.items():
            assert listed(saver, thread_id) == rows
            session = store.get_session(thread_id)
            first = store.get_events(thread_id, limit=1)[0]
            assert session.created_at == first.timestamp == _ts(rows[-1][1])

        again = import_langgraph(store, url)
        assert (again.sessions, again.events) == (0, 0)
        assert again.already_present == 2 + report.events

        # The waiting thread resumes on the imported store as it would have on its own.
        resumed = graph(saver).invoke(Command(resume="no"), {"configurable": {"thread_id": "two"}})
        assert resumed["notes"] == ["two", "draft 1", "review: no", "published"]


def _ts(checkpoint: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(checkpoint["ts"])


def test_the_command_line_imports_reports_as_json_and_refuses_what_is_not_langgraph(
    tmp_path: Path,
) -> None:
    with sqlite_source(tmp_path) as (url, saver):
        run_to_the_end(graph(saver), "cli", "yes")
    store = "sqlite:///" + str(tmp_path / "cli.db")
    runner = CliRunner()
    first = runner.invoke(cli, ["import", "langgraph", url, "--json", "--store", store])
    assert first.exit_code == 0, first.output
    counts = json.loads(first.output)
    assert (counts["sessions"], counts["skipped"]) == (1, [])
    assert counts["events"] > 0
    second = runner.invoke(cli, ["import", "langgraph", url, "--json", "--store", store])
    assert json.loads(second.output)["events"] == 0

    not_langgraph = tmp_path / "other.sqlite"
    sqlite3.connect(not_langgraph).close()
    refused = runner.invoke(cli, ["import", "langgraph", str(not_langgraph), "--store", store])
    assert refused.exit_code != 0
    assert "not a LangGraph checkpoint database" in refused.output
    with pytest.raises(ValidationError), open_store(store) as opened:
        import_langgraph(opened, "mysql://nowhere")
