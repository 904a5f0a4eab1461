"""``migrate``: safe from two processes at once, after a crash, on new and newer stores.

Every case runs on SQLite and on PostgreSQL from a store written by v0.1.0 (see
``test_v0_1_0_store.py``, whose helpers build and compare the stores), and holds for
any list of migrations: what must be applied is read from ``MIGRATIONS``, and a
migrated store is compared with stores the current code populated itself.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from migration_workers import (
    Summary,
    migrate_at_once,
    migrate_killed_before_recording,
    migrate_killed_while_rebuilding,
)
from pg_server import fresh_schema
from test_optional_dependencies import run_without
from test_v0_1_0_store import (
    BACKENDS,
    PENDING,
    REBUILT,
    Database,
    FreshStores,
    OldStore,
    PostgresDatabase,
    SQLiteDatabase,
    assert_like_fresh,
    assert_migrated_from_v0_1_0,
    assert_nothing_to_do,
    assert_refused_as_outdated,
    fresh_stores_for,
    record_future_version,
    recorded_versions,
    v0_1_0_store,
)

import agent_sessions
from agent_sessions import AgentSessionsError, ErrorCode, __version__, migrate, open_store
from agent_sessions.backends.schema import CURRENT_VERSION, LEGACY_VERSION
from agent_sessions.cli import main as cli

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def fresh_stores(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FreshStores]:
    with fresh_stores_for(request, tmp_path_factory) as stores:
        yield stores


@pytest.fixture
def old(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[OldStore]:
    """A store written by v0.1.0 on ``backend``."""
    with v0_1_0_store(backend, tmp_path, request) as store:
        yield store


@pytest.fixture
def new_database(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Database]:
    """Where no store exists yet: a file not yet created, or a schema not yet made."""
    if backend == "sqlite":
        yield SQLiteDatabase(tmp_path / "new" / "store.db")
        return
    server = request.getfixturevalue("pg_server_url")
    with fresh_schema(server) as schema:
        yield PostgresDatabase(server, schema)


def run_worker(target: Any, *args: Any) -> int | None:
    process = SPAWN.Process(target=target, args=args)
    process.start()
    process.join(timeout=120)
    assert not process.is_alive(), "the worker hung"
    return process.exitcode


def refusal(url: str) -> AgentSessionsError:
    with pytest.raises(AgentSessionsError) as refused:
        open_store(url)
    return refused.value


# -- (a) two processes at once -----------------------------------------------------------


def test_two_processes_migrating_at_once_apply_each_migration_once(
    backend: str, old: OldStore, fresh_stores: FreshStores
) -> None:
    barrier = SPAWN.Barrier(2)
    results = SPAWN.Queue()
    workers = [
        SPAWN.Process(target=migrate_at_once, args=(old.url, barrier, results)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    summaries: list[Summary | str] = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    failed = [summary for summary in summaries if isinstance(summary, str)]
    assert failed == [], "\n".join(failed)
    reports = [summary for summary in summaries if not isinstance(summary, str)]
    for migration in PENDING:
        steps = [step for _, _, steps, _ in reports for step in steps]
        outcomes = sorted(outcome for version, outcome in steps if version == migration.version)
        # The loser either waited for the lock and found it done, or came after.
        assert outcomes in (["already applied", "applied"], ["applied"]), outcomes
    # Each migration commits on its own, so the second process may start between two of them.
    assert min(before for before, _, _, _ in reports) == LEGACY_VERSION
    for before, after, _, _ in reports:
        assert LEGACY_VERSION <= before <= CURRENT_VERSION
        assert after == CURRENT_VERSION
    assert_nothing_to_do(migrate(old.url))
    assert_like_fresh(old, old.answers(), fresh_stores, backend)


# -- (b) killed in the middle ------------------------------------------------------------


def test_killed_inside_the_migration_transaction_leaves_the_old_store(
    backend: str, old: OldStore, fresh_stores: FreshStores
) -> None:
    before = old.database.contents()
    assert run_worker(migrate_killed_before_recording, old.url) == -signal.SIGKILL
    # Rolled back with the process: still version 1, every table as it was.
    assert old.database.contents() == before
    assert_refused_as_outdated(refusal(old.url), old.url)
    if isinstance(old.database, SQLiteDatabase):
        assert old.database.execute("PRAGMA integrity_check") == [("ok",)]
    assert_migrated_from_v0_1_0(migrate(old.url))
    assert_like_fresh(old, old.answers(), fresh_stores, backend)


def test_killed_while_rebuilding_a_read_model_is_finished_by_the_next_migrate(
    backend: str, old: OldStore, fresh_stores: FreshStores, tmp_path: Path
) -> None:
    seen = tmp_path / "progress.json"
    exitcode = run_worker(migrate_killed_while_rebuilding, old.url, str(seen))
    # Only a migration that marks a read model for rebuild reports progress.
    assert exitcode == (-signal.SIGKILL if REBUILT else 0)
    interrupted: set[str] = set()
    if REBUILT:
        name, position, head = json.loads(seen.read_text(encoding="utf-8"))
        assert name in REBUILT
        assert 0 < position < head, "the rebuild was not part-way when reported"
        interrupted.add(name)
    # The migrations themselves committed before the rebuild began.
    assert max(version for version, _, _ in recorded_versions(old.database)) == CURRENT_VERSION
    again = migrate(old.url)
    assert (again.version_before, again.version_after, again.steps) == (
        CURRENT_VERSION,
        CURRENT_VERSION,
        [],
    )
    assert interrupted <= set(again.rebuilt) <= REBUILT
    # Finished by that migrate, before any query: no read model lags when opened.
    assert set(lags(old.url).values()) == {0}
    assert_like_fresh(old, old.answers(), fresh_stores, backend)


def lags(url: str) -> dict[str, int]:
    """Each read model's lag, read without catching anything up."""
    with open_store(url) as store:
        return {name: store.projections.status(name).lag for name in store.projections.names}


