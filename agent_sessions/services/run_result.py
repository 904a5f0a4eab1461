"""What ``SessionManager.execute_run`` returns: how a run ended and what recording it
cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..domain.errors import AgentSessionsError
from ..domain.run import Run
from ..domain.session import Session
from ..domain.statuses import RunStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """How a run ended and what recording it cost. ``errors`` lists every problem met
    on the way, in order: refused events (counted in ``rejected_events``) and failed
    writes (``persistence_failures``), whose events were kept and written later."""

    session: Session
    run: Run
    events_persisted: int
    persistence_failures: int = 0
    rejected_events: int = 0
    errors: tuple[AgentSessionsError, ...] = ()
    error: AgentSessionsError | None = None

    @property
    def status(self) -> RunStatus:
        return self.run.status

    @property
    def ok(self) -> bool:
        return self.run.status is RunStatus.COMPLETED

    @property
    def output(self) -> dict[str, Any] | None:
        return self.run.output
