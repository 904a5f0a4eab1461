"""agent-sessions: an event-sourced store for the history of AI agent sessions.

The names here are the public API; everything else is reached through its submodule
(see ``docs/architecture.md`` for where each part lives)."""

from ._version import __version__
from .artifacts.artifact_store import ArtifactRef, ArtifactStore
from .artifacts.file_store import FileArtifactStore
from .artifacts.s3_store import S3ArtifactStore
from .composition import migrate, open_async_store, open_store
from .composition.async_store import AsyncStore
from .composition.store import CompositeSessionStore, Store
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
from .domain.event_builder import EventBuilder
from .domain.event_redactor import EventRedactor, RedactionConfig
from .domain.event_types import EventType
from .domain.event_validator import EventValidator
from .domain.execution_result import ExecutionResult
from .domain.execution_state import ExecutionState
from .domain.pricing import PricingTable, calculate_cost
from .domain.replay import PrunedRange, SessionSnapshot, SnapshotDiff, ToolCall, Usage
from .domain.retention_policy import RetentionPolicy
from .domain.run import Run
from .domain.session import Session
from .domain.statuses import RunStatus, SessionStatus
from .ports.session_store import SessionStore
from .read_models.engine import ProjectionStatus
from .read_models.projection import Projection, topics_of
from .services.artifact_registry import ArtifactRegistry, ArtifactStats
from .services.event_buffer import EventBuffering
from .services.event_pipeline import EventPipeline
from .services.event_stream import stream_session_events
from .services.history import SessionHistory
from .services.maintenance import Maintenance
from .services.maintenance_report import MaintenanceReport
from .services.providers import Provider, ProviderError, ProviderResult, ScriptedProvider
from .services.query_api import QueryAPI
from .services.query_results import (
    CostSummary,
    DailyUsage,
    EventPage,
    ModelCost,
    ProviderCost,
    ProviderUsage,
    RunPage,
    SessionExport,
    SessionPage,
    SessionStats,
    TokenTotals,
    UsageSummary,
)
from .services.redacting_store import RedactingStore
from .services.run_result import RunResult
from .services.session_manager import SessionManager

__all__ = [
    "PrunedRange",
    "RedactingStore",
    "SessionHistory",
    "SessionSnapshot",
    "SnapshotDiff",
    "ToolCall",
    "Usage",
    "__version__",
    "AgentEventRecorded",
    "AgentSessionsError",
    "Artifact",
    "ArtifactRef",
    "ArtifactRegistry",
    "ArtifactStats",
    "ArtifactStore",
    "AsyncStore",
    "CompositeSessionStore",
    "CostSummary",
    "DailyUsage",
    "DependencyNotAvailable",
    "ErrorCode",
    "Event",
    "EventBuffering",
    "EventBuilder",
    "EventPage",
    "EventPipeline",
    "EventRedactor",
    "EventType",
    "EventValidator",
    "EventsPruned",
    "ExecutionResult",
    "ExecutionState",
    "FileArtifactStore",
    "Maintenance",
    "MaintenanceReport",
    "ModelCost",
    "NotFoundError",
    "PricingTable",
    "Projection",
    "ProjectionStatus",
    "Provider",
    "ProviderCost",
    "ProviderError",
    "ProviderResult",
    "ProviderUsage",
    "QueryAPI",
    "RedactionConfig",
    "RetentionPolicy",
    "Run",
    "RunPage",
    "RunResult",
    "RunStatus",
    "S3ArtifactStore",
    "ScriptedProvider",
    "Session",
    "SessionErased",
    "SessionExport",
    "SessionManager",
    "SessionPage",
    "SessionStats",
    "SessionStatus",
    "SessionStore",
    "StorageError",
    "Store",
    "TokenTotals",
    "UsageSummary",
    "ValidationError",
    "calculate_cost",
    "migrate",
    "open_async_store",
    "open_store",
    "stream_session_events",
    "topics_of",
]
