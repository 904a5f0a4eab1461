"""Translate driver and recorder failures into our error family.

``eventsourcing`` already maps sqlite3 and psycopg exceptions onto its own
``PersistenceError`` hierarchy inside transactions; this module maps that hierarchy (and
the few driver errors that escape it) onto ``AgentSessionsError`` codes, keeping the cause
as text in ``details`` so nothing of the driver leaks to callers.
"""

from __future__ import annotations

import sqlite3

from eventsourcing.persistence import (
    ConnectionUnavailableError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    PersistenceError,
)

from ..domain.errors import AgentSessionsError, ErrorCode, StorageError

#: Raised by the store when optimistic concurrency lost a race: reload and try again.
CONFLICT_ERRORS: tuple[type[BaseException], ...] = (IntegrityError, sqlite3.IntegrityError)

_BUSY_MARKERS = ("database is locked", "database table is locked", "busy")


def is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, CONFLICT_ERRORS)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying as it stands: lock contention between SQLite processes."""
    if isinstance(exc, (OperationalError, sqlite3.OperationalError)):
        text = str(exc).lower()
        return any(marker in text for marker in _BUSY_MARKERS)
    return False


def is_driver_error(exc: BaseException) -> bool:
    return isinstance(exc, (PersistenceError, sqlite3.Error))


def translate(exc: BaseException, operation: str) -> AgentSessionsError:
    if isinstance(exc, AgentSessionsError):
        return exc
    cause = f"{type(exc).__name__}: {exc}"
    details = {"operation": operation, "cause": cause}
    if isinstance(exc, (ConnectionUnavailableError, InterfaceError)):
        return StorageError(
            f"{operation} failed: storage connection unavailable",
            code=ErrorCode.STORAGE_CONNECTION_FAILED,
            details=details,
        )
    return StorageError(f"{operation} failed: {exc}", details=details)
