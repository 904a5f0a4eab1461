"""Secrets (issue 11, reliability suite): with redaction on, no planted secret is found in
the raw storage, whatever reads it.

Secrets go in through every channel (``secret_channels.py``: each write method of the
store, each record field, event metadata, every event type, keys, 60 levels deep, the
whole ``SessionManager`` life with a provider that leaks everywhere). Then, not through
our read APIs but under them: the bytes of the SQLite database file and of its WAL and
shared-memory files (read while the store is still open, so the WAL holds the last
transactions, and again after close), every row of every table of the PostgreSQL schema
(bytea as bytes, the rest as text), the artifact store's files, the session exports and
every log line (``caplog`` at DEBUG, every logger). A control run without redaction
finds the needles in the same places, so the scan cannot pass by looking nowhere.

``make test`` runs the fixed planting on SQLite and PostgreSQL; the slow form adds
hypothesis-generated secrets, shapes and places.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pg_server import admin_connection, fresh_schema, with_options
from secret_channels import (
    SHAPES,
    Secrets,
    nest,
    plant_through_manager,
    plant_through_store,
    read_everything,
    render,
)

from agent_sessions import (
    Event,
    RedactionConfig,
    Run,
    Session,
    SessionManager,
    Store,
    open_store,
)
from agent_sessions.domain.serialization import MAX_DEPTH

ON = RedactionConfig()


@dataclass
class Backend:
    """A store location and a way to read every byte it holds."""

    name: str
    url: str
    raw: Callable[[], bytes]
    wal: Path | None = None


def _sqlite_files(path: Path) -> bytes:
    """The database file and its ``-wal`` and ``-shm`` companions, as they are now."""
    blobs = []
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = Path(str(path) + suffix)
        if candidate.exists():
            blobs.append(candidate.read_bytes())
    return b"\n".join(blobs)


def _pg_rows(server_url: str, schema: str) -> bytes:
    """Every row of every table of ``schema``: bytea columns as their bytes, the rest
    as text (json as JSON text)."""
    out: list[bytes] = []
    with admin_connection(server_url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema,),
        ).fetchall()
        for (table,) in tables:
            cursor = conn.execute(f'SELECT * FROM "{schema}"."{table}"')
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, (bytes, bytearray, memoryview)):
                        out.append(bytes(value))
                    elif isinstance(value, (dict, list)):
                        out.append(json.dumps(value, ensure_ascii=False).encode())
                    else:
                        out.append(str(value).encode())
    return b"\n".join(out)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "secrets.db"
        wal = Path(str(path) + "-wal")
        yield Backend("sqlite", "sqlite:///" + str(path), lambda: _sqlite_files(path), wal)
        return
    server = request.getfixturevalue("pg_server_url")
    with fresh_schema(server) as schema:
        url = with_options(server, schema=schema, pool_size=2, max_overflow=2)
        assert parse_qs(urlsplit(url).query)["schema"] == [schema]
        yield Backend("postgres", url, lambda: _pg_rows(server, schema))


def _files_under(root: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def _plant_and_scan(
    backend: Backend,
    artifacts: Path,
    redaction: RedactionConfig | None,
    caplog: pytest.LogCaptureFixture,
) -> tuple[Secrets, dict[str, list[str]]]:
    """Plant through every channel, then scan every place; the channels found where."""
    s = Secrets(salt=f"{backend.name}/{redaction is not None}")
    found: dict[str, list[str]] = {}
    caplog.set_level(logging.DEBUG)
    store = open_store(backend.url, artifacts="file://" + str(artifacts), redaction=redaction)
    try:
        ids = [plant_through_store(store, s, artifacts=True)]
        more, results = plant_through_manager(lambda p: SessionManager(store, p), s)
        ids += more
        text = read_everything(store, ids)  # builds every read model, so views hold data
        exports = render(*(store.query().export_session(i, include_artifacts=True) for i in ids))
        found["reads"] = s.found_in(text)
        found["exports"] = s.found_in(exports)
        found["run errors"] = s.found_in(render([r.errors for r in results]))
        found["storage while open"] = s.found_in_bytes(backend.raw())
        if backend.wal is not None:
            found["sqlite wal"] = s.found_in_bytes(backend.wal.read_bytes())
    finally:
        store.close()
    found["storage after close"] = s.found_in_bytes(backend.raw())
    found["artifact files"] = s.found_in_bytes(_files_under(artifacts))
    found["logs"] = s.found_in(caplog.text)
    return s, found


def test_no_planted_secret_is_in_any_byte_of_the_store(
    backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, found = _plant_and_scan(backend, tmp_path / "blobs", ON, caplog)
    assert found == {place: [] for place in found}


def test_control_without_redaction_the_scan_finds_the_secrets(
    backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s, found = _plant_and_scan(backend, tmp_path / "blobs", None, caplog)
    stored = {c for c in s.needles if not c.endswith((".refused", "_cut"))}
    stored -= {"flush.provider_metadata"}  # flush does not keep it
    # The store holds what the reads return (and the WAL or the tables hold it);
    # artifact metadata is in the artifact store's files; a refused event's key is not
    # quoted even without redaction (its refusal names the key's type only).
    in_store = stored - {"artifact.metadata", "artifact.metadata.key"}
    assert set(found["storage while open"]) >= in_store
    assert set(found["storage after close"]) >= in_store
    if backend.wal is not None:  # the WAL was read, and held the latest writes
        assert found["sqlite wal"]
    assert {"artifact.metadata", "artifact.metadata.key"} <= set(found["artifact files"])
    assert set(found["reads"]) >= stored
    refused = {c for c in s.needles if c.endswith(".refused")}
    assert refused
    assert not refused & {c for place in found.values() for c in place}


# slow: generated secrets, shapes and places ------------------------------------------------

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
needles = st.text("0123456789abcdef", min_size=16, max_size=16)
shapes = st.integers(min_value=0, max_value=len(SHAPES))
places = st.sampled_from(
    [
        "session.metadata",
        "session.context",
        "session.tags",
        "run.input",
        "run.output",
        "run.error",
        "run.metadata",
        "run.provider_metadata",
        "event.data",
        "event.metadata",
    ]
)


@dataclass
class Plant:
    place: str
    shape: int
    depth: int
    as_key: bool
    padding: str


plants = st.lists(
    st.builds(
        Plant,
        place=places,
        shape=shapes,
        depth=st.integers(min_value=0, max_value=MAX_DEPTH - 4),
        as_key=st.booleans(),
        padding=st.text(ALNUM + " .,:;\n", max_size=20),
    ),
    min_size=1,
    max_size=6,
)


def _value(s: Secrets, plant: Plant, index: int) -> Any:
    secret = s(f"{index}.{plant.place}", shape=plant.shape)
    text = f"{plant.padding} {secret} {plant.padding}"
    return nest({text: 1} if plant.as_key else text, plant.depth)


def _write(store: Store, s: Secrets, generated: list[Plant]) -> str:
    values: dict[str, dict[str, Any]] = {}
    tags: list[str] = []
    for index, plant in enumerate(generated):
        if plant.place == "session.tags":
            tags.append(s(f"{index}.{plant.place}", shape=plant.shape))
        else:
            values.setdefault(plant.place, {})[f"k{index}"] = _value(s, plant, index)
    session = Session.new(
        agent_id="a",
        metadata=values.get("session.metadata", {}),
        context=values.get("session.context", {}),
        tags=tags,
    )
    store.save_session(session)
    run = Run.new(session_id=session.id, input=values.get("run.input"))
    run = run.replace(
        output=values.get("run.output"),
        error=values.get("run.error"),
        metadata=values.get("run.metadata", {}),
        provider_metadata=values.get("run.provider_metadata", {}),
    )
    store.save_run(run)
    store.append_events(
        [
            Event.new(
                type="tool_call_completed",
                session_id=session.id,
                run_id=run.id,
                data=values.get("event.data", {}),
                metadata=values.get("event.metadata", {}),
            )
        ]
    )
    return session.id


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(generated=plants, salt=needles)
def test_generated_secrets_never_reach_storage(
    backend: Backend, generated: list[Plant], salt: str
) -> None:
    s = Secrets(salt=salt)
    with open_store(backend.url, redaction=ON) as store:
        session_id = _write(store, s, generated)
        assert s.found_in(read_everything(store, [session_id])) == []
        assert s.found_in_bytes(backend.raw()) == []
    assert s.found_in_bytes(backend.raw()) == []


def test_the_postgres_scan_reads_bytea_as_bytes(pg_server_url: str) -> None:
    """The scan itself: a needle in a bytea column is found (the event payloads are
    bytea; text rendering would show them as hex and hide every leak)."""
    with fresh_schema(pg_server_url) as schema, admin_connection(pg_server_url) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE TABLE "{schema}".t (b bytea, j jsonb, s text)')
        conn.execute(
            f'INSERT INTO "{schema}".t VALUES (%s, %s, %s)',
            (b"x-bytes-needle", psycopg.types.json.Jsonb({"k": "json-needle"}), "text-needle"),
        )
        raw = _pg_rows(pg_server_url, schema)
    assert all(n in raw for n in (b"x-bytes-needle", b"json-needle", b"text-needle"))
