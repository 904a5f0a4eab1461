"""Stores written by v0.1.0 migrate to the current schema with every answer intact.

``fixtures/v0_1_0/store.db`` and its ``artifacts/`` were written by the v0.1.0 code
itself (``fixtures/make_v0_1_0_store.py``, which builds them from the release commit),
and ``expected.json`` is what v0.1.0 answered about them; on PostgreSQL the same script
builds the v0.1.0 store into a fresh schema. v0.1.0 recorded no schema version, so the
current code must refuse to open such a store (``migration_required``, naming the
command, having written nothing) until ``migrate`` has brought it to the current
version. After that every answer (records, event logs with their pruned gaps, artifact
registry and bytes, every query) must equal

* what v0.1.0 answered on the same store, exactly; and
* what a store populated by the same ``populate`` with the current code answers, on the
  same backend and in memory, up to the values v0.1.0 itself never makes reproducible:
  an artifact entry's random ``id``, its wall-clock ``created_at``/``deleted_at``, the
  directory in its ``storage_ref`` and the per-store HMAC that signs query cursors;

and the migrated database must hold the same tables, columns and indexes as a store the
current code created. The checks hold for any list of migrations: every change of
stored shape adds a numbered migration and is covered here without editing the test.

The helpers below are shared with ``test_migrations.py``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import math
import re
import shlex
import shutil
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from pg_server import admin_connection, fresh_schema, with_options

from agent_sessions import AgentSessionsError, ErrorCode, migrate, open_store
from agent_sessions.backends.schema import (
    CURRENT_VERSION,
    LEGACY_VERSION,
    MIGRATIONS,
    VERSION_TABLE,
    MigrationReport,
)

FIXTURES = Path(__file__).parent / "fixtures"
V0_1_0 = FIXTURES / "v0_1_0"
BACKENDS = ["sqlite", "postgres"]
_ARTIFACT_ID = re.compile(r"^art_[A-Za-z0-9_-]{16}$")
_ARTIFACT_FIELDS = {"id", "key", "byte_size", "checksum_sha256", "storage_backend", "storage_ref"}

Answers = dict[str, Any]


def _load_maker() -> ModuleType:
    """The fixture script as a module: its ``populate`` and ``snapshot`` are what the
    fixture was built and read with (``tests/fixtures`` is no package)."""
    path = FIXTURES / "make_v0_1_0_store.py"
    spec = importlib.util.spec_from_file_location("make_v0_1_0_store", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


maker = _load_maker()

#: The migrations a v0.1.0 store needs, whatever the list holds today.
PENDING = [m for m in MIGRATIONS if m.version > LEGACY_VERSION]
#: The read models those migrations mark for rebuild.
REBUILT = {name for m in PENDING for name in m.rebuild}


# -- the databases, read with their plain drivers (never through the library) ------------


class SQLiteDatabase:
    """A SQLite store file."""

    param = "?"
    prefix = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = "sqlite:///" + str(path)

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in its own committed transaction; its rows."""
        with closing(sqlite3.connect(self.path)) as connection, connection:
            return [tuple(row) for row in connection.execute(statement, params).fetchall()]

    def tables(self) -> set[str]:
        rows = self.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        return {str(row[0]) for row in rows}

    def contents(self) -> dict[str, str]:
        """Each table's rows, hashed: equal when nothing was written."""
        return {
            table: _digest(sorted(repr(row) for row in self.execute(f'SELECT * FROM "{table}"')))
            for table in sorted(self.tables())
        }

    def file_state(self) -> tuple[str, int]:
        """The file's hash and the bytes in its write-ahead log: opening a WAL database
        may create an empty ``-wal`` (and a ``-shm``), never a log with frames in it."""
        wal = self.path.with_name(self.path.name + "-wal")
        frames = wal.stat().st_size if wal.exists() else 0
        return hashlib.sha256(self.path.read_bytes()).hexdigest(), frames

    def shape(self) -> dict[str, Any]:
        """Tables with their columns, and indexes with their table and columns."""
        shape: dict[str, Any] = {}
        for table in sorted(self.tables()):
            columns = self.execute(f'PRAGMA table_info("{table}")')
            shape[f"table {table}"] = sorted(
                (str(c[1]), str(c[2]).upper(), bool(c[3]), int(c[5])) for c in columns
            )
            for index in self.execute(f'PRAGMA index_list("{table}")'):
                indexed = self.execute(f'PRAGMA index_info("{index[1]}")')
                shape[f"index {index[1]}"] = (table, bool(index[2]), [str(c[2]) for c in indexed])
        return shape


