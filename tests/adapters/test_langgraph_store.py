"""A LangGraph thread is an ordinary agent-sessions session: queries, replay, the
command line and retention see it. Retention keeps the latest checkpoints, and the
graph carries on from what is kept. Also: the saver's failures are our errors, and
without the extra the module names it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from langgraph.types import Command
from langgraph_support import graph, run_to_the_end
from pg_server import fresh_schema, with_options

from agent_sessions import (
    AgentSessionsError,
    EventType,
    RetentionPolicy,
    ValidationError,
    open_store,
)
from agent_sessions.adapters.langgraph import AgentSessionsSaver
from agent_sessions.cli import cli

THREAD: Any = {"configurable": {"thread_id": "visible"}}


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store another process (the command line) can open too: not ``memory://``."""
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "shared.db")
    else:
        server = request.getfixturevalue("pg_server_url")
        with fresh_schema(server) as schema:
            yield with_options(server, schema=schema, pool_size=2, max_overflow=2)


def test_a_thread_shows_up_in_queries_replay_and_the_command_line(shared_url: str) -> None:
    with open_store(shared_url) as store:
        saver = AgentSessionsSaver(store)
        final = run_to_the_end(graph(saver), "visible", "yes")
        assert final["notes"][-1] == "published"
        checkpoints = list(saver.list(THREAD))

        page = store.query().search_sessions(agent_id="langgraph")
        assert [s.id for s in page.sessions] == ["visible"]
        found = store.query().search_events(
            session_ids=["visible"], types=[EventType.WORKSPACE_SNAPSHOT_TAKEN]
        )
        assert len(found.events) == len(checkpoints)
        latest = store.get_latest_sequence("visible")
        snapshot = store.history("visible").at(latest)
        assert snapshot.session.agent_id == "langgraph"
        assert snapshot.event_count == latest

        runner = CliRunner()
        listed = runner.invoke(cli, ["sessions", "--json", "--store", shared_url])
        assert listed.exit_code == 0, listed.output
        assert "visible" in listed.output
        shown = runner.invoke(cli, ["show", "visible", "--json", "--store", shared_url])
        assert shown.exit_code == 0, shown.output
        assert '"workspace_snapshot_taken"' in shown.output


def test_prune_keeps_the_latest_checkpoints_and_the_graph_carries_on(sqlite_url: str) -> None:
    with open_store(sqlite_url) as store:
        saver = AgentSessionsSaver(store)
        app = graph(saver)
        app.invoke({"notes": ["a"]}, THREAD)  # waits at the review
        before = app.get_state(THREAD)
        history = list(saver.list(THREAD))
        latest_sequence = store.get_latest_sequence("visible")

        saver.prune(["visible"], keep=2)
        kept = list(saver.list(THREAD))
        assert [t.config for t in kept] == [t.config for t in history[:2]]
        assert store.get_latest_sequence("visible") == latest_sequence  # numbers never reused
        assert store.history("visible").at(latest_sequence).gaps  # the replay shows the gap

        assert app.get_state(THREAD).values == before.values
        resumed = app.invoke(Command(resume="ok"), THREAD)
        assert resumed["notes"] == ["a", "draft 1", "review: ok", "published"]

        saver.prune(["visible"], strategy="delete")
        assert list(saver.list(THREAD)) == []
        with pytest.raises(ValidationError) as refused:
            saver.prune(["visible"], strategy="keep_some")
        assert refused.value.details["field"] == "strategy"


def test_retention_by_policy_keeps_the_latest_checkpoint_usable(sqlite_url: str) -> None:
    with open_store(sqlite_url) as store:
        saver = AgentSessionsSaver(store)
        app = graph(saver)
        final = run_to_the_end(app, "visible", "yes")
        pruned = store.maintenance().prune_all_sessions(
            RetentionPolicy.new(max_events_per_session=2)
        )
        assert pruned > 0
        remaining = list(saver.list(THREAD))
        assert 1 <= len(remaining) <= 2
        assert app.get_state(THREAD).values == final
        again = app.invoke({"notes": ["more"]}, THREAD)
        assert again["notes"][: len(final["notes"])] == final["notes"]


def test_wrong_configs_are_validation_errors(sqlite_url: str) -> None:
    with AgentSessionsSaver(sqlite_url) as saver:
        with pytest.raises(ValidationError):
            saver.get_tuple({"configurable": {}})
        with pytest.raises(ValidationError):
            saver.put_writes({"configurable": {"thread_id": "t"}}, [("c", 1)], "task")
        with pytest.raises(AgentSessionsError) as wrong:
            AgentSessionsSaver(42)  # type: ignore[arg-type]
        assert wrong.value.code == "validation_error"


def test_without_the_extra_the_module_names_it() -> None:
    script = textwrap.dedent(
        """
        import json, sys
        sys.modules["langgraph"] = None
        from agent_sessions import AgentSessionsError
        try:
            import agent_sessions.adapters.langgraph
        except AgentSessionsError as error:
            print(json.dumps(error.to_dict()))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    error = json.loads(done.stdout)
    assert error["code"] == "dependency_not_available"
    assert error["details"]["extra"] == "langgraph"
