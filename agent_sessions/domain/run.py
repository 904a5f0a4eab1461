"""The run record: one execution of an agent inside a session."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from .checks import (
    MAX_COST_USD,
    checked_int,
    checked_number,
    is_number,
    is_within,
    optional_int,
)
from .errors import ValidationError
from .serialization import (
    json_map,
    new_id,
    optional_json_map,
    optional_string,
    required_string,
    to_json_value,
)
from .statuses import TERMINAL_RUN_STATUSES, RunStatus, coerce_status
from .timestamps import (
    optional_aware,
    parse_iso,
    parse_optional_iso,
    require_aware,
    to_iso,
    utc_now,
)
from .token_usage import checked_token_usage


def merge_token_usage(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Sum keys where both sides are numbers; otherwise the new value replaces the old."""
    merged = dict(old)
    for key, value in new.items():
        key = str(key)
        if key in merged and is_number(merged[key]) and is_number(value):
            merged[key] = merged[key] + value
        else:
            merged[key] = value
    return merged


def _cost(value: Any) -> float | None:
    """A cost is a number from 0 to :data:`~agent_sessions.domain.checks.MAX_COST_USD`,
    or ``None`` (unknown). Anything else is refused: a NaN or an infinity would be
    stored, then poison every sum of costs, and so would a finite cost so large that a
    few of them add up past the largest float (a view's daily rollup on PostgreSQL
    fails, ``math.fsum`` raises)."""
    if value is None:
        return None
    if not is_number(value):
        raise ValidationError("cost_usd must be a number", details={"field": "cost_usd"})
    return float(checked_number(value, "cost_usd", maximum=MAX_COST_USD))


def _stored_cost(value: Any) -> float | None:
    """A stored cost that is not one (a non-number, or a NaN, infinite, negative or
    larger than ``MAX_COST_USD`` number written before costs were checked) reads as
    unknown, as a non-number always did: one damaged optional value does not make a
    whole stored run unreadable, nor its sum with others infinite."""
    if not is_within(value, 0, MAX_COST_USD):
        return None
    return float(value)


