"""What a run accumulates in memory until it is finalized.

The agent loop changes the session and run records and collects events while the
provider works; ``to_result`` turns that into the ``ExecutionResult`` that ``flush``
writes in one transaction. Nothing here touches a store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from .event import Event
from .execution_result import ExecutionResult
from .run import Run
from .session import Session


@dataclass(slots=True)
class ExecutionState:
    """Mutable on purpose: a run may collect thousands of events, and copying the list
    on each append would make collecting them quadratic. Methods return the state so
    that calls chain."""

    session: Session
    run: Run
    events: list[Event] = field(default_factory=list)
    provider_metadata: dict[str, Any] = field(default_factory=dict)
    sequence_counter: int = 0

    @classmethod
    def new(cls, session: Session, run: Run) -> Self:
        return cls(session=session, run=run)

    def append_event(self, event: Event) -> Self:
        """Keeps append order and counts; ``sequence_number`` stays the store's to set."""
        self.events.append(event)
        self.sequence_counter += 1
        return self

    def cache_provider_metadata(self, metadata: Mapping[str, Any]) -> Self:
        """Shallow merge, later keys winning."""
        self.provider_metadata.update(metadata)
        return self

    def update_session(self, change: Callable[[Session], Session]) -> Self:
        self.session = change(self.session)
        return self

    def update_run(self, change: Callable[[Run], Run]) -> Self:
        self.run = change(self.run)
        return self

    def finalized_events(self) -> list[Event]:
        return list(self.events)

    def to_result(self) -> ExecutionResult:
        return ExecutionResult(
            session=self.session,
            run=self.run,
            events=self.finalized_events(),
            provider_metadata=dict(self.provider_metadata),
        )
