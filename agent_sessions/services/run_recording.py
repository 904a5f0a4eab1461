"""What one executing run collects while its provider works, and how the manager keeps
track of it.

A :class:`RunRecording` takes the provider's events (prepared at once, written through
its :class:`EventBuffer`) and notes what they reveal for the run's outcome: provider
metadata, a cost the provider reported, turns. An :class:`ActiveRun` is the manager's
handle on a run it executes, so that a concurrent ``cancel_run`` can stop it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..domain.checks import is_number
from ..domain.errors import AgentSessionsError, ErrorCode
from ..domain.event import Event
from ..domain.event_builder import EventContext, RawEvent
from ..domain.event_types import EventType
from ..domain.pricing import reported_cost
from ..domain.run import Run, merge_token_usage
from ..domain.session import Session
from .event_buffer import EventBuffer, EventBuffering
from .event_pipeline import EventPipeline
from .run_result import RunResult

_log = logging.getLogger(__name__)

#: Keys of ``provider_metadata`` also kept per provider in the session's metadata.
PROVIDER_SESSION_KEYS = ("provider_session_id", "model")

EventCallback = Callable[[Event], None]

#: Provider spellings of the cache counts, read as the keys that are priced.
USAGE_ALIASES = {
    "cache_read_input_tokens": "cache_read_tokens",
    "cache_creation_input_tokens": "cache_creation_tokens",
    "cached_tokens": "cache_read_tokens",
}


def usage_counts(data: Mapping[str, Any]) -> dict[str, Any]:
    """The token counts of a usage payload (numbers only), with provider spellings of
    the cache counts (``cache_read_input_tokens``, ...) under the priced keys
    (``cache_read_tokens``, ...), so cache tokens are priced at their own rates."""
    counts: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, bool) or not is_number(value):
            continue
        name = USAGE_ALIASES.get(str(key), str(key))
        counts[name] = counts.get(name, 0) + value
    return counts


def run_cancelled(run_id: str) -> AgentSessionsError:
    """What the provider's ``emit`` raises once its run was cancelled."""
    return AgentSessionsError(
        f"run {run_id} was cancelled", code=ErrorCode.CANCELLED, details={"run_id": run_id}
    )


def run_closed(run_id: str) -> AgentSessionsError:
    """What the provider's ``emit`` raises once its run was finalized."""
    return AgentSessionsError(
        f"run {run_id} is finalized and takes no more events",
        code=ErrorCode.INVALID_OPERATION,
        details={"run_id": run_id},
    )


class RunRecording:
    """What one executing run collects: its buffered events, what its events reveal
    (provider metadata, a cost the provider reported, turns), and the problems met."""

    def __init__(
        self,
        run_id: str,
        pipeline: EventPipeline,
        buffering: EventBuffering,
        context: EventContext,
        on_event: EventCallback | None,
    ) -> None:
        self.run_id = run_id
        self.context = context
        self._pipeline = pipeline
        self._on_event = on_event
        self.errors: list[AgentSessionsError] = []
        self.buffer = EventBuffer(pipeline, buffering, self.stored, self.errors)
        self.provider_metadata: dict[str, Any] = {}
        self.reported_cost: float | None = None
        self.turns = 0
        self.replies = 0
        self.event_usage: dict[str, Any] = {}
        self.completed_event = False
        self.rejected = 0
        self.last_sequence = 0

    def emit(self, raw: RawEvent) -> None:
        """The provider's ``emit``: prepare now (so a refusal is known at once and the
        timestamp is the emit time), write with the next batch."""
        try:
            event = self._pipeline.prepare(raw, self.context)
        except AgentSessionsError as exc:
            # Refused, not dropped unnoticed: counted and returned in the result.
            self.rejected += 1
            self.errors.append(exc)
            _log.warning("run %s: event refused: %s", self.run_id, exc)
            return
        self._observe(event)
        self.buffer.add(event)

    def _observe(self, event: Event) -> None:
        data = event.data
        for key in PROVIDER_SESSION_KEYS:
            if isinstance(data.get(key), str):
                self.provider_metadata[key] = data[key]
        if event.type is EventType.TURN_COMPLETED:
            self.turns += 1
        elif event.type is EventType.MESSAGE_RECEIVED:
            self.replies += 1
        elif event.type is EventType.TOKEN_USAGE_UPDATED:
            self.event_usage = merge_token_usage(self.event_usage, usage_counts(data))
        elif event.type is EventType.RUN_COMPLETED:
            self.completed_event = True
            cost = reported_cost(data.get("total_cost_usd"))
            if cost is not None:
                self.reported_cost = cost

    def stored(self, events: list[Event]) -> None:
        """Events as written (with their sequence numbers), handed to ``on_event``."""
        self.last_sequence = max(self.last_sequence, *(e.sequence_number or 0 for e in events))
        if self._on_event is None:
            return
        for event in events:
            try:
                self._on_event(event)
            except Exception:
                _log.exception("on_event callback failed for event %s", event.id)

    @property
    def wants_events(self) -> bool:
        return self._on_event is not None


@dataclass
class ActiveRun:
    """A run executing in this manager, so that ``cancel_run`` can stop it. ``lock``
    orders finalization against cancellation: whichever takes it first records the
    outcome, and sets ``final_run``."""

    session: Session
    run: Run
    recording: RunRecording | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    final_run: Run | None = None

    def result(self, recording: RunRecording, error: AgentSessionsError | None) -> RunResult:
        """The outcome once recorded, with what ``recording`` counted on the way."""
        if self.final_run is None:
            raise AssertionError("a run result needs the recorded run")
        buffer = recording.buffer
        return RunResult(
            session=self.session,
            run=self.final_run,
            events_persisted=buffer.persisted,
            persistence_failures=buffer.failures,
            rejected_events=recording.rejected,
            errors=tuple(recording.errors),
            error=error,
        )
