"""Live tailing of a session's events (``stream_session_events``).

A reader follows the log by sequence number: each page asks for events after the last
one seen, and an empty page long-polls the store (``wait_timeout_ms``) so that a new
event arrives as soon as it is appended, without busy polling. Sequence numbers are
gap-free and never reused, so the cursor neither skips nor repeats an event, whichever
process wrote it.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from datetime import datetime

from ..domain.checks import checked_int, optional_int
from ..domain.event import Event
from ..domain.event_types import EventType
from ..ports.session_store import SessionStore
from .event_pipeline import guard_store_call


def stream_session_events(
    store: SessionStore,
    session_id: str,
    *,
    after: int = 0,
    run_id: str | None = None,
    type: EventType | str | None = None,  # noqa: A002 - the store's filter name
    since: datetime | None = None,
    before: int | None = None,
    page_size: int = 100,
    wait_timeout_ms: int = 1000,
    poll_interval_ms: int = 250,
    stop: threading.Event | None = None,
    max_idle_ms: int | None = None,
) -> Iterator[Event]:
    """Yield the session's events after sequence ``after``, then each new one as it is
    appended, until one of:

    * the consumer stops iterating (``break``; the generator is closed);
    * ``stop`` is set (checked between pages, so within one ``wait_timeout_ms``);
    * no event arrived for ``max_idle_ms`` (``0``: stop once caught up);
    * every event before ``before`` has been seen.

    ``run_id``, ``type`` and ``since`` filter as in ``get_events``. With
    ``wait_timeout_ms=0``, or a store that answers an empty page at once, the stream
    sleeps ``poll_interval_ms`` between empty pages instead.
    """
    cursor = checked_int(after, "after")
    checked_int(page_size, "page_size", minimum=1)
    checked_int(wait_timeout_ms, "wait_timeout_ms")
    checked_int(poll_interval_ms, "poll_interval_ms", minimum=1)
    optional_int(max_idle_ms, "max_idle_ms")
    stopped = stop if stop is not None else threading.Event()
    idle_since = time.monotonic()
    while not stopped.is_set():
        if before is not None and cursor >= before - 1:
            return
        asked = time.monotonic()
        wait = wait_timeout_ms
        if max_idle_ms is not None:  # never wait past the idle bound
            wait = max(0, min(wait, max_idle_ms - int((asked - idle_since) * 1000)))
        page = guard_store_call(
            "get_events",
            functools.partial(
                store.get_events,
                session_id,
                run_id=run_id,
                type=type,
                since=since,
                after=cursor,
                before=before,
                limit=page_size,
                wait_timeout_ms=wait or None,
            ),
        )
        if page:
            for event in page:
                yield event
                cursor = max(cursor, event.sequence_number or cursor)
                if stopped.is_set():
                    return
            idle_since = time.monotonic()
            continue
        now = time.monotonic()
        if max_idle_ms is not None and (now - idle_since) * 1000 >= max_idle_ms:
            return
        if not wait or (now - asked) * 1000 < wait / 2:
            # The store did not wait (no long-poll support, or it is closing): poll.
            stopped.wait(poll_interval_ms / 1000)
