"""A first query never waits on a long catch-up without saying so (issue 16): the lag
a ``stale_ok`` answer may have is reported, a long catch-up calls ``progress`` with
growing counts and is logged, and the importers leave the views at the log's head.

Real stores on memory, SQLite and PostgreSQL; nothing is timed.
"""

from __future__ import annotations

import io
import itertools
import logging
from pathlib import Path

import pytest

from agent_sessions import AgentSessionsError, ErrorCode, Run, Session, open_store
from agent_sessions.cli.progress import progress_bars
from agent_sessions.composition import Store
from agent_sessions.importers.claude_code import import_claude_code
from agent_sessions.importers.jsonl import export_jsonl, import_jsonl
from agent_sessions.importers.sample_transcript import write_sample_transcript
from agent_sessions.importers.view_follower import ViewFollower
from agent_sessions.read_models.catalog import LONG_CATCH_UP

#: Runs written in one session: more than two batches of the engine (500 each), and
#: over ``_LONG``, which the tests use in place of ``LONG_CATCH_UP`` to stay small.
_RUNS = 1_100
_LONG = 1_000


def _session_with_runs(store: Store, runs: int, agent: str = "bulk") -> Session:
    session = Session.new(agent_id=agent)
    store.write_session(session, [Run.new(session_id=session.id) for _ in range(runs)], [])
    return session


# (a) the lag -------------------------------------------------------------------------------


def test_lag_counts_the_notifications_a_stale_answer_misses_and_is_zero_once_caught_up(
    store: Store,
) -> None:
    query = store.query()
    store.read_models.catch_up()
    assert query.lag() == 0
    before = store.read_models.head()
    session = _session_with_runs(store, 3)
    head = store.read_models.head()
    assert head > before
    assert query.lag() == head - before

    stale = query.search_sessions(stale_ok=True)
    assert session.id not in [s.id for s in stale.sessions]
    assert query.lag() == head - before, "a stale answer catches nothing up"

    fresh = query.search_sessions()
    assert session.id in [s.id for s in fresh.sessions]
    # The views that query read are current; the others are not, and say so. A
    # session search reads the runs view only for its provider filter.
    assert query.lag(["sessions"]) == 0
    assert query.lag() == head - before
    query.search_sessions(provider="anyone")
    assert query.lag(["sessions", "runs"]) == 0
    assert query.lag() == head - before
    store.read_models.catch_up()
    assert query.lag() == 0
    assert all(store.projections.status(name).lag == 0 for name in store.projections.names)


def test_the_lag_of_an_unknown_view_is_a_validation_error(store: Store) -> None:
    with pytest.raises(AgentSessionsError) as raised:
        store.query().lag(["no_such_view"])
    assert raised.value.code == ErrorCode.VALIDATION_ERROR


# (b) progress of a long catch-up -----------------------------------------------------------


def test_a_long_catch_up_reports_growing_counts_and_logs_them(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    _session_with_runs(store, _RUNS)
    calls: list[tuple[str, int, int]] = []
    query = store.query(
        progress=lambda name, done, total: calls.append((name, done, total)), long_catch_up=_LONG
    )
    assert query.lag() > _LONG
    with caplog.at_level(logging.INFO, logger="agent_sessions.read_models.catalog"):
        page = query.search_runs(limit=5)
    assert len(page.runs) == 5
    assert {name for name, _, _ in calls} == {"runs"}
    totals = {total for _, _, total in calls}
    assert len(totals) == 1
    total = totals.pop()
    assert total > _LONG
    done = [count for _, count, _ in calls]
    assert done[0] == 0
    assert done[-1] == total
    assert len(done) >= 4, "one call before the first batch, then one per batch of 500"
    assert all(a < b for a, b in itertools.pairwise(done)), done
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("catching up view runs" in m and f"{total} notifications" in m for m in messages)
    assert any(f"{total} of {total} notifications applied" in m for m in messages)
    assert query.lag(["runs"]) == 0


def test_a_short_catch_up_stays_silent(store: Store) -> None:
    _session_with_runs(store, 3)
    calls: list[tuple[str, int, int]] = []
    query = store.query(progress=lambda *call: calls.append(call))
    assert 0 < query.lag() <= LONG_CATCH_UP
    query.search_runs()
    assert calls == []
    assert query.lag(["runs"]) == 0


def test_a_failing_progress_callback_is_a_coded_query_error(store: Store) -> None:
    _session_with_runs(store, 30)

    def broken(name: str, done: int, total: int) -> None:
        raise RuntimeError("the terminal went away")

    with pytest.raises(AgentSessionsError) as raised:
        store.query(progress=broken, long_catch_up=10).search_runs()
    assert raised.value.code == ErrorCode.QUERY_ERROR
    # Told before its first batch, it stopped the catch-up; a query without it goes on.
    assert len(store.query().search_runs().runs) == 30


def test_progress_and_its_threshold_are_checked(store: Store) -> None:
    for options in ({"progress": "bar"}, {"long_catch_up": -1}, {"long_catch_up": "many"}):
        with pytest.raises(AgentSessionsError) as raised:
            store.query(**options)
        assert raised.value.code == ErrorCode.VALIDATION_ERROR


# (c) importers keep the views current ------------------------------------------------------


def _assert_views_at_head(store: Store) -> None:
    head = store.read_models.head()
    assert head > 0
    for name in [view.name for view in store.read_models.builtin]:
        status = store.projections.status(name)
        assert (status.position, status.lag) == (head, 0), name
    assert store.query().lag() == 0


def test_a_claude_code_import_leaves_the_views_at_the_log_head(
    durable_url: str, tmp_path: Path
) -> None:
    for seed in range(3):
        write_sample_transcript(tmp_path / "projects" / f"sample-{seed}", seed=seed)
    with open_store(durable_url) as store:
        report = import_claude_code(store, [tmp_path / "projects"])
        assert report.sessions >= 3
        _assert_views_at_head(store)


def test_a_jsonl_import_leaves_the_views_at_the_log_head(durable_url: str) -> None:
    out = io.StringIO()
    with open_store("memory://") as source:
        for index in range(4):
            _session_with_runs(source, 5, agent=f"agent-{index}")
        export_jsonl(source, out)
    with open_store(durable_url) as store:
        report = import_jsonl(store, io.StringIO(out.getvalue()))
        assert (report.sessions, report.runs) == (4, 20)
        _assert_views_at_head(store)


def test_the_follower_catches_up_only_once_the_log_has_grown_enough(store: Store) -> None:
    follower = ViewFollower(store, every=10_000)
    _session_with_runs(store, 3)
    follower.written()
    assert store.query().lag() > 0, "too little written to catch up yet"
    follower.finish()
    assert store.query().lag() == 0
    eager = ViewFollower(store, every=1)
    _session_with_runs(store, 3)
    eager.written()
    assert store.query().lag() == 0


# the command line's bar ----------------------------------------------------------------------


def test_the_cli_bar_is_drawn_only_once_a_catch_up_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # stderr counts as a terminal
    with progress_bars() as quiet:
        assert quiet is not None
    assert capsys.readouterr().err == "", "nothing drawn for a query that did not wait"
    with progress_bars() as progress:
        assert progress is not None
        for done in (0, 500, 1_100):
            progress("runs", done, 1_100)
    err = capsys.readouterr().err
    assert "runs" in err
    assert "1100/1100" in err


def test_the_cli_draws_no_bar_when_stderr_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    with progress_bars() as progress:
        assert progress is None
