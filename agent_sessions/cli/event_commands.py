"""``events`` and ``tail``: a session's events as a stream, read page by page from the
store (``get_events``) and printed as they are read, so a long log starts printing at
once and ``| head`` stops the reading.

``tail`` follows the log live: it long-polls the store (``get_events(after=N,
wait_timeout_ms=...)``: an append wakes it at once, through LISTEN/NOTIFY on
PostgreSQL) until the session ends (its status is completed, failed or cancelled, and
nothing more is in the log) or Ctrl-C. With ``--json`` both print JSON Lines, one
``Event.to_dict()`` a line.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import click

from ..composition import Store
from ..domain.event import Event
from ..domain.statuses import SessionStatus
from .arguments import EVENT_TYPE, converted, moment
from .conventions import json_option, open_existing, require_run, store_option
from .output import console, print_all, to_json
from .records_view import event_lines
from .view_parts import RunLabels

#: Events read per page: enough to amortise a query, small enough to print at once.
PAGE_SIZE = 500
#: A session with one of these statuses will get no more events from its agent.
ENDED = frozenset({SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED})


class _Printer:
    """Events to stdout: JSON Lines, or one timeline line each (runs labelled ``R1``,
    ``R2``, ... in order of appearance)."""

    def __init__(self, store: Store, session_id: str, *, as_json: bool) -> None:
        self._as_json = as_json
        self._out = console()
        self._labels = RunLabels(store.list_runs(session_id))
        self._width = max(4, len(str(store.get_latest_sequence(session_id))))

    def __call__(self, events: list[Event]) -> None:
        if self._as_json:
            for event in events:
                click.echo(to_json(event.to_dict()))
            return
        print_all(self._out, event_lines(events, self._labels, number_width=self._width))


def _pages(
    store: Store,
    session_id: str,
    *,
    run_id: str | None,
    event_type: str | None,
    since: datetime | None,
    after: int,
    before: int | None,
    limit: int | None,
) -> Iterator[list[Event]]:
    """The matching events in sequence order, a page at a time, at most ``limit``."""
    left = limit
    while left is None or left > 0:
        size = PAGE_SIZE if left is None else min(PAGE_SIZE, left)
        page = store.get_events(
            session_id,
            run_id=run_id,
            type=event_type,
            since=since,
            after=after,
            before=before,
            limit=size,
        )
        if not page:
            return
        yield page
        after = page[-1].sequence_number or after
        if left is not None:
            left -= len(page)
        if len(page) < size:
            return


_RUN = click.option("--run", "run_id", default=None, metavar="RUN", help="only this run's events")
_TYPE = click.option(
    "--type", "event_type", type=EVENT_TYPE, default=None, help="only this event type"
)
_SINCE = click.option(
    "--since",
    default=None,
    metavar="TIME",
    callback=converted(moment),
    help="only events at or after this ISO 8601 time (UTC if no zone)",
)


@click.command()
@click.argument("session_id", metavar="SESSION")
@_RUN
@_TYPE
@_SINCE
@click.option(
    "--after", type=click.IntRange(min=0), default=0, metavar="SEQ", help="only after this number"
)
@click.option(
    "--before", type=click.IntRange(min=1), default=None, metavar="SEQ", help="only before it"
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="at most this many")
@json_option
@store_option
@click.pass_context
def events(
    ctx: click.Context,
    session_id: str,
    run_id: str | None,
    event_type: str | None,
    since: datetime | None,
    after: int,
    before: int | None,
    limit: int | None,
    as_json: bool,
    store_url: str | None,
) -> None:
    """Print a session's events in order, filtered as ``get_events`` filters them
    (--after and --before are sequence numbers, both exclusive).

    With --json: JSON Lines, one event a line.
    """
    with open_existing(ctx, store_url) as store:
        store.get_session(session_id)  # an unknown session is an error, not no events
        if run_id is not None:
            require_run(store, session_id, run_id)
        show = _Printer(store, session_id, as_json=as_json)
        for page in _pages(
            store,
            session_id,
            run_id=run_id,
            event_type=event_type,
            since=since,
            after=after,
            before=before,
            limit=limit,
        ):
            show(page)


@click.command()
@click.argument("session_id", metavar="SESSION")
@_RUN
@_TYPE
@click.option(
    "-n",
    "--lines",
    "last",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="start with the last N events of the log",
)
@click.option(
    "--after",
    type=click.IntRange(min=0),
    default=None,
    metavar="SEQ",
    help="start after this sequence number instead (0: the whole log)",
)
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0.05, max=60),
    default=5.0,
    show_default=True,
    help="seconds each long-poll waits for an append before checking the session again",
)
@json_option
@store_option
@click.pass_context
def tail(
    ctx: click.Context,
    session_id: str,
    run_id: str | None,
    event_type: str | None,
    last: int,
    after: int | None,
    wait_seconds: float,
    as_json: bool,
    store_url: str | None,
) -> None:
    """Follow a session's events live, as they are appended, until the session ends
    (completed, failed or cancelled) or Ctrl-C. Starts with the last --lines events.

    With --json: JSON Lines, one event a line, each printed as it arrives.
    """
    with open_existing(ctx, store_url) as store:
        store.get_session(session_id)
        if run_id is not None:
            require_run(store, session_id, run_id)
        show = _Printer(store, session_id, as_json=as_json)
        cursor = (
            after if after is not None else max(0, store.get_latest_sequence(session_id) - last)
        )
        wait_ms = int(wait_seconds * 1000)
        while True:
            page = store.get_events(
                session_id, run_id=run_id, type=event_type, after=cursor, limit=PAGE_SIZE
            )
            if page:
                show(page)
                cursor = page[-1].sequence_number or cursor
                if len(page) == PAGE_SIZE:
                    continue
            # Caught up: the session's status says whether more can come. Its last
            # events may be appended just after the status is saved, so one more read
            # follows an ended status before stopping.
            if store.get_session(session_id).status in ENDED:
                rest = store.get_events(
                    session_id, run_id=run_id, type=event_type, after=cursor, limit=None
                )
                if rest:
                    show(rest)
                return
            page = store.get_events(
                session_id,
                run_id=run_id,
                type=event_type,
                after=cursor,
                limit=PAGE_SIZE,
                wait_timeout_ms=wait_ms,
            )
            if page:
                show(page)
                cursor = page[-1].sequence_number or cursor
