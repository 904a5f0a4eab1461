"""The object ``open_store`` returns: the ``SessionStore`` port on the event-sourced
store, the read models kept from its log, the services over them (``query()``,
``maintenance()``), and artifacts when an artifact store is configured.

Wiring happens here and only here, so no lower layer knows a higher one: the store
never builds a service, and services receive the store and read models they work on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar

from ..artifacts.artifact_store import ArtifactStore
from ..domain.artifact import Artifact
from ..domain.errors import AgentSessionsError, StorageError, ValidationError
from ..ports.backend import Backend
from ..ports.failures import storage_error
from ..read_models.catalog import ReadModels
from ..read_models.engine import ProjectionEngine
from ..services.artifact_registry import ArtifactRegistry
from ..services.maintenance import Maintenance
from ..services.query_api import QueryAPI
from ..store.service import EventSourcedSessionStore
from ..store.sessions_app import SessionsApplication

#: Any object with the ``ArtifactStore`` methods: the file and S3 stores, or yours.
ArtifactBackend = ArtifactStore


_T = TypeVar("_T")


def _artifact_failure(operation: str, exc: Exception) -> AgentSessionsError:
    if isinstance(exc, AgentSessionsError):
        return exc
    return StorageError(
        f"{operation} failed: {exc}",
        details={"operation": operation, "cause": f"{type(exc).__name__}: {exc}"},
    )


class Store(EventSourcedSessionStore):
    """A store opened by :func:`agent_sessions.open_store`. Thread-safe; a context
    manager. A failing artifact store yields ``storage_error`` for artifact calls only:
    session operations keep working."""

    def __init__(
        self,
        app: SessionsApplication,
        backend: Backend,
        *,
        artifact_store: ArtifactBackend | None = None,
    ) -> None:
        super().__init__(
            app,
            classify=backend.classify,
            poll_interval=backend.poll_interval,
            change_feed=backend.change_feed(app.factory, app.recorder),
            url=backend.url,
        )
        self._backend = backend
        self.artifact_store = artifact_store
        self._read_models: ReadModels | None = None
        self._projections_lock = threading.Lock()
        self._registry: ArtifactRegistry | None = None

    # read models and services ----------------------------------------------------------

    @property
    def read_models(self) -> ReadModels:
        """The built-in read models of this store and the engine that keeps them.
        Created on first use: a store that is only written to never builds views."""
        with self._projections_lock:
            if self._read_models is None:
                self._check_open()
                app = self.application
                try:
                    views = self._backend.view_store(app.factory)
                    self._read_models = ReadModels(app.recorder, app.mapper, views)
                except AgentSessionsError:
                    raise
                except Exception as exc:
                    kind = self._backend.classify(exc)
                    if kind is None:
                        raise
                    raise storage_error(exc, "open read models", kind) from exc
            return self._read_models

    @property
    def projections(self) -> ProjectionEngine:
        """The projection engine of this store, with the built-in views registered."""
        return self.read_models.engine

    def query(self) -> QueryAPI:
        """Cross-session queries over this store's read models (``QueryAPI``)."""
        return QueryAPI(self, self.read_models)

    def maintenance(self, **options: Any) -> Maintenance:
        """Retention and health checks over this store (``Maintenance``); with an
        artifact store it also deletes the blobs of orphaned artifacts."""
        if self.artifact_store is not None:
            options.setdefault("artifact_store", self.artifact_store)
        return Maintenance(
            self, self.read_models, index=self._index, registry=self.registry, **options
        )

    def run_projections(
        self, stop: threading.Event, *, batch_size: int = 500, idle_wait: float = 1.0
    ) -> None:
        """Follow the log with every registered projection until ``stop`` is set: the
        body of ``agent-sessions projections run``."""
        self.projections.run_forever(
            stop, wait_for_change=self.wait_for_change, batch_size=batch_size, idle_wait=idle_wait
        )

    # artifacts ------------------------------------------------------------------------

    @property
    def registry(self) -> ArtifactRegistry:
        """The artifact registry: one stream per key, read through the artifacts view."""
        if self._registry is None:
            self._registry = ArtifactRegistry(self, self.read_models)
        return self._registry

    def _blobs(self, operation: str, call: Callable[[ArtifactBackend], _T]) -> _T:
        """Run ``call`` on the artifact store; its failures become ``storage_error``."""
        if self.artifact_store is None:
            raise ValidationError(
                "this store has no artifact store: open it with open_store(url, artifacts=...)",
                details={"url": self.url, "operation": operation},
            )
        blobs = self.artifact_store
        try:
            return call(blobs)
        except Exception as exc:
            raise _artifact_failure(operation, exc) from exc

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
        blob = self._blobs(
            "put_artifact",
            lambda blobs: blobs.put(key, data, content_type=content_type, metadata=metadata),
        )
        return self.registry.register_blob(blob, session_id=session_id, run_id=run_id)

    def get_artifact(self, key: str) -> bytes:
        return self._blobs("get_artifact", lambda blobs: blobs.get(key))

    def open_artifact(self, key: str) -> BinaryIO:
        return self._blobs("open_artifact", lambda blobs: blobs.open(key))

    def delete_artifact(self, key: str) -> None:
        """Delete the blob and soft-delete its registry entry; missing keys are fine."""
        self._blobs("delete_artifact", lambda blobs: blobs.delete(key))
        self.registry.soft_delete(key)

    # lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Release connections, answer waiting long-polls with ``[]`` and close the
        artifact store. Idempotent."""
        if self._closed:
            return
        if self._read_models is not None:
            self._read_models.close()
        super().close()
        close = getattr(self.artifact_store, "close", None)
        if callable(close):
            close()


#: The name earlier versions gave a store with artifacts; every store is one now.
CompositeSessionStore = Store
