"""agent-sessions: an event-sourced store for the history of AI agent sessions."""

from .application.open_store import open_store
from .application.session_store import SessionStore
from .application.store_service import EventSourcedSessionStore
from .domain.errors import (
    AgentSessionsError,
    DependencyNotAvailable,
    ErrorCode,
    NotFoundError,
    StorageError,
    ValidationError,
)
from .domain.event import Event
from .domain.event_types import EventType
from .domain.execution_result import ExecutionResult
from .domain.run import Run
from .domain.session import Session
from .domain.statuses import RunStatus, SessionStatus

__all__ = [
    "AgentSessionsError",
    "DependencyNotAvailable",
    "ErrorCode",
    "Event",
    "EventSourcedSessionStore",
    "EventType",
    "ExecutionResult",
    "NotFoundError",
    "Run",
    "RunStatus",
    "Session",
    "SessionStatus",
    "SessionStore",
    "StorageError",
    "ValidationError",
    "open_store",
]

__version__ = "0.1.0"
