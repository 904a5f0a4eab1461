"""The conventions every ``agent-sessions`` command follows, through click's test runner
on SQLite and PostgreSQL: where the store comes from (``--store`` before or after the
command, ``$AGENT_SESSIONS_URL``, the default file), that read commands never create a
store, exit codes (0 / 1 with one line saying what to do / 2 for storage failures),
``--json`` output parsed back, ``--version`` and ``python -m agent_sessions``.

Replay and fork have their own file (``test_cli_replay.py``); ``migrate`` is tested
with the stores it migrates (``test_migrations.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from pg_server import fresh_schema, with_options

from agent_sessions import __version__, open_store
from agent_sessions.backends.schema import CURRENT_VERSION
from agent_sessions.cli import cli, main


@pytest.fixture
def url(durable_url: str) -> str:
    """The store the commands open anew each time (``conftest.durable_url``)."""
    return durable_url


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """The command, its stdout not a terminal and no ``COLUMNS``: what a pipe sees."""
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": None, **(env or {})})


def demo_session(url: str) -> str:
    result = invoke("demo", "--scripted", "--json", "--store", url)
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["session"]["id"])


def test_demo_then_every_read_command_as_json(url: str) -> None:
    session_id = demo_session(url)

    listed = invoke("sessions", "--json", "--store", url)
    assert listed.exit_code == 0, listed.output
    assert [s["id"] for s in json.loads(listed.stdout)["sessions"]] == [session_id]

    shown = invoke("show", session_id, "--json", "--store", url)
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert document["session"]["status"] == "completed"
    [run] = document["runs"]
    assert run["token_usage"]["cache_read_tokens"] == 2048 + 2560  # both usage reports
    types = [event["type"] for event in document["events"]]
    assert types[0] == "session_created"
    assert "tool_call_failed" in types
    assert [e["sequence_number"] for e in document["events"]] == list(range(1, len(types) + 1))
    # the demo's secret went through the redactor
    assert "AKIAIOSFODNN7EXAMPLE" not in shown.stdout

    status = invoke("projections", "status", "--json", "--store", url)
    assert status.exit_code == 0, status.output
    names = {p["name"] for p in json.loads(status.stdout)["projections"]}
    assert {"sessions", "runs"} <= names

    migrated = invoke("migrate", "--json", "--store", url)
    assert migrated.exit_code == 0, migrated.output
    report = json.loads(migrated.stdout)
    assert report["version_before"] == report["version_after"] == CURRENT_VERSION


def test_text_output_of_the_read_commands(url: str) -> None:
    session_id = demo_session(url)
    listed = invoke("sessions", "--store", url)
    assert listed.exit_code == 0, listed.output
    assert session_id in listed.stdout
    assert "demo-agent" in listed.stdout
    shown = invoke("show", session_id, "--store", url)
    assert shown.exit_code == 0, shown.output
    assert f"session {session_id}" in shown.stdout
    assert "tool_call_failed" in shown.stdout
    assert "permission denied" in shown.stdout
    assert "cache read 4,608" in shown.stdout
    status = invoke("projections", "status", "--store", url)
    assert status.exit_code == 0
    assert "lag=" in status.stdout


def test_where_the_store_comes_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--store`` after the command wins over the one before it (also spelled
    ``--url``), which wins over ``$AGENT_SESSIONS_URL``; without any, the default file
    in the working directory."""
    first, second = ("sqlite:///" + str(tmp_path / name) for name in ("a.db", "b.db"))
    one, two = demo_session(first), demo_session(second)

    def listed(*args: str, env: dict[str, str | None]) -> list[str]:
        result = invoke(*args, env=env)
        assert result.exit_code == 0, result.output
        return [s["id"] for s in json.loads(result.stdout)["sessions"]]

    assert listed("sessions", "--json", env={"AGENT_SESSIONS_URL": first}) == [one]
    assert listed("--store", second, "sessions", "--json", env={"AGENT_SESSIONS_URL": first}) == [
        two
    ]
    assert listed("--url", second, "sessions", "--json", env={}) == [two]
    assert listed("--store", first, "sessions", "--json", "--store", second, env={}) == [two]

    monkeypatch.chdir(tmp_path)
    no_env: dict[str, str | None] = {"AGENT_SESSIONS_URL": None}
    assert invoke("sessions", env=no_env).exit_code == 1  # no default store yet
    assert not (tmp_path / "agent_sessions.db").exists()
    assert invoke("demo", "--scripted", env=no_env).exit_code == 0
    assert (tmp_path / "agent_sessions.db").is_file()
    assert len(listed("sessions", "--json", env=no_env)) == 1


