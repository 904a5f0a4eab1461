"""agent-sessions: an event-sourced store for the history of AI agent sessions."""

from .application.event_pipeline import EventPipeline
from .application.event_stream import stream_session_events
from .application.open_store import open_store
from .application.providers import Provider, ProviderError, ProviderResult, ScriptedProvider
from .application.query_api import QueryAPI
from .application.session_manager import EventBuffering, RunResult, SessionManager
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
from .domain.event_builder import EventBuilder, EventContext
from .domain.event_redactor import EventRedactor, RedactionConfig
from .domain.event_types import EventType
from .domain.event_validator import EventValidator
from .domain.execution_result import ExecutionResult
from .domain.execution_state import ExecutionState
from .domain.pricing import PricingTable, calculate_cost
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
    "EventBuffering",
    "EventBuilder",
    "EventContext",
    "EventPipeline",
    "EventRedactor",
    "EventSourcedSessionStore",
    "EventType",
    "EventValidator",
    "EventsPruned",
    "ExecutionResult",
    "ExecutionState",
    "NotFoundError",
    "PricingTable",
    "Projection",
    "ProjectionEngine",
    "ProjectionStatus",
    "Provider",
    "ProviderError",
    "ProviderResult",
    "QueryAPI",
    "RedactionConfig",
    "Run",
    "RunResult",
    "RunStatus",
    "ScriptedProvider",
    "Session",
    "SessionErased",
    "SessionManager",
    "SessionStatus",
    "SessionStore",
    "StorageError",
    "ValidationError",
    "calculate_cost",
    "open_store",
    "stream_session_events",
    "topics_of",
]

__version__ = "0.1.0"
