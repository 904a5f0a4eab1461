"""Every ``QueryAPI`` argument is checked before any read (issue 11, class 9, the
query side), the same way on memory, SQLite and PostgreSQL.

A bad value is ``validation_error`` with ``details.field`` naming the argument, and
nothing is read for it; a bad cursor is ``invalid_cursor``. Before, the same bad value
was a ``TypeError`` on every backend, ``[]`` on SQLite and ``storage_error`` on
PostgreSQL, or a lost connection, retried, for a long id list. The Hypothesis tests at
the end drive random arguments and cursor strings through every method.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_query_api import add_run, add_session, at, event, fails, repack, unpack

from agent_sessions import (
    AgentSessionsError,
    ErrorCode,
    EventType,
    QueryAPI,
    RunStatus,
    SessionStatus,
)
from agent_sessions.composition import Store
from agent_sessions.services.query_input import MAX_FILTER_VALUES

# the methods and their arguments ---------------------------------------------------------

#: Each method's keyword arguments (``session_id`` of the two that take it
#: positionally is passed by keyword too).
METHODS: dict[str, tuple[str, ...]] = {
    "search_sessions": (
        "agent_id", "status", "provider", "tags", "created_after", "created_before",
        "include_deleted", "order_by", "limit", "cursor", "stale_ok",
    ),
    "get_session_stats": ("session_id", "stale_ok"),
    "search_runs": (
        "session_id", "provider", "status", "started_after", "started_before", "min_tokens",
        "order_by", "limit", "cursor", "stale_ok",
    ),
    "get_usage_summary": ("session_id", "provider", "since", "until", "stale_ok"),
    "get_usage_by_day": ("provider", "model", "since_day", "until_day", "stale_ok"),
    "get_cost_summary": (
        "session_id", "provider", "since", "until", "agent_id", "pricing_table", "stale_ok",
    ),
    "search_events": (
        "session_ids", "run_ids", "types", "providers", "since", "until", "correlation_id",
        "order_by", "limit", "cursor", "stale_ok",
    ),
    "count_events": (
        "session_ids", "run_ids", "types", "providers", "since", "until", "correlation_id",
        "stale_ok",
    ),
    "export_session": ("session_id", "include_artifacts"),
}  # fmt: skip

#: Methods that need a session id, and a session the seed below creates.
NEEDS_SESSION = {"get_session_stats", "export_session"}


def call(q: QueryAPI, method: str, **kwargs: Any) -> Any:
    if method in NEEDS_SESSION:
        kwargs.setdefault("session_id", "ses_1")
    return getattr(q, method)(**kwargs)


def seed(store: Store) -> None:
    add_session(store, "ses_1", agent_id="a", tags=["x"])
    add_session(store, "ses_2", agent_id="b", created=5)
    add_run(store, "ses_1", "run_1", provider="acme", usage={"total_tokens": 10}, cost=0.5)
    store.append_events([event("ses_1", "evt_1", run_id="run_1", provider="acme")])


class ReadSpy:
    """The read models of a store, noting every read: a refused argument reads nothing."""

    def __init__(self, store: Store) -> None:
        self._models = store.read_models
        self.reads = 0

    def read(self, work: Callable[[Any], Any], **options: Any) -> Any:
        self.reads += 1
        return self._models.read(work, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._models, name)


class StoreSpy:
    """The store, noting every call of the port's reads that ``QueryAPI`` makes."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if name in ("get_session", "list_runs", "get_events", "get_events_by_ids"):
            self.reads += 1
        return attribute


@pytest.fixture
def spied(store: Store) -> tuple[QueryAPI, ReadSpy, StoreSpy]:
    seed(store)
    models, port = ReadSpy(store), StoreSpy(store)
    return QueryAPI(port, models), models, port  # type: ignore[arg-type]


# bad values, one by one --------------------------------------------------------------------

NAIVE = datetime(2026, 1, 1)
WIDE_DIGITS = "\uff12\uff10\uff12\uff16"  # "2026" in full-width digits: no ASCII day
FIRST = datetime.min.replace(tzinfo=timezone(timedelta(hours=5)))
LAST = datetime.max.replace(tzinfo=timezone(-timedelta(hours=9)))
TOO_MANY = [f"ses_{i}" for i in range(70_000)]

