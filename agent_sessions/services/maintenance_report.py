"""What one retention run did: counts, time taken, and failures."""

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


__all__ = ["MaintenanceReport"]
