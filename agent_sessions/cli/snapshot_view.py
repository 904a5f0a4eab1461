"""``agent-sessions replay``, printed: a :class:`SessionSnapshot` as sections a person
debugging a session reads top to bottom.

What the session and its runs were at that point, then what they had cost, then the
events around the point (the one asked for marked ``▶``; the ones after it dim: they
had not happened yet), then what was unfinished there (open tool calls, pending
approvals), what had gone wrong, and what retention removed.

Every item is one line, cut at the terminal's width rather than wrapped, so that a
list reads as a list on any terminal; only usage, all numbers, is a table. Styles only
emphasise: every fact is in the text too, so the output reads the same in a file or a
pipe. Long lists are cut to what is near the point (tool calls) or to the latest few
(errors, open items), with a count of the rest; ``--json`` has all of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from datetime import datetime

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from ..domain.event import Event
from ..domain.replay import SessionSnapshot, ToolCall, Usage
from .event_summary import clock, duration, line, money, money_legend, summary, when
from .timeline_view import timeline
from .view_parts import RunLabels, heading, run_line, status_text

#: At most how many errors, open tool calls, pending approvals and pruned ranges a
#: snapshot lists (the latest).
LIST_LIMIT = 10


def only_run(snapshot: SessionSnapshot, run_id: str) -> SessionSnapshot:
    """The snapshot narrowed to one run (``--run``): its record, its events, tool calls,
    errors and approvals, and its usage as the total."""

    def mine(events: Iterable[Event]) -> tuple[Event, ...]:
        return tuple(event for event in events if event.run_id == run_id)

    def calls(items: Iterable[ToolCall]) -> tuple[ToolCall, ...]:
        return tuple(call for call in items if call.run_id == run_id)

    usage = snapshot.usage_by_run.get(run_id)
    return dataclasses.replace(
        snapshot,
        runs=tuple(run for run in snapshot.runs if run.id == run_id),
        events=mine(snapshot.events),
        tool_calls=calls(snapshot.tool_calls),
        open_tool_calls=calls(snapshot.open_tool_calls),
        usage_by_run={} if usage is None else {run_id: usage},
        usage=Usage() if usage is None else usage,
        errors=mine(snapshot.errors),
        pending_approvals=mine(snapshot.pending_approvals),
    )


def _header(snapshot: SessionSnapshot, latest: int) -> Iterator[RenderableType]:
    session = snapshot.session
    title = line("session ", style="bold")
    title.append(session.id, style="bold cyan")
    title.append(f"  at #{snapshot.sequence} of {latest}", style="bold")
    yield title
    facts = Text(f"agent {session.agent_id} \u00b7 status ")
    facts.append_text(status_text(session.status.value))
    facts.append(f" \u00b7 {snapshot.event_count} event(s) applied")
    if snapshot.timestamp is not None:
        facts.append(f" \u00b7 last at {when(snapshot.timestamp)}")
    if session.tags:
        facts.append(f" \u00b7 tags {', '.join(session.tags)}")
    yield facts
    forked = session.metadata.get("forked_from")
    if isinstance(forked, dict):
        yield Text(f"forked from {forked.get('session')} at #{forked.get('sequence')}")
    elif session.parent_session_id:
        yield Text(f"child of {session.parent_session_id}")
    if session.deleted_at is not None:
        yield Text(f"deleted at {when(session.deleted_at)}", style="red")
    if snapshot.approximate:
        yield Text(
            "\u2248 approximate: some changes were stored before positions were recorded "
            "and were placed by commit order when the store was migrated; a flush's "
            "changes may show just before its events",
            style="yellow",
        )


def _runs(snapshot: SessionSnapshot, labels: RunLabels) -> Iterator[RenderableType]:
    if not snapshot.runs:
        return
    yield heading("Runs")
    for run in snapshot.runs:
        yield run_line(run, labels(run.id))


def _count(value: int) -> str:
    return f"{value:,}" if value else ""


def _usage_row(name: str, usage: Usage) -> list[str]:
    return [
        name,
        _count(usage.input_tokens),
        _count(usage.output_tokens),
        _count(usage.cache_read_tokens),
        _count(usage.cache_creation_tokens),
        _count(usage.total_tokens),
        # A run with no tokens yet is not worth an estimated "$0.000000".
        money(usage.cost_usd, estimated=usage.cost_estimated, partial=usage.cost_partial)
        if usage.has_tokens or usage.cost_usd
        else "",
    ]


def _usage(snapshot: SessionSnapshot, labels: RunLabels) -> Iterator[RenderableType]:
    total = snapshot.usage
    if not total.has_tokens and not total.cost_usd:
        yield heading("Usage so far", "no tokens reported yet")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("run")
    for column in ("input", "output", "cache read", "cache write", "total", "cost"):
        table.add_column(column, justify="right", no_wrap=True)
    for run_id, usage in snapshot.usage_by_run.items():
        table.add_row(*_usage_row(labels(run_id), usage))
    table.add_section()
    table.add_row(*_usage_row("all", total), style="bold")
    legend = money_legend(estimated=total.cost_estimated, partial=total.cost_partial)
    yield heading("Usage so far", legend)
    yield table


def _call_name(call: ToolCall) -> str:
    name = call.tool_name or "(unnamed tool)"
    return f"{name} ({call.tool_call_id})" if call.tool_call_id else name


def tool_call_line(call: ToolCall, labels: RunLabels) -> Text:
    """``#5 bash (toolu_01) R1 completed at #6 after 12 ms``."""
    text = line(f"#{call.sequence} {_call_name(call)} {labels(call.run_id)} ")
    text.append_text(status_text(call.status))
    if call.ended is not None:
        text.append(f" at #{call.ended.sequence_number}")
    if call.started is None:
        text.append(" (its start is not in the log)", style="red")
    elif call.duration_ms is not None:
        text.append(f" after {duration(call.duration_ms)}")
    return text


