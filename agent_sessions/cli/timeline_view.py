"""The timeline of a replay: events a line each around the point, the point marked
``▶`` and the events after it dim (they had not happened yet), each tool call linked
to its result (``[→#7 completed 4 ms]``, ``[←#6 4 ms]``), and the ranges retention
pruned shown where they are. ``timeline_line`` is also how ``show`` and ``--steps``
print an event."""

from __future__ import annotations

from collections.abc import Iterator

from rich.console import RenderableType
from rich.text import Text

from ..domain.event import Event
from ..domain.replay import PrunedRange, SessionSnapshot, ToolCall
from .event_summary import clock, duration, line, summary
from .view_parts import RunLabels, heading, status_text

#: Wide enough for every event type but the two workspace ones.
TYPE_WIDTH = 22


def _pairs(snapshot: SessionSnapshot) -> dict[str, tuple[ToolCall, bool]]:
    """Event id -> (its tool call, whether the event is the call's start)."""
    pairs: dict[str, tuple[ToolCall, bool]] = {}
    for call in snapshot.tool_calls:
        if call.started is not None:
            pairs[call.started.id] = (call, True)
        if call.ended is not None:
            pairs[call.ended.id] = (call, False)
    return pairs


def _pair_text(call: ToolCall, is_start: bool) -> Text:
    """``[→#6 completed 12 ms]`` on a start, ``[←#5 12 ms]`` on a result."""
    if is_start:
        if call.ended is None:
            return Text("[open] ", style="yellow")
        text = Text(f"[\u2192#{call.ended.sequence_number} ")
        text.append_text(status_text(call.status))
        if call.duration_ms is not None:
            text.append(f" {duration(call.duration_ms)}")
        return text.append("] ")
    if call.started is None:
        return Text("[no start in log] ", style="red")
    text = Text(f"[\u2190#{call.started.sequence_number}")
    if call.duration_ms is not None:
        text.append(f" {duration(call.duration_ms)}")
    return text.append("] ")


def _holes(snapshot: SessionSnapshot, low: int, high: int, *, whole_log: bool) -> list[str]:
    """What lies between two events of the window, numbers ``low`` to ``high``. In a
    window of the whole log those numbers were pruned (a log's sequence numbers have no
    gaps of their own), after the point too; in a window narrowed to one run they are
    mostly other runs' events, and only the ranges the snapshot knows are shown."""
    if whole_log:
        return [str(PrunedRange(low, high))]
    return [str(gap) for gap in snapshot.gaps if gap.first <= high and gap.last >= low]


def timeline_line(
    event: Event, labels: RunLabels, *, number_width: int, marker: str = " ", pair: Text | None
) -> Text:
    text = line(
        f"{marker} {event.sequence_number or 0:>{number_width}} {clock(event.timestamp)} "
        f"{labels(event.run_id):<3} {event.type.value:<{TYPE_WIDTH}} "
    )
    if pair is not None:
        text.append_text(pair)
    text.append(summary(event, 400))
    return text


def timeline(
    snapshot: SessionSnapshot, labels: RunLabels, *, whole_log: bool
) -> Iterator[RenderableType]:
    events = snapshot.events
    position = snapshot.sequence
    if not events:
        yield heading("Timeline", "no events around this point")
        return
    first, last = events[0].sequence_number or 0, events[-1].sequence_number or 0
    detail = f"#{first}\u2013#{last}"
    if last > position:
        detail += f"; after #{position} dim: not happened yet there"
    yield heading("Timeline", detail)
    width = len(str(max(last, position)))
    pairs = _pairs(snapshot)
    point = line(f"\u25b6 {position:>{width}} (this point)", style="bold")
    previous: int | None = None
    marked = False
    for gap in snapshot.gaps:
        if gap.last == first - 1:  # pruned just before the window: the window is short
            yield line(f"  {'':>{width}} \u2026 {gap}", style="red")
    for event in events:
        number = event.sequence_number or 0
        if previous is not None and number > previous + 1:
            for hole in _holes(snapshot, previous + 1, number - 1, whole_log=whole_log):
                yield line(f"  {'':>{width}} \u2026 {hole}", style="red")
        if not marked and position < number:
            yield point
            marked = True
        found = pairs.get(event.id) if number <= position else None
        pair = None if found is None else _pair_text(*found)
        if number == position:
            marked = True
            text = timeline_line(event, labels, number_width=width, marker="\u25b6", pair=pair)
            text.stylize("bold reverse")
        else:
            text = timeline_line(event, labels, number_width=width, pair=pair)
            if number > position:
                text.stylize("dim")
        yield text
        previous = number
    if not marked:
        yield point
