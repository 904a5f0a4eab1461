"""``AgentSessionsSession``: agent-sessions as the ``Session`` of the OpenAI Agents SDK.

::

    session = AgentSessionsSession("user-42", store="sqlite:///sessions.db")
    result = await Runner.run(agent, "Hello", session=session)

Each Responses item the SDK adds is one event of the agent-sessions session named
``session_id`` (typed by ``openai_agents_items.py``, the raw item kept), so the
conversation gets every guarantee of the store (gap-free order, idempotent appends,
atomic batches, retention, replay, queries) and shows up in them like any session.

The history is never rewritten. ``pop_item`` appends a marker that undoes the newest
item and ``clear_session`` a marker that ends the history before it; ``get_items``
reads the log newest first and skips what the markers took away, so its cost is the
window it returns (plus the markers inside it), never the log's length.

``pop_item`` is atomic across processes without a lock: the marker's id is derived
from the popped item's event id, so two processes popping the same item write the
same id and the store's idempotent append keeps one. Each marker carries a random
``claim``; the writer that gets back a marker with another claim lost the race and
pops the next item instead. An item is therefore returned to one caller only.

The SDK is an optional extra (``openai-agents``): this module imports without it,
and building a session without it raises ``dependency_not_available``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..composition import Store
from ..composition.async_store import AsyncStore, open_async_store
from ..domain.errors import (
    AgentSessionsError,
    DependencyNotAvailable,
    ErrorCode,
    ValidationError,
)
from ..domain.event import Event
from ..domain.session import Session
from ..domain.statuses import SessionStatus
from .openai_agents_items import (
    CLEAR,
    ITEM,
    POP,
    clear_marker,
    item_event,
    pop_marker,
    raw_item,
    role_of,
)

if TYPE_CHECKING:
    from agents.memory import SessionSettings

_T = TypeVar("_T")

#: The ``agent_id`` of the sessions the adapter creates unless told otherwise.
DEFAULT_AGENT_ID = "openai-agents"
#: Events read per backward page at most.
_PAGE = 256
#: The smallest first page: a pop just after a pop (marker, popped item, the next
#: item) still costs one query. A window of ``limit`` items reads ``limit`` events
#: first, exactly what it needs when no marker is among them (decoding each event
#: read is most of a read's cost).
_FIRST_PAGE = 4


def _missing_sdk(missing: str) -> DependencyNotAvailable:
    return DependencyNotAvailable(
        "the OpenAI Agents SDK session needs the openai-agents extra: "
        "pip install 'agent-sessions[openai-agents]'",
        details={
            "extra": "openai-agents",
            "dependency": "openai-agents",
            "missing": missing,
            "module": "AgentSessionsSession",
        },
    )


def _require_sdk() -> None:
    """Fail early without the SDK, without importing it: the SDK (and the ``openai``
    package under it) takes seconds to import, and a session that is given no
    settings never needs it."""
    try:
        found = importlib.util.find_spec("agents") is not None
    except (ImportError, ValueError):  # ValueError: blocked in sys.modules
        found = False
    if not found:
        raise _missing_sdk("agents")


def _coerce_settings(value: Any) -> Any:
    """The SDK's own coercion of ``SessionSettings`` or a dict."""
    try:
        from agents.memory.session_settings import coerce_session_settings
    except ImportError as exc:
        raise _missing_sdk(exc.name or "agents") from exc
    return coerce_session_settings(value)


def _backwards(store: Store, session_id: str, first_page: int) -> Iterator[Event]:
    """The session's events newest first, in pages that start at ``first_page`` and
    double up to :data:`_PAGE`."""
    before: int | None = None
    page = max(1, min(first_page, _PAGE))
    while True:
        events = store.get_events(session_id, before=before, limit=page, order="desc")
        yield from events
        if len(events) < page:
            return
        before = events[-1].sequence_number
        page = min(page * 2, _PAGE)


def live_items(store: Store, session_id: str, limit: int | None) -> list[Event]:
    """The events of the newest ``limit`` items still in the history (all of them for
    ``None`` or a negative limit), oldest first: read back from the end of the log,
    skipping popped items, stopping at the newest ``clear_session`` marker."""
    if limit == 0:
        return []
    if limit is not None and limit < 0:
        limit = None  # as SQLiteSession, whose negative SQL LIMIT is no limit
    popped: set[str] = set()
    taken: list[Event] = []
    for event in _backwards(store, session_id, _PAGE if limit is None else max(limit, _FIRST_PAGE)):
        role = role_of(event)
        if role == CLEAR:
            break
        if role == POP:
            undoes = event.data.get("undoes")
            if isinstance(undoes, str):
                popped.add(undoes)
        elif role == ITEM:
            if event.id in popped:
                popped.discard(event.id)
                continue
            taken.append(event)
            if limit is not None and len(taken) >= limit:
                break
    taken.reverse()
    return taken


def pop_newest(store: Store, session_id: str, *, run_id: str | None = None) -> Event | None:
    """Pop the newest item: the event of the item this caller alone popped, or
    ``None`` when the history is empty (see the module docstring for the race)."""
    claim = uuid.uuid4().hex
    while True:
        newest = live_items(store, session_id, 1)
        if not newest:
            return None
        target = newest[0]
        stored = store.append_event_with_sequence(
            pop_marker(session_id, target, claim, run_id=run_id)
        )
        if stored.data.get("claim") == claim:
            return target
        # Another caller popped this item first: try the next one.


