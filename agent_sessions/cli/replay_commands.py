"""``replay`` and ``fork``: a session as it was at any point of its log, and a new
session that starts from such a point (``services/history.py`` does the work)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

import click

from ..domain.replay import SessionSnapshot
from ..services.history import DEFAULT_WINDOW, SessionHistory
from .arguments import converted, moment
from .conventions import json_option, open_existing, require_run, store_option
from .output import console, echo, note, print_all, print_json, print_json_lines
from .records_view import session_header
from .snapshot_view import only_run, render_snapshot
from .step_view import step_block
from .view_parts import RunLabels

_RANGE = re.compile(r"\s*(\d*)\s*(\.\.)?\s*(\d*)\s*")


def step_range(text: str) -> tuple[int, int | None]:
    """``A..B`` (inclusive), ``A..`` (to the last event), ``..B`` (from the first), or
    ``A`` (that step alone)."""
    match = _RANGE.fullmatch(text)
    if match is None or not (match.group(1) or match.group(3)):
        raise click.BadParameter(f"{text!r} is not a range of positions: write A..B, A.., ..B or A")
    first, dots, last = match.groups()
    start = int(first) if first else 1
    if not dots:
        return start, start
    stop = int(last) if last else None
    if stop is not None and stop < start:
        raise click.BadParameter(f"{text!r} runs backwards: the first position comes first")
    return start, stop


@click.command()
@click.argument("session_id", metavar="SESSION")
@click.option(
    "--at",
    type=click.IntRange(min=0),
    default=None,
    metavar="SEQ",
    help="the log position to show (default: the last event; 0: before the first)",
)
@click.option(
    "--until",
    default=None,
    metavar="TIME",
    callback=converted(moment),
    help="the position of the last event at or before this ISO 8601 time (UTC if no zone)",
)
@click.option(
    "--run",
    "run_id",
    default=None,
    metavar="RUN",
    help="only this run: its events, tool calls and usage (with --steps: its steps)",
)
@click.option(
    "--window",
    type=click.IntRange(min=0),
    default=DEFAULT_WINDOW,
    show_default=True,
    help="events shown on each side of the position",
)
@click.option(
    "--steps",
    default=None,
    metavar="A..B",
    callback=converted(step_range),
    help="print every step from A to B, one block each (A.., ..B and A too)",
)
@click.option("--include-deleted", is_flag=True, help="replay a soft-deleted session too")
@json_option
@store_option
@click.pass_context
def replay(
    ctx: click.Context,
    session_id: str,
    at: int | None,
    until: datetime | None,
    run_id: str | None,
    window: int,
    steps: tuple[int, int | None] | None,
    include_deleted: bool,
    as_json: bool,
    store_url: str | None,
) -> None:
    """Print SESSION as it was at one point of its log: the session and its runs as
    they were, usage and cost so far, the events around the point with tool calls
    paired with their results, what was still open, errors, pruned ranges.

    With --json, the snapshot as one JSON document (JSON Lines with --steps).
    """
    if at is not None and until is not None:
        raise click.UsageError("--at and --until both name the point: give one of them")
    if steps is not None and (at is not None or until is not None):
        raise click.UsageError("--steps names its own range: leave out --at and --until")
    with open_existing(ctx, store_url) as store:
        history = store.history(session_id, include_deleted=include_deleted)
        if run_id is not None:
            require_run(store, session_id, run_id)
        if steps is not None:
            _print_steps(history, steps, run_id=run_id, window=window, as_json=as_json)
            return
        if until is not None:
            snapshot = history.until(until, window=window)
        else:
            snapshot = history.at(history.latest if at is None else at, window=window)
        labels = RunLabels(snapshot.runs)
        shown = snapshot if run_id is None else only_run(snapshot, run_id)
        if as_json:
            print_json(shown.to_dict())
            return
        print_all(
            console(),
            render_snapshot(shown, latest=history.latest, whole_log=run_id is None, labels=labels),
        )


def _print_steps(
    history: SessionHistory,
    steps: tuple[int, int | None],
    *,
    run_id: str | None,
    window: int,
    as_json: bool,
) -> None:
    start, stop = steps

    def narrowed(snapshots: Iterator[SessionSnapshot]) -> Iterator[SessionSnapshot]:
        for snapshot in snapshots:
            yield snapshot if run_id is None else only_run(snapshot, run_id)

    if as_json:
        snapshots = history.steps(start, stop, run_id=run_id, window=window)
        print_json_lines(snapshot.to_dict() for snapshot in narrowed(snapshots))
        return
    # Text needs only each step's own event: a window of 0 keeps every snapshot small.
    start = max(start, 1)
    snapshots = history.steps(start, stop, run_id=run_id, window=0)
    first = next(snapshots, None)  # validates the range before anything is printed
    out = console()
    if first is None:
        note(f"no steps in {start}..{'' if stop is None else stop}")
        return
    before = history.at(start - 1, window=0)
    labels = RunLabels(before.runs)
    print_all(out, [session_header(before.session)])
    width = len(str(history.latest if stop is None else stop))
    after: SessionSnapshot | None = first
    while after is not None:
        print_all(out, step_block(before, after, labels, number_width=width))
        before, after = after, next(snapshots, None)


@click.command()
@click.argument("session_id", metavar="SESSION")
@click.option(
    "--at",
    type=click.IntRange(min=0),
    required=True,
    metavar="SEQ",
    help="copy the events up to this position, and the runs as they were there",
)
@click.option("--session-id", "new_id", default=None, metavar="ID", help="the new session's id")
@click.option("--include-deleted", is_flag=True, help="fork a soft-deleted session too")
@json_option
@store_option
@click.pass_context
def fork(
    ctx: click.Context,
    session_id: str,
    at: int,
    new_id: str | None,
    include_deleted: bool,
    as_json: bool,
    store_url: str | None,
) -> None:
    """Start a new session from SESSION as it was at position SEQ, to re-run an agent
    from there; prints the new session's id."""
    with open_existing(ctx, store_url) as store:
        forked = store.fork(session_id, at=at, session_id=new_id, include_deleted=include_deleted)
        copied = store.get_latest_sequence(forked.id)
        runs = len(store.list_runs(forked.id))
    if as_json:
        print_json({"session": forked.to_dict(), "event_count": copied, "run_count": runs})
        return
    echo(forked.id)
    note(f"forked {session_id} at #{at}: {copied} event(s) and {runs} run(s) copied")