class PostgresDatabase:
    """One schema of a PostgreSQL database."""

    param = "%s"

    def __init__(self, server_url: str, schema: str) -> None:
        self.server_url = server_url
        self.schema = schema
        self.prefix = f'"{schema}".'
        # Options in the query string, as users write them: a ``?`` and ``&``s, and the
        # schema last (a command cut at the first ``&`` would name another store).
        self.url = with_options(server_url, pool_size=2, max_overflow=2, schema=schema)

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with admin_connection(self.server_url) as connection:
            cursor = connection.execute(statement, params)
            return [tuple(row) for row in cursor.fetchall()] if cursor.description else []

    def tables(self) -> set[str]:
        rows = self.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (self.schema,),
        )
        return {str(row[0]) for row in rows}

    def contents(self) -> dict[str, str]:
        return {
            table: str(
                self.execute(
                    "SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
                    f'FROM {self.prefix}"{table}" AS t'
                )[0][0]
            )
            for table in sorted(self.tables())
        }

    def shape(self) -> dict[str, Any]:
        shape: dict[str, Any] = {}
        columns = self.execute(
            "SELECT table_name, column_name, data_type, is_nullable "
            "FROM information_schema.columns WHERE table_schema = %s",
            (self.schema,),
        )
        for table in sorted(self.tables()):
            shape[f"table {table}"] = sorted(
                (str(c[1]), str(c[2]), str(c[3])) for c in columns if c[0] == table
            )
        indexes = self.execute(
            "SELECT indexname, tablename, indexdef FROM pg_indexes WHERE schemaname = %s",
            (self.schema,),
        )
        for name, table, definition in indexes:
            text = str(definition).replace(self.prefix, "").replace(f"{self.schema}.", "")
            shape[f"index {name}"] = (str(table), text)
        return shape


Database = SQLiteDatabase | PostgresDatabase


def _digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def recorded_versions(database: Database) -> list[tuple[int, str, str]]:
    """The rows of the version table: (version, name, library version)."""
    rows = database.execute(
        f"SELECT version, name, library_version FROM {database.prefix}{VERSION_TABLE} "
        "ORDER BY version"
    )
    return [(int(row[0]), str(row[1]), str(row[2])) for row in rows]


def record_future_version(database: Database, library_version: str) -> None:
    """What a newer release's migration leaves behind: one more version row."""
    p = database.param
    database.execute(
        f"INSERT INTO {database.prefix}{VERSION_TABLE} "
        f"(version, name, library_version, applied_at) VALUES ({p}, {p}, {p}, {p})",
        (CURRENT_VERSION + 1, "future", library_version, datetime.now(UTC).isoformat()),
    )


# -- stores written by v0.1.0 ------------------------------------------------------------


@dataclass(frozen=True)
class OldStore:
    """A store written by v0.1.0, not yet migrated."""

    database: Database
    artifacts: Path
    #: What v0.1.0 answered on it (``None`` when not asked for).
    expected: Answers | None

    @property
    def url(self) -> str:
        return self.database.url

    def answers(self) -> Answers:
        return answers_of(self.url, self.artifacts)

    def contents(self) -> dict[str, Any]:
        """Every table's rows, and for SQLite the file's bytes too."""
        contents: dict[str, Any] = dict(self.database.contents())
        if isinstance(self.database, SQLiteDatabase):
            contents["<file>"] = self.database.file_state()
        return contents


