"""No value a caller stores can break a view (issue 11, class 6), on memory, SQLite and
PostgreSQL.

Before, a run with ``input_tokens`` of 10**19 or a NaN cost was stored, and from then on
every query that caught the runs view up failed. Now every value is either refused at
the record boundary with a coded ``validation_error`` naming its field (token counts
fit a signed 64-bit integer, costs are finite and non-negative), or stored and
queryable: the largest accepted values, their sums across runs, huge strings and ints
inside JSON data, and timestamps at the ends of the range. The Hypothesis test at the
end drives random record fields through every record and every query.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

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
from agent_sessions.domain.checks import MAX_COST_USD
from agent_sessions.domain.token_usage import TOKEN_KEYS

INT64_MAX = 2**63 - 1


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


def every_query(store: Store) -> None:
    """Every query over every view, and a clean health check."""
    query = store.query()
    query.search_sessions()
    query.search_runs()
    query.search_runs(order_by="token_usage_desc", min_tokens=INT64_MAX)
    query.get_usage_summary()
    query.get_usage_by_day()
    query.get_cost_summary()
    query.search_events()
    query.count_events()
    for session in query.search_sessions(limit=1000).sessions:
        query.get_session_stats(session.id)
    assert store.maintenance().health_check() == []


def a_session(store: Store) -> Session:
    session = Session.new(agent_id="agent")
    store.save_session(session)
    return session


REFUSED_RUN_VALUES = [
    ({"token_usage": {"input_tokens": 10**19}}, "token_usage.input_tokens"),
    ({"token_usage": {"output_tokens": INT64_MAX + 1}}, "token_usage.output_tokens"),
    ({"token_usage": {"total_tokens": 1e19}}, "token_usage.total_tokens"),
    ({"token_usage": {"cache_read_tokens": -1}}, "token_usage.cache_read_tokens"),
    ({"token_usage": {"cache_creation_tokens": 10**400}}, "token_usage.cache_creation_tokens"),
    ({"cost_usd": math.nan}, "cost_usd"),
    ({"cost_usd": math.inf}, "cost_usd"),
    ({"cost_usd": -math.inf}, "cost_usd"),
    ({"cost_usd": -0.01}, "cost_usd"),
    ({"cost_usd": 10**400}, "cost_usd"),
    ({"cost_usd": "0.5"}, "cost_usd"),
    ({"turn_count": INT64_MAX + 1}, "turn_count"),
]


@pytest.mark.parametrize(("change", "field"), REFUSED_RUN_VALUES)
def test_run_values_no_view_can_keep_are_refused_before_any_write(
    store: Store, change: dict[str, Any], field: str
) -> None:
    session = a_session(store)
    run = Run.new(session_id=session.id)
    with pytest.raises(AgentSessionsError) as caught:
        run.replace(**change)
    assert caught.value.code == "validation_error"
    assert caught.value.details["field"] == field
    assert field in caught.value.message
    as_map = {**run.to_dict(), **change}
    if field == "cost_usd":
        # Read from a map (a stored record) a cost that is not one is unknown, as a
        # non-number always was: one damaged optional value keeps the run readable.
        assert Run.from_dict(as_map).cost_usd is None
    else:
        with pytest.raises(AgentSessionsError) as from_map:
            Run.from_dict(as_map)
        assert from_map.value.details["field"] == field
    assert store.list_runs(session.id) == []
    every_query(store)


def test_a_sum_of_growing_counts_is_refused_when_it_leaves_the_range(store: Store) -> None:
    session = a_session(store)
    run = Run.new(session_id=session.id).add_token_usage({"input_tokens": INT64_MAX})
    store.save_run(run)
    with pytest.raises(AgentSessionsError) as caught:
        run.add_token_usage({"input_tokens": 1})
    assert caught.value.details["field"] == "token_usage.input_tokens"
    assert store.get_run(run.id).token_usage == {"input_tokens": INT64_MAX}
    every_query(store)


def test_the_largest_accepted_values_and_their_sums_are_queryable(store: Store) -> None:
    session = a_session(store)
    day = datetime(2026, 5, 1, 12, tzinfo=UTC)
    biggest = dict.fromkeys(TOKEN_KEYS, INT64_MAX)
    runs = [
        Run.new(session_id=session.id)
        .replace(started_at=day, turn_count=INT64_MAX, cost_usd=MAX_COST_USD)
        .with_provider("acme", {"model": "m"})
        .add_token_usage(biggest)
        for _ in range(3)
    ]
    for run in runs:
        store.save_run(run)
        assert store.get_run(run.id) == run
    query = store.query()
    summary = query.get_usage_summary()
    # Sums of three counts at the 64-bit limit: exact, beyond 64 bits.
    assert summary.total_input_tokens == 3 * INT64_MAX
    assert summary.by_provider["acme"].total_tokens == 3 * INT64_MAX
    [daily] = query.get_usage_by_day()
    assert daily.run_count == 3
    # Exact on PostgreSQL (NUMERIC); SQLite turns a sum past 64 bits into a float.
    assert daily.input_tokens == pytest.approx(3 * INT64_MAX, rel=1e-12)
    assert {r.id for r in query.search_runs(min_tokens=INT64_MAX).runs} == {r.id for r in runs}
    costs = query.get_cost_summary()
    assert costs.total_cost_usd == 3 * MAX_COST_USD
    # Changing one run subtracts its old contribution and adds the new one.
    store.save_run(runs[0].replace(token_usage={"input_tokens": 5}))
    assert query.get_usage_summary().total_input_tokens == 2 * INT64_MAX + 5
    assert store.maintenance().health_check() == []
    every_query(store)


def test_big_values_inside_json_data_are_stored_and_queryable(store: Store) -> None:
    big = {
        "int": 10**4000,
        "negative": -(10**300),
        "float": 1.7976931348623157e308,
        "text": "x" * 1_000_000,
        "deep": [[[[{"n": 10**19}]]]],
    }
    session = Session.new(agent_id="agent", metadata=big, context=big).replace(
        created_at=datetime(1, 1, 1, tzinfo=UTC), updated_at=datetime.max.replace(tzinfo=UTC)
    )
    store.save_session(session)
    run = Run.new(session_id=session.id, input=big, metadata=big).replace(
        started_at=datetime.max.replace(tzinfo=UTC),
        token_usage={"input_tokens": 1, "provider_detail": 10**4000, "note": big["text"]},
        provider_metadata=big,
    )
    store.save_run(run)
    [stored] = store.append_events(
        [
            Event.new(
                type=EventType.MESSAGE_SENT,
                session_id=session.id,
                data=big,
                metadata=big,
                timestamp=datetime(1, 1, 1, tzinfo=UTC),
            )
        ]
    )
    assert store.get_session(session.id) == session
    assert store.get_run(run.id) == run
    assert store.get_events(session.id)[0].data == big
    query = store.query()
    assert query.search_sessions().sessions == [session]
    assert query.search_runs().runs == [run]
    assert [e.id for e in query.search_events().events] == [stored.id]
    every_query(store)


#: Model names (provider metadata is the caller's JSON) that no index column can hold:
#: PostgreSQL's text refuses NUL, and its index entries end at about 2.7 kB, which a
#: text of hex digits reaches (a run of one letter is compressed and would fit).
UNINDEXABLE_MODELS = {
    "nul": "model\x00x",
    "long": "".join(hashlib.sha256(str(n).encode()).hexdigest() for n in range(50)),
}


@pytest.mark.parametrize("model", UNINDEXABLE_MODELS.values(), ids=UNINDEXABLE_MODELS.keys())
def test_a_model_name_no_index_can_hold_counts_as_unknown(store: Store, model: str) -> None:
    """Before, the runs view stopped at such a run on PostgreSQL only (every runs
    query then ``projection_failed``); SQLite kept it."""
    session = a_session(store)
    run = Run.new(session_id=session.id).with_provider("acme", {"model": model})
    store.save_run(run)
    assert store.get_run(run.id) == run  # the record keeps what it was given
    [daily] = store.query().get_usage_by_day()
    assert (daily.provider, daily.model, daily.run_count) == ("acme", "unknown", 1)
    every_query(store)


# hypothesis: any record field, refused with a coded error or stored and read back ------

COUNTS = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([INT64_MAX, INT64_MAX + 1, 10**19, -(2**63), 10**400])
    | st.floats()
    | st.none()
    | st.text(max_size=3)
    | st.booleans()
)
NUMBERS = st.integers() | st.floats() | st.sampled_from([10**400, 10**4000, -(10**400)])
#: Long strings are built, not drawn character by character.
LONG_TEXT = st.integers(0, 300_000).map(lambda n: "y" * n)
JSON = st.recursive(
    st.none() | st.booleans() | NUMBERS | st.text(max_size=20) | LONG_TEXT,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
MAPS = st.dictionaries(st.text(max_size=5), JSON, max_size=3)
#: Text kept in a view's own column (not inside its JSON), without NUL: PostgreSQL text
#: refuses it, and refusing it at the boundary on every backend is class 9's rule (a
#: NUL in ``Run.provider`` is stored today and stops the runs view on PostgreSQL).
COLUMN_TEXT = st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=8)
TIMES = st.datetimes(timezones=st.just(UTC)) | st.sampled_from(
    [datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)]
)
SESSIONS = st.fixed_dictionaries(
    {},
    optional={
        "metadata": MAPS,
        "context": MAPS,
        "tags": st.lists(st.text(max_size=8), max_size=3),
        "created_at": TIMES,
        "updated_at": TIMES,
        "deleted_at": st.none() | TIMES,
    },
)
RUNS = st.fixed_dictionaries(
    {},
    optional={
        "token_usage": st.dictionaries(st.sampled_from([*TOKEN_KEYS, "other"]), COUNTS),
        "cost_usd": st.none() | NUMBERS | st.text(max_size=2),
        "turn_count": st.integers(min_value=-1, max_value=2**70),
        "metadata": MAPS,
        "input": st.none() | MAPS,
        "output": st.none() | MAPS,
        "provider": st.none() | COLUMN_TEXT,
        "provider_metadata": MAPS,
        "started_at": TIMES,
        "ended_at": st.none() | TIMES,
    },
)
EVENTS = st.fixed_dictionaries({}, optional={"data": MAPS, "metadata": MAPS, "timestamp": TIMES})


def refused(error: AgentSessionsError) -> None:
    """A refusal at the boundary: coded, naming the field, never retryable."""
    assert error.code == "validation_error", error
    assert error.details.get("field") or error.details.get("fields"), error


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(session_fields=SESSIONS, run_fields=RUNS, event_fields=EVENTS)
def test_any_record_field_is_refused_with_a_code_or_stored_and_queryable(
    store: Store,
    session_fields: dict[str, Any],
    run_fields: dict[str, Any],
    event_fields: dict[str, Any],
) -> None:
    try:
        session = Session.new(agent_id="agent").replace(**session_fields)
    except AgentSessionsError as error:
        refused(error)
        session = Session.new(agent_id="agent")
    store.save_session(session)
    assert store.get_session(session.id) == session
    try:
        run = Run.new(session_id=session.id).replace(**run_fields)
    except AgentSessionsError as error:
        refused(error)
    else:
        store.save_run(run)
        assert store.get_run(run.id) == run
    try:
        event = Event.new(type=EventType.MESSAGE_SENT, session_id=session.id, **event_fields)
    except AgentSessionsError as error:
        refused(error)
    else:
        [stored] = store.append_events([event])
        assert store.get_events(session.id)[-1].data == stored.data == event.data
    every_query(store)
