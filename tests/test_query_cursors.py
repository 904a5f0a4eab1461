"""A query cursor is valid only for the query that made it (issue 11, class 7), on
memory, SQLite and PostgreSQL.

A cursor carries a fingerprint of the query's filters under its signature: used with
other filters it is ``invalid_cursor`` (``details.reason == "filters"``) instead of
paging the other query from the first one's position. Spellings of the same query (a
lone string or a one-element list, list order and repeats, an instant in another time
zone, an enum member or its value) share a fingerprint, and ``limit`` is not part of it,
so a caller may change the page size between pages.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, timedelta, timezone
from typing import Any

import pytest
from test_query_api import add_run, add_session, at, event, fails, repack, unpack

from agent_sessions import AgentSessionsError, ErrorCode, EventType, RunStatus, SessionStatus
from agent_sessions.composition import Store
from agent_sessions.read_models.cursors import query_fingerprint
from agent_sessions.read_models.events import EventSearch
from agent_sessions.read_models.runs import RunFilter
from agent_sessions.read_models.sessions import SessionSearch

FILTERS_DIFFER = "Cursor belongs to a query with other filters"


def seed(store: Store) -> None:
    """Two sessions of agent ``a`` and one of ``b``; runs of two providers; events of
    two sessions, so that every filter below matches at least two items."""
    add_session(store, "ses_1", agent_id="a", created=0, updated=40, tags=["x", "y"])
    add_session(store, "ses_2", agent_id="a", created=10, updated=30, tags=["x", "y"])
    add_session(store, "ses_3", agent_id="b", created=20, updated=20)
    for sid in ("ses_1", "ses_2"):
        for n in (1, 2):
            add_run(
                store,
                sid,
                f"run_{sid[-1]}{n}",
                started=n,
                provider="acme",
                usage={"total_tokens": 100 * n},
            )
    add_run(store, "ses_3", "run_31", started=3, provider="beta")
    for sid in ("ses_1", "ses_2"):
        store.append_events(
            [
                event(
                    sid,
                    f"evt_{sid[-1]}{n}",
                    minute=n,
                    run_id=f"run_{sid[-1]}1",
                    provider="acme",
                    correlation_id="c1",
                )
                for n in (1, 2)
            ]
        )


Query = Callable[..., Any]


def pages(store: Store) -> dict[str, tuple[Query, Callable[[Any], list[str]]]]:
    q = store.query()
    return {
        "sessions": (q.search_sessions, lambda p: [s.id for s in p.sessions]),
        "runs": (q.search_runs, lambda p: [r.id for r in p.runs]),
        "events": (q.search_events, lambda p: [e.id for e in p.events]),
    }


#: Per kind, a query using every filter, each of which its items match.
BASE: dict[str, dict[str, Any]] = {
    "sessions": {
        "agent_id": "a",
        "status": "pending",
        "provider": "acme",
        "tags": ["x"],
        "created_after": at(-1),
        "created_before": at(100),
        "include_deleted": False,
    },
    "runs": {
        "session_id": "ses_1",
        "provider": "acme",
        "status": "pending",
        "started_after": at(-1),
        "started_before": at(100),
        "min_tokens": 50,
    },
    "events": {
        "session_ids": ["ses_1", "ses_2"],
        "run_ids": ["run_11", "run_21"],
        "types": "message_sent",
        "providers": "acme",
        "since": at(-1),
        "until": at(100),
        "correlation_id": "c1",
    },
}

#: Per kind and filter: another value for it (``None``: the filter left out).
OTHER: dict[str, dict[str, list[Any]]] = {
    "sessions": {
        "agent_id": ["b", None],
        "status": [["pending", "active"], None],
        "provider": ["beta", ["acme", "beta"], None],
        "tags": [["x", "y"], None],
        "created_after": [at(-2), None],
        "created_before": [at(99), None],
        "include_deleted": [True],
    },
    "runs": {
        "session_id": ["ses_2", None],
        "provider": ["beta", None],
        "status": ["running", None],
        "started_after": [at(-2), None],
        "started_before": [at(99), None],
        "min_tokens": [0, 51, None],
    },
    "events": {
        "session_ids": [["ses_1"], None],
        "run_ids": ["run_11", None],
        "types": [["message_sent", "message_received"], None],
        "providers": [["acme", "beta"], None],
        "since": [at(-2), None],
        "until": [at(99), None],
        "correlation_id": ["c2", None],
    },
}


@pytest.mark.parametrize("kind", list(OTHER))
def test_a_cursor_is_refused_by_a_query_with_one_filter_changed(store: Store, kind: str) -> None:
    seed(store)
    query, ids = pages(store)[kind]
    first = query(**BASE[kind], limit=1)
    assert len(ids(first)) == 1
    assert first.cursor is not None
    # The genuine continuation works ...
    assert ids(query(**BASE[kind], limit=1, cursor=first.cursor)) != ids(first)
    # ... and the same position with any one filter changed does not.
    for name, values in OTHER[kind].items():
        for value in values:
            with fails(ErrorCode.INVALID_CURSOR, FILTERS_DIFFER):
                query(**{**BASE[kind], name: value}, limit=1, cursor=first.cursor)


def test_the_reported_example_agent_a_then_agent_b(store: Store) -> None:
    seed(store)
    q = store.query()
    first = q.search_sessions(agent_id="a", limit=1)
    assert [s.id for s in first.sessions] == ["ses_1"]
    with pytest.raises(AgentSessionsError) as info:
        q.search_sessions(agent_id="b", cursor=first.cursor)
    assert info.value.code == ErrorCode.INVALID_CURSOR
    assert info.value.details == {"reason": "filters"}


def test_a_cursor_of_an_unfiltered_query_is_refused_by_a_filtered_one(store: Store) -> None:
    seed(store)
    for kind, (query, _) in pages(store).items():
        cursor = query(limit=1).cursor
        with fails(ErrorCode.INVALID_CURSOR, FILTERS_DIFFER):
            query(**BASE[kind], cursor=cursor)
        cursor = query(**BASE[kind], limit=1).cursor
        with fails(ErrorCode.INVALID_CURSOR, FILTERS_DIFFER):
            query(cursor=cursor)


#: Per kind: spellings of the base query that must continue its pages.
SAME: dict[str, list[dict[str, Any]]] = {
    "sessions": [
        {"status": ["pending"], "provider": ["acme"], "tags": "x"},
        {"status": SessionStatus.PENDING, "provider": ("acme", "acme"), "tags": {"x"}},
        {"status": ["pending", "pending"], "tags": frozenset({"x"})},
        {
            "created_after": at(-1).astimezone(timezone(timedelta(hours=5, minutes=30))),
            "created_before": at(100).astimezone(timezone(-timedelta(hours=8))),
        },
    ],
    "runs": [
        {"status": ["pending"]},
        {"status": RunStatus.PENDING},
        {"status": ("pending", "pending")},
        {"started_after": at(-1).astimezone(timezone(timedelta(hours=-3)))},
    ],
    "events": [
        {"session_ids": ["ses_2", "ses_1"], "run_ids": ("run_21", "run_11", "run_11")},
        {"session_ids": {"ses_1", "ses_2"}, "types": ["message_sent"]},
        {"types": EventType.MESSAGE_SENT, "providers": ["acme"]},
        {"types": [EventType.MESSAGE_SENT], "until": at(100).astimezone(UTC)},
    ],
}


@pytest.mark.parametrize("kind", list(SAME))
def test_another_spelling_of_the_same_query_continues_its_pages(store: Store, kind: str) -> None:
    seed(store)
    query, ids = pages(store)[kind]
    first = query(**BASE[kind], limit=1)
    expected = ids(query(**BASE[kind], limit=1, cursor=first.cursor))
    for spelling in SAME[kind]:
        respelt = {**BASE[kind], **spelling}
        assert ids(query(**respelt, limit=1, cursor=first.cursor)) == expected, spelling


@pytest.mark.parametrize("kind", ["sessions", "runs", "events"])
def test_the_page_size_may_change_between_pages(store: Store, kind: str) -> None:
    seed(store)
    query, ids = pages(store)[kind]
    whole = ids(query(**BASE[kind], limit=100))
    assert len(whole) >= 2
    first = query(**BASE[kind], limit=1)
    rest = query(**BASE[kind], limit=100, cursor=first.cursor)
    assert ids(first) + ids(rest) == whole


def test_stale_ok_is_not_a_filter(store: Store) -> None:
    seed(store)
    q = store.query()
    first = q.search_sessions(agent_id="a", limit=1)
    page = q.search_sessions(agent_id="a", limit=1, cursor=first.cursor, stale_ok=True)
    assert [s.id for s in page.sessions] == ["ses_2"]


def test_the_fingerprint_is_under_the_signature(store: Store) -> None:
    # Replacing the fingerprint of a cursor by that of the other query breaks its MAC.
    seed(store)
    q = store.query()
    # Two queries with a second page each (the last page has no cursor).
    a = unpack(q.search_sessions(agent_id="a", limit=1).cursor or "")
    b = unpack(q.search_sessions(tags=["x"], limit=1).cursor or "")
    assert a[4] != b[4]
    with fails(ErrorCode.INVALID_CURSOR, "Cursor does not match expected format"):
        q.search_sessions(tags=["x"], cursor=repack([*a[:4], b[4], a[5]]))


# the fingerprint itself ----------------------------------------------------------------


def test_equivalent_filters_share_a_fingerprint() -> None:
    assert query_fingerprint(SessionSearch(tags=frozenset({"a", "b", "c"}))) == (
        query_fingerprint(SessionSearch(tags=frozenset({"c", "b", "a"})))
    )
    assert query_fingerprint(EventSearch(session_ids=["s2", "s1", "s1"])) == (
        query_fingerprint(EventSearch(session_ids=("s1", "s2")))
    )
    assert query_fingerprint(EventSearch()) == query_fingerprint(EventSearch(session_ids=[]))


def test_different_filters_have_different_fingerprints() -> None:
    variants = [
        SessionSearch(),
        SessionSearch(agent_id="a"),
        SessionSearch(agent_id=""),
        SessionSearch(statuses=["a"]),
        SessionSearch(providers=["a"]),
        SessionSearch(tags=frozenset({"a"})),
        SessionSearch(include_deleted=True),
        SessionSearch(created_after_us=0),
        SessionSearch(created_before_us=0),
    ]
    assert len({query_fingerprint(v) for v in variants}) == len(variants)
    # A value moved to another field is another query.
    assert query_fingerprint(RunFilter(session_id="x")) != query_fingerprint(
        RunFilter(provider="x")
    )
    assert query_fingerprint(EventSearch(session_ids=["x"])) != query_fingerprint(
        EventSearch(run_ids=["x"])
    )
    # One list of two values is not two lists of one.
    assert query_fingerprint(EventSearch(session_ids=["a,b"])) != query_fingerprint(
        EventSearch(session_ids=["a", "b"])
    )


_PRINT = (
    "from agent_sessions.read_models.cursors import query_fingerprint\n"
    "from agent_sessions.read_models.sessions import SessionSearch\n"
    "print(query_fingerprint(SessionSearch(tags=frozenset(map(str, range(50))))))\n"
)


def test_the_fingerprint_does_not_depend_on_the_process() -> None:
    # Set iteration order changes with the hash seed: a cursor made in one process must
    # still be accepted by every other process of the store.
    prints = {
        subprocess.run(
            [sys.executable, "-c", _PRINT],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(prints) == 1
