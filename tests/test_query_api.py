"""QueryAPI: every operation's filters, orders, limits and cursors, and
how queries follow the store's writes, on memory, SQLite and PostgreSQL.

All timestamps are fixed (``at(minutes)`` after 2026-01-01 UTC) and ids are chosen so that
sequence, timestamp and id orders differ: an order that is computed the wrong way shows.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent_sessions import (
    AgentSessionsError,
    ErrorCode,
    Event,
    EventType,
    QueryAPI,
    Run,
    RunStatus,
    Session,
    SessionStatus,
    open_store,
)
from agent_sessions.composition import Store
from agent_sessions.services.query_results import (
    CostSummary,
    EventPage,
    ModelCost,
    ProviderCost,
    ProviderUsage,
    RunPage,
    SessionPage,
    SessionStats,
    TokenTotals,
    UsageSummary,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# helpers ---------------------------------------------------------------------------------


def add_session(
    store: Store,
    id: str | None = None,
    *,
    agent_id: str = "agent-a",
    created: float = 0,
    updated: float | None = None,
    status: str | None = None,
    tags: Sequence[str] = (),
) -> Session:
    session = Session.new(agent_id=agent_id, id=id, tags=tags)
    changes: dict[str, Any] = {
        "created_at": at(created),
        "updated_at": at(created if updated is None else updated),
    }
    if status is not None:
        changes["status"] = status
    session = session.replace(**changes)
    store.save_session(session)
    return session


def add_run(
    store: Store,
    session_id: str,
    id: str | None = None,
    *,
    started: float = 0,
    provider: str | None = None,
    model: str | None = None,
    status: str | None = None,
    usage: dict[str, Any] | None = None,
    cost: float | None = None,
) -> Run:
    run = Run.new(session_id=session_id, id=id).replace(
        started_at=at(started),
        provider=provider,
        provider_metadata={"model": model} if model is not None else {},
        token_usage=dict(usage or {}),
        cost_usd=cost,
    )
    if status is not None:
        run = run.replace(status=status)
    store.save_run(run)
    return run


def event(
    session_id: str,
    id: str | None = None,
    *,
    type: str = "message_sent",
    minute: float = 0,
    run_id: str | None = None,
    provider: str | None = None,
    correlation_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    return Event.new(
        type=type,
        session_id=session_id,
        id=id,
        timestamp=at(minute),
        run_id=run_id,
        provider=provider,
        correlation_id=correlation_id,
        data=data,
    )


@contextmanager
def fails(code: str, message: str | None = None, *, prefix: str | None = None) -> Iterator[None]:
    """The block raises an ``AgentSessionsError`` with this code (and message)."""
    with pytest.raises(AgentSessionsError) as info:
        yield
    error = info.value
    assert error.code == code, f"expected {code}, got {error!r}"
    if message is not None:
        assert error.message == message
    if prefix is not None:
        assert error.message.startswith(prefix), error.message


def session_ids(page: SessionPage) -> list[str]:
    return [s.id for s in page.sessions]


def run_ids(page: RunPage) -> list[str]:
    return [r.id for r in page.runs]


def event_ids(page: EventPage) -> list[str]:
    return [e.id for e in page.events]


Fetch = Callable[[str | None], tuple[list[str], str | None]]


def walk(fetch: Fetch) -> list[str]:
    """Every page until one without a cursor: the last page, which holds the last
    items (a caller never makes a final request that finds nothing); every page before
    it carries a cursor and items."""
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(100):
        items, cursor = fetch(cursor)
        assert items
        seen += items
        if cursor is None:
            return seen
    raise AssertionError("pagination did not end")


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def unpack(cursor: str) -> list[Any]:
    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    assert isinstance(payload, list)
    return payload


def repack(payload: list[Any]) -> str:
    return b64(json.dumps(payload, separators=(",", ":")).encode()).rstrip("=")


# session fixtures with known orders ------------------------------------------------------

# id: (created minute, updated minute)
ORDER_SESSIONS = {
    "ses_1": (0, 30),
    "ses_2": (10, 10),
    "ses_3": (10, 10),
    "ses_4": (20, 20),
    "ses_5": (5, 30),
}
SESSION_ORDERS = {
    "updated_at_desc": ["ses_5", "ses_1", "ses_4", "ses_3", "ses_2"],
    "created_at_desc": ["ses_4", "ses_3", "ses_2", "ses_5", "ses_1"],
    "created_at_asc": ["ses_1", "ses_5", "ses_2", "ses_3", "ses_4"],
}


def add_order_sessions(store: Store, tags: Sequence[str] = ()) -> None:
    for sid, (created, updated) in ORDER_SESSIONS.items():
        add_session(store, sid, created=created, updated=updated, tags=tags)


# id: (started minute, total tokens or None)
ORDER_RUNS = {
    "run_1": (5, 50),
    "run_2": (0, 300),
    "run_3": (5, 50),
    "run_4": (10, None),
    "run_5": (0, 7),
}
RUN_ORDERS = {
    "started_at_desc": ["run_4", "run_3", "run_1", "run_5", "run_2"],
    "started_at_asc": ["run_2", "run_5", "run_1", "run_3", "run_4"],
    "token_usage_desc": ["run_2", "run_3", "run_1", "run_5", "run_4"],
}


def add_order_runs(store: Store) -> None:
    add_session(store, "ses_r")
    for rid, (started, total) in ORDER_RUNS.items():
        usage = {} if total is None else {"total_tokens": total}
        add_run(store, "ses_r", rid, started=started, usage=usage)


# Session A is appended first: (id, minute) in sequence order per session.
ORDER_EVENTS = {
    "ses_a": [("evt_5", 3), ("evt_2", 1), ("evt_6", 1)],
    "ses_b": [("evt_1", 2), ("evt_4", 1)],
}
EVENT_ORDERS = {
    "sequence_asc": ["evt_1", "evt_5", "evt_2", "evt_4", "evt_6"],
    "timestamp_asc": ["evt_2", "evt_4", "evt_6", "evt_1", "evt_5"],
    "timestamp_desc": ["evt_5", "evt_1", "evt_6", "evt_4", "evt_2"],
}


def add_order_events(store: Store) -> None:
    for sid, events in ORDER_EVENTS.items():
        add_session(store, sid)
        store.append_events([event(sid, eid, minute=minute) for eid, minute in events])


# search_sessions -------------------------------------------------------------------------


class TestSearchSessions:
    def test_a_page_holds_the_saved_sessions_and_their_total(self, store: Store) -> None:
        saved = add_session(store, "ses_1", tags=["x"])
        page = store.query().search_sessions()
        assert page.sessions == [saved]
        assert page.total_count == 1

    def test_saving_the_same_id_twice_counts_once(self, store: Store) -> None:
        session = add_session(store, "ses_1")
        store.save_session(session.replace(status="active", updated_at=at(5)))
        page = store.query().search_sessions()
        assert session_ids(page) == ["ses_1"]
        assert page.total_count == 1
        assert page.sessions[0].status == SessionStatus.ACTIVE
        assert store.query().search_sessions(status="pending").total_count == 0

    def test_limit_two_over_five_gives_two_and_total_five(self, store: Store) -> None:
        add_order_sessions(store)
        page = store.query().search_sessions(limit=2)
        assert len(page.sessions) == 2
        assert page.total_count == 5
        assert page.cursor is not None

    def test_an_empty_page_has_no_cursor(self, store: Store) -> None:
        page = store.query().search_sessions()
        assert (page.sessions, page.cursor, page.total_count) == ([], None, 0)
        add_session(store, "ses_1", agent_id="someone")
        page = store.query().search_sessions(agent_id="nobody")
        assert (page.sessions, page.cursor, page.total_count) == ([], None, 0)

    def test_filter_by_agent_id(self, store: Store) -> None:
        add_session(store, "ses_1", agent_id="agent-a")
        add_session(store, "ses_2", agent_id="agent-b")
        add_session(store, "ses_3", agent_id="agent-a", created=1)
        page = store.query().search_sessions(agent_id="agent-a", order_by="created_at_asc")
        assert session_ids(page) == ["ses_1", "ses_3"]
        assert page.total_count == 2

    def test_filter_by_status_single_and_list(self, store: Store) -> None:
        add_session(store, "ses_1", status="active")
        add_session(store, "ses_2", status="completed", created=1)
        add_session(store, "ses_3", status="failed", created=2)
        add_session(store, "ses_4", created=3)
        q = store.query()

        def ids(status: Any) -> list[str]:
            return session_ids(q.search_sessions(status=status, order_by="created_at_asc"))

        assert ids("active") == ["ses_1"]
        assert ids(SessionStatus.PENDING) == ["ses_4"]
        assert ids(["completed", "failed"]) == ["ses_2", "ses_3"]
        assert ids([SessionStatus.ACTIVE, "pending"]) == ["ses_1", "ses_4"]
        assert ids(["cancelled"]) == []
        assert q.search_sessions(status=["completed", "failed"]).total_count == 2

    def test_filter_by_provider_of_any_run(self, store: Store) -> None:
        add_session(store, "ses_1", created=0)
        add_session(store, "ses_2", created=1)
        add_session(store, "ses_3", created=2)
        add_session(store, "ses_4", created=3)  # no runs at all
        add_run(store, "ses_1", "run_1a", provider="acme")
        add_run(store, "ses_1", "run_1b", provider="acme")
        add_run(store, "ses_1", "run_1c", provider="beta")
        add_run(store, "ses_2", "run_2a", provider="beta")
        add_run(store, "ses_3", "run_3a")  # a run without a provider
        q = store.query()

        def ids(provider: Any) -> list[str]:
            return session_ids(q.search_sessions(provider=provider, order_by="created_at_asc"))

        # Two acme runs in ses_1 still give one session.
        assert ids("acme") == ["ses_1"]
        assert q.search_sessions(provider="acme").total_count == 1
        assert ids("beta") == ["ses_1", "ses_2"]
        assert ids(["acme", "beta"]) == ["ses_1", "ses_2"]
        assert ids(["gamma"]) == []

    def test_tags_must_all_be_present(self, store: Store) -> None:
        add_session(store, "ses_1", tags=["a", "b"], created=0)
        add_session(store, "ses_2", tags=["a"], created=1)
        add_session(store, "ses_3", tags=["b", "c"], created=2)
        add_session(store, "ses_4", created=3)
        q = store.query()

        def page(tags: list[str]) -> SessionPage:
            return q.search_sessions(tags=tags, order_by="created_at_asc")

        assert session_ids(page(["a"])) == ["ses_1", "ses_2"]
        assert page(["a"]).total_count == 2
        assert session_ids(page(["a", "b"])) == ["ses_1"]
        assert page(["a", "b"]).total_count == 1
        assert session_ids(page(["b"])) == ["ses_1", "ses_3"]
        assert session_ids(page(["a", "c"])) == []
        assert page(["a", "c"]).total_count == 0
        assert page(["a", "c"]).cursor is None
        assert len(page([]).sessions) == 4  # no tags: no tag filter

    def test_created_after_and_before_are_inclusive(self, store: Store) -> None:
        for i, minute in enumerate((0, 10, 20), start=1):
            add_session(store, f"ses_{i}", created=minute)
        q = store.query()

        def ids(**bounds: Any) -> list[str]:
            return session_ids(q.search_sessions(order_by="created_at_asc", **bounds))

        assert ids(created_after=at(10)) == ["ses_2", "ses_3"]
        assert ids(created_before=at(10)) == ["ses_1", "ses_2"]
        assert ids(created_after=at(10), created_before=at(10)) == ["ses_2"]
        assert ids(created_after=at(10) + timedelta(microseconds=1)) == ["ses_3"]
        assert q.search_sessions(created_after=at(10)).total_count == 2

    def test_soft_deleted_sessions_are_hidden_unless_asked_for(self, store: Store) -> None:
        add_session(store, "ses_1", created=0)
        gone = add_session(store, "ses_2", created=1)
        store.save_session(gone.soft_delete(at(5)))
        q = store.query()
        page = q.search_sessions()
        assert session_ids(page) == ["ses_1"]
        assert page.total_count == 1
        both = q.search_sessions(include_deleted=True, order_by="created_at_asc")
        assert session_ids(both) == ["ses_1", "ses_2"]
        assert both.total_count == 2
        assert both.sessions[1].deleted_at == at(5)
        # Filters still apply to soft-deleted sessions that are included.
        assert q.search_sessions(include_deleted=True, agent_id="other").total_count == 0
        # Restored, it is visible again.
        store.save_session(store.get_session("ses_2").restore())
        assert q.search_sessions().total_count == 2

    def test_orders_with_id_tie_break(self, store: Store) -> None:
        add_order_sessions(store)
        q = store.query()
        assert session_ids(q.search_sessions()) == SESSION_ORDERS["updated_at_desc"]
        for order, expected in SESSION_ORDERS.items():
            assert session_ids(q.search_sessions(order_by=order)) == expected, order

    def test_unknown_order_falls_back_to_updated_at_desc(self, store: Store) -> None:
        add_order_sessions(store)
        page = store.query().search_sessions(order_by="name_asc")
        assert session_ids(page) == SESSION_ORDERS["updated_at_desc"]

    def test_a_newer_update_moves_a_session_first(self, store: Store) -> None:
        add_order_sessions(store)
        store.save_session(store.get_session("ses_2").replace(updated_at=at(99)))
        assert session_ids(store.query().search_sessions())[0] == "ses_2"

    @pytest.mark.parametrize("order", list(SESSION_ORDERS))
    def test_page_two_continues_page_one(self, store: Store, order: str) -> None:
        add_order_sessions(store)
        first = store.query().search_sessions(order_by=order, limit=1)
        assert session_ids(first) == SESSION_ORDERS[order][:1]
        second = store.query().search_sessions(order_by=order, limit=1, cursor=first.cursor)
        assert session_ids(second) == SESSION_ORDERS[order][1:2]
        assert second.total_count == 5  # the total ignores the cursor

    @pytest.mark.parametrize("order", list(SESSION_ORDERS))
    @pytest.mark.parametrize("tags", [(), ("t",)], ids=["sql", "tag-filter"])
    def test_walking_every_page_yields_each_session_once(
        self, store: Store, order: str, tags: tuple[str, ...]
    ) -> None:
        # With a tag filter the page is cut in memory after the query; both paths page.
        add_order_sessions(store, tags=["t", "u"])
        for limit in (1, 2, 5):

            def fetch(cursor: str | None, limit: int = limit) -> tuple[list[str], str | None]:
                page = store.query().search_sessions(
                    order_by=order, limit=limit, cursor=cursor, tags=list(tags)
                )
                assert page.total_count == 5
                return session_ids(page), page.cursor

            assert walk(fetch) == SESSION_ORDERS[order], (order, limit)


# limits and value validation -------------------------------------------------------------


def search(store: Store, kind: str, **options: Any) -> Any:
    q = store.query()
    operations: dict[str, Callable[..., Any]] = {
        "sessions": q.search_sessions,
        "runs": q.search_runs,
        "events": q.search_events,
    }
    return operations[kind](**options)


def test_the_last_page_has_no_cursor(store: Store) -> None:
    """Whatever the number of matches and the page size, paging makes exactly as many
    requests as there are pages: the last one (full or not) carries no cursor, and no
    request comes back empty unless nothing matches at all. For every search, on the
    paths that cut pages in SQL, in Python (tags) and with a lookahead row (events)."""
    q = store.query()
    searches: dict[str, Callable[[int, str | None], Any]] = {
        "sessions": lambda n, c: q.search_sessions(agent_id="paged", limit=n, cursor=c),
        "tagged": lambda n, c: q.search_sessions(tags=["t"], limit=n, cursor=c),
        "by provider": lambda n, c: q.search_sessions(provider="acme", limit=n, cursor=c),
        "runs": lambda n, c: q.search_runs(provider="acme", limit=n, cursor=c),
        "events": lambda n, c: q.search_events(types=["message_sent"], limit=n, cursor=c),
    }

    def listed(page: Any) -> list[str]:
        records = getattr(page, "sessions", None) or getattr(page, "runs", None)
        return [r.id for r in records or getattr(page, "events", None) or []]

    for matches in range(5):
        for name, fetch in searches.items():
            for size in range(1, 6):
                requests: list[int] = []
                cursor: str | None = None
                seen: list[str] = []
                while len(requests) < 10:
                    page = fetch(size, cursor)
                    items, cursor = listed(page), page.cursor
                    requests.append(len(items))
                    seen += items
                    if cursor is None:
                        break
                pages = max(1, -(-matches // size))
                assert len(requests) == pages, (name, matches, size, requests)
                assert len(seen) == len(set(seen)) == matches, (name, matches, size)
        # One more match of every search.
        session = add_session(store, agent_id="paged", created=matches, tags=["t"])
        add_run(store, session.id, started=matches, provider="acme")
        store.append_events([event(session.id, minute=matches)])


@pytest.mark.parametrize("kind", ["sessions", "runs", "events"])
def test_limit_validation(store: Store, kind: str) -> None:
    for bad in (0, -1, "5", 2.0, True):
        with fails(ErrorCode.VALIDATION_ERROR, "limit must be a positive integer"):
            search(store, kind, limit=bad)
    with fails(ErrorCode.VALIDATION_ERROR, "limit must be <= 1000"):
        search(store, kind, limit=1001)
    assert search(store, kind, limit=1000).cursor is None
    assert search(store, kind, limit=1).cursor is None


def test_default_limits(store: Store) -> None:
    for i in range(51):
        add_session(store, f"ses_{i:03}", created=i)
    for i in range(51):
        add_run(store, "ses_000", f"run_{i:03}", started=i)
    store.append_events([event("ses_000", minute=i) for i in range(101)])
    q = store.query()
    sessions = q.search_sessions()
    assert (len(sessions.sessions), sessions.total_count) == (50, 51)
    assert len(q.search_runs().runs) == 50
    assert len(q.search_events().events) == 100


def test_unsupported_enum_values(store: Store) -> None:
    q = store.query()
    prefix = "status contains unsupported value"
    with fails(ErrorCode.VALIDATION_ERROR, prefix=prefix):
        q.search_sessions(status="bogus")
    with fails(ErrorCode.VALIDATION_ERROR, prefix=prefix):
        q.search_sessions(status=["active", "bogus"])
    with fails(ErrorCode.VALIDATION_ERROR, prefix=prefix):
        q.search_sessions(status="running")  # a run status, not a session status
    with fails(ErrorCode.VALIDATION_ERROR, prefix=prefix):
        q.search_runs(status="active")  # a session status, not a run status
    with fails(ErrorCode.VALIDATION_ERROR, prefix=prefix):
        q.search_runs(status="bogus")
    assert q.search_runs(status=RunStatus.TIMEOUT).runs == []


def test_unknown_event_types_are_rejected(store: Store) -> None:
    q = store.query()
    prefix = "types contains unsupported value"
    with fails(ErrorCode.VALIDATION_ERROR, prefix=prefix):
        q.search_events(types="bogus")
    with fails(ErrorCode.VALIDATION_ERROR, prefix=prefix):
        q.search_events(types=["message_sent", "bogus"])
    with fails(ErrorCode.VALIDATION_ERROR, prefix=prefix):
        q.count_events(types="bogus")
    with fails(ErrorCode.VALIDATION_ERROR, prefix=prefix):
        q.count_events(types=["message_sent", "not_a_type"])


@pytest.mark.parametrize("bad", [{"a": 1}, 5, [None], ["active", 3]], ids=repr)
def test_enum_values_must_be_strings(store: Store, bad: Any) -> None:
    # "<field> values must be strings": any other value is refused, not stringified.
    q = store.query()
    with fails(ErrorCode.VALIDATION_ERROR, prefix="status values must be"):
        q.search_sessions(status=bad)
    with fails(ErrorCode.VALIDATION_ERROR, prefix="status values must be"):
        q.search_runs(status=bad)
    with fails(ErrorCode.VALIDATION_ERROR, prefix="types values must be"):
        q.search_events(types=bad)
    with fails(ErrorCode.VALIDATION_ERROR, prefix="types values must be"):
        q.count_events(types=bad)


# get_session_stats -----------------------------------------------------------------------


def test_stats_of_an_unknown_session(store: Store) -> None:
    with fails(ErrorCode.SESSION_NOT_FOUND, "Session ses_nope not found"):
        store.query().get_session_stats("ses_nope")


def test_stats_count_and_sum(store: Store) -> None:
    add_session(store, "ses_1")
    add_session(store, "ses_2")
    add_run(
        store,
        "ses_1",
        "run_1",
        provider="anthropic",
        status="completed",
        usage={"input_tokens": 10, "output_tokens": 5, "total_tokens": 99},
    )
    add_run(
        store,
        "ses_1",
        "run_2",
        provider="openai",
        status="completed",
        usage={"input_tokens": "12", "output_tokens": 7},  # non-numeric → 0; no total → 0
    )
    add_run(store, "ses_1", "run_3", status="failed", usage={"output_tokens": None})
    add_run(
        store,
        "ses_1",
        "run_4",
        provider="anthropic",
        status="completed",
        usage={"input_tokens": 1, "output_tokens": 2, "total_tokens": 1000},
    )
    # Another session's runs and events are not counted.
    add_run(store, "ses_2", "run_9", provider="gemini", usage={"input_tokens": 500})
    store.append_events([event("ses_1", minute=m) for m in (5, 1, 9)])
    store.append_events([event("ses_2", minute=m) for m in (0, 20)])

    stats = store.query().get_session_stats("ses_1")
    assert stats.session_id == "ses_1"
    assert stats.event_count == 3
    assert stats.run_count == 4
    assert stats.token_totals == TokenTotals(input_tokens=11, output_tokens=14, total_tokens=1099)
    assert sorted(stats.providers_used) == ["anthropic", "openai"]
    assert len(stats.providers_used) == 2
    assert stats.first_event_at == at(1)
    assert stats.last_event_at == at(9)
    assert stats.status_counts == {"completed": 3, "failed": 1}


def test_stats_of_an_empty_session(store: Store) -> None:
    add_session(store, "ses_1")
    stats = store.query().get_session_stats("ses_1")
    assert stats == SessionStats(
        session_id="ses_1",
        event_count=0,
        run_count=0,
        token_totals=TokenTotals(0, 0, 0),
        providers_used=[],
        first_event_at=None,
        last_event_at=None,
        status_counts={},
    )


# search_runs -----------------------------------------------------------------------------


class TestSearchRuns:
    @pytest.fixture
    def runs(self, store: Store) -> Store:
        add_session(store, "ses_1")
        add_session(store, "ses_2")
        add_run(
            store,
            "ses_1",
            "run_1",
            started=0,
            provider="acme",
            status="completed",
            usage={"total_tokens": 100},
        )
        add_run(
            store,
            "ses_1",
            "run_2",
            started=10,
            provider="beta",
            status="failed",
            usage={"total_tokens": 99},
        )
        add_run(
            store,
            "ses_2",
            "run_3",
            started=20,
            provider="acme",
            status="running",
            usage={"input_tokens": 5000},
        )  # no total_tokens: counts as 0
        add_run(
            store, "ses_2", "run_4", started=30, status="completed", usage={"total_tokens": 250}
        )
        return store

    @staticmethod
    def ids(store: Store, **filters: Any) -> list[str]:
        page = store.query().search_runs(order_by="started_at_asc", **filters)
        return run_ids(page)

    def test_no_filter(self, runs: Store) -> None:
        assert self.ids(runs) == ["run_1", "run_2", "run_3", "run_4"]

    def test_filters(self, runs: Store) -> None:
        assert self.ids(runs, session_id="ses_2") == ["run_3", "run_4"]
        assert self.ids(runs, provider="acme") == ["run_1", "run_3"]
        assert self.ids(runs, status="completed") == ["run_1", "run_4"]
        assert self.ids(runs, status=RunStatus.FAILED) == ["run_2"]
        assert self.ids(runs, started_after=at(10)) == ["run_2", "run_3", "run_4"]
        assert self.ids(runs, started_before=at(20)) == ["run_1", "run_2", "run_3"]
        assert self.ids(runs, started_after=at(10), started_before=at(10)) == ["run_2"]
        assert self.ids(runs, session_id="ses_1", provider="acme", status="completed") == ["run_1"]
        assert self.ids(runs, session_id="ses_nope") == []

    def test_min_tokens(self, runs: Store) -> None:
        assert self.ids(runs, min_tokens=0) == ["run_1", "run_2", "run_3", "run_4"]
        assert self.ids(runs, min_tokens=100) == ["run_1", "run_4"]  # inclusive
        assert self.ids(runs, min_tokens=101) == ["run_4"]
        assert self.ids(runs, min_tokens=251) == []

    @pytest.mark.parametrize("bad", [-1, "5", 1.5, True])
    def test_min_tokens_must_be_a_non_negative_integer(self, store: Store, bad: Any) -> None:
        # validation_error like every other bad argument (issue 11; query_error before).
        with fails(ErrorCode.VALIDATION_ERROR, "min_tokens must be a non-negative integer"):
            store.query().search_runs(min_tokens=bad)


def test_run_orders(store: Store) -> None:
    add_order_runs(store)
    q = store.query()
    assert run_ids(q.search_runs()) == RUN_ORDERS["started_at_desc"]
    for order, expected in RUN_ORDERS.items():
        assert run_ids(q.search_runs(order_by=order)) == expected, order
    assert run_ids(q.search_runs(order_by="cheapest")) == RUN_ORDERS["started_at_desc"]


def test_token_usage_order_has_no_cursor(store: Store) -> None:
    add_order_runs(store)
    q = store.query()
    page = q.search_runs(order_by="token_usage_desc", limit=2)
    assert run_ids(page) == RUN_ORDERS["token_usage_desc"][:2]
    assert page.cursor is None
    genuine = q.search_runs(limit=1).cursor
    assert genuine is not None
    with fails(ErrorCode.INVALID_CURSOR):
        q.search_runs(order_by="token_usage_desc", cursor=genuine)
    forged = repack(["run", "token_usage_desc", 300, "run_2", "0" * 32])
    with fails(
        ErrorCode.INVALID_CURSOR,
        "Cursor pagination is not supported for order_by :token_usage_desc",
    ):
        q.search_runs(order_by="token_usage_desc", cursor=forged)


@pytest.mark.parametrize("order", ["started_at_desc", "started_at_asc"])
def test_run_pages(store: Store, order: str) -> None:
    add_order_runs(store)
    first = store.query().search_runs(order_by=order, limit=1)
    second = store.query().search_runs(order_by=order, limit=1, cursor=first.cursor)
    assert run_ids(first) + run_ids(second) == RUN_ORDERS[order][:2]
    for limit in (1, 2, 3):

        def fetch(cursor: str | None, limit: int = limit) -> tuple[list[str], str | None]:
            page = store.query().search_runs(order_by=order, limit=limit, cursor=cursor)
            return run_ids(page), page.cursor

        assert walk(fetch) == RUN_ORDERS[order], limit


def test_run_pages_keep_their_filters(store: Store) -> None:
    add_order_runs(store)
    add_session(store, "ses_other")
    add_run(store, "ses_other", "run_0", started=5, usage={"total_tokens": 60})

    def fetch(cursor: str | None) -> tuple[list[str], str | None]:
        page = store.query().search_runs(session_id="ses_r", min_tokens=8, limit=1, cursor=cursor)
        return run_ids(page), page.cursor

    assert walk(fetch) == ["run_3", "run_1", "run_2"]


# usage -----------------------------------------------------------------------------------


def add_usage_runs(store: Store) -> None:
    add_session(store, "ses_1", agent_id="agent-a")
    add_session(store, "ses_2", agent_id="agent-b")
    add_run(
        store,
        "ses_1",
        "run_1",
        started=0,
        provider="acme",
        model="m1",
        usage={"input_tokens": 10, "output_tokens": 20, "total_tokens": 30},
    )
    add_run(
        store,
        "ses_1",
        "run_2",
        started=60 * 24,
        provider="acme",
        model="m1",
        usage={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
    )
    add_run(
        store,
        "ses_2",
        "run_3",
        started=60,
        provider="beta",
        model="b1",
        usage={"input_tokens": 100, "output_tokens": "many", "total_tokens": 500},
    )
    add_run(store, "ses_2", "run_4", started=120, usage={"input_tokens": 7})


def test_usage_summary_totals_and_by_provider(store: Store) -> None:
    add_usage_runs(store)
    summary = store.query().get_usage_summary()
    assert summary == UsageSummary(
        total_input_tokens=118,
        total_output_tokens=22,
        total_tokens=533,
        run_count=4,
        by_provider={
            "acme": ProviderUsage(input_tokens=11, output_tokens=22, total_tokens=33, run_count=2),
            "beta": ProviderUsage(input_tokens=100, output_tokens=0, total_tokens=500, run_count=1),
            "unknown": ProviderUsage(input_tokens=7, output_tokens=0, total_tokens=0, run_count=1),
        },
    )


def test_usage_summary_filters(store: Store) -> None:
    add_usage_runs(store)
    q = store.query()
    by_session = q.get_usage_summary(session_id="ses_2")
    assert (by_session.run_count, by_session.total_input_tokens) == (2, 107)
    assert set(by_session.by_provider) == {"beta", "unknown"}
    by_provider = q.get_usage_summary(provider="acme")
    assert (by_provider.run_count, by_provider.total_tokens) == (2, 33)
    assert set(by_provider.by_provider) == {"acme"}
    since = q.get_usage_summary(since=at(60))  # inclusive
    assert (since.run_count, since.total_tokens) == (3, 503)
    until = q.get_usage_summary(until=at(60))  # inclusive
    assert (until.run_count, until.total_tokens) == (2, 530)
    window = q.get_usage_summary(since=at(60), until=at(120), provider="beta")
    assert (window.run_count, window.total_tokens) == (1, 500)
    empty = q.get_usage_summary(session_id="ses_nope")
    assert empty == UsageSummary(0, 0, 0, 0, {})


def daily_from_runs(store: Store) -> dict[tuple[str, str, str], list[int]]:
    """The daily rollup recomputed from the stored runs themselves."""

    def count(usage: dict[str, Any], key: str) -> int:
        value = usage.get(key)
        ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
        return value if ok else 0  # type: ignore[return-value]

    rollup: dict[tuple[str, str, str], list[int]] = {}
    for session in store.list_sessions():
        for run in store.list_runs(session.id):
            key = (
                run.started_at.astimezone(UTC).date().isoformat(),
                run.provider or "unknown",
                run.provider_metadata.get("model") or "unknown",
            )
            row = rollup.setdefault(key, [0, 0, 0, 0])
            row[0] += 1
            for i, name in enumerate(("input_tokens", "output_tokens", "total_tokens"), 1):
                row[i] += count(run.token_usage, name)
    return rollup


def daily_from_view(store: Store, **filters: Any) -> dict[Any, list[int]]:
    days = store.query().get_usage_by_day(**filters)
    return {
        (d.day, d.provider, d.model): [d.run_count, d.input_tokens, d.output_tokens, d.total_tokens]
        for d in days
    }


def test_usage_by_day_equals_per_run_sums(store: Store) -> None:
    add_usage_runs(store)
    assert daily_from_view(store) == daily_from_runs(store)
    assert daily_from_view(store) == {
        ("2026-01-01", "acme", "m1"): [1, 10, 20, 30],
        ("2026-01-02", "acme", "m1"): [1, 1, 2, 3],
        ("2026-01-01", "beta", "b1"): [1, 100, 0, 500],
        ("2026-01-01", "unknown", "unknown"): [1, 7, 0, 0],
    }
    summary = store.query().get_usage_summary()
    view = daily_from_view(store).values()
    assert sum(row[3] for row in view) == summary.total_tokens
    assert sum(row[0] for row in view) == summary.run_count
    assert set(daily_from_view(store, provider="acme")) == {
        ("2026-01-01", "acme", "m1"),
        ("2026-01-02", "acme", "m1"),
    }
    assert set(daily_from_view(store, since_day="2026-01-02")) == {("2026-01-02", "acme", "m1")}
    assert len(daily_from_view(store, until_day="2026-01-01")) == 3


def test_usage_by_day_does_not_double_count_a_resaved_run(
    store: Store,
) -> None:
    add_usage_runs(store)
    run = store.get_run("run_1")
    store.save_run(run.add_token_usage({"input_tokens": 5, "total_tokens": 5}))
    store.save_run(store.get_run("run_1").add_token_usage({"output_tokens": 1}))
    # Moving a run to another day moves its contribution.
    store.save_run(store.get_run("run_2").replace(started_at=at(60 * 48)))
    rollup = daily_from_view(store)
    assert rollup == daily_from_runs(store)
    assert rollup[("2026-01-01", "acme", "m1")] == [1, 15, 21, 35]
    assert ("2026-01-02", "acme", "m1") not in rollup
    assert rollup[("2026-01-03", "acme", "m1")] == [1, 1, 2, 3]
    assert store.query().get_usage_summary(provider="acme").total_tokens == 38


# get_cost_summary ------------------------------------------------------------------------

PRICING = {
    "acme": {
        "default": {"input": 0.001, "output": 0.002},
        "models": {"m1": {"input": 0.01, "output": 0.02}},
    }
}


def add_cost_runs(store: Store) -> None:
    add_session(store, "ses_1", agent_id="agent-a")
    add_session(store, "ses_2", agent_id="agent-b")
    usage = {"input_tokens": 1000, "output_tokens": 500}
    # Stored cost wins over the table: 1.5.
    add_run(store, "ses_1", "run_1", started=0, provider="acme", model="m1", usage=usage, cost=1.5)
    # Post hoc, exact model: 1000 * 0.01 + 500 * 0.02 = 20.0.
    add_run(store, "ses_1", "run_2", started=10, provider="acme", model="m1", usage=usage)
    # Post hoc, longest prefix "m1": 100 * 0.01 + 50 * 0.02 = 2.0.
    add_run(
        store,
        "ses_2",
        "run_3",
        started=20,
        provider="acme",
        model="m1-large",
        usage={"input_tokens": 100, "output_tokens": 50},
    )
    # Post hoc, provider default; cache tokens at the input rate: 1 + 2 + 0.1 + 0.1 = 3.2.
    add_run(
        store,
        "ses_2",
        "run_4",
        started=30,
        provider="acme",
        model="other",
        usage={
            "input_tokens": 1000,
            "output_tokens": 1000,
            "cache_read_tokens": 100,
            "cache_creation_tokens": 100,
        },
    )
    # No rate: an unknown provider, and no provider at all.
    add_run(store, "ses_2", "run_5", started=40, provider="nobody", model="m1", usage=usage)
    add_run(store, "ses_2", "run_6", started=50, usage=usage)
    # No provider but a stored cost: counted under "unknown".
    add_run(store, "ses_2", "run_7", started=60, cost=0.25)


def test_cost_summary_with_stored_and_computed_costs(store: Store) -> None:
    add_cost_runs(store)
    summary = store.query().get_cost_summary(pricing_table=PRICING)
    assert summary.run_count == 7
    assert summary.unmapped_runs == 2
    assert summary.total_cost_usd == pytest.approx(26.95)
    assert set(summary.by_provider) == {"acme", "unknown"}
    assert summary.by_provider["acme"].cost_usd == pytest.approx(26.7)
    assert summary.by_provider["acme"].run_count == 4
    assert summary.by_provider["unknown"] == ProviderCost(cost_usd=0.25, run_count=1)
    assert set(summary.by_model) == {"m1", "m1-large", "other", "unknown"}
    m1 = summary.by_model["m1"]
    assert m1.cost_usd == pytest.approx(21.5)
    assert (m1.input_tokens, m1.output_tokens) == (2000, 1000)
    large = summary.by_model["m1-large"]
    assert large.cost_usd == pytest.approx(2.0)
    assert (large.input_tokens, large.output_tokens) == (100, 50)
    assert summary.by_model["other"].cost_usd == pytest.approx(3.2)
    assert summary.by_model["unknown"] == ModelCost(
        cost_usd=0.25, input_tokens=0, output_tokens=0, run_count=1
    )
    assert (m1.run_count, large.run_count) == (2, 1)


def test_cost_summary_filters(store: Store) -> None:
    add_cost_runs(store)
    q = store.query()

    def summary(**filters: Any) -> tuple[int, float, int]:
        result = q.get_cost_summary(pricing_table=PRICING, **filters)
        return result.run_count, round(result.total_cost_usd, 6), result.unmapped_runs

    assert summary(session_id="ses_1") == (2, 21.5, 0)
    assert summary(agent_id="agent-a") == (2, 21.5, 0)
    assert summary(agent_id="agent-b") == (5, 5.45, 2)
    assert summary(agent_id="agent-nobody") == (0, 0.0, 0)
    assert summary(provider="acme") == (4, 26.7, 0)
    assert summary(provider="nobody") == (1, 0.0, 1)
    assert summary(since=at(10), until=at(30)) == (3, 25.2, 0)  # inclusive both ends
    assert summary(provider="acme", agent_id="agent-b") == (2, 5.2, 0)


def test_cost_summary_flat_legacy_pricing_table(store: Store) -> None:
    add_session(store, "ses_1")
    add_run(
        store,
        "ses_1",
        "run_1",
        provider="acme",
        model="any",
        usage={"input_tokens": 2, "output_tokens": 3},
    )
    summary = store.query().get_cost_summary(pricing_table={"acme": {"input": 0.5, "output": 1.0}})
    assert summary.total_cost_usd == pytest.approx(4.0)
    assert summary.unmapped_runs == 0
    # Without a rate for the provider, the same run is unmapped.
    other = store.query().get_cost_summary(pricing_table={"beta": {"input": 0.5, "output": 1.0}})
    assert (other.total_cost_usd, other.run_count, other.unmapped_runs) == (0.0, 1, 1)
    assert other.by_provider == {}


def test_cost_summary_default_pricing_table(store: Store) -> None:
    add_session(store, "ses_1")
    usage = {"input_tokens": 1_000_000, "output_tokens": 100_000}
    model = "claude-sonnet-4-20250514"
    add_run(store, "ses_1", "run_1", provider="anthropic", model=model, usage=usage)
    summary = store.query().get_cost_summary()

    from agent_sessions.domain import pricing  # the documented default table

    expected = pricing.calculate_cost(usage, "anthropic", model, pricing.default_pricing_table())
    assert expected is not None
    assert expected > 0
    assert summary.total_cost_usd == pytest.approx(expected)
    assert summary.unmapped_runs == 0


def test_cost_summary_of_nothing(store: Store) -> None:
    summary = store.query().get_cost_summary(pricing_table=PRICING)
    assert summary == CostSummary(
        total_cost_usd=0.0, run_count=0, by_provider={}, by_model={}, unmapped_runs=0
    )


# search_events and count_events ----------------------------------------------------------


class TestSearchEvents:
    @pytest.fixture
    def events(self, store: Store) -> Store:
        add_session(store, "ses_a")
        add_session(store, "ses_b")
        add_run(store, "ses_a", "run_a")
        add_run(store, "ses_b", "run_b")
        store.append_events(
            [
                event("ses_a", "evt_1", type="session_created", minute=0, correlation_id="c1"),
                event(
                    "ses_a",
                    "evt_2",
                    type="run_started",
                    minute=1,
                    run_id="run_a",
                    provider="acme",
                    correlation_id="c1",
                ),
                event(
                    "ses_a", "evt_3", minute=2, run_id="run_a", provider="acme", correlation_id="c2"
                ),
            ]
        )
        store.append_events(
            [
                event("ses_b", "evt_4", minute=2, run_id="run_b", provider="beta"),
                event(
                    "ses_b",
                    "evt_5",
                    type="tool_call_started",
                    minute=3,
                    run_id="run_b",
                    provider="beta",
                ),
                event(
                    "ses_b",
                    "evt_6",
                    type="message_received",
                    minute=4,
                    run_id="run_b",
                    provider="acme",
                ),
            ]
        )
        return store

    @staticmethod
    def check(store: Store, expected: list[str], **filters: Any) -> None:
        q = store.query()
        page = q.search_events(order_by="timestamp_asc", limit=1000, **filters)
        assert event_ids(page) == expected, filters
        assert q.count_events(**filters) == len(expected), filters

    def test_no_filter(self, events: Store) -> None:
        everything = ["evt_1", "evt_2", "evt_3", "evt_4", "evt_5", "evt_6"]
        self.check(events, everything)
        self.check(events, everything, session_ids=[], run_ids=[], providers=[])

    def test_session_and_run_ids(self, events: Store) -> None:
        self.check(events, ["evt_1", "evt_2", "evt_3"], session_ids=["ses_a"])
        self.check(
            events,
            ["evt_1", "evt_2", "evt_3", "evt_4", "evt_5", "evt_6"],
            session_ids=["ses_a", "ses_b"],
        )
        self.check(events, [], session_ids=["ses_nope"])
        self.check(events, ["evt_4", "evt_5", "evt_6"], run_ids=["run_b"])
        self.check(events, ["evt_2", "evt_3"], run_ids=["run_a", "run_nope"])

    def test_types(self, events: Store) -> None:
        self.check(events, ["evt_3", "evt_4"], types="message_sent")
        self.check(events, ["evt_3", "evt_4"], types=EventType.MESSAGE_SENT)
        self.check(events, ["evt_3", "evt_4", "evt_5"], types=["message_sent", "tool_call_started"])
        self.check(events, [], types=["tool_approval_denied"])

    def test_providers(self, events: Store) -> None:
        self.check(events, ["evt_2", "evt_3", "evt_6"], providers=["acme"])
        self.check(
            events, ["evt_2", "evt_3", "evt_4", "evt_5", "evt_6"], providers=["beta", "acme"]
        )

    def test_since_and_until_are_inclusive(self, events: Store) -> None:
        self.check(events, ["evt_3", "evt_4", "evt_5", "evt_6"], since=at(2))
        self.check(events, ["evt_1", "evt_2", "evt_3", "evt_4"], until=at(2))
        self.check(events, ["evt_3", "evt_4"], since=at(2), until=at(2))
        self.check(events, ["evt_5", "evt_6"], since=at(2) + timedelta(microseconds=1))

    def test_correlation_id_and_combinations(self, events: Store) -> None:
        self.check(events, ["evt_1", "evt_2"], correlation_id="c1")
        self.check(events, ["evt_3"], correlation_id="c2")
        self.check(events, [], correlation_id="c3")
        self.check(
            events, ["evt_6"], session_ids=["ses_b"], types=["message_received"], providers=["acme"]
        )
        self.check(events, ["evt_2"], correlation_id="c1", run_ids=["run_a"], until=at(1))

    def test_soft_deleted_sessions_are_not_excluded(self, events: Store) -> None:
        events.save_session(events.get_session("ses_a").soft_delete(at(50)))
        self.check(events, ["evt_1", "evt_2", "evt_3"], session_ids=["ses_a"])


def test_event_orders(store: Store) -> None:
    add_order_events(store)
    q = store.query()
    assert event_ids(q.search_events()) == EVENT_ORDERS["sequence_asc"]
    for order, expected in EVENT_ORDERS.items():
        assert event_ids(q.search_events(order_by=order)) == expected, order
    assert event_ids(q.search_events(order_by="random")) == EVENT_ORDERS["sequence_asc"]


@pytest.mark.parametrize("order", list(EVENT_ORDERS))
def test_event_pages(store: Store, order: str) -> None:
    add_order_events(store)
    first = store.query().search_events(order_by=order, limit=1)
    second = store.query().search_events(order_by=order, limit=1, cursor=first.cursor)
    assert event_ids(first) + event_ids(second) == EVENT_ORDERS[order][:2]
    for limit in (1, 2, 4):

        def fetch(cursor: str | None, limit: int = limit) -> tuple[list[str], str | None]:
            page = store.query().search_events(order_by=order, limit=limit, cursor=cursor)
            return event_ids(page), page.cursor

        assert walk(fetch) == EVENT_ORDERS[order], limit


def test_events_keep_their_payloads(store: Store) -> None:
    add_session(store, "ses_1")
    data = {
        "content": "hi",
        "custom_key": {"nested": [1, "two", None, {"deep": True}]},
        "unknown_field": 3.5,
    }
    stored = store.append_events(
        [
            Event.new(
                type="message_received",
                session_id="ses_1",
                timestamp=at(1),
                data=data,
                metadata={"meta_key": {"x": 1}},
                provider="acme",
                correlation_id="c9",
            )
        ]
    )
    found = store.query().search_events().events
    assert found == stored
    assert found[0].data == data
    assert found[0].metadata == {"meta_key": {"x": 1}}
    assert found[0].sequence_number == 1
    assert found == store.get_events("ses_1")


def test_count_events_ignores_pages(store: Store) -> None:
    add_session(store, "ses_1")
    store.append_events([event("ses_1", minute=i) for i in range(105)])
    q = store.query()
    assert len(q.search_events().events) == 100  # the default page
    assert q.count_events() == 105
    assert q.count_events(session_ids=["ses_1"], since=at(100)) == 5
    assert q.count_events(types="message_received") == 0


# export_session --------------------------------------------------------------------------


def test_export_of_an_unknown_session(store: Store) -> None:
    with fails(ErrorCode.SESSION_NOT_FOUND, "Session ses_nope not found"):
        store.query().export_session("ses_nope")


def test_export_session(store: Store) -> None:
    session = add_session(store, "ses_1", tags=["t"])
    add_session(store, "ses_2")
    runs = [add_run(store, "ses_1", f"run_{i}", started=10 - i) for i in range(3)]
    add_run(store, "ses_2", "run_other")
    stored = store.append_events([event("ses_1", minute=10 - i) for i in range(4)])
    store.append_events([event("ses_2")])
    store.append_events([event("ses_1", minute=0)])

    export = store.query().export_session("ses_1")
    assert export.session == session
    assert sorted(export.runs, key=lambda r: r.id) == runs
    assert [e.sequence_number for e in export.events] == [1, 2, 3, 4, 5]
    assert export.events[:4] == stored
    assert export.artifacts is None
    assert set(export.to_dict()) == {"session", "runs", "events"}

    with_artifacts = store.query().export_session("ses_1", include_artifacts=True)
    assert with_artifacts.artifacts == []  # registered none, but asked for them
    assert with_artifacts.to_dict()["artifacts"] == []


# cursors ---------------------------------------------------------------------------------


def genuine_cursors(store: Store) -> dict[str, str]:
    """One cursor of each kind, taken from a first page of one item."""
    add_order_sessions(store)
    add_session(store, "ses_r")
    add_run(store, "ses_r", "run_1", started=1)
    add_run(store, "ses_r", "run_2", started=2)
    add_run(store, "ses_r", "run_3", started=3)
    # Three of each: a second page of one item is not the last, so it has a cursor.
    store.append_events([event("ses_r", minute=m) for m in (1, 2, 3)])
    q = store.query()
    cursors = {
        "sessions": q.search_sessions(limit=1).cursor,
        "runs": q.search_runs(limit=1).cursor,
        "events": q.search_events(limit=1).cursor,
    }
    assert all(isinstance(c, str) for c in cursors.values())
    return cursors  # type: ignore[return-value]


INVALID_CURSORS = [
    pytest.param(123, "Cursor must be a non-empty string", id="not-a-string"),
    pytest.param(b"abc", "Cursor must be a non-empty string", id="bytes"),
    # An empty string is no cursor at all.
    pytest.param("", "Cursor must be a non-empty string", id="empty"),
    pytest.param("!!!", "Cursor is not valid Base64", id="not-base64"),
    pytest.param("@@@@", "Cursor is not valid Base64", id="not-base64-aligned"),
    pytest.param(b64(b"\xff\xfe\x00garbage"), "Cursor payload could not be decoded", id="not-json"),
    pytest.param(b64(b"not json at all"), "Cursor payload could not be decoded", id="text"),
    pytest.param(
        b64(b'{"kind": "session"}'), "Cursor does not match expected format", id="json-object"
    ),
    pytest.param(b64(b"[1, 2]"), "Cursor does not match expected format", id="short-list"),
    pytest.param(
        b64(b'["session", "updated_at_desc", 1, "ses_1"]'),
        "Cursor does not match expected format",
        id="unsigned",
    ),
    pytest.param(b64(b"42"), "Cursor does not match expected format", id="json-number"),
]


@pytest.mark.parametrize(("cursor", "message"), INVALID_CURSORS)
def test_invalid_cursors(store: Store, cursor: Any, message: str) -> None:
    q = store.query()
    for kind in ("sessions", "runs", "events"):
        with fails(ErrorCode.INVALID_CURSOR, message):
            search(store, kind, cursor=cursor)
    with fails(ErrorCode.INVALID_CURSOR, message):
        q.search_runs(order_by="started_at_asc", cursor=cursor)


CORRUPTIONS: dict[str, Callable[[str], str]] = {
    "appended": lambda c: c + "!!!!",
    "inserted": lambda c: c[:4] + "!" + c[4:],
    "space": lambda c: c[:8] + " " + c[8:],
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_non_base64_characters_in_a_genuine_cursor(store: Store, corruption: str) -> None:
    # A decoder that skips characters outside the alphabet would accept these.
    bad = CORRUPTIONS[corruption](genuine_cursors(store)["sessions"])
    with fails(ErrorCode.INVALID_CURSOR, "Cursor is not valid Base64"):
        store.query().search_sessions(limit=1, cursor=bad)


def test_a_cursor_of_another_kind(store: Store) -> None:
    cursors = genuine_cursors(store)
    for cursor_kind, cursor in cursors.items():
        for kind in ("sessions", "runs", "events"):
            if kind == cursor_kind:
                continue
            with fails(ErrorCode.INVALID_CURSOR, "Cursor does not match expected format"):
                search(store, kind, cursor=cursor)


def test_a_cursor_of_another_order(store: Store) -> None:
    cursors = genuine_cursors(store)
    q = store.query()
    mismatch = "Cursor order does not match requested order_by"
    with fails(ErrorCode.INVALID_CURSOR, mismatch):
        q.search_sessions(order_by="created_at_desc", cursor=cursors["sessions"])
    created = q.search_sessions(order_by="created_at_asc", limit=1).cursor
    with fails(ErrorCode.INVALID_CURSOR, mismatch):
        q.search_sessions(cursor=created)  # the default order
    with fails(ErrorCode.INVALID_CURSOR, mismatch):
        q.search_runs(order_by="started_at_asc", cursor=cursors["runs"])
    with fails(ErrorCode.INVALID_CURSOR, mismatch):
        q.search_events(order_by="timestamp_desc", cursor=cursors["events"])
    by_time = q.search_events(order_by="timestamp_asc", limit=1).cursor
    with fails(ErrorCode.INVALID_CURSOR, mismatch):
        q.search_events(order_by="timestamp_desc", cursor=by_time)


def test_a_tampered_cursor_is_refused(store: Store) -> None:
    cursors = genuine_cursors(store)
    q = store.query()
    for kind, cursor in cursors.items():
        payload = unpack(cursor)
        # Decoding and re-encoding unchanged is still the genuine cursor.
        assert search(store, kind, limit=1, cursor=repack(payload)).cursor is not None
        edits = [
            [payload[0], payload[1], payload[2] + 1, *payload[3:]],
            [payload[0], payload[1], payload[2] - 1_000_000, *payload[3:]],
            [payload[0], payload[1], payload[2], payload[3] + "0", *payload[4:]],
            [payload[0], payload[1], payload[2], "zzz", *payload[4:]],
        ]
        for edited in edits:
            with fails(ErrorCode.INVALID_CURSOR):
                search(store, kind, limit=1, cursor=repack(edited))
    # Changing the order inside a session cursor and asking for that order.
    payload = unpack(cursors["sessions"])
    with fails(ErrorCode.INVALID_CURSOR):
        q.search_sessions(
            order_by="created_at_desc", cursor=repack([payload[0], "created_at_desc", *payload[2:]])
        )
    # A signature taken from another genuine cursor.
    other = unpack(q.search_sessions(limit=2).cursor or "")
    with fails(ErrorCode.INVALID_CURSOR):
        q.search_sessions(cursor=repack([*payload[:4], other[4]]))


def test_a_sort_value_of_the_wrong_type(store: Store) -> None:
    # Only a cursor signed with the store's key gets as far as its sort value.
    from agent_sessions.read_models.cursors import encode_cursor, query_fingerprint
    from agent_sessions.read_models.events import EventSearch
    from agent_sessions.read_models.runs import RunFilter
    from agent_sessions.read_models.sessions import SessionSearch

    genuine_cursors(store)
    with store.projections.views.transaction(commit=False) as view:
        row = view.execute("SELECT value FROM view_meta WHERE name = 'cursor_key'").fetchone()
    key = bytes.fromhex(row["value"])
    q = store.query()
    # Per kind: the order, and how many items follow (0, "x_1") in it: nothing before
    # the epoch in the descending orders, the three events after sequence 0.
    cases: list[tuple[Callable[..., Any], str, str, str, Callable[[Any], int]]] = [
        (q.search_sessions, "session", "updated_at_desc", "Session", lambda p: len(p.sessions)),
        (q.search_runs, "run", "started_at_desc", "Run", lambda p: len(p.runs)),
        (q.search_events, "event", "sequence_asc", "Event", lambda p: len(p.events)),
    ]
    following = {"session": 0, "run": 0, "event": 3}
    # The fingerprints of the unfiltered queries the cursors are used with.
    queries = {
        "session": query_fingerprint(SessionSearch()),
        "run": query_fingerprint(RunFilter()),
        "event": query_fingerprint(EventSearch()),
    }
    for operation, kind, order, name, size in cases:
        for value in ("2026-01-01T00:00:00+00:00", None, 1.5, True):
            cursor = encode_cursor(key, kind, order, value, "x_1", query=queries[kind])
            with fails(ErrorCode.INVALID_CURSOR, f"{name} cursor has invalid sort value"):
                operation(cursor=cursor)
        # The same key with an integer value is accepted: the key was the right one.
        page = operation(cursor=encode_cursor(key, kind, order, 0, "x_1", query=queries[kind]))
        assert size(page) == following[kind], kind


def test_padded_and_unpadded_cursors_are_both_accepted(store: Store) -> None:
    # Ids of three consecutive lengths: at least two cursors' base64 needs padding.
    for sid, minute in (("ses_a", 3), ("ses_bb", 2), ("ses_ccc", 1), ("ses_d", 0)):
        add_session(store, sid, created=minute)
    expected = ["ses_a", "ses_bb", "ses_ccc", "ses_d"]
    padded_seen = 0
    cursor: str | None = None
    for i in range(3):
        page = store.query().search_sessions(limit=1, cursor=cursor)
        cursor = page.cursor
        assert cursor is not None
        assert session_ids(page) == expected[i : i + 1]
        unpadded = cursor.rstrip("=")
        padded = unpadded + "=" * (-len(unpadded) % 4)
        padded_seen += padded != unpadded
        for form in (padded, unpadded):
            following = store.query().search_sessions(limit=1, cursor=form)
            assert session_ids(following) == expected[i + 1 : i + 2]
    # The three cursors' payloads differ in length by one byte each: exactly two of
    # three consecutive lengths are not a multiple of three, so need padding.
    assert padded_seen == 2


def test_a_cursor_works_in_another_query_api(store: Store) -> None:
    add_order_sessions(store)
    first = store.query().search_sessions(limit=2)
    other = QueryAPI(store, store.read_models)
    page = other.search_sessions(limit=2, cursor=first.cursor)
    assert session_ids(page) == SESSION_ORDERS["updated_at_desc"][2:4]


def test_a_cursor_survives_reopening_the_store(store: Store, store_url: str) -> None:
    if store_url.startswith("memory"):
        pytest.skip("a memory store cannot be reopened")
    add_order_sessions(store)
    first = store.query().search_sessions(limit=2)
    store.close()
    with open_store(store_url) as reopened:
        page = reopened.query().search_sessions(limit=2, cursor=first.cursor)
        assert session_ids(page) == SESSION_ORDERS["updated_at_desc"][2:4]


def test_a_cursor_survives_the_deletion_of_its_last_item(
    store: Store,
) -> None:
    add_order_sessions(store)
    first = store.query().search_sessions(limit=2)
    assert session_ids(first) == ["ses_5", "ses_1"]
    store.delete_session("ses_1")
    page = store.query().search_sessions(limit=2, cursor=first.cursor)
    assert session_ids(page) == ["ses_4", "ses_3"]
    assert page.total_count == 4


# consistency with writes -----------------------------------------------------------------


def test_a_query_sees_the_write_before_it(store: Store) -> None:
    q = store.query()
    assert q.search_sessions().total_count == 0
    assert q.count_events() == 0
    add_session(store, "ses_1")
    assert session_ids(q.search_sessions()) == ["ses_1"]
    assert q.get_session_stats("ses_1").run_count == 0
    add_run(store, "ses_1", "run_1", provider="acme", usage={"total_tokens": 5})
    assert run_ids(q.search_runs()) == ["run_1"]
    assert q.get_usage_summary().total_tokens == 5
    assert q.get_session_stats("ses_1").run_count == 1
    store.append_events([event("ses_1", "evt_1")])
    assert event_ids(q.search_events()) == ["evt_1"]
    assert q.count_events() == 1
    assert q.get_session_stats("ses_1").event_count == 1
    store.save_session(store.get_session("ses_1").replace(status="active"))
    assert session_ids(q.search_sessions(status="active")) == ["ses_1"]


def test_a_query_sees_writes_of_another_store_on_the_same_database(
    store: Store, store_url: str
) -> None:
    if store_url.startswith("memory"):
        pytest.skip("a memory store is private to its object")
    q = store.query()
    assert q.search_sessions().total_count == 0
    with open_store(store_url) as writer:
        add_session(writer, "ses_1")
        writer.append_events([event("ses_1", "evt_1")])
    assert session_ids(q.search_sessions()) == ["ses_1"]
    assert event_ids(q.search_events()) == ["evt_1"]


def test_stale_ok_reads_the_views_as_they_are(store: Store) -> None:
    q = store.query()
    add_session(store, "ses_1")
    assert session_ids(q.search_sessions()) == ["ses_1"]
    add_session(store, "ses_2", created=1)
    store.append_events([event("ses_2", "evt_1")])
    # Nothing caught the sessions view up since the first query: it is as it was.
    stale = q.search_sessions(stale_ok=True, order_by="created_at_asc")
    assert session_ids(stale) == ["ses_1"]
    assert stale.total_count == 1
    # Events are counted in the event index, which is written with the log.
    assert q.count_events(stale_ok=True) == 1
    # A normal query catches up; stale reads see the same from then on.
    assert session_ids(q.search_sessions(order_by="created_at_asc")) == ["ses_1", "ses_2"]
    stale = q.search_sessions(stale_ok=True, order_by="created_at_asc")
    assert session_ids(stale) == ["ses_1", "ses_2"]
    assert q.count_events(stale_ok=True) == 1
    assert event_ids(q.search_events(stale_ok=True)) == ["evt_1"]
    # So does catching the projections up directly.
    add_session(store, "ses_3", created=2)
    store.projections.catch_up()
    assert store.query().search_sessions(stale_ok=True).total_count == 3


# deletion and pruning --------------------------------------------------------------------


def test_a_deleted_session_disappears_from_every_query(store: Store) -> None:
    for sid, agent in (("ses_gone", "agent-x"), ("ses_kept", "agent-y")):
        add_session(store, sid, agent_id=agent, tags=["t"])
        add_run(
            store,
            sid,
            f"run_{sid}",
            provider="acme",
            model="m1",
            usage={"input_tokens": 10, "total_tokens": 10},
            cost=1.0,
        )
        store.append_events([event(sid, f"evt_{sid}_{i}", provider="acme") for i in range(3)])
    q = store.query()
    assert q.search_sessions().total_count == 2  # the views have seen both
    store.delete_session("ses_gone")

    assert session_ids(q.search_sessions(include_deleted=True)) == ["ses_kept"]
    assert session_ids(q.search_sessions(provider="acme")) == ["ses_kept"]
    assert session_ids(q.search_sessions(agent_id="agent-x")) == []
    assert session_ids(q.search_sessions(tags=["t"])) == ["ses_kept"]
    assert run_ids(q.search_runs()) == ["run_ses_kept"]
    assert run_ids(q.search_runs(session_id="ses_gone")) == []
    assert q.get_usage_summary().run_count == 1
    assert q.get_usage_summary().total_tokens == 10
    assert [(d.run_count, d.total_tokens) for d in q.get_usage_by_day()] == [(1, 10)]
    assert event_ids(q.search_events()) == [f"evt_ses_kept_{i}" for i in range(3)]
    assert q.count_events(session_ids=["ses_gone"]) == 0
    assert q.count_events() == 3
    with fails(ErrorCode.SESSION_NOT_FOUND):
        q.get_session_stats("ses_gone")
    with fails(ErrorCode.SESSION_NOT_FOUND):
        q.export_session("ses_gone")
    cost = q.get_cost_summary(pricing_table=PRICING)
    assert (cost.run_count, cost.total_cost_usd) == (1, 1.0)


def test_a_session_recreated_after_deletion_starts_empty(
    store: Store,
) -> None:
    add_session(store, "ses_1")
    add_run(store, "ses_1", "run_1", usage={"total_tokens": 5})
    store.append_events([event("ses_1", minute=m) for m in (1, 2)])
    store.query().get_session_stats("ses_1")
    store.delete_session("ses_1")
    add_session(store, "ses_1", created=9)
    stats = store.query().get_session_stats("ses_1")
    assert (stats.event_count, stats.run_count, stats.token_totals.total_tokens) == (0, 0, 0)
    assert store.query().search_sessions().total_count == 1


def test_pruned_events_disappear(store: Store) -> None:
    add_session(store, "ses_1")
    add_session(store, "ses_2")
    store.append_events(
        [
            event("ses_1", f"evt_{m}", minute=m, type=t)
            for m, t in (
                (1, "session_created"),
                (2, "message_sent"),
                (3, "message_sent"),
                (4, "message_received"),
            )
        ]
    )
    store.append_events([event("ses_2", "evt_other", minute=0)])
    q = store.query()
    assert q.count_events(session_ids=["ses_1"]) == 4

    assert store.prune_events("ses_1", [1, 3]) == 2
    assert event_ids(q.search_events(session_ids=["ses_1"])) == ["evt_2", "evt_4"]
    assert [e.sequence_number for e in q.search_events(session_ids=["ses_1"]).events] == [2, 4]
    assert q.count_events(session_ids=["ses_1"]) == 2
    assert q.count_events(types="message_sent") == 2  # evt_2 and ses_2's event
    assert q.count_events() == 3
    stats = q.get_session_stats("ses_1")
    assert stats.event_count == 2
    assert (stats.first_event_at, stats.last_event_at) == (at(2), at(4))
    assert (
        store.query().export_session("ses_1").events
        == q.search_events(session_ids=["ses_1"]).events
    )