def _turn_count(value: Any) -> int:
    return 0 if value is None else checked_int(value, "turn_count")


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """An immutable snapshot of a run; the update helpers return new records."""

    id: str
    session_id: str
    status: RunStatus = RunStatus.PENDING
    input: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    turn_count: int = 0
    token_usage: dict[str, Any] = field(default_factory=dict)
    started_at: datetime = field(default_factory=utc_now)
    ended_at: datetime | None = None
    provider: str | None = None
    provider_metadata: dict[str, Any] = field(default_factory=dict)
    cost_usd: float | None = None
    #: The version of the run's stream this record was read at: set by the store on
    #: the records it returns and on the records it saves; ``None`` for a record that
    #: never met a store. A save from an older version is merged with what changed
    #: since, or refused as ``concurrency_conflict`` (``docs/decisions.md``). Not part of
    #: equality or of ``to_dict``: it says where the record came from, not what it is.
    version: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "version", optional_int(self.version, "version"))
        set_(self, "id", required_string(self.id, "id"))
        set_(self, "session_id", required_string(self.session_id, "session_id"))
        set_(self, "status", coerce_status(RunStatus, self.status))
        set_(self, "input", optional_json_map(self.input, "input"))
        set_(self, "output", optional_json_map(self.output, "output"))
        set_(self, "error", optional_json_map(self.error, "error"))
        set_(self, "metadata", json_map(self.metadata, "metadata"))
        set_(self, "turn_count", _turn_count(self.turn_count))
        set_(self, "token_usage", checked_token_usage(json_map(self.token_usage, "token_usage")))
        set_(self, "started_at", require_aware(self.started_at, "started_at"))
        set_(self, "ended_at", optional_aware(self.ended_at, "ended_at"))
        set_(self, "provider", optional_string(self.provider, "provider"))
        set_(self, "provider_metadata", json_map(self.provider_metadata, "provider_metadata"))
        set_(self, "cost_usd", _cost(self.cost_usd))

    @classmethod
    def new(
        cls,
        *,
        session_id: str,
        input: Mapping[str, Any] | None = None,  # noqa: A002 - the record's public field name
        metadata: Mapping[str, Any] | None = None,
        id: str | None = None,  # noqa: A002
    ) -> Self:
        """A pending run; ``started_at`` is its creation time (a run has no separate
        creation timestamp), not the moment it starts executing."""
        return cls(
            id=id if id is not None else new_id("run"),
            session_id=session_id,
            # Passed as given: the constructor refuses non-maps with validation_error.
            input=input,  # type: ignore[arg-type]
            metadata=metadata if metadata is not None else {},  # type: ignore[arg-type]
        )

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_RUN_STATUSES

    def with_status(self, status: RunStatus | str) -> Self:
        """Any valid status; a terminal one stamps ``ended_at``."""
        new_status = coerce_status(RunStatus, status)
        ended_at = utc_now() if new_status in TERMINAL_RUN_STATUSES else self.ended_at
        return self.replace(status=new_status, ended_at=ended_at)

    def set_output(self, output: Mapping[str, Any]) -> Self:
        return self.replace(output=dict(output), status=RunStatus.COMPLETED, ended_at=utc_now())

    def set_error(self, error: Mapping[str, Any]) -> Self:
        return self.replace(error=dict(error), status=RunStatus.FAILED, ended_at=utc_now())

    def increment_turn(self) -> Self:
        return self.replace(turn_count=self.turn_count + 1)

    def add_token_usage(self, usage: Mapping[str, Any]) -> Self:
        return self.replace(token_usage=merge_token_usage(self.token_usage, usage))

    def with_provider(
        self, provider: str, provider_metadata: Mapping[str, Any] | None = None
    ) -> Self:
        merged = {**self.provider_metadata, **dict(provider_metadata or {})}
        return self.replace(provider=provider, provider_metadata=merged)

    def with_cost(self, cost_usd: float | None) -> Self:
        return self.replace(cost_usd=cost_usd)

    def with_metadata(self, metadata: Mapping[str, Any]) -> Self:
        return self.replace(metadata={**self.metadata, **dict(metadata)})

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "session_id": self.session_id,
            "status": self.status.value,
            "input": to_json_value(self.input, field="input"),
            "output": to_json_value(self.output, field="output"),
            "error": to_json_value(self.error, field="error"),
            "metadata": to_json_value(self.metadata, field="metadata"),
            "turn_count": self.turn_count,
            "token_usage": to_json_value(self.token_usage, field="token_usage"),
            "started_at": to_iso(self.started_at, "started_at"),
            "ended_at": to_iso(self.ended_at, "ended_at"),
            "provider": self.provider,
            "cost_usd": self.cost_usd,
            "provider_metadata": to_json_value(self.provider_metadata, field="provider_metadata"),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        if not isinstance(data, Mapping):
            raise ValidationError("Invalid run map")
        return cls(
            id=required_string(data.get("id"), "id"),
            session_id=required_string(data.get("session_id"), "session_id"),
            status=coerce_status(RunStatus, data.get("status")),
            input=optional_json_map(data.get("input"), "input"),
            output=optional_json_map(data.get("output"), "output"),
            error=optional_json_map(data.get("error"), "error"),
            metadata=json_map(data.get("metadata"), "metadata"),
            turn_count=_turn_count(data.get("turn_count")),
            token_usage=json_map(data.get("token_usage"), "token_usage"),
            started_at=parse_iso(data.get("started_at"), "started_at"),
            ended_at=parse_optional_iso(data.get("ended_at")),
            provider=optional_string(data.get("provider"), "provider"),
            provider_metadata=json_map(data.get("provider_metadata"), "provider_metadata"),
            cost_usd=_stored_cost(data.get("cost_usd")),
        )
