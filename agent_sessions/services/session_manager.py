"""The agent loop's side of the store: a session's lifecycle and its runs.

``execute_run`` hands the run's input to a provider and records what it emits. Events
are written in batches while the run goes on (see ``event_buffer``), so a tailing reader
sees them live without one transaction per streamed token; whatever is still buffered at
the end goes into the one ``flush`` that also records the run's outcome, atomically.

A store failure during a run does not stop the run: the batch stays buffered, is retried
with the next one (appends are idempotent by event id), is counted in
``RunResult.persistence_failures``, and at the latest goes into the final ``flush``. If
that flush fails, ``execute_run`` raises: the outcome was not recorded, and nothing of
the finalization is in the store (the run stays ``running``; ``cancel_run`` closes it).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ..domain.checks import require_id
from ..domain.error_payload import error_payload, run_error
from ..domain.errors import AgentSessionsError, ErrorCode, ValidationError
from ..domain.event import Event
from ..domain.event_builder import EventContext
from ..domain.event_redactor import RedactionConfig
from ..domain.event_types import EventType
from ..domain.execution_result import ExecutionResult
from ..domain.execution_state import ExecutionState
from ..domain.pricing import PricingTable, reported_cost
from ..domain.run import Run
from ..domain.serialization import (
    json_map,
    optional_json_map,
    optional_string,
    present_string,
    required_string,
    storable_text,
)
from ..domain.session import Session
from ..domain.statuses import RunStatus, SessionStatus
from ..ports.session_store import SessionStore
from .conflicts import reread_and_retry
from .event_buffer import EventBuffering
from .event_pipeline import EventPipeline, guard_store_call
from .providers import Provider, ProviderError, ProviderResult
from .redacting_store import redacting_store
from .run_recording import (
    PROVIDER_SESSION_KEYS,
    ActiveRun,
    EventCallback,
    RunRecording,
    run_cancelled,
    run_closed,
    usage_counts,
)
from .run_result import RunResult
from .session_lifecycle import create_session, get_or_create_session

#: Provider of lifecycle events when neither the run nor the session names one.
LIFECYCLE_PROVIDER = "session_manager"


def _input_messages(run_input: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The messages a run's input sends: ``messages`` (a list), else ``prompt`` /
    ``content`` as one user message; other inputs send none."""
    if not run_input:
        return []
    messages = run_input.get("messages")
    if isinstance(messages, list):
        return [
            dict(m) if isinstance(m, Mapping) else {"role": "user", "content": m} for m in messages
        ]
    for key in ("prompt", "content"):
        if isinstance(run_input.get(key), str):
            return [{"role": "user", "content": run_input[key]}]
    return []


def _with_provider_session(
    session: Session, provider: str, provider_metadata: Mapping[str, Any]
) -> Session:
    """Per-provider session info under ``metadata.provider_sessions[<provider>]``; the
    old top-level keys are dropped, so each provider's ids stay apart."""
    metadata = {k: v for k, v in session.metadata.items() if k not in PROVIDER_SESSION_KEYS}
    existing = metadata.get("provider_sessions")
    sessions = dict(existing) if isinstance(existing, Mapping) else {}
    entry = dict(sessions.get(provider) or {})
    entry.update(
        {k: provider_metadata[k] for k in PROVIDER_SESSION_KEYS if provider_metadata.get(k)}
    )
    sessions[provider] = entry
    return session.replace(metadata={**metadata, "provider_sessions": sessions})


def _session_changed(exc: AgentSessionsError) -> bool:
    return exc.details.get("record") == "session"


def _free_text(value: object, field: str) -> str:
    """A text argument of any length (a reason): no NUL, no lone surrogate."""
    return present_string(value, field, max_bytes=None)


def _invalid_transition(message: str, **details: Any) -> ValidationError:
    return ValidationError(message, code=ErrorCode.INVALID_TRANSITION, details=details)


