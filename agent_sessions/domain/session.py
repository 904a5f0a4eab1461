"""The session record: who the agent is and where its conversation stands."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from .checks import optional_int
from .errors import ValidationError
from .serialization import (
    field_text,
    json_map,
    new_id,
    optional_string,
    required_string,
    to_json_value,
)
from .statuses import SessionStatus, coerce_status
from .timestamps import (
    optional_aware,
    parse_iso,
    parse_optional_iso,
    require_aware,
    to_iso,
    utc_now,
)


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValidationError("tags must be a list of strings", details={"field": "tags"})
    if not all(isinstance(tag, str) for tag in value):
        raise ValidationError("tags must be a list of strings", details={"field": "tags"})
    # Tags are filtered on: the same text rules as every other indexed field.
    return tuple(field_text(tag, "tags") for tag in value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """An immutable snapshot of a session; the update helpers return new records.

    ``metadata`` and ``context`` hold JSON-compatible maps with string keys; records are
    validated on construction so a store never sees an unserialisable value.
    """

    id: str
    agent_id: str
    status: SessionStatus = SessionStatus.PENDING
    parent_session_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)
    deleted_at: datetime | None = None
    #: The version of the session's stream this record was read at: set by the store on
    #: the records it returns and on the records it saves; ``None`` for a record that
    #: never met a store. A save from an older version is merged with what changed
    #: since, or refused as ``concurrency_conflict`` (``docs/decisions.md``). Not part of
    #: equality or of ``to_dict``: it says where the record came from, not what it is.
    version: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "version", optional_int(self.version, "version"))
        set_(self, "id", required_string(self.id, "id"))
        set_(self, "agent_id", required_string(self.agent_id, "agent_id"))
        set_(self, "status", coerce_status(SessionStatus, self.status))
        parent = optional_string(self.parent_session_id, "parent_session_id")
        set_(self, "parent_session_id", parent)
        set_(self, "metadata", json_map(self.metadata, "metadata"))
        set_(self, "context", json_map(self.context, "context"))
        set_(self, "tags", _tags(self.tags))
        set_(self, "created_at", require_aware(self.created_at, "created_at"))
        set_(self, "updated_at", require_aware(self.updated_at, "updated_at"))
        set_(self, "deleted_at", optional_aware(self.deleted_at, "deleted_at"))

    @classmethod
    def new(
        cls,
        *,
        agent_id: str,
        id: str | None = None,  # noqa: A002 - the record's own field name
        parent_session_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
    ) -> Self:
        """A new pending session; ``created_at`` and ``updated_at`` are the same instant."""
        now = utc_now()
        return cls(
            id=id if id is not None else new_id("ses"),
            agent_id=agent_id,
            parent_session_id=parent_session_id,
            # Passed as given: the constructor refuses non-maps and non-lists with
            # validation_error, which dict()/tuple() here would pre-empt or hide.
            metadata=metadata if metadata is not None else {},  # type: ignore[arg-type]
            context=context if context is not None else {},  # type: ignore[arg-type]
            tags=tags if tags is not None else (),  # type: ignore[arg-type]
            created_at=now,
            updated_at=now,
        )

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied and ``updated_at`` moved to now (unless given)."""
        changes.setdefault("updated_at", utc_now())
        return dataclasses.replace(self, **changes)

    def with_status(self, status: SessionStatus | str) -> Self:
        return self.replace(status=coerce_status(SessionStatus, status))

    def with_metadata(self, metadata: Mapping[str, Any]) -> Self:
        """Shallow-merge ``metadata`` into the session's metadata, later keys winning."""
        return self.replace(metadata={**self.metadata, **dict(metadata)})

    def with_tags(self, tags: Sequence[str]) -> Self:
        return self.replace(tags=tuple(tags))

    def soft_delete(self, at: datetime | None = None) -> Self:
        now = at or utc_now()
        return self.replace(deleted_at=now, updated_at=now)

    def restore(self) -> Self:
        return self.replace(deleted_at=None)

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent_id": self.agent_id,
            "status": self.status.value,
            "parent_session_id": self.parent_session_id,
            "metadata": to_json_value(self.metadata, field="metadata"),
            "context": to_json_value(self.context, field="context"),
            "tags": list(self.tags),
            "created_at": to_iso(self.created_at, "created_at"),
            "updated_at": to_iso(self.updated_at, "updated_at"),
            "deleted_at": to_iso(self.deleted_at, "deleted_at"),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        if not isinstance(data, Mapping):
            raise ValidationError("Invalid session map")
        return cls(
            id=required_string(data.get("id"), "id"),
            agent_id=required_string(data.get("agent_id"), "agent_id"),
            status=coerce_status(SessionStatus, data.get("status")),
            parent_session_id=optional_string(data.get("parent_session_id"), "parent_session_id"),
            metadata=json_map(data.get("metadata"), "metadata"),
            context=json_map(data.get("context"), "context"),
            tags=_tags(data.get("tags")),
            created_at=parse_iso(data.get("created_at"), "created_at"),
            updated_at=parse_iso(data.get("updated_at"), "updated_at"),
            deleted_at=parse_optional_iso(data.get("deleted_at")),
        )