#: (method, arguments, the field the error names)
BAD: list[Any] = [
    # the examples of the issue
    ("search_sessions", {"tags": 5}, "tags"),
    ("search_sessions", {"agent_id": 5}, "agent_id"),
    ("search_events", {"session_ids": [1, 2]}, "session_ids"),
    ("count_events", {"session_ids": TOO_MANY}, "session_ids"),
    ("search_events", {"session_ids": TOO_MANY}, "session_ids"),
    ("search_runs", {"min_tokens": 2**70}, "min_tokens"),
    ("search_runs", {"min_tokens": 2**63}, "min_tokens"),
    ("search_sessions", {"limit": 10**30}, "limit"),
    ("search_events", {"limit": -(10**30)}, "limit"),
    ("get_usage_summary", {"since": NAIVE}, "since"),
    ("get_usage_summary", {"until": NAIVE}, "until"),
    ("get_cost_summary", {"since": NAIVE}, "since"),
    ("get_cost_summary", {"until": NAIVE}, "until"),
    ("search_events", {"since": NAIVE}, "since"),
    ("count_events", {"until": NAIVE}, "until"),
    ("search_sessions", {"created_after": NAIVE}, "created_after"),
    ("search_runs", {"started_before": NAIVE}, "started_before"),
    # a value of another type, wherever a string is expected
    ("search_sessions", {"tags": [1]}, "tags"),
    ("search_sessions", {"tags": {"x": 1}}, "tags"),
    ("search_sessions", {"provider": 5}, "provider"),
    ("search_sessions", {"provider": b"acme"}, "provider"),
    ("search_runs", {"session_id": 5}, "session_id"),
    ("search_runs", {"provider": ["acme"]}, "provider"),
    ("get_usage_summary", {"session_id": 5}, "session_id"),
    ("get_usage_summary", {"provider": 1.5}, "provider"),
    ("get_usage_by_day", {"provider": 5}, "provider"),
    ("get_usage_by_day", {"model": ["m"]}, "model"),
    ("get_cost_summary", {"agent_id": 5}, "agent_id"),
    ("get_cost_summary", {"session_id": True}, "session_id"),
    ("search_events", {"run_ids": 7}, "run_ids"),
    ("search_events", {"providers": [None]}, "providers"),
    ("count_events", {"correlation_id": 5}, "correlation_id"),
    ("get_session_stats", {"session_id": 5}, "session_id"),
    ("get_session_stats", {"session_id": ""}, "session_id"),
    ("export_session", {"session_id": None}, "session_id"),
    # text no backend can hold the same way
    ("search_sessions", {"agent_id": "a\x00b"}, "agent_id"),
    ("search_sessions", {"agent_id": "a\ud800b"}, "agent_id"),
    ("search_runs", {"provider": "\x00"}, "provider"),
    ("search_events", {"session_ids": ["ok", "b\udfff"]}, "session_ids"),
    ("count_events", {"correlation_id": "c\x00"}, "correlation_id"),
    ("get_session_stats", {"session_id": "ses\x00"}, "session_id"),
    ("export_session", {"session_id": "\ud800"}, "session_id"),
    ("search_sessions", {"tags": ["x\x00"]}, "tags"),
    # days
    ("get_usage_by_day", {"since_day": 5}, "since_day"),
    ("get_usage_by_day", {"since_day": "garbage"}, "since_day"),
    ("get_usage_by_day", {"until_day": "2026-13-01"}, "until_day"),
    ("get_usage_by_day", {"until_day": "2026-1-1"}, "until_day"),
    ("get_usage_by_day", {"since_day": "2026-01-01T00:00"}, "since_day"),
    ("get_usage_by_day", {"since_day": WIDE_DIGITS + "-01-01"}, "since_day"),
    ("get_usage_by_day", {"since_day": datetime(2026, 1, 1, tzinfo=UTC)}, "since_day"),
    # datetimes
    ("search_sessions", {"created_before": "2026-01-01"}, "created_before"),
    ("search_events", {"since": date(2026, 1, 1)}, "since"),
    ("search_runs", {"started_after": 0}, "started_after"),
    # flags
    ("search_sessions", {"include_deleted": "no"}, "include_deleted"),
    ("search_sessions", {"include_deleted": 1}, "include_deleted"),
    ("search_sessions", {"stale_ok": "x"}, "stale_ok"),
    ("get_session_stats", {"stale_ok": 0}, "stale_ok"),
    ("export_session", {"include_artifacts": "yes"}, "include_artifacts"),
    # orders, limits, pricing
    ("search_sessions", {"order_by": 5}, "order_by"),
    ("search_events", {"order_by": ["sequence_asc"]}, "order_by"),
    ("search_runs", {"limit": 2.0}, "limit"),
    ("search_runs", {"min_tokens": -1}, "min_tokens"),
    ("search_runs", {"min_tokens": "5"}, "min_tokens"),
    ("search_runs", {"min_tokens": True}, "min_tokens"),
    ("get_cost_summary", {"pricing_table": 5}, "pricing_table"),
    ("get_cost_summary", {"pricing_table": {"acme": 5}}, "pricing_table"),
    ("get_cost_summary", {"pricing_table": {"acme": {"input": "x", "output": 1}}}, "pricing_table"),
    ("get_cost_summary", {"pricing_table": {"acme": {"input": 10**400, "output": 1}}},
     "pricing_table"),
    # enum lists
    ("search_sessions", {"status": "running"}, "status"),
    ("search_runs", {"status": [1]}, "status"),
    ("search_events", {"types": "bogus"}, "types"),
    ("count_events", {"types": {"a": 1}}, "types"),
]  # fmt: skip


