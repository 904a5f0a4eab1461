"""agent-sessions: an event-sourced store for the history of AI agent sessions."""

from .application.artifact_registry import ArtifactRegistry, ArtifactStats
from .application.composite_store import CompositeSessionStore
from .application.event_pipeline import EventPipeline
from .application.event_stream import stream_session_events
from .application.maintenance import Maintenance
from .application.maintenance_report import MaintenanceReport
from .application.open_store import open_store
from .application.providers import Provider, ProviderError, ProviderResult, ScriptedProvider
from .application.query_api import QueryAPI
from .application.session_manager import EventBuffering, RunResult, SessionManager
from .application.session_store import SessionStore
from .application.store_service import EventSourcedSessionStore
from .artifacts.artifact_store import ArtifactRef, ArtifactStore
from .artifacts.file_store import FileArtifactStore
from .artifacts.s3_store import S3ArtifactStore
from .domain.aggregates import AgentEventRecorded, EventsPruned, SessionErased
from .domain.artifact import Artifact
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
from .domain.retention_policy import RetentionPolicy
from .domain.run import Run
from .domain.session import Session
from .domain.statuses import RunStatus, SessionStatus
from .projections.engine import ProjectionEngine, ProjectionStatus
from .projections.projection import Projection, topics_of

__all__ = [
    "Artifact",
    "ArtifactRef",
    "ArtifactRegistry",
    "ArtifactStats",
    "ArtifactStore",
    "CompositeSessionStore",
    "FileArtifactStore",
    "S3ArtifactStore",
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
    "Maintenance",
    "MaintenanceReport",
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
    "RetentionPolicy",
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
