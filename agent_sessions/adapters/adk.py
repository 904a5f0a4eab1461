"""``AgentSessionsSessionService``: agent-sessions as the session service of Google's
Agent Development Kit (a ``BaseSessionService``), on the async facade.

    service = AgentSessionsSessionService("sqlite:///sessions.db")   # or an AsyncStore
    runner = Runner(agent=agent, app_name="app", session_service=service)

Each call runs one blocking routine of ``adk_log.AdkSessionLog`` in the facade's
executor, so the event loop never waits on the database. ADK's protocol decides the
failures it names: an unknown session on ``append_event`` is ADK's
``SessionNotFoundError`` (a ``ValueError``), a taken id on ``create_session`` ADK's
``AlreadyExistsError``, ``get_session`` of an unknown session ``None``; everything else
is an ``AgentSessionsError`` with its code.

ADK is optional: this module imports without it, and building the service raises
``dependency_not_available`` naming the ``adk`` extra.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ..composition import AsyncStore, open_async_store
from ..domain.errors import DependencyNotAvailable, ValidationError
from .adk_log import AdkSessionLog, SessionExists, SessionMissing

if TYPE_CHECKING:
    from google.adk.events.event import Event as AdkEvent
    from google.adk.sessions.base_session_service import (
        BaseSessionService,
        GetSessionConfig,
        ListSessionsResponse,
    )
    from google.adk.sessions.session import Session as AdkSession
else:
    try:
        from google.adk.sessions.base_session_service import BaseSessionService
    except ImportError as exc:  # the extra is absent: the class still defines
        BaseSessionService = object
        _MISSING: ImportError | None = exc
    else:
        _MISSING = None


def _require_adk() -> None:
    missing = globals().get("_MISSING")
    if missing is not None:
        raise DependencyNotAvailable(
            "the ADK session service needs Google ADK: pip install 'agent-sessions[adk]'",
            details={
                "extra": "adk",
                "dependency": "google-adk",
                "missing": missing.name or "google.adk",
            },
        )


def _json_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """State as JSON, the way ADK's database service stores it (datetimes and models
    serialised; a value with no JSON form becomes its text)."""
    from pydantic_core import to_jsonable_python

    try:
        value = to_jsonable_python(dict(state))
    except Exception:
        value = to_jsonable_python(dict(state), fallback=str)
    return dict(value)


class AgentSessionsSessionService(BaseSessionService):
    """An ADK ``BaseSessionService`` whose sessions, events and state are agent-sessions
    sessions, runs and events (``docs/adk.md``).

    ``store`` is an open :class:`AsyncStore` (the caller closes it) or a store URL
    (opened on first use in the running loop, closed by :meth:`close`)."""

    def __init__(self, store: AsyncStore | str | None = None, **options: Any) -> None:
        _require_adk()
        super().__init__()
        if isinstance(store, AsyncStore):
            if options:
                raise ValidationError(
                    "store options go with a URL, not an open store",
                    details={"field": "options"},
                )
            self._store: AsyncStore | None = store
            self._log: AdkSessionLog | None = AdkSessionLog(store.sync_store)
            self._owned = False
        elif store is None or isinstance(store, str):
            self._store = None
            self._log = None
            self._owned = True
        else:
            raise ValidationError(
                "store must be an AsyncStore or a store URL", details={"field": "store"}
            )
        self._url = store if isinstance(store, str) else None
        self._options = options
        self._opening: asyncio.Lock | None = None

    # plumbing -------------------------------------------------------------------------

    @property
    def store(self) -> AsyncStore | None:
        """The store below (``None`` until a URL-built service is first used)."""
        return self._store

    async def _open(self) -> tuple[AsyncStore, AdkSessionLog]:
        if self._store is not None and self._log is not None:
            return self._store, self._log
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._store is None or self._log is None:
                store = await open_async_store(self._url, **self._options)
                self._store, self._log = store, AdkSessionLog(store.sync_store)
        return self._store, self._log

    async def _run(self, work: functools.partial[Any]) -> Any:
        store, _ = await self._open()
        return await store.call(work)

    # BaseSessionService ---------------------------------------------------------------

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> AdkSession:
        from google.adk.errors.already_exists_error import AlreadyExistsError
        from google.adk.sessions.session import Session as AdkSession

        session_id = (session_id.strip() if session_id else None) or str(uuid.uuid4())
        _, log = await self._open()
        created = time.time()
        try:
            merged = await self._run(
                functools.partial(
                    log.create, app_name, user_id, session_id, _json_state(state or {}), created
                )
            )
        except SessionExists:
            raise AlreadyExistsError(f"Session with id {session_id} already exists.") from None
        return AdkSession(
            app_name=app_name,
            user_id=user_id,
            id=session_id,
            state=merged,
            last_update_time=created,
        )

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> AdkSession | None:
        from google.adk.events.event import Event as AdkEvent
        from google.adk.sessions.session import Session as AdkSession

        session_id = session_id.strip() if session_id else session_id
        _, log = await self._open()
        found = await self._run(
            functools.partial(
                log.read,
                app_name,
                user_id,
                session_id,
                num_recent_events=None if config is None else config.num_recent_events,
                after_timestamp=None if config is None else config.after_timestamp,
            )
        )
        if found is None:
            return None
        state, last_update, raws = found
        return AdkSession(
            app_name=app_name,
            user_id=user_id,
            id=session_id,
            state=state,
            events=[AdkEvent.model_validate(raw) for raw in raws],
            last_update_time=last_update,
        )

    async def list_sessions(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        """The app's sessions (one user's, or every user's), without events, with their
        merged state, oldest update first. Read from the store a page at a time."""
        from google.adk.sessions.base_session_service import ListSessionsResponse
        from google.adk.sessions.session import Session as AdkSession

        _, log = await self._open()
        rows = await self._run(functools.partial(log.list, app_name, user_id))
        return ListSessionsResponse(
            sessions=[
                AdkSession(
                    app_name=app_name,
                    user_id=owner,
                    id=session_id,
                    state=state,
                    last_update_time=last_update,
                )
                for owner, session_id, state, last_update in rows
            ]
        )

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """Erase the session, its runs and its events (``delete_session`` of the store);
        an unknown session is fine."""
        session_id = session_id.strip() if session_id else session_id
        _, log = await self._open()
        await self._run(functools.partial(log.delete, app_name, user_id, session_id))

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        from .adk_events import user_state_session_id

        _, log = await self._open()
        state: dict[str, Any] = await self._run(
            functools.partial(log.scope_state, user_state_session_id(app_name, user_id))
        )
        return state

    async def append_event(self, session: AdkSession, event: AdkEvent) -> AdkEvent:
        """Store a non-partial event with its state delta (``temp:`` keys applied to
        ``session`` only, never stored) in one transaction with the session's new state;
        then update ``session`` as ADK does. Appending the same event again stores and
        applies nothing."""
        from google.adk.errors.session_not_found_error import SessionNotFoundError

        if event.partial:
            return event
        self._apply_temp_state(session, event)
        event = self._trim_temp_delta_state(event)
        raw = event.model_dump(mode="json", exclude_none=True)
        delta = _json_state(event.actions.state_delta or {})
        _, log = await self._open()
        try:
            last_update = await self._run(
                functools.partial(
                    log.append, session.app_name, session.user_id, session.id, raw, delta
                )
            )
        except SessionMissing:
            raise SessionNotFoundError(f"Session {session.id} not found.") from None
        if last_update is None:
            return event
        self._commit_event_to_session(session, event)
        session.last_update_time = last_update
        return event

    # lifecycle ------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the store if this service opened it (from a URL). Idempotent."""
        if self._owned and self._store is not None:
            store, self._store, self._log = self._store, None, None
            await store.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        url = self._store.url if self._store is not None else self._url
        return f"AgentSessionsSessionService({url!r})"
