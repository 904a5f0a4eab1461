"""Typed results of the ``QueryAPI``: pages, stats, usage, costs and exports.

Token figures carry every count the runs view sums: input, output, cache reads
(``cache_read_tokens``), cache writes (``cache_creation_tokens``) and the runs' recorded
``total_tokens`` (never derived from the others, see ``read_models/runs.py``). A page's
``cursor`` is ``None`` on the last page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..domain.event import Event
from ..domain.run import Run
from ..domain.session import Session


@dataclass(frozen=True, slots=True)
class SessionPage:
    sessions: list[Session]
    cursor: str | None
    total_count: int


@dataclass(frozen=True, slots=True)
class RunPage:
    runs: list[Run]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[Event]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class TokenTotals:
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0


@dataclass(frozen=True, slots=True)
class SessionStats:
    session_id: str
    event_count: int
    run_count: int
    token_totals: TokenTotals
    providers_used: list[str]
    first_event_at: datetime | None
    last_event_at: datetime | None
    status_counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class ProviderUsage:
    input_tokens: int
    output_tokens: int
    total_tokens: int
    run_count: int
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0


@dataclass(frozen=True, slots=True)
class UsageSummary:
    total_input_tokens: int
    total_output_tokens: int
    total_tokens: int
    run_count: int
    by_provider: dict[str, ProviderUsage]
    total_cache_read_tokens: int = 0
    total_cache_creation_tokens: int = 0


@dataclass(frozen=True, slots=True)
class DailyUsage:
    day: str
    provider: str
    model: str
    run_count: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ProviderCost:
    cost_usd: float
    run_count: int


@dataclass(frozen=True, slots=True)
class ModelCost:
    cost_usd: float
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    #: Runs of the model with a cost (recorded or priced).
    run_count: int = 0


@dataclass(frozen=True, slots=True)
class CostSummary:
    total_cost_usd: float
    run_count: int
    by_provider: dict[str, ProviderCost]
    by_model: dict[str, ModelCost]
    unmapped_runs: int


@dataclass(frozen=True, slots=True)
class SessionExport:
    session: Session
    runs: list[Run]
    events: list[Event]
    artifacts: list[dict[str, Any]] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        exported: dict[str, Any] = {
            "session": self.session.to_dict(),
            "runs": [run.to_dict() for run in self.runs],
            "events": [event.to_dict() for event in self.events],
        }
        if self.artifacts is not None:
            exported["artifacts"] = self.artifacts
        return exported
