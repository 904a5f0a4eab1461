"""Classify driver and recorder failures, and translate them into our error family.

``eventsourcing`` maps sqlite3 and psycopg exceptions onto its own ``PersistenceError``
hierarchy (keeping the driver's exception as ``__cause__``); the store service asks this
module what a failure means for it:

* ``CONFLICT``: optimistic concurrency lost a race (unique violation): reload and retry;
* ``TRANSIENT``: lock contention (SQLite busy, PostgreSQL deadlock or serialization
  failure): retry as it stands;
* ``CONNECTION``: the server or the connection went away: retry a few times, then
  ``storage_connection_failed``;
* ``TIMEOUT``: a statement or lock timeout fired: ``storage_error`` at once, since
  repeating the statement would only wait again;
* ``OTHER``: any other driver failure: ``storage_error``.

The cause is kept as text in ``details``; nothing of the driver leaks to callers.
"""

from __future__ import annotations

import sqlite3
from enum import Enum

from eventsourcing.persistence import (
    ConnectionPoolClosedError,
    ConnectionUnavailableError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    PersistenceError,
)

from ..domain.errors import AgentSessionsError, ErrorCode, StorageError


class Failure(Enum):
    CONFLICT = "conflict"
    TRANSIENT = "transient"
    CONNECTION = "connection"
    TIMEOUT = "timeout"
    OTHER = "other"


_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")
# PostgreSQL SQLSTATEs (see the PostgreSQL manual, appendix A).
_PG_TRANSIENT = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_PG_TIMEOUT = {"57014", "55P03"}  # query_canceled (statement_timeout), lock_not_available


def classify(exc: BaseException) -> Failure | None:
    """What a failure means for a retrying caller; ``None`` when it is not a storage
    failure at all (a bug, which must surface as it is)."""
    if isinstance(exc, (IntegrityError, sqlite3.IntegrityError)):
        return Failure.CONFLICT
    if isinstance(exc, ConnectionPoolClosedError):
        return Failure.OTHER
    if not isinstance(exc, (PersistenceError, sqlite3.Error)):
        return None
    if isinstance(exc, ConnectionUnavailableError):
        return Failure.CONNECTION
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate in _PG_TRANSIENT:
        return Failure.TRANSIENT
    if sqlstate in _PG_TIMEOUT:
        return Failure.TIMEOUT
    if isinstance(cause, sqlite3.OperationalError) or isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return Failure.TRANSIENT if any(m in text for m in _SQLITE_BUSY) else Failure.OTHER
    # psycopg raises these without a SQLSTATE (or with class 08 / 57P) when the
    # connection is lost or the server shuts down.
    if isinstance(exc, (OperationalError, InterfaceError)) and (
        sqlstate is None or sqlstate.startswith(("08", "57P"))
    ):
        return Failure.CONNECTION
    return Failure.OTHER


def translate(exc: BaseException, operation: str) -> AgentSessionsError:
    if isinstance(exc, AgentSessionsError):
        return exc
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    details: dict[str, object] = {
        "operation": operation,
        "cause": f"{type(cause).__name__}: {str(cause).strip()}",
    }
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate:
        details["sqlstate"] = sqlstate
    if classify(exc) is Failure.CONNECTION:
        return StorageError(
            f"{operation} failed: the storage connection is unavailable",
            code=ErrorCode.STORAGE_CONNECTION_FAILED,
            details=details,
        )
    return StorageError(f"{operation} failed: {str(cause).strip()}", details=details)
