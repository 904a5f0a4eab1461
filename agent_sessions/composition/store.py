"""The object ``open_store`` returns: the ``SessionStore`` port on the event-sourced
store, the read models kept from its log, the services over them (``query()``,
``maintenance()``), and artifacts when an artifact store is configured.

Wiring happens here and only here, so no lower layer knows a higher one: the store
never builds a service, and services receive the store and read models they work on.

A store opened with ``redaction=`` redacts every session, run and event (and artifact
metadata) in its write methods, before the event-sourced store below sees them: the one
place every write passes, whoever the caller is. Every error it raises, from any method
of the store or of the query, maintenance and history objects it hands out, leaves
redacted too (``errors_redacted``): a not-found quotes the id it was given.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, BinaryIO, TypeVar

from ..artifacts.artifact_store import ArtifactStore
from ..domain.aggregates import AgentEventRecorded
from ..domain.artifact import Artifact
from ..domain.checks import checked_int, require_id
from ..domain.errors import AgentSessionsError, StorageError, ValidationError
from ..domain.event import Event
from ..domain.event_builder import EventContext
from ..domain.event_redactor import RedactionConfig
from ..domain.execution_result import ExecutionResult
from ..domain.messages import Message
from ..domain.pricing import PricingTable
from ..domain.record_merge import carry_version
from ..domain.record_redactor import RecordRedactor, errors_redacted, redacted_errors
from ..domain.replay import KEPT_TYPES, LogMark
from ..domain.run import Run
from ..domain.serialization import optional_json_map, optional_string
from ..domain.session import Session
from ..ports.backend import Backend
from ..ports.failures import storage_error
from ..ports.index import EventQuery
from ..read_models.catalog import LONG_CATCH_UP, CatchUpProgress, ReadModels
from ..read_models.engine import ProjectionEngine
from ..services import event_windows
from ..services.artifact_registry import ArtifactRegistry
from ..services.conversation import conversation as session_conversation
from ..services.event_pipeline import EventPipeline
from ..services.history import SessionHistory, fork_session
from ..services.maintenance import Maintenance
from ..services.query_api import QueryAPI
from ..services.redacting_store import redacted_record
from ..services.run_recorder import APP_PROVIDER, RunRecorder
from ..services.session_lifecycle import create_session, get_or_create_session
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


class _RedactingRegistry(ArtifactRegistry):
    """The registry of a redacting store: entries are registered with their metadata
    redacted, whoever registers them (``put_artifact`` or a direct ``register``)."""

    def __init__(
        self, aggregates: Store, read_models: ReadModels, redactor: RecordRedactor
    ) -> None:
        super().__init__(aggregates, read_models)
        self._redactor = redactor

    def register(self, *, metadata: Any = None, **fields: Any) -> Artifact:
        if isinstance(metadata, dict):
            metadata = self._redactor.redact_json(metadata)
        return super().register(metadata=metadata, **fields)


class Store(EventSourcedSessionStore):
    """A store opened by :func:`agent_sessions.open_store`. Thread-safe; a context
    manager. A failing artifact store yields ``storage_error`` for artifact calls only:
    session operations keep working. With ``redaction`` every write is redacted first
    (see the module docstring)."""

    def __init__(
        self,
        app: SessionsApplication,
        backend: Backend,
        *,
        artifact_store: ArtifactBackend | None = None,
        redaction: RedactionConfig | None = None,
    ) -> None:
        super().__init__(
            app,
            classify=backend.classify,
            poll_interval=backend.poll_interval,
            change_feed=backend.change_feed(app.factory, app.recorder),
            url=backend.url,
            recover=lambda: backend.recover(app.recorder),
        )
        self._backend = backend
        self.artifact_store = artifact_store
        self._read_models: ReadModels | None = None
        self._projections_lock = threading.Lock()
        self._registry: ArtifactRegistry | None = None
        self._redactor = (
            RecordRedactor(redaction) if redaction is not None and redaction.enabled else None
        )
        errors_redacted(self, self._redactor)

    # redaction ------------------------------------------------------------------------

    @property
    def redaction(self) -> RedactionConfig | None:
        """The redaction every write goes through (``None``: none). An
        ``EventPipeline`` or ``SessionManager`` over this store uses it too."""
        return None if self._redactor is None else self._redactor.config

    def _redacted(self, record: Any) -> Any:
        return record if self._redactor is None else redacted_record(self._redactor, record)

    def save_session(self, session: Session) -> None:
        with redacted_errors(self._redactor):
            saved = self._redacted(session)
            super().save_session(saved)
            carry_version(saved, session)

    def save_run(self, run: Run) -> None:
        with redacted_errors(self._redactor):
            saved = self._redacted(run)
            super().save_run(saved)
            carry_version(saved, run)

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        """Also the path of ``append_event`` and ``append_event_with_sequence``."""
        with redacted_errors(self._redactor):
            if self._redactor is not None and isinstance(events, (list, tuple)):
                events = [self._redacted(event) for event in events]
            return super().append_events(events)

    def save_session_with_events(
        self, session: Session, events: Sequence[Event], *, new: bool = False
    ) -> list[Event]:
        """Also the path of ``get_or_create_session`` and of ``SessionManager``'s status
        changes: redacted like every write."""
        with redacted_errors(self._redactor):
            saved = self._redacted(session)
            if self._redactor is not None and isinstance(events, (list, tuple)):
                events = [self._redacted(event) for event in events]
            stored = super().save_session_with_events(saved, events, new=new)
            carry_version(saved, session)
            return stored

    def get_or_create_session(
        self,
        session_id: str,
        *,
        agent_id: str,
        metadata: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        parent_session_id: str | None = None,
    ) -> Session:
        """The session ``session_id`` as stored, else a new pending one with that id,
        saved with its ``session_created`` event in one transaction. An existing session
        is returned as it is (the other arguments only shape a new one); when another
        writer creates it meanwhile, theirs is returned."""
        pipeline = EventPipeline(self)

        def create() -> Session:
            session = Session.new(
                agent_id=agent_id,
                id=session_id,
                parent_session_id=parent_session_id,
                metadata=metadata,
                context=context,
                tags=tags,
            )
            context_of = EventContext(session_id=session.id, provider=APP_PROVIDER)
            return create_session(pipeline, session, context_of, {"provider": APP_PROVIDER})

        return get_or_create_session(pipeline, session_id, create)

    def write_session(
        self, session: Session, runs: Sequence[Run], events: Sequence[Event]
    ) -> list[Event]:
        """Also the path of ``fork`` and of the importers: redacted like every write."""
        with redacted_errors(self._redactor):
            if self._redactor is not None:
                session = self._redacted(session)
                runs = [self._redacted(run) for run in runs]
                events = [self._redacted(event) for event in events]
            return super().write_session(session, runs, events)

    def flush(self, result: ExecutionResult) -> None:
        with redacted_errors(self._redactor):
            if self._redactor is None:
                super().flush(result)
                return
            original = ExecutionResult.coerce(result)
            saved = self._redactor.redact_result(original)[0]
            super().flush(saved)
            carry_version(saved.session, original.session)
            carry_version(saved.run, original.run)

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

    def history(
        self,
        session_id: str,
        *,
        include_deleted: bool = False,
        pricing: PricingTable | Mapping[str, Any] | None = None,
    ) -> SessionHistory:
        """The session's history, to replay as it was at any point (``at``, ``until``,
        ``steps``, ``diff``; ``services/history.py``). ``pricing`` prices runs that
        recorded no cost (default: the built-in table)."""
        history = SessionHistory(
            self,
            session_id,
            include_deleted=include_deleted,
            pricing=None if pricing is None else PricingTable.coerce(pricing),
        )
        return errors_redacted(history, self._redactor)

    def replay_log(self, session_id: str, *, after: int, limit: int) -> list[Event | LogMark]:
        """Up to ``limit`` log events after sequence ``after``, in order, as a replay
        folds them (``services/history.py``): whole events of the types it keeps
        (``replay.KEPT_TYPES``), a :class:`~agent_sessions.domain.replay.LogMark` of the
        others. Each payload is decoded once and nothing is re-validated (stored events
        were checked when written); an event stored in another shape of its class takes
        the mapper's path (upcast, or refused as newer)."""
        require_id(session_id, "session_id")
        query = EventQuery(
            session_id=session_id,
            after=checked_int(after, "after"),
            limit=checked_int(limit, "limit", minimum=1),
        )
        recorder: Any = self._app.recorder
        stored = self._guard("replay_log", lambda: recorder.select_log_events(query))
        mapper = self._app.mapper
        decode = mapper.transcoder.decode
        kept = {kind.value for kind in KEPT_TYPES}
        known = AgentEventRecorded.class_version
        items: list[Event | LogMark] = []
        for row in stored:
            state: dict[str, Any] = decode(row.state)
            if state.get("class_version", known) != known:
                items.append(mapper.to_domain_event(row).to_event())  # type: ignore[attr-defined]
            elif state["type"] in kept:
                state.pop("class_version", None)
                state["originator_id"] = row.originator_id
                state["originator_version"] = row.originator_version
                recorded = object.__new__(AgentEventRecorded)
                object.__setattr__(recorded, "__dict__", state)
                items.append(recorded.to_event())
            else:
                model = state["data"].get("model")
                items.append(
                    LogMark(
                        sequence_number=row.originator_version,
                        session_id=state["session_id"],
                        run_id=state["run_id"],
                        timestamp=state["timestamp"],
                        provider=state["provider"],
                        model=model if isinstance(model, str) and model else None,
                    )
                )
        return items

    def record_run(
        self,
        session_id: str,
        *,
        input: Mapping[str, Any] | None = None,  # noqa: A002 - the field name of Run.input
        metadata: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        pricing: PricingTable | Mapping[str, Any] | None = None,
    ) -> RunRecorder:
        """A run recorded from an app-driven loop: ``with store.record_run(sid) as run:
        run.user(...); run.assistant(...); run.tool_call(...); run.tool_result(...);
        run.usage(...)``. Events are buffered and written with the outcome in one
        ``flush`` when the block ends (``services/run_recorder.py``)."""
        return RunRecorder(
            self,
            session_id,
            input=input,
            metadata=metadata,
            run_id=run_id,
            provider=provider,
            model=model,
            pricing=pricing,
        )

    def last_events(self, session_id: str, n: int) -> list[Event]:
        """The newest ``n`` events in sequence order (O(n) reads), extended back to the
        start of any tool call whose result is among them (``services/event_windows``)."""
        return event_windows.last_events(self, session_id, n)

    def last_runs(self, session_id: str, n: int) -> list[Event]:
        """The events of the session's ``n`` newest runs, in sequence order."""
        return event_windows.last_runs(self, session_id, n)

    def last_turns(self, session_id: str, n: int) -> list[Event]:
        """The events from the ``n``-th newest user message on, in sequence order."""
        return event_windows.last_turns(self, session_id, n)

    def fork(
        self,
        source_session_id: str,
        /,
        at: int,
        *,
        session_id: str | None = None,
        include_deleted: bool = False,
    ) -> Session:
        """A new session (a child of the source) holding copies of the source's events
        up to ``at`` and its runs as they were then, to re-run an agent from that point.
        ``session_id`` names the new session (default: a new id)."""
        return fork_session(
            self,
            source_session_id,
            at,
            new_session_id=session_id,
            include_deleted=include_deleted,
        )

    def conversation(
        self,
        session_id: str,
        *,
        run_id: str | None = None,
        last_runs: int | None = None,
        last_turns: int | None = None,
    ) -> list[Message]:
        """The session's conversation as the message list for the next model call
        (``services/conversation.py``); convert it with ``agent_sessions.domain.message_converters``
        (``to_openai_chat``, ``to_openai_responses``, ``to_anthropic``). The windows
        never separate a tool call from its result."""
        return session_conversation(
            self, session_id, run_id=run_id, last_runs=last_runs, last_turns=last_turns
        )

    def query(
        self,
        *,
        progress: CatchUpProgress | None = None,
        long_catch_up: int = LONG_CATCH_UP,
    ) -> QueryAPI:
        """Cross-session queries over this store's read models (``QueryAPI``).
        ``progress(view, done, total)`` is told of each catch-up over more than
        ``long_catch_up`` notifications that a query makes before answering (the
        command line draws it as a bar); ``query().lag()`` is how far behind the views
        are, which is what a ``stale_ok=True`` answer may miss."""
        api = QueryAPI(self, self.read_models, progress=progress, long_catch_up=long_catch_up)
        return errors_redacted(api, self._redactor)

    def maintenance(self, **options: Any) -> Maintenance:
        """Retention and health checks over this store (``Maintenance``); with an
        artifact store it also deletes the blobs of orphaned artifacts."""
        if self.artifact_store is not None:
            options.setdefault("artifact_store", self.artifact_store)
        maintenance = Maintenance(
            self, self.read_models, index=self._index, registry=self.registry, **options
        )
        return errors_redacted(maintenance, self._redactor)

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
            if self._redactor is None:
                self._registry = ArtifactRegistry(self, self.read_models)
            else:
                self._registry = _RedactingRegistry(self, self.read_models, self._redactor)
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
        key) and a retry registers it; the reverse order could register missing bytes.
        With redaction on, ``metadata`` is redacted (the blob's bytes are not).

        The registry's fields are checked first: a refused put writes no blob."""
        optional_string(session_id, "session_id")
        optional_string(run_id, "run_id")
        optional_string(content_type, "content_type")
        optional_json_map(metadata, "metadata")
        if self._redactor is not None and isinstance(metadata, dict):
            metadata = self._redactor.redact_json(metadata)
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
