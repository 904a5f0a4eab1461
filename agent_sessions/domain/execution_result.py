"""What an agent run hands to ``flush``: the unit of work of a finished run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ValidationError
from .event import Event
from .run import Run
from .session import Session

_INVALID = "invalid execution_result payload"


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    session: Session
    run: Run
    events: list[Event] = field(default_factory=list)
    provider_metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def coerce(cls, value: Any) -> ExecutionResult:
        """Accept an ``ExecutionResult`` or a mapping with the same keys; anything else,
        or wrong record types inside, is ``validation_error``."""
        if isinstance(value, ExecutionResult):
            result = value
        elif isinstance(value, Mapping):
            try:
                result = cls(
                    session=value["session"],
                    run=value["run"],
                    events=value.get("events", []),
                    provider_metadata=dict(value.get("provider_metadata") or {}),
                )
            except (KeyError, TypeError):
                raise ValidationError(_INVALID, details={"field": "result"}) from None
        else:
            raise ValidationError(_INVALID, details={"field": "result"})
        if not isinstance(result.session, Session) or not isinstance(result.run, Run):
            raise ValidationError(_INVALID, details={"field": "result"})
        if not isinstance(result.events, (list, tuple)):
            raise ValidationError(_INVALID, details={"field": "result"})
        return result
