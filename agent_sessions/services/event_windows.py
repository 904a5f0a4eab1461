"""History windows: the newest events of a session, its last N runs or turns, read
from the end of the log and never splitting a tool call from its result.

Each window reads backwards with ``get_events(order="desc")`` in pages, so its cost
is the size of the window (plus one page), not the length of the log. A window is
closed over tool calls: when a tool result (``tool_call_completed`` /
``tool_call_failed``) is inside it and the ``tool_call_started`` with the same
``tool_call_id`` is not, the window is extended back to include that start (and all
events between, so the window stays one contiguous stretch of the log).

A **run window** holds the events from the first event of the Nth newest run (by the
order its events appear in the log) to the end, including session-level events in
between. A **turn** starts at a user message (``message_sent`` whose ``role`` is
``"user"`` or absent); a **turn window** holds the events from the Nth newest user
message to the end. Windows come back in sequence order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from ..domain.checks import checked_int
from ..domain.event import Event
from ..domain.event_types import EventType

#: Events read per backward page.
PAGE_SIZE = 256

_RESULTS = (EventType.TOOL_CALL_COMPLETED, EventType.TOOL_CALL_FAILED)


class DescendingReader(Protocol):
    def get_events(
        self,
        session_id: str,
        *,
        before: int | None = None,
        limit: int | None = None,
        order: str = "asc",
    ) -> list[Event]: ...


def _backwards(store: DescendingReader, session_id: str, page: int) -> Iterator[Event]:
    before: int | None = None
    while True:
        events = store.get_events(session_id, before=before, limit=page, order="desc")
        yield from events
        if len(events) < page:
            return
        before = events[-1].sequence_number


def _call_id(event: Event) -> str | None:
    value: Any = event.data.get("tool_call_id")
    return value if isinstance(value, str) and value else None


def _window(
    store: DescendingReader,
    session_id: str,
    stop: Callable[[Event, list[Event]], bool],
    page: int,
) -> list[Event]:
    """Events newest first until ``stop(event, taken)`` says ``event`` is outside the
    window, then back further while a result's start is missing; in sequence order."""
    taken: list[Event] = []
    open_calls: set[str] = set()
    events = _backwards(store, session_id, page)

    def take(event: Event) -> None:
        taken.append(event)
        call_id = _call_id(event)
        if call_id is None:
            return
        if event.type in _RESULTS:
            open_calls.add(call_id)
        elif event.type is EventType.TOOL_CALL_STARTED:
            open_calls.discard(call_id)

    for event in events:
        if stop(event, taken):
            if open_calls:
                take(event)
                for earlier in events:
                    if not open_calls:
                        break
                    take(earlier)
            break
        take(event)
    taken.reverse()
    return taken


def _count(n: int, field: str) -> int:
    return checked_int(n, field, minimum=1)


def last_events(store: DescendingReader, session_id: str, n: int) -> list[Event]:
    """The newest ``n`` events, in sequence order, extended back to the start of any
    tool call whose result is among them."""
    count = _count(n, "n")
    return _window(store, session_id, lambda _e, taken: len(taken) >= count, PAGE_SIZE)


def last_runs(store: DescendingReader, session_id: str, n: int) -> list[Event]:
    """The events of the ``n`` newest runs (and session events among them)."""
    count = _count(n, "n")
    seen: list[str] = []

    def stop(event: Event, _taken: list[Event]) -> bool:
        if event.run_id is None or event.run_id in seen:
            return False
        if len(seen) >= count:
            return True
        seen.append(event.run_id)
        return False

    window = _window(store, session_id, stop, PAGE_SIZE)
    # Session events older than the oldest run's first event are not part of it.
    first = next((i for i, e in enumerate(window) if e.run_id is not None), len(window))
    return window[first:] if seen else window


def _user_message(event: Event) -> bool:
    return event.type is EventType.MESSAGE_SENT and event.data.get("role", "user") == "user"


def last_turns(store: DescendingReader, session_id: str, n: int) -> list[Event]:
    """The events from the ``n``-th newest user message to the end."""
    count = _count(n, "n")
    starts = [0]

    def stop(event: Event, _taken: list[Event]) -> bool:
        if starts[0] >= count:
            return True
        if _user_message(event):
            starts[0] += 1
        return False

    return _window(store, session_id, stop, PAGE_SIZE)
