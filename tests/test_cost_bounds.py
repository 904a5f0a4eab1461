"""A cost the record boundary accepts can never break a query (issue 11, class 6).

Before, every finite non-negative cost was accepted, and three runs of ``1e308`` summed
past the largest float: on PostgreSQL the runs view's daily rollup failed
(``NumericValueOutOfRange``), so every query over runs was ``projection_failed``; on
memory and SQLite ``get_cost_summary`` raised a raw ``OverflowError`` from
``math.fsum`` and ``get_usage_by_day`` answered ``inf``. Now a cost is at most
``MAX_COST_USD`` per record: more is ``validation_error`` naming ``cost_usd``; a stored
one above it (written before, or past the checks) reads as unknown; a cost priced above
it is unknown too. Runs at the maximum sum to a finite answer in every query, on
memory, SQLite and PostgreSQL.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_sessions import AgentSessionsError, Run, Session, open_store
from agent_sessions.composition import Store
from agent_sessions.domain.aggregates import RunAggregate, run_stream_id
from agent_sessions.domain.checks import MAX_COST_USD
from agent_sessions.domain.pricing import calculate_cost, reported_cost

DAY = datetime(2026, 5, 1, 12, tzinfo=UTC)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


def every_query(store: Store, session_id: str) -> None:
    """Every ``QueryAPI`` query, each answering (no error), and a clean health check."""
    query = store.query()
    query.search_sessions()
    query.search_sessions(provider="acme")
    query.search_runs()
    query.search_runs(order_by="token_usage_desc")
    query.get_usage_summary()
    query.get_usage_by_day()
    query.get_cost_summary()
    query.search_events()
    query.count_events()
    query.get_session_stats(session_id)
    assert store.maintenance().health_check() == []


def runs_at(store: Store, session: Session, cost: float | None, count: int = 3) -> list[Run]:
    """``count`` runs of one day, provider and model, each costing ``cost``."""
    runs = [
        Run.new(session_id=session.id)
        .replace(started_at=DAY, cost_usd=cost)
        .with_provider("acme", {"model": "m"})
        .add_token_usage({"input_tokens": 10, "output_tokens": 5})
        for _ in range(count)
    ]
    for run in runs:
        store.save_run(run)
    return runs


def a_session(store: Store) -> Session:
    session = Session.new(agent_id="agent")
    store.save_session(session)
    return session


def test_runs_at_the_maximum_cost_sum_in_every_query(store: Store) -> None:
    session = a_session(store)
    runs_at(store, session, MAX_COST_USD)
    every_query(store, session.id)
    query = store.query()
    costs = query.get_cost_summary()
    assert costs.total_cost_usd == 3 * MAX_COST_USD
    assert costs.by_provider["acme"].cost_usd == 3 * MAX_COST_USD
    assert costs.by_model["m"].cost_usd == 3 * MAX_COST_USD
    assert costs.by_model["m"].run_count == 3
    [daily] = query.get_usage_by_day()
    assert daily.cost_usd == 3 * MAX_COST_USD
    assert math.isfinite(daily.cost_usd)
    assert query.get_usage_summary().run_count == 3


@pytest.mark.parametrize("cost", [MAX_COST_USD * (1 + 1e-15), 1e13, 1e308, 10**400])
def test_a_cost_above_the_maximum_is_refused_naming_cost_usd(cost: float) -> None:
    """Refused when the record is built, so no backend ever receives it."""
    run = Run.new(session_id="s")
    builds: list[Callable[[], Run]] = [
        lambda: run.with_cost(cost),
        lambda: Run(id="r", session_id="s", cost_usd=cost),
        lambda: run.replace(cost_usd=cost),
    ]
    for build in builds:
        with pytest.raises(AgentSessionsError) as caught:
            build()
        assert caught.value.code == "validation_error"
        assert caught.value.details["field"] == "cost_usd"


def test_a_stored_cost_above_the_maximum_reads_as_unknown(store: Store) -> None:
    """Runs whose cost was written past the record checks (by an older writer): each
    reads back as unknown, and the queries answer as they do for an unpriced run."""
    session = a_session(store)
    runs = runs_at(store, session, None)
    app = store.application
    for run in runs:
        stream = run_stream_id(run.id)
        version = max(e.originator_version for e in app.recorder.select_events(stream)) + 1
        planted = RunAggregate.CostRecorded(
            originator_id=stream,
            originator_version=version,
            timestamp=datetime.now(UTC),
            changes={"cost_usd": 1e308},
        )
        app.recorder.insert_events([app.mapper.to_stored_event(planted)])
    assert Run.from_dict({**runs[0].to_dict(), "cost_usd": 1e308}).cost_usd is None
    every_query(store, session.id)
    query = store.query()
    assert [r.cost_usd for r in query.search_runs().runs] == [None, None, None]
    # Priced from tokens where the table knows the provider; unmapped otherwise.
    assert query.get_cost_summary().unmapped_runs == 3
    [daily] = query.get_usage_by_day()
    assert daily.cost_usd == 0.0


def test_a_priced_cost_above_the_maximum_is_unknown(store: Store) -> None:
    """Rates a caller passes can price a run above what a run may record: that cost
    is unknown (unmapped), like an unpriced run, and never breaks the sum."""
    session = a_session(store)
    runs_at(store, session, None)
    query = store.query()
    absurd = {"acme": {"input": 1e300, "output": 1e300}}
    summary = query.get_cost_summary(pricing_table=absurd)
    assert (summary.total_cost_usd, summary.unmapped_runs) == (0.0, 3)
    # At the maximum exactly: priced, and the sum of three is finite.
    at_most = {"acme": {"input": MAX_COST_USD / 15, "output": MAX_COST_USD / 15}}
    summary = query.get_cost_summary(pricing_table=at_most)
    assert summary.unmapped_runs == 0
    assert summary.total_cost_usd == pytest.approx(3 * MAX_COST_USD)


@given(
    tokens=st.integers(min_value=0, max_value=2**63 - 1),
    rate=st.floats(min_value=0, max_value=1e308, allow_nan=False, allow_infinity=False),
)
def test_a_computed_cost_is_recordable_or_unknown(tokens: int, rate: float) -> None:
    table = {"acme": {"input": rate, "output": rate}}
    cost = calculate_cost({"input_tokens": tokens}, "acme", None, table)
    if cost is not None:
        assert 0 <= cost <= MAX_COST_USD
        Run.new(session_id="s").with_cost(cost)  # a run can record it


def test_a_reported_cost_above_the_maximum_is_not_a_cost() -> None:
    assert reported_cost(MAX_COST_USD) == MAX_COST_USD
    assert reported_cost(MAX_COST_USD * 2) is None
    assert reported_cost(1e308) is None
