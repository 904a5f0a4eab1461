"""agent-sessions: an event-sourced store for the history of AI agent sessions."""

from .application.open_store import open_store
from .application.query_api import QueryAPI
from .application.session_store import SessionStore
from .application.store_service import EventSourcedSessionStore
from .domain.aggregates import AgentEventRecorded, EventsPruned, SessionErased
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
from .projections.engine import ProjectionEngine, ProjectionStatus
from .projections.projection import Projection, topics_of

__all__ = [
    "AgentEventRecorded",
    "AgentSessionsError",
    "DependencyNotAvailable",
    "ErrorCode",
    "Event",
    "EventSourcedSessionStore",
    "EventType",
    "EventsPruned",
    "ExecutionResult",
    "NotFoundError",
    "Projection",
    "ProjectionEngine",
    "ProjectionStatus",
    "QueryAPI",
    "Run",
    "RunStatus",
    "Session",
    "SessionErased",
    "SessionStatus",
    "SessionStore",
    "StorageError",
    "ValidationError",
    "open_store",
    "topics_of",
]

__version__ = "0.1.0"