@contextmanager
def v0_1_0_store(
    backend: str, directory: Path, request: pytest.FixtureRequest, *, manifest: bool = False
) -> Iterator[OldStore]:
    """SQLite: a copy of the committed fixture in ``directory``. PostgreSQL: the fixture
    script run with the v0.1.0 code into a fresh schema (dropped afterwards), asking for
    v0.1.0's answers when ``manifest``."""
    if backend == "sqlite":
        shutil.copyfile(V0_1_0 / "store.db", directory / "store.db")
        shutil.copytree(V0_1_0 / "artifacts", directory / "artifacts")
        expected = json.loads((V0_1_0 / "expected.json").read_text(encoding="utf-8"))
        yield OldStore(SQLiteDatabase(directory / "store.db"), directory / "artifacts", expected)
        return
    server = request.getfixturevalue("pg_server_url")
    with fresh_schema(server) as schema:
        database = PostgresDatabase(server, schema)
        artifacts, answers = directory / "artifacts", directory / "expected.json"
        maker.build(database.url, str(artifacts), manifest=str(answers) if manifest else None)
        expected = json.loads(answers.read_text(encoding="utf-8")) if manifest else None
        yield OldStore(database, artifacts, expected)


def answers_of(url: str, artifacts: Path) -> Answers:
    """What the current code answers on the store at ``url``."""
    with open_store(url, artifacts="file://" + str(artifacts)) as store:
        answers: Answers = maker.snapshot(store)
    return answers


# -- stores written by the current code --------------------------------------------------


@dataclass(frozen=True)
class Fresh:
    """A store the current code populated itself: its answers and database shape."""

    answers: Answers
    shape: dict[str, Any] | None  # None for ``memory://``


class FreshStores:
    """Fresh stores per backend, each populated once per test session."""

    def __init__(self, request: pytest.FixtureRequest, root: Path, cleanup: ExitStack) -> None:
        self._request = request
        self._root = root
        self._cleanup = cleanup
        self._built: dict[str, Fresh] = {}

    def get(self, backend: str) -> Fresh:
        if backend not in self._built:
            self._built[backend] = self._build(backend)
        return self._built[backend]

    def _build(self, backend: str) -> Fresh:
        artifacts = self._root / backend / "artifacts"
        artifacts.mkdir(parents=True)
        if backend == "memory":
            store = open_store("memory://", artifacts="file://" + str(artifacts))
            try:
                maker.populate(store)
                return Fresh(maker.snapshot(store), None)
            finally:
                store.close()
        database: Database
        if backend == "sqlite":
            database = SQLiteDatabase(self._root / backend / "store.db")
        else:
            server = self._request.getfixturevalue("pg_server_url")
            database = PostgresDatabase(server, self._cleanup.enter_context(fresh_schema(server)))
        with open_store(database.url, artifacts="file://" + str(artifacts)) as store:
            maker.populate(store)
        # Closed and reopened, as v0.1.0's answers were taken.
        return Fresh(answers_of(database.url, artifacts), database.shape())


@contextmanager
def fresh_stores_for(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FreshStores]:
    """The body of a session fixture (this module's and ``test_migrations.py``'s)."""
    with ExitStack() as cleanup:
        yield FreshStores(request, tmp_path_factory.mktemp("fresh"), cleanup)


@pytest.fixture(scope="session")
def fresh_stores(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FreshStores]:
    with fresh_stores_for(request, tmp_path_factory) as stores:
        yield stores


# -- the comparison, written once --------------------------------------------------------