class AgentSessionsSession:
    """The SDK's ``Session`` protocol over an agent-sessions store.

    ``store`` is an :class:`~agent_sessions.AsyncStore` the caller owns (share one
    among many sessions), or a store URL: then the session opens its own store on
    first use, on the running event loop, and :meth:`aclose` closes it.
    ``session_settings`` (``SessionSettings`` or a dict, as the SDK takes) gives the
    default ``limit`` of :meth:`get_items` (``None``, the default: no limit). The
    agent-sessions session is created on the first write, ``active``, with
    ``agent_id`` and ``metadata``; ``run_id`` attaches the events to a run of that
    session (the run must exist). A store passed in must belong to the loop the
    session is built on (see :meth:`_run`).
    """

    session_settings: SessionSettings | None

    def __init__(
        self,
        session_id: str,
        store: AsyncStore | str,
        *,
        session_settings: SessionSettings | Mapping[str, Any] | None = None,
        agent_id: str = DEFAULT_AGENT_ID,
        metadata: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> None:
        _require_sdk()
        if not isinstance(session_id, str) or not session_id:
            raise ValidationError(
                "session_id must be a non-empty string", details={"field": "session_id"}
            )
        if not isinstance(store, (AsyncStore, str)):
            raise ValidationError(
                "store must be an AsyncStore or a store URL", details={"field": "store"}
            )
        self.session_id = session_id
        self.session_settings = (
            None if session_settings is None else _coerce_settings(session_settings)
        )
        self._record = Session.new(
            agent_id=agent_id,
            id=session_id,
            metadata={"framework": "openai-agents", **dict(metadata or {})},
        ).with_status(SessionStatus.ACTIVE)
        self._run_id = run_id
        self._store = store if isinstance(store, AsyncStore) else None
        self._url = store if isinstance(store, str) else None
        # The loop the facade belongs to: a store passed in is taken to belong to the
        # loop the session is built on (else to the first loop that uses it).
        self._home: asyncio.AbstractEventLoop | None = None
        if self._store is not None:
            with contextlib.suppress(RuntimeError):
                self._home = asyncio.get_running_loop()
        self._opening: asyncio.Lock | None = None

    @classmethod
    def from_url(
        cls,
        session_id: str,
        url: str,
        **options: Any,
    ) -> AgentSessionsSession:
        """A session that opens (and, on :meth:`aclose`, closes) its own store at
        ``url``; ``options`` as the constructor's."""
        return cls(session_id, url, **options)

    # the store ------------------------------------------------------------------------

    async def store(self) -> AsyncStore:
        """The async store below, opened on first use when the session was given a URL."""
        if self._store is not None:
            return self._store
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._store is None:
                assert self._url is not None
                self._store = await open_async_store(self._url)
                self._home = asyncio.get_running_loop()
        return self._store

    async def _run(self, work: Callable[[Store], _T]) -> _T:
        """``work(sync_store)`` in the facade's executor. A facade belongs to the loop
        it was opened on; called from another loop (``Runner.run_sync`` makes one per
        call, threads make their own), the work runs in that loop's thread pool on the
        same sync store, which is thread-safe."""
        store = await self.store()
        loop = asyncio.get_running_loop()
        if self._home is None:
            self._home = loop
        sync_store = store.sync_store
        if loop is self._home:
            return await store.call(functools.partial(work, sync_store))
        return await asyncio.to_thread(work, sync_store)

    async def aclose(self) -> None:
        """Close the store if this session opened it (a store passed in is the
        caller's to close)."""
        if self._url is not None and self._store is not None:
            store, self._store = self._store, None
            await store.aclose()

    # the SDK's Session protocol ---------------------------------------------------------

    async def get_items(self, limit: int | None = None) -> list[Any]:
        """The newest ``limit`` items (default: ``session_settings.limit``; ``None``:
        all) in the order they were added, each exactly as it was added."""
        settings = self.session_settings
        resolved = limit if limit is not None or settings is None else settings.limit
        session_id = self.session_id
        events = await self._run(lambda store: live_items(store, session_id, resolved))
        return [raw_item(event) for event in events]

    async def add_items(self, items: list[Any]) -> None:
        """Append ``items`` in order, all or none (one transaction)."""
        if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
            raise ValidationError("items must be a list", details={"field": "items"})
        if not items:
            return
        names: dict[str, str] = {}
        events = [item_event(self.session_id, item, names, run_id=self._run_id) for item in items]
        await self._run(lambda store: self._append(store, events))

    async def pop_item(self) -> Any:
        """Remove the newest item and return it (``None`` when there is none). The
        removal is a marker in the log; two callers never get the same item."""
        session_id, run_id = self.session_id, self._run_id
        popped = await self._run(lambda store: pop_newest(store, session_id, run_id=run_id))
        return None if popped is None else raw_item(popped)

    async def clear_session(self) -> None:
        """End the history: later reads see only items added after this call. The
        items stay in the log (replay, queries and retention still see them)."""
        marker = clear_marker(self.session_id, run_id=self._run_id)
        await self._run(lambda store: self._append(store, [marker]))

    # writes ----------------------------------------------------------------------------

    def _append(self, store: Store, events: list[Event]) -> None:
        """Append to the session, creating it with the events (one transaction) when
        it does not exist yet; a creation racing another process's is retried as an
        append."""
        try:
            store.append_events(events)
            return
        except AgentSessionsError as error:
            if error.code != ErrorCode.SESSION_NOT_FOUND:
                raise
        try:
            store.write_session(self._record, [], events)
        except AgentSessionsError as error:
            if error.code != ErrorCode.ALREADY_EXISTS:
                raise
            store.append_events(events)

    def __repr__(self) -> str:
        where = self._url if self._url is not None else repr(self._store)
        return f"AgentSessionsSession({self.session_id!r}, store={where!r})"


__all__ = ["DEFAULT_AGENT_ID", "AgentSessionsSession", "live_items", "pop_newest"]
