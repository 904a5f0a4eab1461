"""Lifecycle statuses of sessions and runs.

They are ``StrEnum`` members so that a status read back from JSON (a plain string)
compares equal to the member. Transitions are documented but deliberately not enforced
by the records: a store records what the agent loop decided.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from .checks import coerce_enum
from .errors import ErrorCode, ValidationError


class SessionStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_RUN_STATUSES


TERMINAL_RUN_STATUSES = frozenset(
    {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMEOUT}
)

_S = TypeVar("_S", SessionStatus, RunStatus)


def coerce_status(enum: type[_S], value: object) -> _S:
    """Parse a status, raising ``invalid_status`` (unknown string) or
    ``validation_error`` (missing or not a string)."""

    def invalid(value: str) -> ValidationError:
        valid = ", ".join(member.value for member in enum)
        return ValidationError(
            f"Invalid status: {value}. Valid statuses: {valid}",
            code=ErrorCode.INVALID_STATUS,
            details={"field": "status", "value": value},
        )

    return coerce_enum(enum, value, "status", invalid)