def _cursor(cursor: str) -> list[Any]:
    """The page position a cursor holds (kind, order, sort value, last id), without its
    MAC (the HMAC key is random per store, ``view_meta``) and without the fingerprint of
    its query that cursors carry since 0.2.0 (v0.1.0's had none)."""
    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    assert len(payload) in (5, 6), payload
    assert re.fullmatch(r"[0-9a-f]{32}", payload[-1]), payload
    return list(payload[:4])


def _artifact(entry: dict[str, Any]) -> dict[str, Any]:
    """A registry entry without what v0.1.0 makes irreproducible, each checked for form:
    the random id, the wall-clock times of ``put_artifact``/``delete_artifact`` and the
    absolute directory in ``storage_ref`` (the data file's name stays compared)."""
    assert _ARTIFACT_ID.match(entry["id"]), entry
    datetime.fromisoformat(entry["created_at"])
    ref = entry["storage_ref"]
    assert ref.startswith("file:///"), entry
    normalised = dict(entry, id="<random>", created_at="<put time>")
    normalised["storage_ref"] = "file://<root>/" + ref.rsplit("/", 1)[1]
    if entry.get("deleted_at") is not None:
        datetime.fromisoformat(entry["deleted_at"])
        normalised["deleted_at"] = "<delete time>"
    return normalised


