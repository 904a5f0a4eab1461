"""``agent-sessions replay --steps A..B``, printed: one block per step, the event that
made the step (a timeline line) and, indented under it, what it changed (from the diff
with the step before: record fields, tool calls opened and closed, usage). The pruned
ranges passed on the way to a step are printed before it, as the timeline prints them:
steps jump over them, and a jump from #4 to #8 without a word would read as a log
without events 5 to 7.

Bookkeeping fields that change with every save (``updated_at``) are left out: they
would fill every block and say nothing a reader debugs with.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from rich.text import Text

from ..domain.replay import PrunedRange, SessionSnapshot, SnapshotDiff, ToolCall, diff
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
    if change.events_applied > 1:
        yield line(f"{change.events_applied} events since the step before", style="dim")
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


def passed_gaps(before: SessionSnapshot, after: SessionSnapshot) -> list[PrunedRange]:
    """The pruned ranges between the two steps: those reaching past ``before``'s
    position and starting at or before ``after``'s (a range the first step starts
    inside counts too: the step before it was in the range)."""
    return [gap for gap in after.gaps if gap.last > before.sequence]


def step_block(
    before: SessionSnapshot, after: SessionSnapshot, labels: RunLabels, *, number_width: int
) -> Iterator[Text]:
    """The step to ``after``: the pruned ranges passed since ``before``, its event on
    one line, then what changed, indented."""
    for gap in passed_gaps(before, after):
        yield line(f"  {'':>{number_width}} \u2026 {gap}", style="red")
    event = next((e for e in after.events if e.sequence_number == after.sequence), None)
    if event is not None:
        yield timeline_line(event, labels, number_width=number_width, pair=None)
    else:
        yield line(f"  {after.sequence:>{number_width}}", style="bold")
    for text in change_lines(diff(before, after), labels):
        yield line(_INDENT).append_text(text)
