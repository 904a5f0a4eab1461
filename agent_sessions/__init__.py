"""agent-sessions: an event-sourced store for the history of AI agent sessions."""

from .artifacts.artifact_store import ArtifactRef, ArtifactStore
from .artifacts.file_store import FileArtifactStore
from .artifacts.s3_store import S3ArtifactStore
from .composition import open_store
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
from .ports.session_store import SessionStore
from .read_models.engine import ProjectionEngine, ProjectionStatus
from .read_models.projection import Projection, topics_of
from .services.artifact_registry import ArtifactRegistry, ArtifactStats
from .services.composite_store import CompositeSessionStore
from .services.event_pipeline import EventPipeline
from .services.event_stream import stream_session_events
from .services.maintenance import Maintenance
from .services.maintenance_report import MaintenanceReport
from .services.providers import Provider, ProviderError, ProviderResult, ScriptedProvider
from .services.query_api import QueryAPI
from .services.session_manager import EventBuffering, RunResult, SessionManager
from .store.service import EventSourcedSessionStore

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
