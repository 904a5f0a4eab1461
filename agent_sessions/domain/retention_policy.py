"""How long sessions and their events are kept, as a pure value.

``None`` means infinity (``:infinity`` in messages); :meth:`RetentionPolicy.new` also
accepts ``math.inf`` and stores ``None``, so there is one spelling to test against. The
policy decides *which* records are due (:meth:`soft_delete_due`,
:meth:`hard_delete_due`); ``Maintenance`` finds candidates and does the writes.

Every field is honoured (docs/decisions.md, "Retention and maintenance"): a field a
retention run would silently ignore is worse than an error, because its owner believes
data is being removed. For the same reason an unknown option given to :meth:`new` is
refused, not ignored: ``max_event_per_session=100`` must not keep every event forever.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from .checks import is_int
from .errors import ValidationError
from .event_types import EventType
from .session import Session
from .statuses import SessionStatus

#: Never pruned, every occurrence: what a reader needs to tell where a session and its
#: runs began and ended, and what went wrong.
PROTECTED_EVENT_TYPES: tuple[EventType, ...] = (
    EventType.SESSION_CREATED,
    EventType.RUN_STARTED,
    EventType.RUN_COMPLETED,
    EventType.ERROR_OCCURRED,
    EventType.RUN_FAILED,
)

#: Content type of the JSONL archive of pruned events (one ``Event.to_dict()`` a line).
ARCHIVE_CONTENT_TYPE = "application/x-ndjson"

# Checked in this order, a fixed one, so the first failing field (the one reported) is
# predictable.
_UNBOUNDED_FIELDS = (
    "max_session_age_days",
    "max_completed_session_age_days",
    "hard_delete_after_days",
    "max_events_per_session",
    "max_total_events",
)


class ArchiveStore(Protocol):
    """Where ``archive_before_prune`` writes (the ``ArtifactStore`` port's ``put``).
    What ``put`` returns is kept only if it describes the stored blob (an artifact
    reference); ``Maintenance`` then registers the archive under its session."""

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Any: ...


def _without_infinity(value: object) -> object:
    return None if isinstance(value, float) and value == math.inf else value


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicy:
    """What to keep. Ages are in days; ``None`` is infinity (nothing expires by that
    rule). Construction validates (``validation_error`` with the first broken rule's
    message), so a policy that exists is a policy that can be executed."""

    max_session_age_days: int | None = None
    max_completed_session_age_days: int | None = 90
    max_events_per_session: int | None = None
    max_total_events: int | None = None
    hard_delete_after_days: int | None = 30
    archive_before_prune: bool = False
    archive_store: ArchiveStore | None = None
    exempt_statuses: Sequence[SessionStatus | str] = (SessionStatus.ACTIVE, SessionStatus.PAUSED)
    exempt_tags: Sequence[str] = ("pinned",)
    prune_event_types_first: Sequence[EventType | str] = (
        EventType.MESSAGE_STREAMED,
        EventType.TOKEN_USAGE_UPDATED,
    )
    batch_size: int = 100

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in _UNBOUNDED_FIELDS:
            set_(self, name, _without_infinity(getattr(self, name)))
        problem = self._problem()
        if problem is not None:
            field, message = problem
            raise ValidationError(message, details={"field": field})
        # Lists become tuples (the policy is frozen and hashable) of enum members.
        set_(self, "exempt_statuses", tuple(SessionStatus(s) for s in self.exempt_statuses))
        set_(self, "exempt_tags", tuple(self.exempt_tags))
        types = tuple(EventType(t) for t in self.prune_event_types_first)
        set_(self, "prune_event_types_first", types)

    @classmethod
    def new(cls, **options: Any) -> RetentionPolicy:
        """The defaults overlaid with ``options``; an unknown option is a
        ``validation_error`` naming it (see the module docstring for why)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValidationError(
                f"unknown retention option: {', '.join(unknown)}",
                details={"field": unknown[0], "unknown": unknown, "known": sorted(known)},
            )
        return cls(**options)

    def validate(self) -> str | None:
        """``None``, or the message of the first rule broken, in a fixed order so the
        error reported is predictable: the age and count fields, ``batch_size`` and the
        archive store first, then the other fields (statuses, tags, event types, no
        protected types)."""
        problem = self._problem()
        return None if problem is None else problem[1]

    def _problem(self) -> tuple[str, str] | None:
        for name in _UNBOUNDED_FIELDS:
            value = getattr(self, name)
            if value is not None and not is_int(value, minimum=1):
                return name, f"{name} must be a positive integer or :infinity"
        if not is_int(self.batch_size, minimum=1):
            return "batch_size", "batch_size must be a positive integer"
        if self.archive_before_prune is True and self.archive_store is None:
            return "archive_store", "archive_store is required when archive_before_prune is true"
        return self._extra_problem()

    def _extra_problem(self) -> tuple[str, str] | None:
        if not isinstance(self.archive_before_prune, bool):
            return "archive_before_prune", "archive_before_prune must be a boolean"
        put = getattr(self.archive_store, "put", None)
        if self.archive_store is not None and not callable(put):
            return "archive_store", "archive_store must have a put(key, data) method"
        if not _values_of(self.exempt_statuses, SessionStatus):
            return "exempt_statuses", "exempt_statuses must be a list of session statuses"
        tags = self.exempt_tags
        if (
            not isinstance(tags, Sequence)
            or isinstance(tags, str)
            or not all(isinstance(tag, str) for tag in tags)
        ):
            return "exempt_tags", "exempt_tags must be a list of strings"
        if not _values_of(self.prune_event_types_first, EventType):
            return (
                "prune_event_types_first",
                "prune_event_types_first must be a list of event types",
            )
        protected = sorted(set(map(str, self.prune_event_types_first)) & set(PROTECTED_EVENT_TYPES))
        if protected:
            return (
                "prune_event_types_first",
                f"prune_event_types_first cannot include protected types: {', '.join(protected)}",
            )
        return None

    # decisions over records -----------------------------------------------------------

    def soft_delete_due(self, session: Session, now: datetime) -> bool:
        """Whether retention soft-deletes ``session`` at ``now``. Any status outside
        ``exempt_statuses`` qualifies, not only ``completed`` (on purpose: a failed or
        abandoned session ages out too), and ``updated_at`` stands for the
        completion time, so re-saving a session keeps it."""
        if session.deleted_at is not None or session.status in self.exempt_statuses:
            return False
        if set(session.tags) & set(self.exempt_tags):
            return False
        cut = self.cutoffs(now)
        return (cut.updated_before is not None and session.updated_at < cut.updated_before) or (
            cut.created_before is not None and session.created_at < cut.created_before
        )

    def hard_delete_due(self, session: Session, now: datetime) -> bool:
        cutoff = self.cutoffs(now).deleted_before
        return cutoff is not None and session.deleted_at is not None and session.deleted_at < cutoff

    def cutoffs(self, now: datetime) -> RetentionCutoffs:
        return RetentionCutoffs(
            updated_before=_cutoff(now, self.max_completed_session_age_days),
            created_before=_cutoff(now, self.max_session_age_days),
            deleted_before=_cutoff(now, self.hard_delete_after_days),
        )


@dataclass(frozen=True, slots=True)
class RetentionCutoffs:
    """The instants before which each age rule applies; ``None``: the rule never does."""

    updated_before: datetime | None
    created_before: datetime | None
    deleted_before: datetime | None


def _cutoff(now: datetime, days: int | None) -> datetime | None:
    return None if days is None else now - timedelta(days=days)


def _values_of(values: object, enum: type[SessionStatus] | type[EventType]) -> bool:
    if isinstance(values, str) or not isinstance(values, Sequence):
        return False
    return all(isinstance(v, str) and v in enum._value2member_map_ for v in values)


def archive_key(session_id: str, first_sequence: int, last_sequence: int) -> str:
    """``archives/<session id>/<first>-<last>.jsonl``: sorts by session, then by where
    in the log the archived events were."""
    return f"archives/{session_id}/{first_sequence}-{last_sequence}.jsonl"


__all__ = [
    "ARCHIVE_CONTENT_TYPE",
    "PROTECTED_EVENT_TYPES",
    "ArchiveStore",
    "RetentionCutoffs",
    "RetentionPolicy",
    "archive_key",
]
