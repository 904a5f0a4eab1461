"""Cache reads and cache writes in every usage summary (issue 13, "Cost that matches
the bill"), on memory, SQLite and PostgreSQL.

The ``runs`` view kept each run's cache counts but no summary carried them, so
``usage``, ``cost`` and ``stats`` could not show what a bill counts. Now
``UsageSummary``, ``ProviderUsage``, ``DailyUsage``, ``TokenTotals`` and ``ModelCost``
(with its ``run_count``) carry ``cache_read_tokens`` and ``cache_creation_tokens``;
the daily rollup keeps them and prices runs that recorded no cost as the cost summary
does (runs view shape 4), and a store whose view was written
in the older shape rebuilds it from the log when opened. ``total_tokens`` is what the
runs recorded, never derived from the other counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from agent_sessions import Run, Session, open_store
from agent_sessions.composition import Store

DAY = datetime(2026, 5, 1, 12, tzinfo=UTC)
#: Two runs of one provider and model, one of another provider; one run without a
#: ``total_tokens`` (its total is 0: not derived).
RUNS = [
    ("anthropic", "claude-sonnet-4", {"input_tokens": 10, "output_tokens": 20,
     "cache_read_tokens": 300, "cache_creation_tokens": 40, "total_tokens": 370}),
    ("anthropic", "claude-sonnet-4", {"input_tokens": 1, "output_tokens": 2,
     "cache_read_tokens": 3, "cache_creation_tokens": 4, "total_tokens": 10}),
    ("openai", "gpt-4o", {"input_tokens": 100, "output_tokens": 50, "cache_read_tokens": 80}),
]  # fmt: skip


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


def record(store: Store) -> Session:
    session = Session.new(agent_id="agent")
    store.save_session(session)
    for provider, model, usage in RUNS:
        run = (
            Run.new(session_id=session.id)
            .replace(started_at=DAY)
            .with_provider(provider, {"model": model})
            .add_token_usage(usage)
        )
        store.save_run(run)
    return session


def test_every_summary_carries_the_cache_counts(store: Store) -> None:
    session = record(store)
    query = store.query()

    summary = query.get_usage_summary()
    assert (summary.total_cache_read_tokens, summary.total_cache_creation_tokens) == (383, 44)
    assert summary.total_tokens == 380  # recorded totals only
    anthropic = summary.by_provider["anthropic"]
    assert (anthropic.cache_read_tokens, anthropic.cache_creation_tokens) == (303, 44)
    assert (anthropic.total_tokens, anthropic.run_count) == (380, 2)
    assert summary.by_provider["openai"].cache_read_tokens == 80
    assert summary.by_provider["openai"].total_tokens == 0

    days = {d.provider: d for d in query.get_usage_by_day()}
    assert (days["anthropic"].cache_read_tokens, days["anthropic"].cache_creation_tokens) == (
        303,
        44,
    )
    assert (days["openai"].cache_read_tokens, days["openai"].cache_creation_tokens) == (80, 0)

    totals = query.get_session_stats(session.id).token_totals
    assert (totals.cache_read_tokens, totals.cache_creation_tokens) == (383, 44)
    assert (totals.input_tokens, totals.output_tokens, totals.total_tokens) == (111, 72, 380)

    costs = query.get_cost_summary()
    sonnet = costs.by_model["claude-sonnet-4"]
    assert (sonnet.cache_read_tokens, sonnet.cache_creation_tokens, sonnet.run_count) == (
        303,
        44,
        2,
    )
    assert (costs.by_model["gpt-4o"].cache_read_tokens, costs.by_model["gpt-4o"].run_count) == (
        80,
        1,
    )
    # No run recorded a cost: the rollup prices them as the summary does.
    assert sum(d.cost_usd for d in days.values()) == pytest.approx(costs.total_cost_usd)


def test_a_changed_run_moves_its_cache_counts_in_the_rollup(store: Store) -> None:
    session = Session.new(agent_id="agent")
    store.save_session(session)
    run = Run.new(session_id=session.id).replace(started_at=DAY).with_provider("anthropic")
    store.save_run(run.add_token_usage({"cache_read_tokens": 5}))
    store.save_run(store.get_run(run.id).add_token_usage({"cache_read_tokens": 7}))
    [day] = store.query().get_usage_by_day()
    assert (day.cache_read_tokens, day.run_count) == (12, 1)


#: The daily rollup of runs view shape 3, before it kept cache counts.
_SHAPE_3_DAILY = (
    "CREATE TABLE view_usage_daily ("
    "day TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, "
    "run_count BIGINT NOT NULL, input_tokens NUMERIC NOT NULL, "
    "output_tokens NUMERIC NOT NULL, total_tokens NUMERIC NOT NULL, "
    "cost_usd DOUBLE PRECISION NOT NULL, PRIMARY KEY (day, provider, model))"
)


def test_a_view_of_the_older_shape_is_rebuilt_with_the_cache_counts(durable_url: str) -> None:
    with open_store(durable_url) as store:
        session = record(store)
        store.query().get_usage_by_day()  # the view is current
        with store.projections.views.transaction(commit=True) as view:
            view.execute("DROP TABLE view_usage_daily")
            view.execute(_SHAPE_3_DAILY)
            view.execute("UPDATE view_meta SET value = '3' WHERE name = 'shape:runs'")
    with open_store(durable_url) as store:
        query = store.query()
        days = {d.provider: d for d in query.get_usage_by_day()}
        assert days["anthropic"].cache_creation_tokens == 44
        assert days["anthropic"].run_count == 2
        assert query.get_session_stats(session.id).token_totals.cache_read_tokens == 383


def test_the_daily_rollup_and_the_cost_summary_agree_on_priced_and_recorded_runs(
    store: Store,
) -> None:
    # Runs without a recorded cost are priced from their tokens (built-in table) by both;
    # a recorded cost counts as recorded; a model the table does not know adds nothing.
    session = record(store)
    recorded = Run.new(session_id=session.id).replace(started_at=DAY).with_cost(1.25)
    unknown = (
        Run.new(session_id=session.id)
        .replace(started_at=DAY)
        .with_provider("nobody", {"model": "no-such-model"})
        .add_token_usage({"input_tokens": 1000})
    )
    for run in (recorded, unknown):
        store.save_run(run)
    query = store.query()
    summary = query.get_cost_summary()
    by_day = query.get_usage_by_day()
    assert summary.unmapped_runs == 1
    assert summary.total_cost_usd > 1.25  # the priced runs count beside the recorded one
    assert sum(day.cost_usd for day in by_day) == pytest.approx(summary.total_cost_usd)
    for provider, spent in summary.by_provider.items():
        rolled = sum(day.cost_usd for day in by_day if (day.provider or "unknown") == provider)
        assert rolled == pytest.approx(spent.cost_usd), provider