def _id(case: Any) -> str:
    method, kwargs = case[:2]
    text = ",".join(f"{k}={v!r}"[:40] for k, v in kwargs.items())
    return f"{method}({text})"


def test_a_bad_argument_is_a_validation_error_naming_it_before_any_read(
    spied: tuple[QueryAPI, ReadSpy, StoreSpy],
) -> None:
    # One store per backend for every case (a store per case took minutes on PostgreSQL);
    # the failures are collected so that one run names them all.
    q, models, port = spied
    wrong: list[str] = []
    for case in BAD:
        method, kwargs, field = case
        try:
            call(q, method, **kwargs)
        except Exception as error:  # any other exception is the defect
            code = getattr(error, "code", None)
            named = getattr(error, "details", {}).get("field")
            if (code, named) != (ErrorCode.VALIDATION_ERROR, field):
                wrong.append(f"{_id(case)}: {error!r}")
        else:
            wrong.append(f"{_id(case)}: answered")
        if (models.reads, port.reads) != (0, 0):
            wrong.append(f"{_id(case)}: read before refusing")
            models.reads = port.reads = 0
    assert wrong == []
    # The store still answers.
    assert q.count_events() == 1


#: Values that look odd but are queries all the same: each gets an answer.
GOOD: list[Any] = [
    ("search_sessions", {"tags": "x"}),  # one tag, not the characters of a string
    ("search_sessions", {"tags": ("x",), "status": {"pending"}, "provider": frozenset()}),
    ("search_sessions", {"agent_id": ""}),
    ("search_sessions", {"order_by": "no_such_order"}),  # falls back to the default
    # the first and last instants, in far offsets
    ("search_sessions", {"created_after": FIRST, "created_before": LAST}),
    ("count_events", {"since": FIRST, "until": LAST}),
    ("search_runs", {"min_tokens": 2**63 - 1}),
    ("search_runs", {"min_tokens": 0}),
    ("search_events", {"session_ids": [f"s{i}" for i in range(MAX_FILTER_VALUES)]}),
    ("count_events", {"session_ids": ["ses_1"] * 5000}),  # one distinct value
    ("search_events", {"session_ids": (s for s in ["ses_1"])}),  # any iterable
    ("count_events", {"session_ids": {"ses_1": 1}.keys()}),
    ("count_events", {"since": datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=14)))}),
    ("get_usage_by_day", {"since_day": "2026-01-01", "until_day": "2026-12-31", "model": ""}),
    ("get_cost_summary", {"pricing_table": {"acme": {"input": 0.0, "output": 1e-6}}}),
    ("get_cost_summary", {"pricing_table": {}}),
    ("get_session_stats", {"stale_ok": False}),
    # ``None`` is "not given", as for every filter: the default order, flags off.
    ("search_runs", {"order_by": None}),
    ("count_events", {"stale_ok": None}),
    ("search_sessions", {"include_deleted": None}),
    ("export_session", {"include_artifacts": False}),
]  # fmt: skip


def test_odd_but_valid_arguments_get_an_answer(spied: tuple[QueryAPI, ReadSpy, StoreSpy]) -> None:
    q, _, _ = spied
    for method, kwargs in GOOD:
        call(q, method, **kwargs)


def test_a_lone_tag_is_one_tag(store: Store) -> None:
    seed(store)
    add_session(store, "ses_xy", tags=["x", "y"])
    q = store.query()
    # Before, ``tags="xy"`` searched for the tags "x" and "y".
    assert [s.id for s in q.search_sessions(tags="xy").sessions] == []
    assert {s.id for s in q.search_sessions(tags="x").sessions} == {"ses_1", "ses_xy"}


