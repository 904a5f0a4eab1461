"""``sessions`` and ``show``: which sessions a store holds, and one of them in full.

``sessions`` is the ``QueryAPI`` search (its filters, its pages of at most
``--limit``, the cursor of the next page); ``show`` prints a session's record, its runs
with their usage and cost, its stats and its events, narrowed by ``--run`` and
``--type``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import click
from rich.text import Text

from ..composition import Store
from ..domain.event import Event
from ..domain.replay import USAGE_KEYS
from ..domain.run import Run
from ..domain.token_usage import token_count
from ..services.query_api import MAX_QUERY_LIMIT, QueryAPI
from ..services.query_results import SessionPage, SessionStats
from .arguments import EVENT_TYPE, SESSION_STATUS, converted, moment
from .conventions import json_option, open_existing, require_run, store_option
from .event_summary import line, usage_text, when
from .output import console, note, plain, print_all, print_json, to_json
from .progress import queries
from .records_view import event_lines, run_lines, session_header, session_lines
from .view_parts import RunLabels

#: ``--order`` names for the ``QueryAPI`` orders.
ORDERS = {"updated": "updated_at_desc", "newest": "created_at_desc", "oldest": "created_at_asc"}
DEFAULT_LIMIT = 50


def next_page_hint(cursor: str | None, shown: int, total: int) -> None:
    """On stderr, when there is a next page: how many there are, and how to get it."""
    if cursor is not None:
        note(f"{shown} of {total} session(s) shown; the next page: --cursor {cursor}")


def next_cursor(
    query: QueryAPI, page: SessionPage, search: dict[str, Any], limit: int, cursor: str | None
) -> str | None:
    """The page's cursor when there is a next page, else ``None`` (what ``--help``
    promises). The ``QueryAPI`` returns a cursor after every page that is not empty,
    even the last: a short page is the last; a first page holding every match is; a
    full later page is the last when the page after it is empty (one row asked)."""
    if page.cursor is None or len(page.sessions) < limit:
        return None
    if cursor is None and page.total_count <= len(page.sessions):
        return None
    after = query.search_sessions(**search, limit=1, cursor=page.cursor)
    return page.cursor if after.sessions else None


@click.command()
@click.option("--agent", "agent_id", default=None, metavar="AGENT", help="only this agent's")
@click.option(
    "--status", "statuses", multiple=True, type=SESSION_STATUS, help="only these (repeatable)"
)
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="carrying every one of these")
@click.option(
    "--since",
    default=None,
    metavar="TIME",
    callback=converted(moment),
    help="created at or after this ISO 8601 time or day (UTC if no zone)",
)
@click.option(
    "--until",
    default=None,
    metavar="TIME",
    callback=converted(moment),
    help="created at or before this time",
)
@click.option(
    "--order",
    type=click.Choice(list(ORDERS)),
    default="updated",
    show_default=True,
    help="most recently updated first, newest or oldest created first",
)
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_QUERY_LIMIT),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="at most this many; the next page's --cursor is printed on stderr",
)
@click.option("--cursor", default=None, metavar="CURSOR", help="the page after a previous one")
@click.option("--include-deleted", is_flag=True, help="soft-deleted sessions too")
@json_option
@store_option
@click.pass_context
def sessions(
    ctx: click.Context,
    agent_id: str | None,
    statuses: tuple[str, ...],
    tags: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    order: str,
    limit: int,
    cursor: str | None,
    include_deleted: bool,
    as_json: bool,
    store_url: str | None,
) -> None:
    """List sessions, most recently updated first, a page of --limit at a time.

    With --json: {"sessions": [...], "cursor": next page or null, "total_count": N}.
    """
    search: dict[str, Any] = {
        "agent_id": agent_id,
        "status": list(statuses) or None,
        "tags": list(tags) or None,
        "created_after": since,
        "created_before": until,
        "include_deleted": include_deleted,
        "order_by": ORDERS[order],
    }
    with open_existing(ctx, store_url) as store, queries(store) as query:
        page = query.search_sessions(**search, limit=limit, cursor=cursor)
        following = next_cursor(query, page, search, limit, cursor)
    if as_json:
        print_json(
            {
                "sessions": [session.to_dict() for session in page.sessions],
                "cursor": following,
                "total_count": page.total_count,
            }
        )
        return
    if not page.sessions:
        note("no sessions")
        return
    print_all(console(), session_lines(page.sessions))
    next_page_hint(following, len(page.sessions), page.total_count)


def run_tokens(runs: Iterable[Run]) -> dict[str, int]:
    """The runs' recorded token counts added up, cache reads and writes included (the
    stats of the read models count input, output and total only)."""
    totals = dict.fromkeys(USAGE_KEYS, 0)
    for run in runs:
        for key in USAGE_KEYS:
            totals[key] += token_count(run.token_usage, key)
    return totals


def stats_lines(stats: SessionStats, runs: Sequence[Run] | None = None) -> list[Text]:
    """``12 event(s) · 2 run(s) (completed 2)``, ``tokens in 1,234 · out 56 · cache read
    9,000 · total 10,290`` (with ``runs``, their counts, cache included), and when the
    events were."""
    statuses = ", ".join(f"{name} {count}" for name, count in sorted(stats.status_counts.items()))
    text = line(f"{stats.event_count:,} event(s) \u00b7 {stats.run_count} run(s)")
    if statuses:
        text.append(f" ({statuses})")
    tokens = plain(stats.token_totals) if runs is None else run_tokens(runs)
    found = [text, line(f"tokens {usage_text(tokens)}")]
    if stats.first_event_at is not None:
        span = line(f"events from {when(stats.first_event_at)} to {when(stats.last_event_at)}")
        if stats.providers_used:
            span.append(f" \u00b7 providers {', '.join(stats.providers_used)}")
        found.append(span)
    return found


def _full(event: Event) -> list[Text]:
    """An event's whole payload, indented JSON under its line (``show --full``): a
    ``Text`` per line, so that each is made printable on its own."""
    payload = {"data": event.data, "metadata": event.metadata} if event.metadata else event.data
    text = json.dumps(payload, ensure_ascii=False, indent=2, default=str)
    return [Text("      " + part, style="dim") for part in text.splitlines()]


def print_session(
    store: Store,
    session_id: str,
    *,
    as_json: bool,
    run_id: str | None = None,
    event_type: str | None = None,
    full: bool = False,
) -> None:
    """A session, its runs, its stats and its events: ``show``."""
    session = store.get_session(session_id)
    if run_id is not None:
        require_run(store, session.id, run_id)
    runs = store.list_runs(session.id)
    with queries(store) as query:
        stats = query.get_session_stats(session.id)
    events = store.get_events(session.id, run_id=run_id, type=event_type)
    if as_json:
        print_json(
            {
                "session": session.to_dict(),
                "runs": [run.to_dict() for run in runs],
                "stats": plain(stats),
                "events": [event.to_dict() for event in events],
            }
        )
        return
    out = console()
    labels = RunLabels(runs)
    width = len(str(store.get_latest_sequence(session.id)))
    print_all(out, [session_header(session), *stats_lines(stats, runs), *run_lines(runs, labels)])
    if session.tags or session.metadata:
        facts = line()
        if session.tags:
            facts.append(f"tags {', '.join(session.tags)}  ")
        if session.metadata:
            facts.append(f"metadata {to_json(session.metadata)}", style="dim")
        print_all(out, [facts])
    if not full:
        print_all(out, event_lines(events, labels, number_width=width))
        return
    for event in events:
        print_all(out, [*event_lines([event], labels, number_width=width), *_full(event)])


@click.command()
@click.argument("session_id", metavar="SESSION")
@click.option("--run", "run_id", default=None, metavar="RUN", help="only this run's events")
@click.option("--type", "event_type", type=EVENT_TYPE, default=None, help="only this event type")
@click.option("--full", is_flag=True, help="print each event's whole payload under its line")
@json_option
@store_option
@click.pass_context
def show(
    ctx: click.Context,
    session_id: str,
    run_id: str | None,
    event_type: str | None,
    full: bool,
    as_json: bool,
    store_url: str | None,
) -> None:
    """Print a session: its record, its runs with usage and cost, its stats and its
    events (one line each; --full adds the payloads).

    With --json: {"session", "runs", "stats", "events"}, payloads included.
    """
    with open_existing(ctx, store_url) as store:
        print_session(
            store, session_id, as_json=as_json, run_id=run_id, event_type=event_type, full=full
        )
