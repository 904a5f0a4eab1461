"""Creating a session, and fetching-or-creating one, with its ``session_created`` event.

A session and the event that announces it commit in one transaction
(``EventPipeline.persist_with_session``): a reader never finds a session without its
``session_created``, nor the event without the session. ``SessionManager`` and
``Store`` both create sessions here, differing only in the record they build.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..domain.checks import require_id
from ..domain.errors import AgentSessionsError, ErrorCode
from ..domain.event_builder import EventContext
from ..domain.event_types import EventType
from ..domain.session import Session
from .event_pipeline import EventPipeline, guard_store_call


def create_session(
    pipeline: EventPipeline, session: Session, context: EventContext, data: Mapping[str, Any]
) -> Session:
    """Save the new ``session`` with its ``session_created`` event (``data``);
    ``already_exists`` when a session with its id is stored already."""
    raw = {"type": EventType.SESSION_CREATED, "data": dict(data)}
    created = pipeline.prepare(raw, context)
    pipeline.persist_with_session(session, [created], new=True)
    return session


def get_or_create_session(
    pipeline: EventPipeline, session_id: str, create: Callable[[], Session]
) -> Session:
    """The session ``session_id`` as stored, else what ``create`` makes and saves. When
    another writer creates the same session meanwhile, theirs is returned: two callers
    racing to create one session both get the one that was stored."""
    require_id(session_id, "session_id")
    store = pipeline.store
    try:
        return guard_store_call("get_session", lambda: store.get_session(session_id))
    except AgentSessionsError as exc:
        if exc.code != ErrorCode.SESSION_NOT_FOUND:
            raise
    try:
        return create()
    except AgentSessionsError as exc:
        if exc.code not in (ErrorCode.CONCURRENCY_CONFLICT, ErrorCode.ALREADY_EXISTS):
            raise
    return guard_store_call("get_session", lambda: store.get_session(session_id))
