"""Bad input on the store and record side answers ``validation_error`` naming the field
(issue 11, class 9), on memory, SQLite and PostgreSQL, before any write.

Before: a 5,000-digit int inside event data raised a bare ``ValueError`` when saving,
``Session(created_at=None)`` an ``AttributeError``, ``datetime.min`` at +23:00 an
``OverflowError``; a naive datetime inside data was converted with the machine's
timezone; NUL in an id or ``agent_id`` was stored by two backends and refused by
PostgreSQL as a ``storage_error``; ``open_store`` with ``schema=x"y`` or
``pool_size=-1`` was a *retryable* ``storage_connection_failed``.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_sessions import (
    AgentSessionsError,
    Event,
    EventType,
    Run,
    Session,
    open_store,
)
from agent_sessions.composition import Store
from agent_sessions.domain.serialization import MAX_FIELD_BYTES, MAX_INT_DIGITS


def incompressible(size: int) -> str:
    """ASCII text of ``size`` characters that PostgreSQL cannot compress (its index
    entries are compressed: a long run of one letter fits where this does not)."""
    digests = (hashlib.sha256(str(n).encode()).hexdigest() for n in range(size // 64 + 1))
    return "".join(digests)[:size]


#: One byte over the bound on text that may reach an index column (MAX_FIELD_BYTES).
LONG = incompressible(MAX_FIELD_BYTES + 1)
FAR_EAST = timezone(timedelta(hours=23, minutes=59))
FAR_WEST = timezone(timedelta(hours=-23, minutes=-59))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


def refused(action: Callable[[], object], field: str) -> None:
    with pytest.raises(AgentSessionsError) as caught:
        action()
    assert caught.value.code == "validation_error", caught.value
    assert caught.value.details["field"] == field


def message(session_id: str, **fields: Any) -> Event:
    return Event.new(type=EventType.MESSAGE_SENT, session_id=session_id, **fields)


def nothing_written(store: Store, session: Session) -> None:
    assert store.list_sessions() == [session]
    assert store.get_events(session.id) == []
    assert store.list_runs(session.id) == []
    assert store.maintenance().health_check() == []


# record fields and JSON values --------------------------------------------------------

HUGE = 10**MAX_INT_DIGITS  # MAX_INT_DIGITS + 1 digits

REFUSED: list[tuple[str, Callable[[str], object], str]] = [
    ("5000-digit int in data", lambda sid: message(sid, data={"n": 10**5000}), "data"),
    ("int over the digit bound", lambda sid: message(sid, metadata={"n": [-HUGE]}), "metadata"),
    (
        "5000-digit int in context",
        lambda sid: Session.new(agent_id="a", context={"n": 10**5000}),
        "context",
    ),
    ("5000-digit int in run input", lambda sid: Run.new(session_id=sid, input=HUGE), "input"),
    ("created_at None", lambda sid: Session(id="s", agent_id="a", created_at=None), "created_at"),  # type: ignore[arg-type]
    ("created_at text", lambda sid: Session(id="s", agent_id="a", created_at="2020"), "created_at"),  # type: ignore[arg-type]
    ("updated_at int", lambda sid: Session(id="s", agent_id="a", updated_at=5), "updated_at"),  # type: ignore[arg-type]
    ("deleted_at text", lambda sid: Session(id="s", agent_id="a", deleted_at="x"), "deleted_at"),  # type: ignore[arg-type]
    ("agent_id int", lambda sid: Session(id="s", agent_id=5), "agent_id"),  # type: ignore[arg-type]
    ("started_at None", lambda sid: Run(id="r", session_id=sid, started_at=None), "started_at"),  # type: ignore[arg-type]
    (
        "datetime.min at +23:59",
        lambda sid: Session.new(agent_id="a").replace(
            created_at=datetime.min.replace(tzinfo=FAR_EAST)
        ),
        "created_at",
    ),
    (
        "datetime.max at -23:59",
        lambda sid: Session.new(agent_id="a").replace(
            updated_at=datetime.max.replace(tzinfo=FAR_WEST)
        ),
        "updated_at",
    ),
    (
        "event timestamp datetime.min at +23:59",
        lambda sid: message(sid, timestamp=datetime.min.replace(tzinfo=FAR_EAST)),
        "timestamp",
    ),
    (
        "run ended_at datetime.max at -23:59",
        lambda sid: Run.new(session_id=sid).replace(ended_at=datetime.max.replace(tzinfo=FAR_WEST)),
        "ended_at",
    ),
    (
        "far datetime inside data",
        lambda sid: message(sid, data={"t": datetime.min.replace(tzinfo=FAR_EAST)}),
        "data",
    ),
    (
        "naive datetime inside data",
        lambda sid: message(sid, data={"t": datetime(2020, 1, 1)}),
        "data",
    ),
    (
        "naive datetime inside context",
        lambda sid: Session.new(agent_id="a", context={"t": [datetime(2020, 1, 1)]}),
        "context",
    ),
    ("NUL in agent_id", lambda sid: Session.new(agent_id="a\x00b"), "agent_id"),
    ("NUL in session id", lambda sid: Session.new(agent_id="a").replace(id="s\x00"), "id"),
    ("NUL in tag", lambda sid: Session.new(agent_id="a", tags=["ok", "t\x00"]), "tags"),
    (
        "NUL in event id",
        lambda sid: Event(id="e\x00", type=EventType.MESSAGE_SENT, session_id=sid),
        "id",
    ),
    ("NUL in provider", lambda sid: message(sid, provider="p\x00"), "provider"),
    ("NUL in correlation_id", lambda sid: message(sid, correlation_id="\x00"), "correlation_id"),
    ("NUL in run_id", lambda sid: message(sid, run_id="r\x00"), "run_id"),
    (
        "NUL in run provider",
        lambda sid: Run.new(session_id=sid).with_provider("p\x00", {}),
        "provider",
    ),
    # Text PostgreSQL cannot index past about 2.7 kB (SQLite stored it): ids and every
    # other field that may reach an index column are bound to 1,024 bytes.
    ("long session id", lambda sid: Session.new(agent_id="a", id=LONG), "id"),
    ("long agent_id", lambda sid: Session.new(agent_id=LONG), "agent_id"),
    ("long tag", lambda sid: Session.new(agent_id="a", tags=[LONG]), "tags"),
    (
        "long parent",
        lambda sid: Session.new(agent_id="a", parent_session_id=LONG),
        "parent_session_id",
    ),
    ("long run id", lambda sid: Run.new(session_id=sid, id=LONG), "id"),
    ("long run provider", lambda sid: Run.new(session_id=sid).with_provider(LONG, {}), "provider"),
    ("long event id", lambda sid: message(sid, id=LONG), "id"),
    ("long event run_id", lambda sid: message(sid, run_id=LONG), "run_id"),
    ("long correlation_id", lambda sid: message(sid, correlation_id=LONG), "correlation_id"),
    ("long multibyte id", lambda sid: message(sid, id="é" * 513), "id"),
]


@pytest.mark.parametrize(("build", "field"), [pytest.param(b, f, id=n) for n, b, f in REFUSED])
def test_bad_record_values_are_refused_naming_the_field(
    store: Store, build: Callable[[str], object], field: str
) -> None:
    session = Session.new(agent_id="agent")
    store.save_session(session)
    refused(lambda: build(session.id), field)
    nothing_written(store, session)


def test_ints_up_to_the_digit_bound_and_nul_inside_json_come_back_identical(
    store: Store,
) -> None:
    """Inside JSON values NUL (in keys and text) and ints of up to ``MAX_INT_DIGITS``
    digits are kept, the same on every backend."""
    payload = {"k\x00": "v\x00", "big": HUGE - 1, "small": -(HUGE - 1), "list": ["\x00"]}
    session = Session.new(agent_id="agent", context=payload, metadata=payload)
    store.save_session(session)
    run = Run.new(session_id=session.id, input=payload, metadata=payload)
    store.save_run(run)
    [stored] = store.append_events([message(session.id, data=payload, metadata=payload)])
    assert store.get_session(session.id) == session
    assert store.get_run(run.id) == run
    assert store.get_events(session.id) == [stored]
    assert stored.data == payload


def test_aware_datetimes_inside_data_are_stored_as_utc_text(store: Store) -> None:
    session = Session.new(agent_id="agent")
    store.save_session(session)
    at = datetime(2020, 1, 1, 12, tzinfo=timezone(timedelta(hours=5)))
    [stored] = store.append_events([message(session.id, data={"t": at})])
    assert store.get_events(session.id)[0].data == {"t": "2020-01-01T07:00:00+00:00"}
    assert stored.data == {"t": "2020-01-01T07:00:00+00:00"}


def test_extreme_timestamps_that_have_a_utc_date_are_stored(store: Store) -> None:
    """The ends of the range at an offset that keeps them in years 1 to 9999."""
    first = datetime.min.replace(tzinfo=FAR_WEST)
    last = datetime.max.replace(tzinfo=FAR_EAST)
    session = Session.new(agent_id="agent").replace(created_at=first, updated_at=last)
    store.save_session(session)
    [stored] = store.append_events([message(session.id, timestamp=last)])
    assert store.get_session(session.id) == session
    assert store.get_events(session.id) == [stored]
    assert store.query().search_sessions().sessions == [session]


def test_ids_of_the_bound_are_stored_on_every_backend(store: Store) -> None:
    """1,024 bytes each, two in one index entry (session and run id of an event)."""
    longest = incompressible(MAX_FIELD_BYTES)
    session = Session.new(agent_id=longest[::-1], id=longest, tags=[longest])
    store.save_session(session)
    run = Run.new(session_id=session.id, id=longest[1:] + "r").with_provider(longest, {})
    store.save_run(run)
    event = message(session.id, id="é" * 512, run_id=run.id, provider=longest)
    [stored] = store.append_events([event])
    assert store.get_session(session.id) == session
    assert store.get_run(run.id) == run
    assert store.get_events(session.id) == [stored]
    assert store.query().search_sessions(agent_id=session.agent_id).sessions == [session]
    assert store.maintenance().health_check() == []


# port arguments ------------------------------------------------------------------------

PORT_CALLS: list[tuple[str, Callable[[Store, str], object], str]] = [
    ("get_events limit", lambda s, sid: s.get_events(sid, limit=10**30), "limit"),
    ("get_events after", lambda s, sid: s.get_events(sid, after=2**63), "after"),
    ("get_events before", lambda s, sid: s.get_events(sid, before=10**30), "before"),
    (
        "get_events wait",
        lambda s, sid: s.get_events(sid, wait_timeout_ms=10**30),
        "wait_timeout_ms",
    ),
    ("list_sessions limit", lambda s, sid: s.list_sessions(limit=10**30), "limit"),
    ("list_sessions offset", lambda s, sid: s.list_sessions(offset=2**64), "offset"),
    ("list_runs limit", lambda s, sid: s.list_runs(sid, limit=10**30), "limit"),
    ("list_runs offset", lambda s, sid: s.list_runs(sid, offset=10**30), "offset"),
]


@pytest.mark.parametrize(("call", "field"), [pytest.param(c, f, id=n) for n, c, f in PORT_CALLS])
def test_huge_port_arguments_are_refused_naming_the_field(
    store: Store, call: Callable[[Store, str], object], field: str
) -> None:
    session = Session.new(agent_id="agent")
    store.save_session(session)
    refused(lambda: call(store, session.id), field)


def test_a_deeply_nested_value_where_a_number_belongs_is_refused_naming_the_field(
    store: Store,
) -> None:
    """Describing the refused value in ``details`` raised ``RecursionError`` (its
    ``repr`` recursed as deep as the value) instead of the refusal."""
    deep: list[Any] = []
    for _ in range(20_000):
        deep = [deep]
    session = Session.new(agent_id="agent")
    store.save_session(session)
    refused(lambda: store.get_events(session.id, limit=deep), "limit")
    refused(lambda: store.list_sessions(offset=deep), "offset")
    refused(lambda: Run.new(session_id=session.id).replace(turn_count=deep), "turn_count")


NUL_ID_READS: list[tuple[str, Callable[[Store], object], str]] = [
    ("get_session", lambda s: s.get_session("s\x00"), "session_id"),
    ("get_events", lambda s: s.get_events("s\x00"), "session_id"),
    ("get_events_by_ids", lambda s: s.get_events_by_ids(["e\x00"]), "event_id"),
    ("get_session long", lambda s: s.get_session(LONG), "session_id"),
    ("get_run long", lambda s: s.get_run(LONG), "run_id"),
]


@pytest.mark.parametrize(("call", "field"), [pytest.param(c, f, id=n) for n, c, f in NUL_ID_READS])
def test_nul_in_an_id_read_is_refused_naming_the_field(
    store: Store, call: Callable[[Store], object], field: str
) -> None:
    refused(lambda: call(store), field)


def test_seventy_thousand_ids_in_one_read(store: Store) -> None:
    session = Session.new(agent_id="agent")
    store.save_session(session)
    stored = store.append_events([message(session.id) for _ in range(3)])
    ids = [f"evt_{n:032x}" for n in range(70_000)] + [e.id for e in stored]
    assert sorted(e.id for e in store.get_events_by_ids(ids)) == sorted(e.id for e in stored)


# open_store options --------------------------------------------------------------------

BAD_OPTIONS = [
    ("schema", 'x"y'),
    ("schema", "a b"),
    ("schema", ""),
    ("pool_size", "-1"),
    ("pool_size", "0"),
    ("pool_size", "1.5"),
    ("max_overflow", "-1"),
    ("connect_timeout", "nan"),
    ("lock_timeout", "-5"),
    ("statement_timeout", "inf"),
    ("application_name", "a\x00b"),
]


@pytest.mark.parametrize(("name", "value"), BAD_OPTIONS)
@pytest.mark.parametrize("how", ["query", "keyword"])
def test_bad_postgres_options_are_refused_before_connecting(
    name: str, value: str, how: str
) -> None:
    """No server answers on this port: a connection attempt would fail differently."""
    url = "postgresql://nobody@127.0.0.1:9/none"
    query = f"{url}?{name}={quote(value)}"

    def action() -> object:
        return open_store(query) if how == "query" else open_store(url, **{name: value})

    refused(action, name)


@pytest.mark.parametrize("value", ["-1", "nan", "x"])
def test_bad_sqlite_lock_timeout_is_refused(tmp_path: Path, value: str) -> None:
    refused(
        lambda: open_store(f"sqlite:///{tmp_path / 's.db'}?lock_timeout={value}"), "lock_timeout"
    )


# a full disk ---------------------------------------------------------------------------

FULL_DISK_CHILD = textwrap.dedent(
    """
    import resource, signal, sys
    from agent_sessions import AgentSessionsError, Event, EventType, open_store
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    url, session_id = sys.argv[1], sys.argv[2]
    store = open_store(url)
    size = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, size[1]))
    try:
        store.query().search_sessions()
        store.append_events(
            [Event.new(type=EventType.MESSAGE_SENT, session_id=session_id, data={"x": "y" * 10**6})]
        )
    except AgentSessionsError as exc:
        print("CODED", exc.code)
    except BaseException as exc:
        print("RAW", type(exc).__name__, exc)
    else:
        print("WROTE")
    """
)


def test_the_first_query_on_a_full_disk_is_a_coded_storage_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with open_store(url) as store:
        session = Session.new(agent_id="agent")
        store.save_session(session)
        store.append_events([message(session.id) for _ in range(50)])
    result = subprocess.run(
        [sys.executable, "-c", FULL_DISK_CHILD, url, session.id],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout.startswith("CODED storage_"), (result.stdout, result.stderr[-2000:])
    with open_store(url) as store:
        assert len(store.get_events(session.id)) == 50
        assert store.maintenance().health_check() == []


# hypothesis: hostile values through every write and read -------------------------------

TEXT = st.text(max_size=8) | st.sampled_from(["\x00", "a\x00", "\ud800", "log:x", ""])
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([HUGE - 1, 2**63])
    | st.floats()
    | TEXT
    | st.datetimes(timezones=st.none() | st.timezones() | st.just(FAR_EAST))
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
ANY = JSON | st.integers() | st.just(object())
DATES = st.datetimes(
    timezones=st.none() | st.timezones() | st.sampled_from([FAR_EAST, FAR_WEST, UTC])
) | st.sampled_from([None, "2020-01-01", 0])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    agent_id=TEXT | ANY,
    tags=st.lists(TEXT, max_size=2) | ANY,
    context=st.dictionaries(TEXT, JSON, max_size=2) | ANY,
    created_at=DATES,
    data=st.dictionaries(TEXT, JSON, max_size=2) | ANY,
    provider=st.none() | TEXT,
    timestamp=DATES,
    run_input=JSON,
    # Drawn as a digit count: Hypothesis cannot print an int past the limit it checks.
    huge_digits=st.sampled_from([None, MAX_INT_DIGITS + 1, 5000]),
)
def test_hostile_values_are_stored_identically_or_refused_naming_the_field(
    store: Store,
    agent_id: Any,
    tags: Any,
    context: Any,
    created_at: Any,
    data: Any,
    provider: Any,
    timestamp: Any,
    run_input: Any,
    huge_digits: int | None,
) -> None:
    if huge_digits is not None and isinstance(data, dict):
        data = {**data, "huge": [-(10**huge_digits)]}
    session = built(
        lambda: Session.new(agent_id=agent_id, tags=tags, context=context).replace(
            created_at=created_at
        ),
        {"agent_id", "tags", "context", "created_at"},
    ) or Session.new(agent_id="agent")
    store.save_session(session)
    assert store.get_session(session.id) == session

    before = store.get_events(session.id)
    event = built(
        lambda: message(session.id, data=data, provider=provider, timestamp=timestamp),
        {"data", "provider", "timestamp"},
    )
    if event is not None:
        [stored] = store.append_events([event])
        assert store.get_events(session.id) == [*before, stored]
        assert stored.data == event.data

    run = built(
        lambda: Run.new(session_id=session.id, input=run_input).with_provider(provider, {}),
        {"input", "provider"},
    )
    if run is not None:
        store.save_run(run)
        assert store.get_run(run.id) == run
    assert store.maintenance().health_check() == []


_T = TypeVar("_T")


def built(make: Callable[[], _T], fields: set[str]) -> _T | None:
    """``make()``, or ``None`` when it is refused with ``validation_error`` naming one of
    ``fields``; any other exception fails the test."""
    failure: AgentSessionsError | None = None
    try:
        return make()
    except AgentSessionsError as exc:
        failure = exc
    assert failure.code == "validation_error", failure
    assert failure.details["field"] in fields, failure
    return None
