"""A ``SessionStore`` that redacts every record and event before another store sees it.

``open_store(url, redaction=...)`` gives a store that redacts by itself; this wrapper is
the same switch for any other ``SessionStore`` (one of yours, or a store a
``SessionManager`` was handed together with a ``redaction`` config), so that sessions
and runs are redacted as well as events, whichever way they are written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Self

from ..domain.event import Event
from ..domain.event_redactor import RedactionConfig
from ..domain.event_types import EventType
from ..domain.execution_result import ExecutionResult
from ..domain.record_merge import carry_version
from ..domain.record_redactor import RecordRedactor, errors_redacted, redacted_errors
from ..domain.run import Run
from ..domain.session import Session
from ..domain.statuses import RunStatus, SessionStatus
from ..ports.session_store import SessionStore
from .event_pipeline import save_session_with_events, store_redaction

_log = logging.getLogger(__name__)


class RedactingStore:
    """Writes go to ``inner`` redacted (``RecordRedactor``); reads and every other
    attribute of ``inner`` pass through. Errors of this wrapper's own methods, reads
    included, come back redacted."""

    def __init__(self, inner: SessionStore, redaction: RedactionConfig) -> None:
        self._inner = inner
        self._redactor = RecordRedactor(redaction)
        errors_redacted(self, self._redactor)  # reads quote their arguments too

    @property
    def inner(self) -> SessionStore:
        return self._inner

    @property
    def redaction(self) -> RedactionConfig:
        """What this store redacts with (an ``EventPipeline`` over it does the same)."""
        return self._redactor.config

    def _redacted(self, record: Any) -> Any:
        return redacted_record(self._redactor, record)

    # writes ---------------------------------------------------------------------------

    def save_session(self, session: Session) -> None:
        with redacted_errors(self._redactor):
            saved = self._redacted(session)
            self._inner.save_session(saved)
            carry_version(saved, session)

    def save_run(self, run: Run) -> None:
        with redacted_errors(self._redactor):
            saved = self._redacted(run)
            self._inner.save_run(saved)
            carry_version(saved, run)

    def append_event(self, event: Event) -> None:
        with redacted_errors(self._redactor):
            self._inner.append_event(self._redacted(event))

    def append_event_with_sequence(self, event: Event) -> Event:
        with redacted_errors(self._redactor):
            return self._inner.append_event_with_sequence(self._redacted(event))

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        with redacted_errors(self._redactor):
            if isinstance(events, (list, tuple)):
                events = [self._redacted(event) for event in events]
            return self._inner.append_events(events)

    def flush(self, result: ExecutionResult) -> None:
        with redacted_errors(self._redactor):
            execution = ExecutionResult.coerce(result)
            saved = self._redactor.redact_result(execution)[0]
            self._inner.flush(saved)
            carry_version(saved.session, execution.session)
            carry_version(saved.run, execution.run)

    # Beyond the port, and never past the redactor: ``save_session_with_events`` falls
    # back to two writes on an inner store without it; ``write_session`` (fork, the
    # importers) exists only where the inner store has it.

    def save_session_with_events(
        self, session: Session, events: Sequence[Event], *, new: bool = False
    ) -> list[Event]:
        with redacted_errors(self._redactor):
            saved = self._redacted(session)
            if isinstance(events, (list, tuple)):
                events = [self._redacted(event) for event in events]
            stored = save_session_with_events(self._inner, saved, events, new=new)
            carry_version(saved, session)
            return stored

    def write_session(
        self, session: Session, runs: Sequence[Run], events: Sequence[Event]
    ) -> list[Event]:
        with redacted_errors(self._redactor):
            if isinstance(runs, (list, tuple)):
                runs = [self._redacted(run) for run in runs]
            if isinstance(events, (list, tuple)):
                events = [self._redacted(event) for event in events]
            stored: list[Event] = self._inner.write_session(  # type: ignore[attr-defined]
                self._redacted(session), runs, events
            )
            return stored

    # reads and the rest ---------------------------------------------------------------

    def get_session(self, session_id: str) -> Session:
        return self._inner.get_session(session_id)

    def list_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Session]:
        return self._inner.list_sessions(
            status=status, agent_id=agent_id, limit=limit, offset=offset
        )

    def delete_session(self, session_id: str) -> None:
        self._inner.delete_session(session_id)

    def get_run(self, run_id: str) -> Run:
        return self._inner.get_run(run_id)

    def list_runs(
        self,
        session_id: str,
        *,
        status: RunStatus | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Run]:
        return self._inner.list_runs(session_id, status=status, limit=limit, offset=offset)

    def get_active_run(self, session_id: str) -> Run | None:
        return self._inner.get_active_run(session_id)

    def get_events(
        self,
        session_id: str,
        *,
        run_id: str | None = None,
        type: EventType | str | None = None,  # noqa: A002 - the port's filter name
        since: datetime | None = None,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
        wait_timeout_ms: int | None = None,
    ) -> list[Event]:
        return self._inner.get_events(
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
        return self._inner.get_latest_sequence(session_id)

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        # What the inner store offers beyond the port (``prune_events``, ``query``...).
        if name == "_inner":  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        return f"RedactingStore({self._inner!r})"


def redacted_record(redactor: RecordRedactor, record: Any) -> Any:
    """``record`` redacted, with a log line of what went (categories and counts, never
    the text). Anything but a record is returned as it is, for the store to refuse."""
    if not isinstance(record, (Session, Run, Event)):
        return record
    redacted, report = redactor.redact(record)
    if report.count:
        _log.info(
            "redacted %d secret(s) from %s %s: %s",
            report.count,
            type(record).__name__.lower(),
            record.id,
            report.categories,
        )
    return redacted


def redacting_store(store: SessionStore, redaction: RedactionConfig | None) -> SessionStore:
    """``store`` itself when there is nothing to add (no redaction, redaction off, or a
    store that already redacts with this config), else ``store`` wrapped."""
    if redaction is None or not redaction.enabled or store_redaction(store) == redaction:
        return store
    return RedactingStore(store, redaction)


__all__ = ["RedactingStore", "redacted_record", "redacting_store"]
