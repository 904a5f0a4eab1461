"""The ``SessionStore`` port: what every backend offers and the contract suite checks.

A small structural protocol, in the manner of ``eventsourcing``'s recorders: implement
these methods (for example by wrapping another store) and run
``agent_sessions.testing`` against your class.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, Self, runtime_checkable

from ..domain.event import Event
from ..domain.event_types import EventType
from ..domain.execution_result import ExecutionResult
from ..domain.run import Run
from ..domain.session import Session
from ..domain.statuses import RunStatus, SessionStatus


@runtime_checkable
class SessionStore(Protocol):
    def save_session(self, session: Session) -> None: ...

    def get_session(self, session_id: str) -> Session: ...

    def list_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Session]: ...

    def delete_session(self, session_id: str) -> None: ...

    def save_run(self, run: Run) -> None: ...

    def get_run(self, run_id: str) -> Run: ...

    def list_runs(
        self,
        session_id: str,
        *,
        status: RunStatus | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Run]: ...

    def get_active_run(self, session_id: str) -> Run | None: ...

    def append_event(self, event: Event) -> None: ...

    def append_event_with_sequence(self, event: Event) -> Event: ...

    def append_events(self, events: Sequence[Event]) -> list[Event]: ...

    def flush(self, result: ExecutionResult) -> None: ...

    def get_events(
        self,
        session_id: str,
        *,
        run_id: str | None = None,
        type: EventType | str | None = None,  # noqa: A002 - the port's documented filter name
        since: datetime | None = None,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
        wait_timeout_ms: int | None = None,
    ) -> list[Event]: ...

    def get_latest_sequence(self, session_id: str) -> int: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...