READ_COMMANDS = [
    ["sessions"],
    ["show", "ses_x"],
    ["replay", "ses_x"],
    ["fork", "ses_x", "--at", "1"],
    ["projections", "status"],
    ["projections", "rebuild", "sessions"],
    ["migrate"],  # not a read, but it never creates a store either
]


def test_read_commands_never_create_a_sqlite_store(tmp_path: Path) -> None:
    """A mistyped path is exit 1 saying there is no store there; no file, no directory."""
    missing = tmp_path / "no_dir" / "x.db"
    empty = tmp_path / "empty.db"
    empty.touch()  # a file, but no store in it
    for path in (missing, empty):
        url = "sqlite:///" + str(path)
        for command in READ_COMMANDS:
            result = invoke(*command, "--store", url)
            assert result.exit_code == 1, (command, result.output)
            assert result.stdout == ""
            assert result.stderr.startswith("agent-sessions: [not_found] no store at "), (
                command,
                result.stderr,
            )
            assert "--store" in result.stderr  # says what to do
            assert len(result.stderr.splitlines()) == 1
    assert not missing.parent.exists()
    assert empty.stat().st_size == 0
    # An in-memory store is always there, at the current version: nothing to migrate.
    assert invoke("migrate", "--store", "memory://").exit_code == 0


def test_read_commands_never_create_a_postgres_schema(pg_server_url: str) -> None:
    with fresh_schema(pg_server_url) as schema:
        url = with_options(pg_server_url, schema=schema)
        for command in READ_COMMANDS:
            result = invoke(*command, "--store", url)
            assert result.exit_code == 1, (command, result.output)
            assert "no store at" in result.stderr
        with psycopg.connect(pg_server_url.split("?")[0], autocommit=True) as connection:
            found = connection.execute(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (schema,)
            ).fetchall()
        assert found == []


def test_a_storage_failure_is_exit_2_without_the_password() -> None:
    url = "postgresql://agent:s3cret@127.0.0.1:1/db?connect_timeout=1"
    for command in (["sessions"], ["replay", "ses_x"], ["demo", "--scripted"]):
        result = invoke(*command, "--store", url)
        assert result.exit_code == 2, (command, result.output)
        assert "storage_connection_failed" in result.stderr
        assert "s3cret" not in result.output
        assert len(result.stderr.splitlines()) == 1
        assert "Traceback" not in result.output


def test_usage_errors_are_exit_1_with_one_line(url: str) -> None:
    cases = {
        ("nonsense",): "No such command",
        ("--bogus", "sessions"): "No such option",
        ("show",): "Missing argument 'SESSION'",
        ("projections", "status", "--projection", "no_such_module:Thing"): "cannot load",
        ("projections", "status", "--projection", "json:JSONDecoder"): "not a Projection",
        ("show", "ses_missing"): "session_not_found",
    }
    demo_session(url)
    for args, expected in cases.items():
        result = invoke(*args, "--store", url)
        assert result.exit_code == 1, (args, result.output)
        assert expected in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert "Traceback" not in result.output


def test_main_returns_the_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``main`` (the console script) returns what the group decided, and the bare command
    prints its help."""
    assert main(["sessions", "--store", "sqlite:///" + str(tmp_path / "none.db")]) == 1
    assert "no store at" in capsys.readouterr().err
    assert main([]) == 0
    assert "replay" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"agent-sessions {__version__}"


@pytest.mark.parametrize("module", ["agent_sessions", "agent_sessions.cli"])
def test_python_dash_m(module: str, tmp_path: Path) -> None:
    version = subprocess.run(
        [sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"agent-sessions {__version__}"
    url = "sqlite:///" + str(tmp_path / "m.db")
    missing = subprocess.run(
        [sys.executable, "-m", module, "sessions", "--store", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1
    assert "no store at" in missing.stderr


def test_fork_and_replay_accept_the_store_before_the_command(url: str) -> None:
    session_id = demo_session(url)
    forked = invoke("--store", url, "fork", session_id, "--at", "5")
    assert forked.exit_code == 0, forked.output
    with open_store(url) as store:
        assert store.get_session(forked.stdout.strip()).parent_session_id == session_id
