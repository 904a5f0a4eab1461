"""One exception family for everything the library can refuse or fail at.

Callers branch on the stable ``code`` (a :class:`ErrorCode`), never on message text or
on a driver's exception type: every adapter translates its driver's errors into one of
these before they leave the library.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    # validation
    VALIDATION_ERROR = "validation_error"
    INVALID_INPUT = "invalid_input"
    MISSING_REQUIRED_FIELD = "missing_required_field"
    INVALID_FORMAT = "invalid_format"
    # state
    INVALID_STATUS = "invalid_status"
    INVALID_TRANSITION = "invalid_transition"
    INVALID_EVENT_TYPE = "invalid_event_type"
    INVALID_CAPABILITY_TYPE = "invalid_capability_type"
    MISSING_REQUIRED_CAPABILITY = "missing_required_capability"
    STREAM_CLOSED = "stream_closed"
    CONTEXT_MISMATCH = "context_mismatch"
    INVALID_CURSOR = "invalid_cursor"
    SESSION_MISMATCH = "session_mismatch"
    RUN_MISMATCH = "run_mismatch"
    # resource
    NOT_FOUND = "not_found"
    SESSION_NOT_FOUND = "session_not_found"
    RUN_NOT_FOUND = "run_not_found"
    CAPABILITY_NOT_FOUND = "capability_not_found"
    ALREADY_EXISTS = "already_exists"
    DUPLICATE_CAPABILITY = "duplicate_capability"
    # provider
    PROVIDER_ERROR = "provider_error"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PROVIDER_RATE_LIMITED = "provider_rate_limited"
    PROVIDER_TIMEOUT = "provider_timeout"
    PROVIDER_AUTHENTICATION_FAILED = "provider_authentication_failed"
    PROVIDER_QUOTA_EXCEEDED = "provider_quota_exceeded"
    # storage
    STORAGE_ERROR = "storage_error"
    STORAGE_CONNECTION_FAILED = "storage_connection_failed"
    DEPENDENCY_NOT_AVAILABLE = "dependency_not_available"
    MIGRATION_REQUIRED = "migration_required"
    STORAGE_WRITE_FAILED = "storage_write_failed"
    STORAGE_READ_FAILED = "storage_read_failed"
    # runtime
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    POLICY_VIOLATION = "policy_violation"
    INTERNAL_ERROR = "internal_error"
    UNKNOWN_ERROR = "unknown_error"
    # concurrency
    MAX_SESSIONS_EXCEEDED = "max_sessions_exceeded"
    MAX_RUNS_EXCEEDED = "max_runs_exceeded"
    CAPABILITY_NOT_SUPPORTED = "capability_not_supported"
    INVALID_OPERATION = "invalid_operation"
    #: A save from a stale read changed a field another writer changed since (issue
    #: 11, class 4). Not retryable as it is: re-read, re-apply the change, save again.
    CONCURRENCY_CONFLICT = "concurrency_conflict"
    # tool
    TOOL_ERROR = "tool_error"
    TOOL_NOT_FOUND = "tool_not_found"
    TOOL_EXECUTION_FAILED = "tool_execution_failed"
    TOOL_PERMISSION_DENIED = "tool_permission_denied"
    # Raised by queries, maintenance and persistence; real codes with their own
    # categories so that every error we raise has a category (docs/decisions.md).
    QUERY_ERROR = "query_error"
    MAINTENANCE_ERROR = "maintenance_error"
    PERSISTENCE_ERROR = "persistence_error"
    # A read model stopped at an event it cannot apply (issue 11, class 6): queries that
    # read that view fail with it until it is rebuilt or reset; the others keep working.
    PROJECTION_FAILED = "projection_failed"


_CATEGORIES: dict[str, tuple[ErrorCode, ...]] = {
    "validation": (
        ErrorCode.VALIDATION_ERROR,
        ErrorCode.INVALID_INPUT,
        ErrorCode.MISSING_REQUIRED_FIELD,
        ErrorCode.INVALID_FORMAT,
    ),
    "state": (
        ErrorCode.INVALID_STATUS,
        ErrorCode.INVALID_TRANSITION,
        ErrorCode.INVALID_EVENT_TYPE,
        ErrorCode.INVALID_CAPABILITY_TYPE,
        ErrorCode.MISSING_REQUIRED_CAPABILITY,
        ErrorCode.STREAM_CLOSED,
        ErrorCode.CONTEXT_MISMATCH,
        ErrorCode.INVALID_CURSOR,
        ErrorCode.SESSION_MISMATCH,
        ErrorCode.RUN_MISMATCH,
    ),
    "resource": (
        ErrorCode.NOT_FOUND,
        ErrorCode.SESSION_NOT_FOUND,
        ErrorCode.RUN_NOT_FOUND,
        ErrorCode.CAPABILITY_NOT_FOUND,
        ErrorCode.ALREADY_EXISTS,
        ErrorCode.DUPLICATE_CAPABILITY,
    ),
    "provider": (
        ErrorCode.PROVIDER_ERROR,
        ErrorCode.PROVIDER_UNAVAILABLE,
        ErrorCode.PROVIDER_RATE_LIMITED,
        ErrorCode.PROVIDER_TIMEOUT,
        ErrorCode.PROVIDER_AUTHENTICATION_FAILED,
        ErrorCode.PROVIDER_QUOTA_EXCEEDED,
    ),
    "storage": (
        ErrorCode.STORAGE_ERROR,
        ErrorCode.STORAGE_CONNECTION_FAILED,
        ErrorCode.DEPENDENCY_NOT_AVAILABLE,
        ErrorCode.MIGRATION_REQUIRED,
        ErrorCode.STORAGE_WRITE_FAILED,
        ErrorCode.STORAGE_READ_FAILED,
        ErrorCode.PERSISTENCE_ERROR,
    ),
    "runtime": (
        ErrorCode.TIMEOUT,
        ErrorCode.CANCELLED,
        ErrorCode.POLICY_VIOLATION,
        ErrorCode.INTERNAL_ERROR,
        ErrorCode.UNKNOWN_ERROR,
    ),
    "concurrency": (
        ErrorCode.CONCURRENCY_CONFLICT,
        ErrorCode.MAX_SESSIONS_EXCEEDED,
        ErrorCode.MAX_RUNS_EXCEEDED,
        ErrorCode.CAPABILITY_NOT_SUPPORTED,
        ErrorCode.INVALID_OPERATION,
    ),
    "tool": (
        ErrorCode.TOOL_ERROR,
        ErrorCode.TOOL_NOT_FOUND,
        ErrorCode.TOOL_EXECUTION_FAILED,
        ErrorCode.TOOL_PERMISSION_DENIED,
    ),
    "query": (ErrorCode.QUERY_ERROR, ErrorCode.PROJECTION_FAILED),
    "maintenance": (ErrorCode.MAINTENANCE_ERROR,),
}
_CATEGORY_OF = {code: name for name, codes in _CATEGORIES.items() for code in codes}

RETRYABLE_CODES = frozenset(
    {
        ErrorCode.PROVIDER_TIMEOUT,
        ErrorCode.PROVIDER_RATE_LIMITED,
        ErrorCode.PROVIDER_UNAVAILABLE,
        ErrorCode.STORAGE_CONNECTION_FAILED,
        ErrorCode.TIMEOUT,
    }
)


def category(code: str) -> str:
    """The taxonomy group of a code; ``"unknown"`` for codes outside it."""
    try:
        return _CATEGORY_OF[ErrorCode(code)]
    except ValueError:
        return "unknown"


def is_retryable(code: str) -> bool:
    return code in RETRYABLE_CODES


class AgentSessionsError(Exception):
    """Every failure the library reports: a stable ``code``, a message, and details.

    ``details`` carries what a caller needs to act (the offending field, the driver's
    cause as text); it is always a plain dict so that errors can be logged as JSON.
    """

    default_code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        resolved = code if code is not None else self.default_code
        try:
            self.code: str = ErrorCode(resolved)
        except ValueError:
            self.code = str(resolved)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    @property
    def category(self) -> str:
        return category(self.code)

    @property
    def retryable(self) -> bool:
        return is_retryable(self.code)

    def to_dict(self) -> dict[str, Any]:
        return {"code": str(self.code), "message": self.message, "details": self.details}

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={str(self.code)!r}, message={self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps errors picklable across process boundaries (multiprocessing workers).
        return (_rebuild_error, (type(self), self.message, str(self.code), self.details))


def _rebuild_error(
    cls: type[AgentSessionsError], message: str, code: str, details: dict[str, Any]
) -> AgentSessionsError:
    return cls(message, code=code, details=details)


class ValidationError(AgentSessionsError):
    """Input was refused before anything was written."""

    default_code = ErrorCode.VALIDATION_ERROR


class NotFoundError(AgentSessionsError):
    default_code = ErrorCode.NOT_FOUND


class StorageError(AgentSessionsError):
    """The backend failed; nothing of the failed operation was written."""

    default_code = ErrorCode.STORAGE_ERROR


class DependencyNotAvailable(AgentSessionsError):
    default_code = ErrorCode.DEPENDENCY_NOT_AVAILABLE


def session_not_found(session_id: str) -> NotFoundError:
    return NotFoundError(
        f"Session not found: {session_id}",
        code=ErrorCode.SESSION_NOT_FOUND,
        details={"session_id": session_id},
    )


def run_not_found(run_id: str) -> NotFoundError:
    return NotFoundError(
        f"Run not found: {run_id}", code=ErrorCode.RUN_NOT_FOUND, details={"run_id": run_id}
    )
