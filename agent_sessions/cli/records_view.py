"""Sessions, runs and events printed as lists: what ``sessions``, ``show`` and
``demo`` print, one line per item (cut at the terminal's width, ids never), in the
layout of the replay timeline. Events are printed as they are read, so that a long
log starts printing at once and a closed pipe stops the reading."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from rich.text import Text

from ..domain.event import Event
from ..domain.run import Run
from ..domain.session import Session
from .event_summary import line, money, usage_text, when
from .timeline_view import timeline_line
from .view_parts import RunLabels, run_line, status_text


def session_lines(sessions: Iterable[Session]) -> Iterator[Text]:
    """``ses_...  created  status  agent  tags``, columns as wide as their longest: what
    a narrow terminal cuts is the agent and the tags, never the id or the time."""
    found = list(sessions)
    id_width = max((len(s.id) for s in found), default=0)
    agent_width = max((len(s.agent_id) for s in found), default=0)
    for session in found:
        text = line()
        text.append(f"{session.id:<{id_width}}", style="cyan")
        text.append(f"  {when(session.created_at)}  ")
        text.append_text(status_text(f"{session.status.value:<9}"))
        text.append(f"  {session.agent_id:<{agent_width}}")
        if session.deleted_at is not None:
            text.append("  (deleted)", style="red")
        if session.tags:
            text.append(f"  {', '.join(session.tags)}", style="dim")
        yield text


def session_header(session: Session) -> Text:
    text = Text("session ", style="bold")
    text.append(session.id, style="bold cyan")
    text.append(f"  agent {session.agent_id} \u00b7 status ")
    text.append_text(status_text(session.status.value))
    text.append(f" \u00b7 created {when(session.created_at)}")
    if session.parent_session_id:
        text.append(f" \u00b7 child of {session.parent_session_id}")
    return text


def run_lines(runs: Iterable[Run], labels: RunLabels) -> Iterator[Text]:
    """Each run and, under it, its recorded usage and cost."""
    for run in runs:
        yield run_line(run, labels(run.id))
        if run.token_usage or run.cost_usd is not None:
            yield line(f"    {usage_text(run.token_usage)} \u00b7 cost {money(run.cost_usd)}")


def event_lines(
    events: Iterable[Event], labels: RunLabels, *, number_width: int = 4
) -> Iterator[Text]:
    for event in events:
        yield timeline_line(event, labels, number_width=number_width, pair=None)
