"""The bare ``eventsourcing`` baseline: an aggregate per session recording the same
events (type, run, data), saved in the same batches, on the library's stock SQLite or
PostgreSQL recorder. What the library costs before our index, de-duplication, sequence
claims and records. (It encodes with the library's default JSON transcoder.)"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from .baselines_raw import RawEvent
from .common import Backend


class BenchLog(Aggregate):
    """A session's log as a plain aggregate: one ``Recorded`` event per agent event."""

    def __init__(self) -> None:
        self.recorded = 0

    @event("Recorded")
    def record(self, event_id: str, kind: str, run_id: str | None, data: dict[str, Any]) -> None:
        self.recorded += 1


class BareLog:
    def __init__(self, env: dict[str, str]) -> None:
        self.app: Application[uuid.UUID] = Application(env)
        self.logs: dict[str, BenchLog] = {}

    def _log(self, session_id: str) -> BenchLog:
        log = self.logs.get(session_id)
        if log is None:
            log = self.logs[session_id] = BenchLog()
        return log

    def append(self, session_id: str, events: Sequence[RawEvent]) -> None:
        log = self._log(session_id)
        for event_id, kind, run_id, _, data in events:
            log.record(event_id, kind, run_id, data)
        self.app.save(log)

    def read(self, session_id: str) -> BenchLog:
        return self.app.repository.get(self.logs[session_id].id)

    def close(self) -> None:
        self.app.close()


def es_environment(backend: Backend) -> dict[str, str]:
    """The stock recorder on a fresh file or schema of ``backend``."""
    if backend.server is None:
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": backend.fresh_sqlite_path("es"),
        }
    import psycopg

    parts = psycopg.conninfo.conninfo_to_dict(backend.server)
    schema = backend.fresh_schema("es")
    with psycopg.connect(backend.server, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(parts.get("dbname", "postgres")),
        "POSTGRES_HOST": str(parts.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(parts.get("port", "5432")),
        "POSTGRES_USER": str(parts.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(parts.get("password", "")),
        "POSTGRES_SCHEMA": schema,
    }


def open_bare(backend: Backend) -> BareLog:
    return BareLog(es_environment(backend))
