"""ADK sessions on a sync :class:`Store`: the work behind the ADK session service and
the ADK importer, with no ADK import (JSON in, JSON out).

How an ADK session lives on our log (``docs/adk.md`` has the whole mapping):

* an ADK session ``(app_name, user_id, session_id)`` is one of our sessions
  (``session_id_for``), ``agent_id`` = the app, ``metadata.adk`` = the triple; its
  session-scoped state and ``last_update_time`` are in ``context`` (``adk_state``,
  ``adk_last_update_time``);
* every appended ADK event is one of our events, and an invocation is one of our runs;
  the event and the session's new state are written in one transaction (``flush``, or
  ``save_session_with_events`` for an event without invocation);
* ``app:`` and ``user:`` state, shared across sessions, live in dedicated sessions
  (``app_state_session_id`` / ``user_state_session_id``, ``metadata.adk.kind``
  ``app_state`` / ``user_state``) whose ``context.adk_state`` is the scope's state:
  every change is a revision of that session's record, kept in its stream;
* ``temp:`` state is never written.

Concurrency: each read-modify-write saves from the version it read; a
``concurrency_conflict`` (another writer changed the same record in between, in this
process or another) re-reads and re-applies, so concurrent appends to one session all
land, in the log's order, and no "stale session" error is raised.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from ..composition import Store
from ..domain.errors import AgentSessionsError, ErrorCode, NotFoundError
from ..domain.execution_result import ExecutionResult
from ..domain.run import Run
from ..domain.session import Session
from ..domain.statuses import RunStatus, SessionStatus
from .adk_events import (
    PROVIDER,
    adk_timestamp,
    app_state_session_id,
    instant,
    is_final,
    raw_of,
    run_id_for,
    session_id_for,
    to_event,
    usage_of,
    user_state_session_id,
)

APP_PREFIX = "app:"
USER_PREFIX = "user:"
TEMP_PREFIX = "temp:"

#: ``metadata.adk.kind`` of the sessions the adapter writes.
KIND_SESSION = "session"
KIND_APP_STATE = "app_state"
KIND_USER_STATE = "user_state"
#: Tag of every session the adapter writes (``agent-sessions sessions --tag adk``).
TAG = "adk"
STATE_KEY = "adk_state"
UPDATED_KEY = "adk_last_update_time"

#: Re-reads after a ``concurrency_conflict`` before giving up (each with a short
#: random pause, so two processes in lock-step drift apart).
MAX_ATTEMPTS = 50
#: Sessions read per page by ``list``.
PAGE = 500

_T = TypeVar("_T")


class SessionMissing(Exception):
    """The ADK session is not stored (the service raises ADK's own error for it)."""


class SessionExists(Exception):
    """The ADK session id is taken (the service raises ``AlreadyExistsError``)."""


def split_state(state: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``(app, user, session)`` deltas of an ADK state map: prefixes removed from the
    first two, ``temp:`` keys dropped."""
    app: dict[str, Any] = {}
    user: dict[str, Any] = {}
    own: dict[str, Any] = {}
    for key, value in state.items():
        if key.startswith(APP_PREFIX):
            app[key.removeprefix(APP_PREFIX)] = value
        elif key.startswith(USER_PREFIX):
            user[key.removeprefix(USER_PREFIX)] = value
        elif not key.startswith(TEMP_PREFIX):
            own[key] = value
    return app, user, own


def merged_state(
    app: Mapping[str, Any], user: Mapping[str, Any], own: Mapping[str, Any]
) -> dict[str, Any]:
    """The state ADK shows on a session: its own keys, then ``app:`` and ``user:``."""
    state = dict(own)
    state.update({APP_PREFIX + key: value for key, value in app.items()})
    state.update({USER_PREFIX + key: value for key, value in user.items()})
    return state


def identity(session: Session) -> dict[str, Any] | None:
    """``metadata.adk`` of a session the adapter wrote, or ``None``."""
    value = session.metadata.get("adk")
    return dict(value) if isinstance(value, Mapping) else None


def _state(session: Session) -> dict[str, Any]:
    value = session.context.get(STATE_KEY)
    return dict(value) if isinstance(value, Mapping) else {}


def last_update_time(session: Session) -> float:
    value = session.context.get(UPDATED_KEY)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return session.updated_at.timestamp()


def retrying(change: Callable[[], _T]) -> _T:
    """``change`` (read, modify, save) again after each ``concurrency_conflict``."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return change()
        except AgentSessionsError as exc:
            if exc.code != ErrorCode.CONCURRENCY_CONFLICT or attempt == MAX_ATTEMPTS:
                raise
            time.sleep(random.uniform(0, 0.002 * min(attempt, 10)))
    raise AssertionError("unreachable")  # the loop returns or raises


def adk_session_record(
    app_name: str, user_id: str, session_id: str, state: Mapping[str, Any], created: float
) -> Session:
    """Our record of a new ADK session created at ``created`` (epoch seconds)."""
    at = instant(created)
    return Session(
        id=session_id_for(app_name, user_id, session_id),
        agent_id=app_name,
        status=SessionStatus.ACTIVE,
        metadata={
            "adk": {
                "kind": KIND_SESSION,
                "app_name": app_name,
                "user_id": user_id,
                "session_id": session_id,
            },
            "provider": PROVIDER,
        },
        context={STATE_KEY: dict(state), UPDATED_KEY: created},
        tags=(TAG,),
        created_at=at,
        updated_at=at,
    )


def revised_run(run: Run, raw: Mapping[str, Any]) -> Run:
    """The invocation's run after event ``raw``: token usage added, ``completed`` at a
    final response of an agent, ``running`` again when the invocation goes on."""
    usage = usage_of(raw)
    if usage:
        run = run.add_token_usage(usage)
    model = raw.get("model_version")
    if isinstance(model, str) and run.provider_metadata.get("model") != model:
        run = run.with_provider(PROVIDER, {"model": model})
    if is_final(raw):
        if run.status != RunStatus.COMPLETED:
            run = run.with_status(RunStatus.COMPLETED)
    elif run.status != RunStatus.RUNNING:
        run = run.replace(status=RunStatus.RUNNING, ended_at=None)
    return run


def new_run(session_id: str, raw: Mapping[str, Any]) -> Run:
    """The run of the invocation ``raw`` opens (its first event)."""
    invocation = str(raw.get("invocation_id") or "")
    run_input: dict[str, Any] = {"invocation_id": invocation}
    if raw.get("author") == "user" and isinstance(raw.get("content"), Mapping):
        run_input["content"] = raw["content"]
    return Run(
        id=run_id_for(session_id, invocation),
        session_id=session_id,
        status=RunStatus.RUNNING,
        input=run_input,
        started_at=instant(adk_timestamp(raw)),
        provider=PROVIDER,
        metadata={"adk": {"invocation_id": invocation}},
    )


class AdkSessionLog:
    """The ADK session operations on one store, as blocking calls: the service runs
    them in the async facade's executor, the importer calls them directly."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # scopes ---------------------------------------------------------------------------

    def scope_state(self, scope_session_id: str) -> dict[str, Any]:
        try:
            return _state(self.store.get_session(scope_session_id))
        except NotFoundError:
            return {}

    def update_scope(
        self, app_name: str, user_id: str | None, delta: Mapping[str, Any], *, at: float
    ) -> None:
        """Apply ``delta`` to the app's (``user_id`` ``None``) or the user's state."""
        if not delta:
            return
        if user_id is None:
            scope_id = app_state_session_id(app_name)
            ident: dict[str, Any] = {"kind": KIND_APP_STATE, "app_name": app_name}
        else:
            scope_id = user_state_session_id(app_name, user_id)
            ident = {"kind": KIND_USER_STATE, "app_name": app_name, "user_id": user_id}

        def change() -> None:
            try:
                record = self.store.get_session(scope_id)
            except NotFoundError:
                fresh = Session(
                    id=scope_id,
                    agent_id=app_name,
                    status=SessionStatus.ACTIVE,
                    metadata={"adk": ident, "provider": PROVIDER},
                    context={STATE_KEY: dict(delta), UPDATED_KEY: at},
                    tags=(TAG,),
                )
                try:
                    self.store.write_session(fresh, [], [])
                except AgentSessionsError as exc:
                    if exc.code != ErrorCode.ALREADY_EXISTS:
                        raise
                    # Another writer created it first: read theirs and apply on top.
                    raise AgentSessionsError(
                        "state session created concurrently",
                        code=ErrorCode.CONCURRENCY_CONFLICT,
                    ) from exc
                return
            state = {**_state(record), **delta}
            if state == _state(record):  # nothing changes: no write
                return
            context = {**record.context, STATE_KEY: state, UPDATED_KEY: at}
            self.store.save_session(record.replace(context=context))

        retrying(change)

    # sessions -------------------------------------------------------------------------

    def create(
        self,
        app_name: str,
        user_id: str,
        session_id: str,
        state: Mapping[str, Any],
        created: float,
    ) -> dict[str, Any]:
        """Store a new ADK session; the merged state it starts with. ``SessionExists``
        when the id is taken (nothing is written then)."""
        app, user, own = split_state(state)
        record = adk_session_record(app_name, user_id, session_id, own, created)
        try:
            self.store.write_session(record, [], [])
        except AgentSessionsError as exc:
            if exc.code == ErrorCode.ALREADY_EXISTS:
                raise SessionExists(session_id) from exc
            raise
        self.update_scope(app_name, None, app, at=created)
        self.update_scope(app_name, user_id, user, at=created)
        return merged_state(
            self.scope_state(app_state_session_id(app_name)),
            self.scope_state(user_state_session_id(app_name, user_id)),
            own,
        )

    def read(
        self,
        app_name: str,
        user_id: str,
        session_id: str,
        *,
        num_recent_events: int | None = None,
        after_timestamp: float | None = None,
    ) -> tuple[dict[str, Any], float, list[dict[str, Any]]] | None:
        """``(merged state, last_update_time, events' JSON)`` of an ADK session, or
        ``None``. ``num_recent_events`` reads the newest N events only (a backward
        index scan, whatever the log's length); ``after_timestamp`` keeps events at or
        after it."""
        ours = session_id_for(app_name, user_id, session_id)
        try:
            record = self.store.get_session(ours)
        except NotFoundError:
            return None
        raws: list[dict[str, Any]] = []
        if num_recent_events != 0:
            # Our timestamps have microseconds: one below the bound, then exact.
            since = None
            if after_timestamp is not None:
                since = instant(after_timestamp) - timedelta(microseconds=1)
            if num_recent_events is None:
                events = self.store.get_events(ours, since=since)
            else:
                events = self.store.get_events(
                    ours, since=since, order="desc", limit=num_recent_events
                )
                events.reverse()
            for event in events:
                raw = raw_of(event)
                if raw is None:
                    continue
                if after_timestamp is not None and adk_timestamp(raw) < after_timestamp:
                    continue
                raws.append(raw)
        state = merged_state(
            self.scope_state(app_state_session_id(app_name)),
            self.scope_state(user_state_session_id(app_name, user_id)),
            _state(record),
        )
        return state, last_update_time(record), raws

    def list(
        self, app_name: str, user_id: str | None
    ) -> list[tuple[str, str, dict[str, Any], float]]:
        """``(user_id, session_id, merged state, last_update_time)`` of the app's
        sessions (of one user, or all), oldest update first, read a page at a time."""
        app_state = self.scope_state(app_state_session_id(app_name))
        user_states: dict[str, dict[str, Any]] = {}
        found: list[tuple[str, str, dict[str, Any], float]] = []
        offset = 0
        while True:
            page = self.store.list_sessions(agent_id=app_name, limit=PAGE, offset=offset)
            for record in page:
                ident = identity(record)
                if ident is None or ident.get("kind") != KIND_SESSION:
                    continue
                owner = str(ident.get("user_id"))
                if ident.get("app_name") != app_name or (user_id is not None and owner != user_id):
                    continue
                if owner not in user_states:
                    user_states[owner] = self.scope_state(user_state_session_id(app_name, owner))
                state = merged_state(app_state, user_states[owner], _state(record))
                found.append((owner, str(ident.get("session_id")), state, last_update_time(record)))
            if len(page) < PAGE:
                break
            offset += PAGE
        found.sort(key=lambda row: (row[3], row[0], row[1]))
        return found

    def delete(self, app_name: str, user_id: str, session_id: str) -> None:
        """Erase the session, its runs and events (idempotent)."""
        self.store.delete_session(session_id_for(app_name, user_id, session_id))

    # events ---------------------------------------------------------------------------

    def append(
        self,
        app_name: str,
        user_id: str,
        session_id: str,
        raw: Mapping[str, Any],
        state_delta: Mapping[str, Any],
    ) -> float | None:
        """Store the ADK event ``raw`` with its (JSON) ``state_delta``; the session's new
        ``last_update_time``, or ``None`` when this event was already stored (a retry:
        nothing is applied twice). ``SessionMissing`` when the session is not stored."""
        ours = session_id_for(app_name, user_id, session_id)
        invocation = raw.get("invocation_id")
        run_id = (
            run_id_for(ours, invocation) if isinstance(invocation, str) and invocation else None
        )
        event = to_event(ours, raw, run_id=run_id)
        if self.store.get_events_by_ids([event.id]):
            return None
        app, user, own = split_state(state_delta)
        at = adk_timestamp(raw)
        if app or user:
            self._require(ours)
            self.update_scope(app_name, None, app, at=at)
            self.update_scope(app_name, user_id, user, at=at)

        def change() -> float:
            record = self._require(ours)
            context = {**record.context, STATE_KEY: {**_state(record), **own}, UPDATED_KEY: at}
            revised = record.replace(context=context)
            if run_id is None:
                self.store.save_session_with_events(revised, [event])
                return at
            try:
                run = self.store.get_run(run_id)
            except NotFoundError:
                run = new_run(ours, raw)
            self.store.flush(
                ExecutionResult(session=revised, run=revised_run(run, raw), events=[event])
            )
            return at

        return retrying(change)

    def _require(self, ours: str) -> Session:
        try:
            return self.store.get_session(ours)
        except NotFoundError as exc:
            raise SessionMissing(ours) from exc