def test_the_filter_list_limit_is_stated(store: Store) -> None:
    q = store.query()
    ids = [f"s{i}" for i in range(MAX_FILTER_VALUES + 1)]
    with fails(
        ErrorCode.VALIDATION_ERROR, f"session_ids holds more than {MAX_FILTER_VALUES} values"
    ):
        q.count_events(session_ids=ids)
    with pytest.raises(AgentSessionsError) as info:
        q.search_events(run_ids=iter(ids))
    assert info.value.details == {"field": "run_ids", "max": MAX_FILTER_VALUES}
    assert not info.value.retryable


def test_the_largest_lists_on_every_filter_at_once(store: Store) -> None:
    # Four lists at the limit together stay within every backend's bound on parameters.
    seed(store)
    many = [f"x{i}" for i in range(MAX_FILTER_VALUES - 1)]
    q = store.query()
    kwargs: dict[str, Any] = {
        "session_ids": ["ses_1", *many],
        "run_ids": ["run_1", *many],
        "providers": ["acme", *many],
        "types": "message_sent",
    }
    assert [e.id for e in q.search_events(**kwargs).events] == ["evt_1"]
    assert q.count_events(**kwargs) == 1


# forged cursors ----------------------------------------------------------------------------


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


FORGED = [
    pytest.param(b64(b"[" * 100_000 + b"]" * 100_000), id="nested-lists"),
    pytest.param(b64(b'{"a":' * 50_000 + b"1" + b"}" * 50_000), id="nested-maps"),
    pytest.param(b64(b"[" + b"9" * 5000 + b"]"), id="5000-digit-int"),
    pytest.param(
        b64(json.dumps(["session", "updated_at_desc", 1, "s", "f", "\u00e9"]).encode()),
        id="non-ascii-mac",
    ),
    pytest.param(
        b64(b'["session","updated_at_desc",1,"s","f","\\ud800"]'), id="lone-surrogate-mac"
    ),
    pytest.param(
        b64(json.dumps(["session", "updated_at_desc", [[[1]]], "s", "f", "0" * 32]).encode()),
        id="nested-sort-value",
    ),
    pytest.param(
        b64(json.dumps(["session", "updated_at_desc", 1, "s", {"a": 1}, "0" * 32]).encode()),
        id="map-fingerprint",
    ),
    pytest.param(b64(b"NaN"), id="nan"),
    pytest.param("A" * 1_000_001, id="a-megabyte"),
    pytest.param("\ud800", id="lone-surrogate"),
    pytest.param("é", id="non-ascii"),
    pytest.param(["cursor"], id="a-list"),
]


def test_a_forged_cursor_is_an_invalid_cursor(store: Store) -> None:
    q = store.query()
    for param in FORGED:
        [cursor] = param.values
        for operation in (q.search_sessions, q.search_runs, q.search_events):
            with fails(ErrorCode.INVALID_CURSOR):
                operation(cursor=cursor)
    assert q.search_sessions().total_count == 0


def test_a_genuine_cursor_with_its_mac_made_non_ascii(store: Store) -> None:
    seed(store)
    q = store.query()
    payload = unpack(q.search_sessions(limit=1).cursor or "")
    payload[-1] = "é" * len(payload[-1])
    with fails(ErrorCode.INVALID_CURSOR):
        q.search_sessions(cursor=repack(payload))


# hypothesis: anything in, an answer or a coded refusal out ---------------------------------

TEXT = st.text(max_size=12) | st.sampled_from(
    ["ses_1", "run_1", "evt_1", "acme", "a", "x", "", "a\x00", "\ud800", "%", "_", "'"]
)
ZONES = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=23, minutes=59))]
)
DATETIMES = st.datetimes(timezones=ZONES) | st.sampled_from([at(0), at(-1), at(100)])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**63 - 1, 2**63, -(2**63) - 1, 10**30, 10**400])
    | st.floats()
    | TEXT
    | st.binary(max_size=4)
    | DATETIMES
    | st.dates()
)
VALUES = SCALARS | st.lists(SCALARS, max_size=4) | st.dictionaries(TEXT, SCALARS, max_size=2)
STRINGS = st.lists(TEXT, max_size=4) | st.frozensets(TEXT, max_size=4) | TEXT
ORDERS = ["updated_at_desc", "created_at_asc", "started_at_asc", "token_usage_desc",
          "timestamp_desc", "sequence_asc", "bogus"]  # fmt: skip
STATUSES = st.sampled_from(sorted({*SessionStatus, *RunStatus, "bogus"}))
TYPES = st.sampled_from([*EventType, "bogus"])
IDS = st.sampled_from(["ses_1", "ses_2", "run_1", "evt_1", "acme", "a", "x", "c"]) | TEXT


