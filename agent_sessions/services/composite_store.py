"""A session store with an artifact store beside it (spec section 5 and 8).

Every ``SessionStore`` operation delegates to the session store. Artifacts go to the
artifact store (bytes) and the registry (metadata); a failing artifact backend yields
``storage_error`` for artifact calls only, and session operations keep working.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, BinaryIO, Protocol, Self

from ..domain.artifact import Artifact
from ..domain.errors import AgentSessionsError, StorageError
from ..domain.event import Event
from ..domain.event_types import EventType
from ..domain.execution_result import ExecutionResult
from ..domain.run import Run
from ..domain.session import Session
from ..domain.statuses import RunStatus, SessionStatus
from ..store.service import EventSourcedSessionStore
from .artifact_registry import ArtifactRegistry, StoredBlob
from .maintenance import Maintenance


class ArtifactBackend(Protocol):
    """The part of the ``ArtifactStore`` port the composite uses."""

    def put(
        self,
        key: str,
        data: Any,
        *,
        content_type: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> StoredBlob: ...

    def get(self, key: str) -> bytes: ...

    def open(self, key: str) -> BinaryIO: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...


def _artifact_failure(operation: str, exc: Exception) -> AgentSessionsError:
    if isinstance(exc, AgentSessionsError):
        return exc
    return StorageError(
        f"{operation} failed: {exc}",
        details={"operation": operation, "cause": f"{type(exc).__name__}: {exc}"},
    )


class CompositeSessionStore:
    def __init__(
        self, session_store: EventSourcedSessionStore, artifact_store: ArtifactBackend
    ) -> None:
        self.session_store = session_store
        self.artifact_store = artifact_store
        self.registry = ArtifactRegistry(session_store)

    # artifacts ------------------------------------------------------------------------

    def put_artifact(
        self,
        session_id: str | None,
        run_id: str | None,
        key: str,
        data: Any,
        *,
        content_type: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Artifact:
        """Store the bytes, then register them with the size and checksum the artifact
        store computed. If registering fails the blob stays (an overwrite-safe put by
        key) and a retry registers it; the reverse order could register missing bytes."""
        try:
            blob = self.artifact_store.put(key, data, content_type=content_type, metadata=metadata)
        except Exception as exc:
            raise _artifact_failure("put_artifact", exc) from exc
        return self.registry.register_blob(blob, session_id=session_id, run_id=run_id)

    def get_artifact(self, key: str) -> bytes:
        try:
            return self.artifact_store.get(key)
        except Exception as exc:
            raise _artifact_failure("get_artifact", exc) from exc

    def open_artifact(self, key: str) -> BinaryIO:
        try:
            return self.artifact_store.open(key)
        except Exception as exc:
            raise _artifact_failure("open_artifact", exc) from exc

    def delete_artifact(self, key: str) -> None:
        """Delete the blob and soft-delete its registry entry; missing keys are fine."""
        try:
            self.artifact_store.delete(key)
        except Exception as exc:
            raise _artifact_failure("delete_artifact", exc) from exc
        self.registry.soft_delete(key)

    def maintenance(self, **options: Any) -> Maintenance:
        """Maintenance that also deletes the blobs of orphaned artifacts."""
        options.setdefault("artifact_store", self.artifact_store)
        return self.session_store.maintenance(**options)

    # the SessionStore port ------------------------------------------------------------

    def save_session(self, session: Session) -> None:
        self.session_store.save_session(session)

    def get_session(self, session_id: str) -> Session:
        return self.session_store.get_session(session_id)

    def list_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Session]:
        return self.session_store.list_sessions(
            status=status, agent_id=agent_id, limit=limit, offset=offset
        )

    def delete_session(self, session_id: str) -> None:
        """Erases the session; its artifacts stay until ``clean_orphaned_artifacts``."""
        self.session_store.delete_session(session_id)

    def save_run(self, run: Run) -> None:
        self.session_store.save_run(run)

    def get_run(self, run_id: str) -> Run:
        return self.session_store.get_run(run_id)

    def list_runs(
        self,
        session_id: str,
        *,
        status: RunStatus | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Run]:
        return self.session_store.list_runs(session_id, status=status, limit=limit, offset=offset)

    def get_active_run(self, session_id: str) -> Run | None:
        return self.session_store.get_active_run(session_id)

    def append_event(self, event: Event) -> None:
        self.session_store.append_event(event)

    def append_event_with_sequence(self, event: Event) -> Event:
        return self.session_store.append_event_with_sequence(event)

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        return self.session_store.append_events(events)

    def flush(self, result: ExecutionResult) -> None:
        self.session_store.flush(result)

    def get_events(
        self,
        session_id: str,
        *,
        run_id: str | None = None,
        type: EventType | str | None = None,  # noqa: A002 - the spec's filter name
        since: datetime | None = None,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
        wait_timeout_ms: int | None = None,
    ) -> list[Event]:
        return self.session_store.get_events(
            session_id,
            run_id=run_id,
            type=type,
            since=since,
            after=after,
            before=before,
            limit=limit,
            wait_timeout_ms=wait_timeout_ms,
        )

    def get_latest_sequence(self, session_id: str) -> int:
        return self.session_store.get_latest_sequence(session_id)

    def close(self) -> None:
        self.session_store.close()
        close = getattr(self.artifact_store, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        # query(), projections, prune_events, ...: whatever else the session store has.
        return getattr(self.session_store, name)
