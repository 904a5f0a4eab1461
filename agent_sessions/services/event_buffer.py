"""When and how the events of an executing run are written: in batches.

Writing each streamed token in its own transaction would make the store the bottleneck
of a run; writing nothing until the end would hide a run from a tailing reader. So a
run's events are written every ``max_events`` events or ``max_delay_ms`` after the
oldest unwritten one, whichever comes first, by whichever thread notices: the provider's
(on count) or a timer thread (on time).

A failed write does not stop the run: the batch stays buffered and goes with the next
write (appends are idempotent by event id), so nothing is lost while the store is down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..domain.checks import checked_int
from ..domain.errors import AgentSessionsError
from ..domain.event import Event
from .event_pipeline import EventPipeline

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EventBuffering:
    """When buffered run events are written: at ``max_events`` events, or
    ``max_delay_ms`` after the oldest unwritten one (``0``: only by count).
    ``max_events=1`` writes each event on its own (:meth:`per_event`)."""

    max_events: int = 50
    max_delay_ms: int = 250

    def __post_init__(self) -> None:
        checked_int(self.max_events, "max_events", minimum=1)
        checked_int(self.max_delay_ms, "max_delay_ms")

    @classmethod
    def per_event(cls) -> EventBuffering:
        return cls(max_events=1, max_delay_ms=0)


class EventBuffer:
    """Prepared events of one run waiting to be written, in emit order.

    One lock covers the list and the writes, so batches reach the store in order whether
    the provider's thread or the timer thread writes them. ``persisted`` and
    ``failures`` count what the buffer wrote and how many writes failed; problems are
    appended to the run's ``errors``."""

    def __init__(
        self,
        pipeline: EventPipeline,
        buffering: EventBuffering,
        on_stored: Callable[[list[Event]], None],
        errors: list[AgentSessionsError],
    ) -> None:
        self._pipeline = pipeline
        self._max_events = buffering.max_events
        self._delay = buffering.max_delay_ms / 1000
        self._on_stored = on_stored
        self._cond = threading.Condition()
        self._pending: list[Event] = []
        self._write_at_size = self._max_events
        self._deadline: float | None = None
        self._closed: AgentSessionsError | None = None
        self._timer: threading.Thread | None = None
        self.persisted = 0
        self.failures = 0
        self._errors = errors

    def add(self, event: Event) -> None:
        with self._cond:
            if self._closed is not None:
                closed = self._closed
                raise AgentSessionsError(closed.message, code=closed.code, details=closed.details)
            self._pending.append(event)
            if len(self._pending) >= self._write_at_size:
                self._write()
            elif self._delay > 0 and self._deadline is None:
                self._deadline = time.monotonic() + self._delay
                self._start_timer()
                self._cond.notify_all()

    def _write(self) -> None:
        batch = self._pending
        try:
            stored = self._pipeline.persist(batch)
        except AgentSessionsError as exc:
            # Kept for the next attempt; not retried on every further event, which
            # would hammer a store that is down.
            self.failures += 1
            self._errors.append(exc)
            _log.warning("could not write %d run event(s), will retry: %s", len(batch), exc)
            self._write_at_size = len(batch) + self._max_events
            self._deadline = time.monotonic() + self._delay if self._delay > 0 else None
            return
        self._pending = []
        self._write_at_size = self._max_events
        self._deadline = None
        self.persisted += len(stored)
        self._on_stored(stored)

    def _start_timer(self) -> None:
        if self._timer is None:
            self._timer = threading.Thread(
                target=self._run_timer, name="agent-sessions-event-buffer", daemon=True
            )
            self._timer.start()

    def _run_timer(self) -> None:
        with self._cond:
            while self._closed is None:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                elif self._pending:
                    self._write()
                else:
                    self._deadline = None

    def close(self, reason: AgentSessionsError) -> list[Event]:
        """Stop taking events (``add`` raises ``reason`` from now on) and hand over the
        unwritten ones, for the finalizing flush."""
        with self._cond:
            if self._closed is None:
                self._closed = reason
            pending, self._pending = self._pending, []
            self._cond.notify_all()
        # No join: holding the lock above means no write is under way, and the timer
        # thread sees ``_closed`` before it could start another.
        return pending

    def restore(self, events: list[Event]) -> None:
        """Put back events taken by ``close`` whose write failed, for the next taker."""
        with self._cond:
            self._pending = events + self._pending
