"""What one retention run did (counts, time taken, failures), and what a run would do
now (``MaintenancePlan``, a dry run)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenanceReport:
    """Every count is what was really done, including the part of a step that failed
    half-way (counting a failed step as 0 would hide completed erasures);
    ``errors`` holds one message per failed step."""

    sessions_soft_deleted: int = 0
    sessions_hard_deleted: int = 0
    events_pruned: int = 0
    artifacts_cleaned: int = 0
    orphaned_sequences_cleaned: int = 0
    duration_ms: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenancePlan:
    """What ``Maintenance.execute`` would do with a policy if it ran now, in its order:
    the sessions it would soft-delete, then erase, the events it would prune per
    session (``max_events_per_session`` and ``max_total_events`` together), and the
    orphans it would clean. Computed from the same read models and candidate queries,
    changing nothing; a later run decides again from the state it finds."""

    sessions_to_soft_delete: list[str] = field(default_factory=list)
    sessions_to_hard_delete: list[str] = field(default_factory=list)
    events_to_prune: dict[str, int] = field(default_factory=dict)
    orphaned_artifacts: int = 0
    orphaned_sequences: int = 0

    @property
    def events_to_prune_total(self) -> int:
        return sum(self.events_to_prune.values())

    @property
    def empty(self) -> bool:
        return not (
            self.sessions_to_soft_delete
            or self.sessions_to_hard_delete
            or self.events_to_prune
            or self.orphaned_artifacts
            or self.orphaned_sequences
        )

    def to_dict(self) -> dict[str, Any]:
        planned = asdict(self)
        planned["events_to_prune_total"] = self.events_to_prune_total
        return planned


__all__ = ["MaintenancePlan", "MaintenanceReport"]
