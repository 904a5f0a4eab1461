"""One short line for an event's data: what a timeline shows beside the event type.

Known event types get the fields a reader looks for first (a message's text, a tool's
name and input, a usage report's counts, an error's message); anything else is its
data as compact JSON. Every summary is cut to a width: the full payload is one
``--json`` away.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rich.text import Text

from ..domain.event import Event
from ..domain.event_types import APPROVAL_EVENTS, EventType
from ..domain.replay import USAGE_KEYS

WIDTH = 72

_USAGE_LABELS = dict(
    zip(USAGE_KEYS, ("in", "out", "cache read", "cache write", "total"), strict=True)
)


def clip(text: str, width: int = WIDTH) -> str:
    """One line of at most ``width`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "\u2026"


def compact(value: Any) -> str:
    """A value as a reader wants it inline: strings bare, the rest as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _text(data: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = data.get(key)
        if value not in (None, "", {}, []):
            return compact(value)
    return None


def usage_text(data: Mapping[str, Any]) -> str:
    """``in 412 · out 57 · cache read 2048``: the counts present, in a fixed order."""
    parts = [
        f"{label} {data[key]:,}" if isinstance(data[key], int) else f"{label} {data[key]}"
        for key, label in _USAGE_LABELS.items()
        if data.get(key) not in (None, 0)
    ]
    return " \u00b7 ".join(parts) if parts else "no tokens"


def summary(event: Event, width: int = WIDTH) -> str:
    data = event.data
    kind = event.type
    if kind in (EventType.MESSAGE_SENT, EventType.MESSAGE_RECEIVED, EventType.MESSAGE_STREAMED):
        role = data.get("role")
        text = _text(data, "content", "text", "delta") or ""
        return clip(f"{role}: {text}" if isinstance(role, str) else text, width)
    if kind is EventType.TOOL_CALL_STARTED:
        name = _text(data, "tool_name") or "(unnamed tool)"
        arguments = _text(data, "tool_input", "input", "arguments")
        return clip(f"{name} {arguments}" if arguments else name, width)
    if kind in (EventType.TOOL_CALL_COMPLETED, EventType.TOOL_CALL_FAILED):
        name = _text(data, "tool_name") or "(unnamed tool)"
        result = _text(data, "error", "tool_output", "output", "result")
        return clip(f"{name} \u2192 {result}" if result else name, width)
    if kind is EventType.TOKEN_USAGE_UPDATED:
        return clip(usage_text(data), width)
    if kind in APPROVAL_EVENTS:
        name = _text(data, "tool_name") or "(unnamed tool)"
        reason = _text(data, "reason", "message")
        return clip(f"{name}: {reason}" if reason else name, width)
    known = _text(data, "error", "message", "reason", "stop_reason", "model")
    if known is not None:
        return clip(known, width)
    return clip(compact(data) if data else "", width)


def clock(moment: datetime | None) -> str:
    """``07:01:05.576``: the time of day, to the millisecond (the date is in the
    header of whatever lists the events)."""
    if moment is None:
        return ""
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def when(moment: datetime | None) -> str:
    """``2026-12-02 07:01:05 UTC``."""
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(ms: float | None) -> str:
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms / 60_000:.1f} min"


def money(cost: float | None, *, estimated: bool = False, partial: bool = False) -> str:
    """``$0.002091``; ``~$0.002091`` when estimated from a pricing table; a trailing
    ``+?`` when some tokens could not be priced; ``-`` when nothing was (see
    :func:`money_legend`)."""
    if cost is None:
        return "?" if partial else "-"
    text = f"{'~' if estimated else ''}${cost:,.6f}"
    return text + "+?" if partial else text


def money_legend(*, estimated: bool, partial: bool) -> str:
    """What the marks of :func:`money` in a list mean, for those that occur."""
    parts = ["~ estimated from the pricing table"] if estimated else []
    if partial:
        parts.append("+? some tokens have no price")
    return ", ".join(parts)


def line(text: str = "", style: str = "") -> Text:
    """A line that is cut at the console's width rather than wrapped: a list stays one
    row per item whatever the terminal (the full text is in ``--json``)."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")
