"""``agent-sessions replay --steps A..B``, printed: one block per step, the event that
made the step (a timeline line) and, indented under it, what it changed (from the diff
with the step before: record fields, tool calls opened and closed, usage).

Bookkeeping fields that change with every save (``updated_at``) are left out: they
would fill every block and say nothing a reader debugs with.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from rich.text import Text

from ..domain.replay import SessionSnapshot, SnapshotDiff, ToolCall, diff
from .event_summary import clip, compact, duration, line, money, usage_text
from .timeline_view import timeline_line
from .view_parts import RunLabels, status_text

_QUIET_FIELDS = frozenset({"updated_at"})
_VALUE_WIDTH = 60
_INDENT = "      "


def _value(value: Any) -> str:
    return "-" if value is None else clip(compact(value), _VALUE_WIDTH)


def _field_lines(owner: str, changes: Mapping[str, tuple[Any, Any]]) -> Iterator[Text]:
    for name, (old, new) in changes.items():
        if name in _QUIET_FIELDS:
            continue
        text = line(f"{owner} {name}: ")
        if name == "status":
            text.append_text(status_text(str(old)))
            text.append(" \u2192 ")
            text.append_text(status_text(str(new)))
        else:
            text.append(f"{_value(old)} \u2192 {_value(new)}")
        yield text


def _call_name(call: ToolCall) -> str:
    name = call.tool_name or "(unnamed tool)"
    return f"{name} ({call.tool_call_id})" if call.tool_call_id else name


def _closed(call: ToolCall) -> Text:
    text = line(f"{'✓' if call.status == 'completed' else '✗'} tool call {_call_name(call)} ")
    text.append_text(status_text(call.status))
    if call.started is None:
        text.append(" (its start is not in the log)")
    else:
        text.append(f", started #{call.started.sequence_number}")
        if call.duration_ms is not None:
            text.append(f", took {duration(call.duration_ms)}")
    return text


def change_lines(change: SnapshotDiff, labels: RunLabels) -> Iterator[Text]:
    """What one step changed, a line each, most general first."""
    if change.events_added > 1:
        yield line(f"{change.events_added} events since the step before", style="dim")
    yield from _field_lines("session", change.session_changes)
    for run in change.runs_added:
        text = line(f"run {labels(run.id)} created: {run.id} ")
        yield text.append_text(status_text(run.status.value))
    for run_id in change.runs_removed:
        yield line(f"run {labels(run_id)} not created yet")
    for run_id, changes in change.run_changes.items():
        yield from _field_lines(f"run {labels(run_id)}", changes)
    closed = {call.first_event.id for call in change.tool_calls_closed}
    for call in change.tool_calls_opened:
        if call.first_event.id not in closed:
            yield line(f"+ tool call {_call_name(call)} opened", style="yellow")
    for call in change.tool_calls_closed:
        yield _closed(call)
    if change.usage is not None:
        _, after = change.usage
        cost = money(after.cost_usd, estimated=after.cost_estimated, partial=after.cost_partial)
        yield line(f"usage so far: cost {cost} \u00b7 {usage_text(after.token_usage())}")


def step_block(
    before: SessionSnapshot, after: SessionSnapshot, labels: RunLabels, *, number_width: int
) -> Iterator[Text]:
    """The step to ``after``: its event on one line, then what changed, indented."""
    event = after.events[-1] if after.events else None
    if event is not None and event.sequence_number == after.sequence:
        yield timeline_line(event, labels, number_width=number_width, pair=None)
    else:
        yield line(f"  {after.sequence:>{number_width}}", style="bold")
    for text in change_lines(diff(before, after), labels):
        yield line(_INDENT).append_text(text)
