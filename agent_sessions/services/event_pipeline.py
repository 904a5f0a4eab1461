"""Build, redact, validate, persist: the one way raw provider output reaches a store.

The pure steps live in the domain (``EventBuilder``, ``EventRedactor``,
``EventValidator``); this module adds the store call, and the guard that keeps a
misbehaving store from leaking anything but our own error family.

Redaction comes before validation, so shape warnings (which quote values) are computed
from redacted text; and every error leaving a redacting pipeline is redacted too, so a
refusal that quotes a value puts no secret in a log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ..domain.errors import AgentSessionsError, ErrorCode, StorageError, ValidationError
from ..domain.event import Event
from ..domain.event_builder import EventBuilder, EventContext, RawEvent
from ..domain.event_redactor import RedactionConfig
from ..domain.event_validator import WARNINGS_KEY, EventValidator
from ..domain.record_redactor import RecordRedactor, redacted_errors
from ..domain.session import Session
from ..ports.session_store import SessionStore

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

ContextLike = EventContext | Mapping[str, Any]


def guard_store_call(operation: str, call: Callable[[], _T]) -> _T:
    """Run one store call. Our own errors pass as they are; anything else means the
    store broke in a way it did not report (a dead connection in a third-party store, a
    closed handle), which callers can only treat as the store being unavailable:
    ``storage_connection_failed``, a retryable code, so callers' retry logic applies."""
    try:
        return call()
    except AgentSessionsError:
        raise
    except Exception as exc:
        raise StorageError(
            f"SessionStore {operation} failed because the store became unavailable",
            code=ErrorCode.STORAGE_CONNECTION_FAILED,
            details={"operation": operation, "reason": f"{type(exc).__name__}: {exc}"},
        ) from exc


def _batch_item_error(index: int, exc: AgentSessionsError) -> ValidationError:
    return ValidationError(
        f"batch item {index} was refused: {exc.message}",
        code=exc.code,
        details={**exc.details, "index": index, "reason": exc.message},
    )


class EventPipeline:
    """Turns raw events into persisted ones for one store.

    ``redaction`` is the default for every event; ``None`` takes the store's own
    (``open_store(url, redaction=...)``, ``RedactingStore``), else no redaction. A
    context's own ``redaction`` overrides it.
    """

    def __init__(
        self,
        store: SessionStore,
        *,
        redaction: RedactionConfig | None = None,
        validator: EventValidator | None = None,
        builder: EventBuilder | None = None,
    ) -> None:
        self._store = store
        self._validator = validator if validator is not None else EventValidator()
        self._builder = builder if builder is not None else EventBuilder(validator=self._validator)
        if redaction is None:
            redaction = store_redaction(store)
        self._redactor = None if redaction is None else RecordRedactor(redaction)

    @property
    def store(self) -> SessionStore:
        return self._store

    def prepare(self, raw: RawEvent, context: ContextLike) -> Event:
        """Build, redact and validate without writing: the event exactly as it would be
        stored, minus its sequence number."""
        redactor = self._redactor
        with redacted_errors(redactor):
            ctx = EventContext.coerce(context)
            if ctx.redaction is not None:
                redactor = RecordRedactor(ctx.redaction)
        with redacted_errors(redactor):
            event = self._builder.build(raw, ctx)
            if redactor is not None:
                event, report = redactor.redact(event)
                if report.count:
                    _log.info(
                        "redacted %d secret(s) from %s event of session %s: %s",
                        report.count,
                        event.type.value,
                        event.session_id,
                        report.categories,
                    )
            return self._validator.validate(event)

    def prepare_batch(self, items: Sequence[RawEvent], context: ContextLike) -> list[Event]:
        """Every item prepared, or the first refusal, naming the item's ``index``."""
        if not isinstance(items, (list, tuple)):
            raise ValidationError("a batch must be a list of raw events")
        ctx = EventContext.coerce(context)
        events = []
        for index, raw in enumerate(items):
            try:
                events.append(self.prepare(raw, ctx))
            except AgentSessionsError as exc:
                raise _batch_item_error(index, exc) from exc
        return events

    def process(self, raw: RawEvent, context: ContextLike) -> Event:
        """One event through every step; the stored event (with its sequence number)."""
        try:
            event = self.prepare(raw, context)
        except AgentSessionsError as exc:
            _log.warning("event rejected: %s", exc)
            raise
        return self.persist([event])[0]

    def process_batch(self, items: Sequence[RawEvent], context: ContextLike) -> list[Event]:
        """All items prepared first, then written with one ``append_events`` call: a
        refused item leaves the store untouched. Input order is kept, and replaying a
        batch whose items carry ids stores nothing twice."""
        try:
            events = self.prepare_batch(items, context)
        except AgentSessionsError as exc:
            _log.warning("batch rejected: %s", exc)
            raise
        return self.persist(events)

    def persist(self, events: Sequence[Event]) -> list[Event]:
        """Write prepared events: one event with ``append_event_with_sequence``, several
        with one ``append_events``."""
        if not events:
            return []
        with redacted_errors(self._redactor):
            stored = self._persist(events)
        for item in stored:
            if warnings := item.metadata.get(WARNINGS_KEY):
                _log.debug("stored %s with shape warnings: %s", item.id, warnings)
        return stored

    def persist_with_session(
        self, session: Session, events: Sequence[Event], *, new: bool = False
    ) -> list[Event]:
        """Save ``session`` and write its prepared ``events`` in one transaction where the
        store can (``save_session_with_events``): a lifecycle change is never seen
        without the event that announces it. ``new``: the session must not exist yet."""
        with redacted_errors(self._redactor):
            return save_session_with_events(self._store, session, events, new=new)

    def _persist(self, events: Sequence[Event]) -> list[Event]:
        if len(events) == 1:
            event = events[0]
            stored = [
                guard_store_call(
                    "append_event_with_sequence",
                    lambda: self._store.append_event_with_sequence(event),
                )
            ]
        else:
            stored = guard_store_call("append_events", lambda: self._store.append_events(events))
        return stored


def save_session_with_events(
    store: SessionStore, session: Session, events: Sequence[Event], *, new: bool = False
) -> list[Event]:
    """``store.save_session_with_events`` (one transaction) where the store has it; a
    store implementing only the port gets the two writes one after the other, the
    session first (and, with ``new``, a look for an existing session before, which a
    racing creator can slip past)."""
    write_both = getattr(store, "save_session_with_events", None)
    if callable(write_both):
        stored: list[Event] = guard_store_call(
            "save_session_with_events", lambda: write_both(session, list(events), new=new)
        )
        return stored
    if new and _exists(store, session.id):
        raise AgentSessionsError(
            f"session {session.id} already exists",
            code=ErrorCode.ALREADY_EXISTS,
            details={"field": "session_id", "session_id": session.id},
        )
    guard_store_call("save_session", lambda: store.save_session(session))
    if not events:
        return []
    return guard_store_call("append_events", lambda: store.append_events(list(events)))


def _exists(store: SessionStore, session_id: str) -> bool:
    try:
        guard_store_call("get_session", lambda: store.get_session(session_id))
    except AgentSessionsError as exc:
        if exc.code == ErrorCode.SESSION_NOT_FOUND:
            return False
        raise
    return True


def store_redaction(store: object) -> RedactionConfig | None:
    """The redaction a store applies to everything written to it, if any: a pipeline
    over it redacts the same way before validating (see the module docstring)."""
    redaction = getattr(store, "redaction", None)
    return redaction if isinstance(redaction, RedactionConfig) else None