# -- (c) a store from a newer version ----------------------------------------------------


def test_store_from_a_newer_version_is_refused(backend: str, old: OldStore) -> None:
    migrate(old.url)
    record_future_version(old.database, "9.9.9")
    before = old.contents()
    attempts: dict[str, Callable[[], object]] = {
        "open_store": lambda: open_store(old.url),
        "open_store(migrate=True)": lambda: open_store(old.url, migrate=True),
        "migrate": lambda: migrate(old.url),
        "migrate(dry_run=True)": lambda: migrate(old.url, dry_run=True),
    }
    for attempt, action in attempts.items():
        with pytest.raises(AgentSessionsError) as refused:
            action()
        error = refused.value
        assert error.code == ErrorCode.MIGRATION_REQUIRED, attempt
        assert "9.9.9" in error.message, attempt
        assert error.details["required_library_version"] == "9.9.9", attempt
        assert error.details["schema_version"] == CURRENT_VERSION + 1, attempt
    assert old.contents() == before, "a refused store was written to"


# -- (d) dry run -------------------------------------------------------------------------


def test_dry_run_lists_the_pending_steps_and_changes_nothing(old: OldStore) -> None:
    before = old.contents()
    report = migrate(old.url, dry_run=True)
    assert report.dry_run is True
    assert report.version_before == LEGACY_VERSION
    assert [(s.version, s.name, s.outcome) for s in report.steps] == [
        (m.version, m.name, "pending") for m in PENDING
    ]
    assert report.rebuilt == {}
    lines = report.lines()
    for migration in PENDING:
        assert any(migration.name in line and "pending" in line for line in lines), lines
    assert old.contents() == before
    assert_refused_as_outdated(refusal(old.url), old.url)


def test_migration_5_adds_the_event_type_index(
    backend: str, old: OldStore, fresh_stores: FreshStores
) -> None:
    """Store-wide counts by type need an index that starts with the type: a migrated
    store has the one a fresh store is created with, and answers as before."""
    assert "index agent_events_kind_idx" not in old.database.shape()
    report = migrate(old.url)
    assert (5, "event-type-index", "applied") in [
        (s.version, s.name, s.outcome) for s in report.steps
    ]
    shape = old.database.shape()
    fresh = fresh_stores.get(backend).shape
    assert fresh is not None
    assert shape["index agent_events_kind_idx"] == fresh["index agent_events_kind_idx"]
    with open_store(old.url) as store:
        assert store.query().count_events(types=["tool_call_started"]) == sum(
            1
            for session in store.list_sessions()
            for event in store.get_events(session.id)
            if event.type == "tool_call_started"
        )


# -- (e) new stores ----------------------------------------------------------------------


def test_new_store_is_created_at_the_current_version(new_database: Database) -> None:
    with open_store(new_database.url):
        pass
    assert recorded_versions(new_database) == [(CURRENT_VERSION, "created", __version__)]
    assert_nothing_to_do(migrate(new_database.url))
    with open_store(new_database.url) as store:  # no migration needed to open it again
        assert store.list_sessions() == []


def test_migrate_where_no_store_exists_has_nothing_to_do(new_database: Database) -> None:
    report = migrate(new_database.url)
    assert (report.version_before, report.version_after) == (None, None)
    assert report.steps == []
    assert report.rebuilt == {}
    with open_store(new_database.url):
        pass
    assert recorded_versions(new_database) == [(CURRENT_VERSION, "created", __version__)]


def test_memory_store_needs_no_migration() -> None:
    report = migrate("memory://")
    assert (report.version_before, report.steps, report.rebuilt) == (None, [], {})
    with open_store("memory://") as store:
        assert store.list_sessions() == []


def test_migrate_is_public() -> None:
    """The refusal tells users to call ``agent_sessions.migrate(url)``."""
    assert "migrate" in agent_sessions.__all__
    assert migrate is agent_sessions.composition.migrate


# -- (f) the command line ----------------------------------------------------------------