def comparable(value: Any) -> Any:
    """``value`` with artifact entries and cursors normalised (see above), all else kept."""
    if isinstance(value, dict):
        if value.keys() >= _ARTIFACT_FIELDS:
            return _artifact(value)
        return {
            key: _cursor(item) if key == "cursor" and isinstance(item, str) else comparable(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [comparable(item) for item in value]
    return value


def same_sections(actual: Answers, expected: Answers, against: str) -> None:
    """Section by section, so that a failure names the query that answers differently."""
    assert sorted(actual) == sorted(expected)
    differing = [section for section in sorted(expected) if actual[section] != expected[section]]
    for section in differing:  # the first one in full, under pytest's assertion diff
        assert actual[section] == expected[section], f"{differing} differ from {against}"


def _positions(value: Any) -> Any:
    """``value`` with each query cursor replaced by the page position it holds: since
    0.2.0 a cursor also carries its query's fingerprint, so the same page is signed
    differently (and a v0.1.0 cursor is refused as ``invalid_cursor``)."""
    if isinstance(value, dict):
        return {
            key: _cursor(item) if key == "cursor" and isinstance(item, str) else _positions(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_positions(item) for item in value]
    return value


#: Fields of query results added since v0.1.0 (cache counts in the usage summaries, a
#: model's run count): v0.1.0's answers lack them.
_ADDED_FIELDS = frozenset(
    {
        "cache_read_tokens",
        "cache_creation_tokens",
        "total_cache_read_tokens",
        "total_cache_creation_tokens",
        "run_count",
    }
)
_PAGE_ITEMS = ("sessions", "runs", "events")


def _in_v0_1_0_terms(actual: Any, expected: Any) -> Any:
    """``actual`` without the fields v0.1.0's answer lacks of those added since, and
    without page positions. v0.1.0 gave the last page of a search a cursor too, and
    paging went on to an empty page; since 0.2.0 the last page has no cursor. Where a
    cursor leads is compared exactly with the fresh stores (same code, same data)."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        return {
            key: None if key == "cursor" else _in_v0_1_0_terms(item, expected.get(key))
            for key, item in actual.items()
            if key in expected or key not in _ADDED_FIELDS
        }
    if isinstance(actual, list):
        kept = [item for item in actual if not _empty_page(item)]
        mates = (
            [item for item in expected if not _empty_page(item)]
            if isinstance(expected, list)
            else []
        )
        return [
            _in_v0_1_0_terms(item, mates[index] if index < len(mates) else None)
            for index, item in enumerate(kept)
        ]
    return actual


def _empty_page(value: Any) -> bool:
    """A page with no items: what v0.1.0's cursor on a last page led to."""
    return (
        isinstance(value, dict)
        and "cursor" in value
        and any(value.get(items) == [] for items in _PAGE_ITEMS)
    )


def _daily(answers: Answers, *, cost: bool) -> dict[str, Any]:
    """The ``usage_by_day`` answers without their costs, or their costs alone."""
    sections: dict[str, Any] = answers["usage_by_day"]
    if cost:
        return {key: [day["cost_usd"] for day in days] for key, days in sections.items()}
    return {
        key: [{k: v for k, v in day.items() if k != "cost_usd"} for day in days]
        for key, days in sections.items()
    }


def same_as_v0_1_0(answers: Answers, expected: Answers) -> None:
    """Every answer exactly as v0.1.0 gave it (in its terms: ``_in_v0_1_0_terms``), but
    for the float sums of ``get_cost_summary``: v0.1.0 added costs up in whatever order
    the database returned the runs (the query fixes none, and SQLite and PostgreSQL
    plans differ), so the last bits of its totals were an accident of the plan; the
    current code's totals must not depend on row order, which may round differently.
    Those are compared to within float rounding; comparisons with stores the current
    code wrote stay exact."""
    answers = _in_v0_1_0_terms(answers, expected)
    expected = _in_v0_1_0_terms(expected, expected)
    same_sections(
        {**answers, "cost_summary": None, "usage_by_day": _daily(answers, cost=False)},
        {**expected, "cost_summary": None, "usage_by_day": _daily(expected, cost=False)},
        "v0.1.0's answers on the same store",
    )
    # Since 0.4 the daily rollup prices a run without a recorded cost as the cost
    # summary does (v0.1.0 added recorded costs only), so a day's cost can only grow.
    for key, days in _daily(answers, cost=True).items():
        for ours, theirs in zip(days, _daily(expected, cost=True)[key], strict=True):
            assert ours >= theirs - 1e-12, (key, ours, theirs)
    assert_close(answers["cost_summary"], expected["cost_summary"], "cost_summary")


def assert_close(actual: Any, expected: Any, where: str) -> None:
    """``actual == expected`` with floats equal to within rounding (relative 1e-12)."""
    if isinstance(expected, float) and isinstance(actual, float):
        assert math.isclose(actual, expected, rel_tol=1e-12), (where, actual, expected)
    elif isinstance(expected, dict) and isinstance(actual, dict):
        assert sorted(actual) == sorted(expected), where
        for key, item in expected.items():
            assert_close(actual[key], item, f"{where}.{key}")
    elif isinstance(expected, list) and isinstance(actual, list):
        assert len(actual) == len(expected), where
        for index, item in enumerate(expected):
            assert_close(actual[index], item, f"{where}[{index}]")
    else:
        assert actual == expected, where


def check_shape(answers: Answers) -> None:
    """What the data set must look like, whoever wrote it: gap-free sequences except
    where events were pruned, the erased session gone, artifact bytes matching the
    registry and entries keeping their ids, views already current when opened."""
    assert set(answers["projection_lag"].values()) == {0}, answers["projection_lag"]
    assert answers["sessions"][maker.S_ERASED] == {"error": "session_not_found"}
    assert answers["events"][maker.S_ERASED] == []
    sequences = {
        sid: [event["sequence_number"] for event in events]
        for sid, events in answers["events"].items()
    }
    for sid, numbers in sequences.items():
        assert numbers == sorted(set(numbers)), sid
        assert answers["latest_sequence"][sid] == (numbers[-1] if numbers else 0), sid
    plan = sequences[maker.S_PLAN]
    assert set(range(1, plan[-1] + 1)) - set(plan) == set(maker.PRUNED_BY_HAND)
    main = sequences[maker.S_MAIN]
    assert len(main) == maker.MAX_EVENTS_PER_SESSION < main[-1]
    for sid in (maker.S_CHILD, maker.S_REVIEW, maker.S_ARCHIVED, maker.S_SUPPORT):
        assert sequences[sid] == list(range(1, len(sequences[sid]) + 1)), sid
    by_key = answers["artifacts"]["by_key"]
    blobs = answers["artifacts"]["bytes"]
    for key in (maker.ARTIFACT_PATCH, maker.ARTIFACT_LOG):
        assert blobs[key]["sha256"] == by_key[key]["checksum_sha256"], key
    for key in (maker.ARTIFACT_NOTES, maker.ARTIFACT_ORPHAN):
        assert by_key[key] is None, key
        assert blobs[key] == {"error": "not_found"}, key
    listed = answers["artifacts"]["by_session"][maker.S_MAIN]
    assert [(a["key"], a["deleted_at"] is not None) for a in listed] == [
        (maker.ARTIFACT_PATCH, False),
        (maker.ARTIFACT_NOTES, True),  # soft-deleted; the erased session's one is forgotten
    ]
    ids: dict[str, set[str]] = {}
    for entry in _artifact_entries(answers):
        ids.setdefault(entry["key"], set()).add(entry["id"])
    assert all(len(one) == 1 for one in ids.values()), ids  # an overwrite keeps the id


def _artifact_entries(value: Any) -> list[dict[str, Any]]:
    """Every artifact registry entry anywhere in the answers."""
    if isinstance(value, dict):
        if value.keys() >= _ARTIFACT_FIELDS:
            return [value]
        return [entry for item in value.values() for entry in _artifact_entries(item)]
    if isinstance(value, list):
        return [entry for item in value for entry in _artifact_entries(item)]
    return []


def storage_dirs(answers: Answers) -> set[Path]:
    refs = {entry["storage_ref"] for entry in _artifact_entries(answers)}
    return {Path(unquote(urlsplit(ref).path)).parent for ref in refs}


def assert_like_fresh(
    old: OldStore, answers: Answers, fresh_stores: FreshStores, backend: str
) -> None:
    """A migrated store answers as v0.1.0 did on it (when known), as stores the current
    code populated itself do (same backend and memory), and holds the same tables,
    columns and indexes as the fresh store of its backend."""
    check_shape(answers)
    if old.expected is not None:
        same_as_v0_1_0(answers, old.expected)
    same_backend, memory = fresh_stores.get(backend), fresh_stores.get("memory")
    same_sections(comparable(answers), comparable(same_backend.answers), f"a fresh {backend} store")
    same_sections(comparable(answers), comparable(memory.answers), "a fresh memory:// store")
    assert old.database.shape() == same_backend.shape
    # Each migration recorded once, the last one at the current version.
    assert [version for version, _, _ in recorded_versions(old.database)] == [
        m.version for m in PENDING
    ]


def assert_migrated_from_v0_1_0(report: MigrationReport) -> None:
    """``report`` applied every pending migration, each once, and rebuilt what they
    marked for rebuild."""
    assert report.dry_run is False
    assert (report.version_before, report.version_after) == (LEGACY_VERSION, CURRENT_VERSION)
    assert [(s.version, s.name, s.outcome) for s in report.steps] == [
        (m.version, m.name, "applied") for m in PENDING
    ]
    assert set(report.rebuilt) == REBUILT


def assert_nothing_to_do(report: MigrationReport) -> None:
    assert (report.version_before, report.version_after) == (CURRENT_VERSION, CURRENT_VERSION)
    assert report.steps == []
    assert report.rebuilt == {}
    assert report.lines()[-1] == "  nothing to migrate"


def assert_refused_as_outdated(error: AgentSessionsError, url: str) -> None:
    """``migration_required`` for a v0.1.0 store, naming a command that runs as named."""
    assert error.code == ErrorCode.MIGRATION_REQUIRED
    assert error.details["schema_version"] == LEGACY_VERSION
    assert error.details["code_schema_version"] == CURRENT_VERSION
    command = error.details["command"]
    assert command in str(error)
    # Pasted into a shell it must migrate this very store, whatever its URL holds.
    assert shell_words(command) == ["agent-sessions", "migrate", "--store", url], command


def shell_words(command: str) -> list[str]:
    """``command`` split as a POSIX shell would, its operators (``&``, ``;``, ``|``...)
    as words of their own."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


# -- the tests ---------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def test_v0_1_0_store_is_refused_then_migrated_with_every_answer_intact(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, fresh_stores: FreshStores
) -> None:
    with v0_1_0_store(backend, tmp_path, request, manifest=True) as old:
        before = old.contents()
        with pytest.raises(AgentSessionsError) as refused:
            open_store(old.url, artifacts="file://" + str(old.artifacts))
        assert_refused_as_outdated(refused.value, old.url)
        assert old.contents() == before, "the refused open wrote to the store"

        assert_migrated_from_v0_1_0(migrate(old.url))
        assert_nothing_to_do(migrate(old.url))

        answers = old.answers()
        assert_like_fresh(old, answers, fresh_stores, backend)
    if backend == "sqlite":
        # v0.1.0 registered the absolute directory it wrote to: the fixture was built
        # under a fixed neutral path, and its moved copy is still read by key.
        assert storage_dirs(answers) == {maker.FIXTURE_BUILD_ROOT / "artifacts"}
    else:
        assert storage_dirs(answers) == {old.artifacts.resolve()}


def test_open_store_with_migrate_true_migrates_a_v0_1_0_store(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, fresh_stores: FreshStores
) -> None:
    with v0_1_0_store(backend, tmp_path, request) as old:
        with open_store(old.url, artifacts="file://" + str(old.artifacts), migrate=True):
            pass
        assert_nothing_to_do(migrate(old.url))
        assert_like_fresh(old, old.answers(), fresh_stores, backend)


def test_fixture_is_only_the_store_file_and_the_artifact_store() -> None:
    """The committed fixture is self-contained: no WAL left beside the file, and the
    artifacts directory holds exactly the live blobs and their sidecars."""
    assert sorted(p.name for p in V0_1_0.iterdir()) == ["artifacts", "expected.json", "store.db"]
    assert (V0_1_0 / "store.db").stat().st_size < 1_000_000
    names = sorted(p.name for p in (V0_1_0 / "artifacts").iterdir())
    assert len(names) == 5, names  # .lock, and two blobs with their .meta.json
    assert names[0] == ".lock"


def test_fixture_names_no_checkout_path() -> None:
    """The fixture was built under the neutral build root, whose path is all its
    ``storage_ref`` values name: no file in it holds the path of this checkout."""
    checkout = str(Path(__file__).resolve().parents[1]).encode()
    files = [path for path in V0_1_0.rglob("*") if path.is_file()]
    assert len(files) == 7, files
    assert [path for path in files if checkout in path.read_bytes()] == []
    expected = json.loads((V0_1_0 / "expected.json").read_text(encoding="utf-8"))
    assert storage_dirs(expected) == {maker.FIXTURE_BUILD_ROOT / "artifacts"}


def test_a_migrated_v0_1_0_store_replays_with_approximate_positions(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Migration 4 gives the changes v0.1.0 stored a log position from commit order and
    flags it: every session replays, ends as the store reads it, and says so."""
    with v0_1_0_store(backend, tmp_path, request) as old:
        migrate(old.url)
        with open_store(old.url, artifacts="file://" + str(old.artifacts)) as store:
            sessions = store.list_sessions()
            assert sessions
            for session in sessions:
                history = store.history(session.id, include_deleted=True)
                last = history.at(history.latest)
                assert last.approximate
                assert last.session == store.get_session(session.id)
                assert {run.id: run for run in last.runs} == {
                    run.id: run for run in store.list_runs(session.id)
                }
                assert [s.sequence for s in history.steps()] == [
                    e.sequence_number for e in store.get_events(session.id)
                ]