def _near(snapshot: SessionSnapshot) -> list[ToolCall]:
    """The tool calls that started or ended in the window up to the point."""
    if not snapshot.events:
        return []
    low, high = snapshot.events[0].sequence_number or 0, snapshot.sequence

    def near(number: int | None) -> bool:
        return number is not None and low <= number <= high

    return [
        call
        for call in snapshot.tool_calls
        if near(call.sequence) or (call.ended is not None and near(call.ended.sequence_number))
    ]


def _tool_calls(snapshot: SessionSnapshot, labels: RunLabels) -> Iterator[RenderableType]:
    calls = snapshot.tool_calls
    if not calls:
        return
    near = _near(snapshot)
    if not near:
        yield heading("Tool calls", f"{len(calls)} so far, none near this point")
        return
    more = len(calls) - len(near)
    detail = f"{len(near)} near this point" + (f", {more} more before" if more else "")
    yield heading("Tool calls", detail)
    for call in near:
        yield tool_call_line(call, labels)


def _since(start: datetime, now: datetime | None) -> str:
    if now is None or now <= start:
        return ""
    return f", open for {duration((now - start).total_seconds() * 1000)}"


def _listed(title: str, items: list[Text], total: int) -> Iterator[RenderableType]:
    if not items:
        return
    detail = f"{total}" + (f", the latest {len(items)}" if total > len(items) else "")
    yield heading(title, detail)
    yield from items


def _unfinished(snapshot: SessionSnapshot, labels: RunLabels) -> Iterator[RenderableType]:
    open_calls = [
        line(
            f"#{call.sequence} {_call_name(call)} in {labels(call.run_id)}"
            + _since(call.first_event.timestamp, snapshot.timestamp),
            style="yellow",
        )
        for call in snapshot.open_tool_calls[-LIST_LIMIT:]
    ]
    yield from _listed("Open tool calls", open_calls, len(snapshot.open_tool_calls))
    approvals = [
        line(
            f"#{event.sequence_number} {summary(event, 60)} in {labels(event.run_id)}"
            + _since(event.timestamp, snapshot.timestamp),
            style="yellow",
        )
        for event in snapshot.pending_approvals[-LIST_LIMIT:]
    ]
    yield from _listed("Pending approvals", approvals, len(snapshot.pending_approvals))


def _errors(snapshot: SessionSnapshot, labels: RunLabels) -> Iterator[RenderableType]:
    errors = [
        line(
            f"#{event.sequence_number} {clock(event.timestamp)} {labels(event.run_id)} "
            f"{event.type.value}: {summary(event, 200)}",
            style="red",
        )
        for event in snapshot.errors[-LIST_LIMIT:]
    ]
    yield from _listed("Errors so far", errors, len(snapshot.errors))


def _gaps(snapshot: SessionSnapshot) -> Iterator[RenderableType]:
    gaps = [line(str(gap), style="red") for gap in snapshot.gaps[-LIST_LIMIT:]]
    yield from _listed("Pruned", gaps, len(snapshot.gaps))


def render_snapshot(
    snapshot: SessionSnapshot,
    *,
    latest: int,
    whole_log: bool = True,
    labels: RunLabels | None = None,
) -> Iterator[RenderableType]:
    """The sections of one snapshot, each followed by a blank line. ``whole_log``:
    the snapshot's events are a window of the whole log (not narrowed by ``only_run``);
    ``labels``: the run names to use (default: the snapshot's runs in order)."""
    labels = labels if labels is not None else RunLabels(snapshot.runs)
    sections = [
        _header(snapshot, latest),
        _runs(snapshot, labels),
        _usage(snapshot, labels),
        timeline(snapshot, labels, whole_log=whole_log),
        _tool_calls(snapshot, labels),
        _unfinished(snapshot, labels),
        _errors(snapshot, labels),
        _gaps(snapshot),
    ]
    for section in sections:
        parts = list(section)
        if parts:
            yield from parts
            yield Text("")