def test_command_line_migrate_prints_each_step(
    old: OldStore, capsys: pytest.CaptureFixture[str]
) -> None:
    before = old.contents()
    assert cli(["migrate", "--dry-run", "--store", old.url]) == 0
    dry = capsys.readouterr().out.splitlines()
    assert dry == migrate(old.url, dry_run=True).lines()
    assert len(dry) == 1 + len(PENDING)
    for migration, line in zip(PENDING, dry[1:], strict=True):
        assert f"{migration.version} {migration.name}: pending" in line, line
    assert old.contents() == before

    assert cli(["migrate", "--store", old.url]) == 0
    applied = capsys.readouterr().out.splitlines()
    assert applied[0].endswith(f"schema version {LEGACY_VERSION} -> {CURRENT_VERSION}")
    steps, rebuilt = applied[1 : 1 + len(PENDING)], applied[1 + len(PENDING) :]
    for migration, line in zip(PENDING, steps, strict=True):
        assert f"{migration.version} {migration.name}: applied" in line, line
    assert sorted(line.split("'")[1] for line in rebuilt) == sorted(REBUILT), rebuilt

    assert cli(["--url", old.url, "migrate"]) == 0  # the store option before the command
    assert capsys.readouterr().out.splitlines()[1:] == ["  nothing to migrate"]


def test_command_named_by_the_refusal_migrates_the_store(old: OldStore) -> None:
    """``details["command"]``, run as a shell command, migrates exactly that store."""
    command = refusal(old.url).details["command"]
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    completed = subprocess.run(
        command,
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": path},
    )
    assert completed.returncode == 0, completed.stderr
    assert f"schema version {LEGACY_VERSION} -> {CURRENT_VERSION}" in completed.stdout
    assert_nothing_to_do(migrate(old.url))


def test_command_line_as_a_module(old: OldStore) -> None:
    command = [sys.executable, "-m", "agent_sessions.cli", "migrate", "--store", old.url]
    dry = subprocess.run([*command, "--dry-run"], capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == migrate(old.url, dry_run=True).lines()
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"schema version {LEGACY_VERSION} -> {CURRENT_VERSION}" in done.stdout
    assert_nothing_to_do(migrate(old.url))


def test_command_line_refuses_a_newer_store(
    old: OldStore, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate(old.url)
    record_future_version(old.database, "9.9.9")
    assert cli(["migrate", "--store", old.url]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "migration_required" in captured.err
    assert "9.9.9" in captured.err


def test_migrate_an_unreachable_postgres_server_is_a_coded_error() -> None:
    """Like ``open_store``: ``storage_connection_failed``, never a driver exception, and
    never the password."""
    url = "postgresql://user:s3cret@127.0.0.1:1/db?connect_timeout=1"
    for dry_run in (False, True):
        with pytest.raises(AgentSessionsError) as caught:
            migrate(url, dry_run=dry_run)
        assert caught.value.code == ErrorCode.STORAGE_CONNECTION_FAILED
        assert "s3cret" not in str(caught.value)
        assert "s3cret" not in repr(caught.value.details)


def test_a_file_that_is_no_database_is_a_coded_error(tmp_path: Path) -> None:
    """The version check reads the file before anything else: what it cannot read is
    ``storage_error`` naming the file, from ``open_store`` and ``migrate`` alike."""
    path = tmp_path / "notes.db"
    path.write_bytes(b"not a database, only text long enough to fill a header. " * 4)
    url = "sqlite:///" + str(path)
    attempts: dict[str, Callable[[], object]] = {
        "open_store": lambda: open_store(url),
        "migrate": lambda: migrate(url),
        "migrate(dry_run=True)": lambda: migrate(url, dry_run=True),
    }
    for attempt, action in attempts.items():
        with pytest.raises(AgentSessionsError) as caught:
            action()
        assert caught.value.code == ErrorCode.STORAGE_ERROR, attempt
        assert str(path) in str(caught.value), attempt


# -- (g) without the PostgreSQL extra ----------------------------------------------------


def test_migrate_postgres_without_psycopg_names_the_postgres_extra() -> None:
    errors = run_without(
        ["psycopg", "psycopg_pool"],
        """
        from agent_sessions import AgentSessionsError, migrate
        errors = []
        for dry_run in (False, True):
            try:
                migrate("postgresql://user@127.0.0.1:1/db", dry_run=dry_run)
            except AgentSessionsError as error:
                errors.append({**error.to_dict(), "type": type(error).__name__})
            else:
                errors.append(None)
        print(json.dumps(errors))
        """,
    )
    assert len(errors) == 2
    for error in errors:
        assert error is not None
        assert error["type"] == "DependencyNotAvailable"
        assert error["code"] == "dependency_not_available"
        assert "pip install 'agent-sessions[postgres]'" in error["message"]
        assert error["details"]["extra"] == "postgres"


def test_command_line_migrate_without_psycopg_names_the_postgres_extra() -> None:
    result = run_without(
        ["psycopg", "psycopg_pool"],
        """
        import contextlib, io
        from agent_sessions.cli import main
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["migrate", "--store", "postgresql://user@127.0.0.1:1/db"])
        print(json.dumps({"code": code, "err": err.getvalue()}))
        """,
    )
    assert result["code"] == 1
    assert "dependency_not_available" in result["err"]
    assert "pip install 'agent-sessions[postgres]'" in result["err"]