def cursors(genuine: list[str]) -> st.SearchStrategy[Any]:
    """Random strings, random JSON in base64, genuine cursors and edits of them."""
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
        lambda inner: st.lists(inner, max_size=6),
        max_leaves=12,
    )
    edited = st.tuples(st.sampled_from(genuine), st.integers(0, 5), json_values).map(
        lambda t: repack([*unpack(t[0])[: t[1]], t[2], *unpack(t[0])[t[1] + 1 :]])
    )
    return (
        st.none()
        | st.text(max_size=40)
        | json_values.map(lambda v: b64(json.dumps(v).encode()))
        | st.sampled_from(genuine)
        | edited
        | VALUES
    )


def arguments(field: str, genuine: list[str]) -> st.SearchStrategy[Any]:
    """Mostly plausible values of the argument's own kind, sometimes anything."""
    own: dict[str, st.SearchStrategy[Any]] = {
        "status": STATUSES | st.lists(STATUSES, max_size=3),
        "types": TYPES | st.lists(TYPES, max_size=3),
        "tags": STRINGS,
        "provider": STRINGS | IDS,
        "session_ids": STRINGS,
        "run_ids": STRINGS,
        "providers": STRINGS,
        "limit": st.integers(-2, 1002) | st.integers(1, 3),
        "min_tokens": st.integers(-1, 2**64),
        "order_by": st.sampled_from(ORDERS),
        "cursor": cursors(genuine),
        "since_day": st.dates().map(date.isoformat) | TEXT,
        "until_day": st.dates().map(date.isoformat) | TEXT,
        "pricing_table": st.none()
        | st.dictionaries(TEXT, st.dictionaries(st.sampled_from(["input", "output"]), SCALARS)),
    }
    if field in ("include_deleted", "stale_ok", "include_artifacts"):
        plausible = st.booleans()
    elif field.startswith(("created_", "started_")) or field in ("since", "until"):
        plausible = DATETIMES
    else:
        plausible = own.get(field, IDS)
    # One draw in five is anything at all.
    return st.integers(0, 4).flatmap(lambda n: VALUES if n == 0 else plausible)


#: What a method may answer bad input with: a refusal that names the argument.
REFUSALS = {ErrorCode.VALIDATION_ERROR, ErrorCode.INVALID_CURSOR}


def fuzz(store: Store, data: st.DataObject) -> None:
    """One method, a random subset of its arguments with random values: an answer or a
    coded refusal naming one of them, and the store unchanged and answering."""
    q = store.query()
    method = data.draw(st.sampled_from(sorted(METHODS)), label="method")
    genuine = [
        c
        for c in (
            q.search_sessions(limit=1).cursor,
            q.search_runs(limit=1).cursor,
            q.search_events(limit=1).cursor,
        )
        if c is not None
    ]
    names = data.draw(st.sets(st.sampled_from(METHODS[method])), label="arguments")
    kwargs = {name: data.draw(arguments(name, genuine), label=name) for name in sorted(names)}
    refusal: AgentSessionsError | None = None
    try:
        call(q, method, **kwargs)
    except AgentSessionsError as error:
        refusal = error
    if refusal is not None:
        allowed = REFUSALS | ({ErrorCode.SESSION_NOT_FOUND} if method in NEEDS_SESSION else set())
        assert refusal.code in allowed, repr(refusal)
        if refusal.code == ErrorCode.VALIDATION_ERROR:
            assert refusal.details.get("field") in METHODS[method], refusal.details
    # The store still answers, and its contents are unchanged.
    assert q.search_sessions().total_count == 2
    assert q.count_events() == 1


FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(data=st.data())
def test_any_arguments_get_an_answer_or_a_coded_refusal(seeded: Store, data: st.DataObject) -> None:
    fuzz(seeded, data)


@pytest.fixture
def seeded(store: Store) -> Store:
    """One seeded store for all the examples of a backend: queries change nothing."""
    seed(store)
    return store


def test_the_store_still_writes_after_the_fuzzing(seeded: Store) -> None:
    # A refused query leaves no transaction or pooled connection behind.
    q = seeded.query()
    for bad in ({"agent_id": "\x00"}, {"tags": 5}, {"cursor": b64(b"[" * 10_000)}):
        with pytest.raises(AgentSessionsError):
            q.search_sessions(**bad)
    add_session(seeded, "ses_after")
    assert q.search_sessions().total_count == 3


@pytest.mark.slow
@settings(FUZZ, max_examples=3000)
@given(data=st.data())
def test_any_arguments_long(seeded: Store, data: st.DataObject) -> None:
    """The same, longer: ``make test-reliability``."""
    fuzz(seeded, data)