class SessionManager:
    """Runs sessions and their runs against one store and one provider.

    ``pricing`` prices runs whose provider reports no cost (built-in list prices when
    ``None``); ``redaction`` redacts everything this manager writes: sessions, runs and events
    (the store is wrapped in ``RedactingStore``; none when ``None``);
    ``buffering`` decides when run events are written. Every store call is guarded:
    failures are ``AgentSessionsError`` with the store's code, or
    ``storage_connection_failed`` when the store failed without one.
    """

    def __init__(
        self,
        store: SessionStore,
        provider: Provider,
        *,
        pricing: PricingTable | Mapping[str, Any] | None = None,
        redaction: RedactionConfig | None = None,
        buffering: EventBuffering | None = None,
        pipeline: EventPipeline | None = None,
    ) -> None:
        self._store = redacting_store(store, redaction)
        self._provider = provider
        self._pipeline = (
            pipeline if pipeline is not None else EventPipeline(self._store, redaction=redaction)
        )
        self._pricing = PricingTable.coerce(pricing)
        self._buffering = buffering if buffering is not None else EventBuffering()
        self._active: dict[str, ActiveRun] = {}
        self._active_lock = threading.Lock()

    @property
    def store(self) -> SessionStore:
        return self._store

    @property
    def provider(self) -> Provider:
        return self._provider

    @property
    def pipeline(self) -> EventPipeline:
        return self._pipeline

    # contexts -------------------------------------------------------------------------

    @staticmethod
    def _lifecycle_provider(session: Session, run: Run | None) -> str:
        if run is not None and run.provider:
            return run.provider
        provider = session.metadata.get("provider")
        return provider if isinstance(provider, str) and provider else LIFECYCLE_PROVIDER

    @staticmethod
    def _context(session: Session, run: Run | None, provider: str) -> EventContext:
        correlation_id = None
        for metadata in (run.metadata if run else {}, session.metadata):
            value = metadata.get("correlation_id")
            if isinstance(value, str) and value:
                correlation_id = value
                break
        return EventContext(
            session_id=session.id,
            run_id=None if run is None else run.id,
            provider=provider,
            correlation_id=correlation_id,
        )

    def _lifecycle_context(self, session: Session, run: Run | None) -> EventContext:
        return self._context(session, run, self._lifecycle_provider(session, run))

    def _get_session(self, session_id: str) -> Session:
        require_id(session_id, "session_id")
        return guard_store_call("get_session", lambda: self._store.get_session(session_id))

    def _get_run(self, run_id: str) -> Run:
        require_id(run_id, "run_id")
        return guard_store_call("get_run", lambda: self._store.get_run(run_id))

    def _flush(self, result: ExecutionResult) -> None:
        guard_store_call("flush", lambda: self._store.flush(result))

    # sessions -------------------------------------------------------------------------

    def start_session(
        self,
        agent_id: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        parent_session_id: str | None = None,
        session_id: str | None = None,
    ) -> Session:
        """A new pending session, recorded with ``session_created``."""
        # Checked before the provider is merged in: ``dict()`` of a non-map would fail
        # untyped, and an empty non-map (``""``) would pass as "no metadata".
        given = optional_json_map(metadata, "metadata") or {}
        session = Session.new(
            agent_id=agent_id,
            id=session_id,
            parent_session_id=parent_session_id,
            metadata={**given, "provider": self._provider.name},
            context=context,
            tags=tags,
        )
        return create_session(
            self._pipeline,
            session,
            self._lifecycle_context(session, None),
            {"provider": self._provider.name},
        )

    def get_or_create_session(
        self,
        session_id: str,
        *,
        agent_id: str,
        metadata: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
    ) -> Session:
        """The session ``session_id`` as stored, else a new pending one with that id
        (recorded with ``session_created``, as ``start_session`` does). An existing
        session is returned as it is: ``agent_id`` and the rest only shape a new one.
        When another writer creates it meanwhile, theirs is returned."""
        return get_or_create_session(
            self._pipeline,
            session_id,
            lambda: self.start_session(
                agent_id, metadata=metadata, context=context, tags=tags, session_id=session_id
            ),
        )

    def _transition(
        self,
        session_id: str,
        status: SessionStatus,
        event_type: EventType,
        data: Mapping[str, Any] | None = None,
    ) -> Session:
        # The event is built (and so validated) before the status is saved: a payload
        # the pipeline refuses must not leave a new status without its event.
        current = self._get_session(session_id)
        raw = {"type": event_type, "data": dict(data or {})}
        event = self._pipeline.prepare(raw, self._lifecycle_context(current, None))

        def save() -> Session:
            session = self._get_session(session_id).with_status(status)
            self._pipeline.persist_with_session(session, [event])
            return session

        # A status is an intent that holds whatever else changed meanwhile; the status
        # and its event commit together (a retry re-sends the same event id).
        return reread_and_retry(save)

    def activate_session(self, session_id: str) -> Session:
        return self._transition(session_id, SessionStatus.ACTIVE, EventType.SESSION_STARTED)

    def complete_session(self, session_id: str) -> Session:
        return self._transition(session_id, SessionStatus.COMPLETED, EventType.SESSION_COMPLETED)

    def fail_session(
        self, session_id: str, error: AgentSessionsError | Mapping[str, Any] | str
    ) -> Session:
        """Mark the session failed; ``session_failed`` carries the error payload."""
        session = self._get_session(session_id)
        # Checked as the caller's argument: a bad text names ``error``, not the event's data.
        data = json_map(
            error_payload(error, provider=self._lifecycle_provider(session, None)), "error"
        )
        return self._transition(session_id, SessionStatus.FAILED, EventType.SESSION_FAILED, data)

    def record_event(
        self,
        session_id: str,
        event_type: EventType | str,
        data: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
    ) -> Event:
        """Any other event through the pipeline (``policy_violation``,
        ``workspace_snapshot_taken``, ``workspace_diff_computed``, ...)."""
        # Checked as the caller's arguments, so that a refusal names them.
        if isinstance(event_type, str):
            storable_text(event_type, "event_type")
        payload = optional_json_map(data, "data") or {}
        session = self._get_session(session_id)
        run = None if run_id is None else self._get_run(run_id)
        raw = {"type": event_type, "data": payload}
        return self._pipeline.process(raw, self._lifecycle_context(session, run))

    def record_approval(
        self,
        session_id: str,
        *,
        tool_name: str,
        granted: bool,
        tool_call_id: str | None = None,
        run_id: str | None = None,
        reason: str | None = None,
    ) -> Event:
        """The user's answer to a ``tool_approval_requested``."""
        # Checked by name first: only ``True``/``False`` answer (``None`` is no denial),
        # and a bad text must name its argument, not the event's ``data``.
        if not isinstance(granted, bool):
            raise ValidationError("granted must be true or false", details={"field": "granted"})
        data = {
            "tool_name": required_string(tool_name, "tool_name"),
            "tool_call_id": optional_string(tool_call_id, "tool_call_id"),
            "reason": None if reason is None else _free_text(reason, "reason"),
        }
        event_type = EventType.TOOL_APPROVAL_GRANTED if granted else EventType.TOOL_APPROVAL_DENIED
        return self.record_event(
            session_id,
            event_type,
            {k: v for k, v in data.items() if v is not None},
            run_id=run_id,
        )

    # runs -----------------------------------------------------------------------------

    def start_run(
        self,
        session_id: str,
        input: Mapping[str, Any] | None = None,  # noqa: A002 - the field name of Run.input
        *,
        metadata: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> Run:
        """A pending run of an existing session (``session_not_found`` otherwise)."""
        run = Run.new(session_id=session_id, input=input, metadata=metadata, id=run_id)
        guard_store_call("save_run", lambda: self._store.save_run(run))
        return run

    def run_once(
        self,
        session_id: str,
        input: Mapping[str, Any] | None = None,  # noqa: A002
        *,
        metadata: Mapping[str, Any] | None = None,
        on_event: EventCallback | None = None,
    ) -> RunResult:
        run = self.start_run(session_id, input, metadata=metadata)
        return self.execute_run(run.id, on_event=on_event)

    def execute_run(self, run_id: str, *, on_event: EventCallback | None = None) -> RunResult:
        """Run a pending run with the provider and record everything it emits.

        ``on_event`` receives each event as stored (redacted, with its sequence number),
        after it is written; in buffered mode that is when its batch is written, on the
        thread that writes it.

        Returns the outcome (completed, failed by the provider, or cancelled); raises
        when the outcome itself could not be recorded.
        """
        run = self._get_run(run_id)
        session = self._get_session(run.session_id)
        if run.status is not RunStatus.PENDING:
            raise _invalid_transition(
                f"run {run_id} is {run.status.value}; only a pending run can be executed",
                run_id=run_id,
                status=run.status.value,
            )
        active = ActiveRun(session=session, run=run.with_status(RunStatus.RUNNING))
        with self._active_lock:
            if run_id in self._active:
                raise _invalid_transition(f"run {run_id} is already executing", run_id=run_id)
            self._active[run_id] = active
        try:
            context = self._context(session, active.run, self._provider.name)
            recording = RunRecording(run_id, self._pipeline, self._buffering, context, on_event)
            with active.lock:  # a cancel_run meanwhile must not be overwritten
                if active.final_run is None:
                    guard_store_call("save_run", lambda: self._store.save_run(active.run))
                    active.recording = recording
            if active.recording is None:
                return active.result(recording, run_cancelled(run_id))
            return self._execute(active, recording)
        finally:
            if active.recording is not None:
                active.recording.buffer.close(run_closed(run_id))
            with self._active_lock:
                self._active.pop(run_id, None)

    def _execute(self, active: ActiveRun, recording: RunRecording) -> RunResult:
        run = active.run
        outcome: ProviderResult | AgentSessionsError
        try:
            for message in _input_messages(run.input):
                recording.emit({"type": EventType.MESSAGE_SENT, "data": message})
            outcome = self._provider.run(run.input, recording.emit)
        except AgentSessionsError as exc:
            outcome = exc
        except Exception as exc:
            outcome = ProviderError(
                f"provider {self._provider.name} failed: {exc}",
                details={"exception": type(exc).__name__},
            )
        with active.lock:
            if active.final_run is not None:  # cancelled while the provider worked
                return active.result(recording, run_cancelled(run.id))
            pending = recording.buffer.close(run_closed(run.id))

            built: list[ExecutionState] = []

            def finalized() -> ExecutionState:
                if isinstance(outcome, ProviderResult):
                    state = self._completed(active, outcome, recording)
                else:
                    state = self._failed(active, outcome)
                for event in pending:
                    state.append_event(event)
                if state.run.status is RunStatus.FAILED:
                    state.append_event(self._run_failed_event(state))
                elif not recording.completed_event:
                    state.append_event(self._run_completed_event(state))
                built.append(state)
                self._flush(state.to_result())
                return state

            try:
                # The session is re-read for each attempt, and what the run adds to it
                # (provider metadata) still holds on a newer copy. A conflict on the
                # run itself is not retried: another process changed the run this
                # manager executes, and finishing it anyway would overwrite that.
                state = reread_and_retry(finalized, only=_session_changed)
            except AgentSessionsError as exc:
                exc.details.update(
                    run_id=run.id,
                    unrecorded_events=len(built[-1].events) if built else len(pending),
                    persistence_failures=recording.buffer.failures,
                )
                raise
            active.session, active.final_run = state.session, state.run
        recording.buffer.persisted += len(state.events)
        if recording.wants_events and state.events:
            self._replay_flushed(state, recording)
        error = None if isinstance(outcome, ProviderResult) else outcome
        return active.result(recording, error)

    def _completed(
        self, active: ActiveRun, result: ProviderResult, observed: RunRecording
    ) -> ExecutionState:
        name = self._provider.name
        # Re-read: the session may have changed while the provider worked, and flush
        # writes the whole record.
        session = self._get_session(active.session.id)
        state = ExecutionState.new(session, active.run)
        state.cache_provider_metadata(observed.provider_metadata)
        state.cache_provider_metadata(result.provider_metadata)
        provider_metadata = {"provider": name, **state.provider_metadata}
        model = provider_metadata.get("model")
        # Totals the provider's result reports win; else the sum of its
        # ``token_usage_updated`` events (never both: that would count twice).
        usage = usage_counts(result.token_usage) if result.token_usage else observed.event_usage
        if result.token_usage:
            usage = {**result.token_usage, **usage}
        cost = observed.reported_cost
        if cost is None:
            cost = reported_cost(result.cost_usd)
        if cost is None:
            priced = active.run.add_token_usage(usage).token_usage
            cost = self._pricing.cost(priced, name, model if isinstance(model, str) else None)
        # Turns: the provider's ``turn_completed`` events; without any, one per reply.
        turns = observed.turns or observed.replies

        def finish(run: Run) -> Run:
            run = run.set_output(result.output).add_token_usage(usage)
            run = run.with_provider(name, provider_metadata).with_cost(cost)
            return run.replace(turn_count=run.turn_count + turns).with_metadata(result.metadata)

        state.update_run(finish)
        state.update_session(lambda s: _with_provider_session(s, name, provider_metadata))
        return state

    def _run_completed_event(self, state: ExecutionState) -> Event:
        """``run_completed`` for a provider that finished without emitting one, so a
        reader tailing the run sees it end."""
        run = state.run
        output = run.output or {}
        stop_reason = output.get("stop_reason")
        data = {
            "stop_reason": stop_reason if isinstance(stop_reason, str) else "completed",
            "token_usage": dict(run.token_usage),
            "turn_count": run.turn_count,
            "cost_usd": run.cost_usd,
            "recorded_by": LIFECYCLE_PROVIDER,
        }
        raw = {"type": EventType.RUN_COMPLETED, "data": data}
        return self._pipeline.prepare(raw, self._lifecycle_context(state.session, run))

    def _failed(self, active: ActiveRun, error: AgentSessionsError) -> ExecutionState:
        payload = error_payload(error, provider=self._provider.name)
        state = ExecutionState.new(self._get_session(active.session.id), active.run)
        state.update_run(
            lambda run: run.set_error(run_error(payload)).with_provider(self._provider.name)
        )
        return state

    def _run_failed_event(self, state: ExecutionState) -> Event:
        error = state.run.error or {}
        payload = error_payload(error, provider=state.run.provider)
        raw = {"type": EventType.RUN_FAILED, "data": payload}
        return self._pipeline.prepare(raw, self._lifecycle_context(state.session, state.run))

    def _replay_flushed(self, state: ExecutionState, recording: RunRecording) -> None:
        """Hand ``on_event`` the events that went in with the flush, as stored (flush
        does not return them, and their sequence numbers are the store's)."""
        ids = {event.id for event in state.events}
        try:
            events = guard_store_call(
                "get_events",
                lambda: self._store.get_events(
                    state.session.id, run_id=state.run.id, after=recording.last_sequence
                ),
            )
        except AgentSessionsError as exc:
            recording.errors.append(exc)
            return
        flushed = [event for event in events if event.id in ids]
        if flushed:
            recording.stored(flushed)

    # cancellation and approvals -------------------------------------------------------

    def cancel_run(self, run_id: str, *, reason: str | None = None) -> Run:
        """Cancel a run: recorded as ``cancelled`` with ``run_cancelled``. A run
        executing in this manager stops taking events (the provider's ``emit`` raises
        ``cancelled``) and its buffered events are written with the cancellation.
        Cancelling a cancelled run returns it; other finished runs are
        ``invalid_transition``."""
        if reason is not None:
            _free_text(reason, "reason")
        data = {"reason": reason} if reason else {}
        return self._cancel(run_id, data, ())

    def cancel_for_approval(
        self,
        run_id: str,
        *,
        tool_name: str,
        policy_name: str,
        tool_call_id: str | None = None,
        tool_input: Mapping[str, Any] | None = None,
        violation_kind: str | None = None,
    ) -> Run:
        """Stop the run because a tool call needs a human's approval: ``run_cancelled``
        (reason ``approval_requested``) then ``tool_approval_requested``, written with
        the cancelled run in one flush."""
        request = {
            "tool_name": tool_name,
            "tool_call_id": tool_call_id,
            "tool_input": dict(tool_input) if tool_input is not None else None,
            "policy_name": policy_name,
            "violation_kind": violation_kind,
        }
        approval = {"type": EventType.TOOL_APPROVAL_REQUESTED, "data": request}
        return self._cancel(run_id, {"reason": "approval_requested"}, (approval,))

    def _cancel(
        self, run_id: str, data: Mapping[str, Any], extra: Sequence[Mapping[str, Any]]
    ) -> Run:
        require_id(run_id, "run_id")  # before the lookup of active runs, which hashes it
        with self._active_lock:
            active = self._active.get(run_id)
        if active is None:
            run = self._get_run(run_id)
            if run.status is RunStatus.CANCELLED:
                return run
            if run.is_terminal:
                raise _invalid_transition(
                    f"run {run_id} is {run.status.value} and cannot be cancelled",
                    run_id=run_id,
                    status=run.status.value,
                )
            return self._record_cancel(self._get_session(run.session_id), run, [], data, extra)
        with active.lock:
            if active.final_run is not None:
                if active.final_run.status is RunStatus.CANCELLED:
                    return active.final_run
                raise _invalid_transition(
                    f"run {run_id} is {active.final_run.status.value} and cannot be cancelled",
                    run_id=run_id,
                )
            recording = active.recording
            pending = [] if recording is None else recording.buffer.close(run_cancelled(run_id))
            try:
                session = self._get_session(active.session.id)
                final = self._record_cancel(session, active.run, pending, data, extra)
            except AgentSessionsError:
                if recording is not None:  # the run's own finalization writes them
                    recording.buffer.restore(pending)
                raise
            active.session, active.final_run = session, final
            if recording is not None:
                recording.buffer.persisted += len(pending)
            return final

    def _record_cancel(
        self,
        session: Session,
        run: Run,
        pending: list[Event],
        data: Mapping[str, Any],
        extra: Sequence[Mapping[str, Any]],
    ) -> Run:
        final = run.with_status(RunStatus.CANCELLED)
        context = self._lifecycle_context(session, final)
        raws = [{"type": EventType.RUN_CANCELLED, "data": dict(data)}, *extra]
        events = pending + self._pipeline.prepare_batch(raws, context)
        self._flush(ExecutionResult(session=session, run=final, events=events))
        return final
