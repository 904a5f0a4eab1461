"""``sessions`` and ``show``: what a store holds, as lists."""

from __future__ import annotations

import click

from ..composition import Store
from .conventions import json_option, open_existing, store_option
from .output import console, note, print_all, print_json
from .records_view import event_lines, run_lines, session_header, session_lines
from .view_parts import RunLabels


@click.command()
@json_option
@store_option
@click.pass_context
def sessions(ctx: click.Context, as_json: bool, store_url: str | None) -> None:
    """List the stored sessions, oldest first."""
    with open_existing(ctx, store_url) as store:
        found = store.list_sessions()
    if as_json:
        print_json({"sessions": [session.to_dict() for session in found]})
        return
    if not found:
        note("no sessions")
        return
    print_all(console(), session_lines(found))


def print_session(store: Store, session_id: str, *, as_json: bool) -> None:
    """A session, its runs and its events: ``show`` and the end of ``demo``."""
    session = store.get_session(session_id)
    runs = store.list_runs(session.id)
    if as_json:
        print_json(
            {
                "session": session.to_dict(),
                "runs": [run.to_dict() for run in runs],
                "events": [event.to_dict() for event in store.get_events(session.id)],
            }
        )
        return
    out = console()
    labels = RunLabels(runs)
    width = len(str(store.get_latest_sequence(session.id)))
    print_all(out, [session_header(session), *run_lines(runs, labels)])
    print_all(out, event_lines(store.get_events(session.id), labels, number_width=width))


@click.command()
@click.argument("session_id", metavar="SESSION")
@json_option
@store_option
@click.pass_context
def show(ctx: click.Context, session_id: str, as_json: bool, store_url: str | None) -> None:
    """Print a session, its runs and its events."""
    with open_existing(ctx, store_url) as store:
        print_session(store, session_id, as_json=as_json)
