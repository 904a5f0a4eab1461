"""What a storage failure means to a caller that may retry, and how it reaches users.

Each backend module classifies its own driver's exceptions (``classify``); everything
above the backends asks only these questions, so no layer but the backend knows a
driver. The cause is kept as text in ``details``; nothing of the driver leaks to callers.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from ..domain.errors import AgentSessionsError, ErrorCode, StorageError


class Failure(Enum):
    #: Optimistic concurrency lost a race (a unique violation): reload and retry.
    CONFLICT = "conflict"
    #: Lock contention (SQLite busy, PostgreSQL deadlock or serialization failure):
    #: retry as it stands.
    TRANSIENT = "transient"
    #: The server or the connection went away: retry a few times, then
    #: ``storage_connection_failed``.
    CONNECTION = "connection"
    #: A statement or lock timeout fired: ``timeout`` at once, not retried here, since
    #: repeating the statement at once would only wait again; the code is retryable,
    #: so a caller may try again later, when the lock holder is gone.
    TIMEOUT = "timeout"
    #: Any other driver failure: ``storage_error``.
    OTHER = "other"


#: A backend's classifier: ``None`` for an exception that is not a storage failure at
#: all (a bug, which must surface as it is).
Classifier = Callable[[BaseException], Failure | None]


def storage_error(exc: BaseException, operation: str, kind: Failure | None) -> AgentSessionsError:
    """The coded error a caller sees for a storage failure classified as ``kind``."""
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
    if kind is Failure.CONNECTION:
        return StorageError(
            f"{operation} failed: the storage connection is unavailable",
            code=ErrorCode.STORAGE_CONNECTION_FAILED,
            details=details,
        )
    if kind is Failure.TIMEOUT:
        return StorageError(
            f"{operation} timed out: {str(cause).strip()}", code=ErrorCode.TIMEOUT, details=details
        )
    return StorageError(f"{operation} failed: {str(cause).strip()}", details=details)
