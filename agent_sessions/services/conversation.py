"""The conversation of a session as the message list for the next model call:
``store.conversation(session_id, run_id=..., last_runs=..., last_turns=...)``.

The messages are folded from the session's events (``domain/messages.py``); a window
(one run, the last runs, the last turns) cuts only at run or turn boundaries, so a tool
call is never separated from its result, and the system messages before the window stay
at its head.
"""

from __future__ import annotations

from ..domain.checks import require_id
from ..domain.errors import ValidationError
from ..domain.event import Event
from ..domain.event_types import EventType
from ..domain.messages import Message, messages_from_events
from ..domain.messages import last_turns as window_of_turns
from ..ports.session_store import SessionStore

_SYSTEM_ROLES = ("system", "developer")


def _positive(value: object, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{field} must be a positive integer", details={"field": field})
    return value


def _is_system(event: Event) -> bool:
    return event.type is EventType.MESSAGE_SENT and event.data.get("role") in _SYSTEM_ROLES


def conversation(
    store: SessionStore,
    session_id: str,
    *,
    run_id: str | None = None,
    last_runs: int | None = None,
    last_turns: int | None = None,
) -> list[Message]:
    """The session's messages, oldest first. ``run_id``: only that run's messages;
    ``last_runs``: only the last N runs' (runs in the order they started); ``last_turns``:
    the last N turns of what remains (a turn starts at a user message). Either run
    window keeps the system messages recorded outside it, at the head."""
    require_id(session_id, "session_id")
    if run_id is not None:
        require_id(run_id, "run_id")
    runs = _positive(last_runs, "last_runs")
    turns = _positive(last_turns, "last_turns")
    if run_id is not None and runs is not None:
        raise ValidationError("give run_id or last_runs, not both", details={"field": "last_runs"})
    store.get_session(session_id)  # session_not_found before an empty answer
    events = store.get_events(session_id)
    keep: set[str | None] | None = None
    if run_id is not None:
        keep = {run_id}
    elif runs is not None:
        order = list(dict.fromkeys(e.run_id for e in events if e.run_id is not None))
        keep = set(order[-runs:])
    if keep is not None:
        chosen = [e for e in events if e.run_id in keep]
        first = next((i for i, e in enumerate(events) if e.run_id in keep), len(events))
        system = [e for e in events[:first] if _is_system(e)]
        events = system + chosen
    messages = messages_from_events(events)
    return messages if turns is None else window_of_turns(messages, turns)
