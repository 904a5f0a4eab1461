"""The replay fold (``agent_sessions/domain/replay.py``): a session's history, applied in
log-position order, folded into what the session looked like at each point.

Pure, so it is tested without a store: histories are built here as the store would
hand them over (stored events with sequence numbers, records at their positions, pruned
ranges). The property at the end is what makes ``steps()`` safe: the snapshots one
incremental fold takes along the way equal those of a fresh fold over each prefix, and
the pairing they show equals a naive scan of the same events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from agent_loop_support import raises_code
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent_sessions import Event, EventType, Run, Session
from agent_sessions.domain.pricing import PricingTable
from agent_sessions.domain.replay import (
    HistoryFold,
    PrunedRange,
    SessionSnapshot,
    Usage,
    diff,
)
from agent_sessions.domain.statuses import RunStatus, SessionStatus

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
SESSION = Session(id="ses_1", agent_id="agent", created_at=T0, updated_at=T0)
#: Round numbers so that costs are exact in the assertions.
TABLE = PricingTable.coerce(
    {
        "acme": {
            "models": {
                "rocket": {"input": 1.0, "output": 2.0, "cache_read": 0.5, "cache_creation": 3.0}
            }
        }
    }
)


@dataclass
class Log:
    """Hands out stored events: increasing sequence numbers, a second apart."""

    session_id: str = SESSION.id
    sequence: int = 0
    events: list[Event] = field(default_factory=list)

    def event(
        self,
        kind: EventType,
        run_id: str | None = None,
        *,
        provider: str | None = None,
        **data: Any,
    ) -> Event:
        self.sequence += 1
        event = Event.new(
            type=kind,
            session_id=self.session_id,
            run_id=run_id,
            data=data,
            provider=provider,
            timestamp=T0 + timedelta(seconds=self.sequence),
            id=f"evt_{self.sequence}",
        ).with_sequence(self.sequence)
        self.events.append(event)
        return event

    def skip(self, count: int) -> tuple[int, int]:
        """``count`` sequence numbers pruned: the range they covered."""
        first = self.sequence + 1
        self.sequence += count
        return first, self.sequence


def run_record(run_id: str = "run_1", **changes: Any) -> Run:
    return Run(id=run_id, session_id=SESSION.id, started_at=T0, **changes)


def fold_of(*events: Event, pricing: PricingTable | None = TABLE) -> HistoryFold:
    fold = HistoryFold(pricing)
    fold.apply_record(SESSION)
    for event in events:
        fold.apply_event(event)
    return fold


# ---------------------------------------------------------------------------- tool calls


def test_tool_calls_pair_by_id_whatever_the_order_of_results() -> None:
    log = Log()
    first = log.event(EventType.TOOL_CALL_STARTED, "run_1", tool_name="bash", tool_call_id="a")
    second = log.event(EventType.TOOL_CALL_STARTED, "run_1", tool_name="bash", tool_call_id="b")
    done_b = log.event(EventType.TOOL_CALL_COMPLETED, "run_1", tool_name="bash", tool_call_id="b")
    snapshot = fold_of(first, second, done_b).snapshot()
    assert [call.status for call in snapshot.tool_calls] == ["open", "completed"]
    assert snapshot.tool_calls[1].started == second
    assert snapshot.tool_calls[1].ended == done_b
    assert snapshot.tool_calls[1].duration_ms == 1000.0
    assert [call.started for call in snapshot.open_tool_calls] == [first]

    done_a = log.event(EventType.TOOL_CALL_COMPLETED, "run_1", tool_name="bash", tool_call_id="a")
    snapshot = fold_of(*log.events).snapshot()
    assert snapshot.tool_calls[0].ended == done_a
    assert snapshot.tool_calls[0].duration_ms == 3000.0
    assert snapshot.open_tool_calls == ()


def test_without_ids_a_result_answers_the_oldest_open_call_of_its_tool() -> None:
    log = Log()
    log.event(EventType.TOOL_CALL_STARTED, "run_1", tool_name="bash")
    log.event(EventType.TOOL_CALL_STARTED, "run_1", tool_name="read")
    log.event(EventType.TOOL_CALL_STARTED, "run_1", tool_name="bash")
    log.event(EventType.TOOL_CALL_COMPLETED, "run_1", tool_name="read")  # 4 -> call 2
    log.event(EventType.TOOL_CALL_COMPLETED, "run_1", tool_name="bash")  # 5 -> call 1
    calls = fold_of(*log.events).snapshot().tool_calls
    assert [(c.started and c.started.sequence_number, c.status) for c in calls] == [
        (1, "completed"),
        (2, "completed"),
        (3, "open"),
    ]
    assert calls[0].ended is not None
    assert calls[0].ended.sequence_number == 5
    assert calls[1].ended is not None
    assert calls[1].ended.sequence_number == 4

    # A result that names no tool answers the oldest open call of its run.
    log.event(EventType.TOOL_CALL_COMPLETED, "run_1")
    last = fold_of(*log.events).snapshot().tool_calls[2]
    assert last.status == "completed"
    assert last.tool_name == "bash"


def test_a_result_with_an_id_may_answer_a_call_recorded_without_one() -> None:
    log = Log()
    log.event(EventType.TOOL_CALL_STARTED, "run_1", tool_name="bash", tool_call_id="x")
    log.event(EventType.TOOL_CALL_STARTED, "run_1", tool_name="bash")
    log.event(EventType.TOOL_CALL_COMPLETED, "run_1", tool_name="bash", tool_call_id="y")
    calls = fold_of(*log.events).snapshot().tool_calls
    # "x" and "y" contradict each other; the id-less call does not.
    assert [call.status for call in calls] == ["open", "completed"]
    assert calls[1].tool_call_id == "y"


def test_results_answer_calls_of_their_own_run_only() -> None:
    """Providers reuse ids from one run to the next: a new run's ``call_1`` result must
    not close the old, cancelled run's ``call_1``."""
    log = Log()
    old = log.event(EventType.TOOL_CALL_STARTED, "run_1", tool_name="bash", tool_call_id="call_1")
    new = log.event(EventType.TOOL_CALL_STARTED, "run_2", tool_name="bash", tool_call_id="call_1")
    log.event(EventType.TOOL_CALL_COMPLETED, "run_2", tool_name="bash", tool_call_id="call_1")
    log.event(EventType.TOOL_CALL_COMPLETED, None, tool_name="bash")
    snapshot = fold_of(*log.events).snapshot()
    assert [call.started for call in snapshot.open_tool_calls] == [old]
    assert snapshot.tool_calls[1].started == new
    assert snapshot.tool_calls[1].status == "completed"
    # The run-less result found no run-less call: an orphan.
    assert snapshot.tool_calls[2].is_orphan


def test_a_failed_call_is_failed_and_listed_among_the_errors() -> None:
    log = Log()
    log.event(EventType.TOOL_CALL_STARTED, "run_1", tool_name="bash", tool_call_id="a")
    failed = log.event(
        EventType.TOOL_CALL_FAILED, "run_1", tool_name="bash", tool_call_id="a", error="exit 1"
    )
    snapshot = fold_of(*log.events).snapshot()
    assert snapshot.tool_calls[0].status == "failed"
    assert snapshot.tool_calls[0].ended == failed
    assert snapshot.errors == (failed,)


def test_a_result_whose_start_was_pruned_is_an_orphan_beside_the_gap() -> None:
    log = Log()
    fold = fold_of(log.event(EventType.RUN_STARTED, "run_1"))
    first, last = log.skip(3)  # the tool_call_started was among these
    fold.apply_gap(first, last)
    result = log.event(EventType.TOOL_CALL_COMPLETED, "run_1", tool_name="bash", tool_call_id="a")
    fold.apply_event(result)
    snapshot = fold.snapshot()
    (orphan,) = snapshot.tool_calls
    assert orphan.is_orphan
    assert orphan.started is None
    assert orphan.ended == result
    assert orphan.first_event == result
    assert (orphan.status, orphan.duration_ms, orphan.tool_call_id) == ("completed", None, "a")
    assert snapshot.open_tool_calls == ()
    assert snapshot.gaps == (PrunedRange(2, 4),)
    assert [str(gap) for gap in snapshot.gaps] == ["events 2\u20134 pruned"]


# ---------------------------------------------------------------------------- usage, cost


def test_usage_sums_the_events_cache_tokens_included_and_prices_them() -> None:
    log = Log()
    usage: dict[str, Any] = {"input_tokens": 10, "output_tokens": 5, "cache_read_tokens": 100}
    log.event(EventType.TOKEN_USAGE_UPDATED, "run_1", **usage, total_tokens=15)
    log.event(
        EventType.TOKEN_USAGE_UPDATED,
        "run_1",
        input_tokens=1,
        output_tokens=2,
        cache_creation_tokens=4,
    )
    fold = fold_of(*log.events)
    fold.apply_record(
        run_record(status=RunStatus.RUNNING, provider="acme", provider_metadata={"model": "rocket"})
    )
    snapshot = fold.snapshot()
    expected_cost = 11 * 1.0 + 7 * 2.0 + 100 * 0.5 + 4 * 3.0
    assert snapshot.usage_by_run["run_1"] == Usage(
        input_tokens=11,
        output_tokens=7,
        cache_read_tokens=100,
        cache_creation_tokens=4,
        # As reported, as the runs view reads it: not input + output.
        total_tokens=15,
        cost_usd=expected_cost,
        cost_estimated=True,
    )
    assert snapshot.usage == snapshot.usage_by_run["run_1"]


def test_a_finished_runs_recorded_usage_and_cost_win() -> None:
    log = Log()
    log.event(EventType.TOKEN_USAGE_UPDATED, "run_1", input_tokens=10, output_tokens=5)
    fold = fold_of(*log.events)
    billed = {"input_tokens": 12, "output_tokens": 6, "cache_read_tokens": 3, "total_tokens": 18}
    # Still running: the events' sums, priced; the record's usage is not final yet.
    fold.apply_record(run_record(status=RunStatus.RUNNING, provider="acme", token_usage=billed))
    assert fold.snapshot().usage.input_tokens == 10
    fold.apply_record(
        run_record(status=RunStatus.COMPLETED, provider="acme", token_usage=billed, cost_usd=0.25)
    )
    assert fold.snapshot().usage == Usage(
        input_tokens=12, output_tokens=6, cache_read_tokens=3, total_tokens=18, cost_usd=0.25
    )


def test_a_run_is_priced_with_the_provider_and_model_its_events_name() -> None:
    log = Log()
    log.event(EventType.RUN_STARTED, "run_1", provider="acme", model="rocket-2")
    log.event(EventType.TOKEN_USAGE_UPDATED, "run_1", input_tokens=3, output_tokens=1)
    fold = fold_of(*log.events)
    fold.apply_record(run_record(status=RunStatus.RUNNING))
    usage = fold.snapshot().usage_by_run["run_1"]
    assert (usage.cost_usd, usage.cost_estimated) == (5.0, True)  # "rocket" prefix rates


def test_tokens_of_an_unknown_provider_have_no_cost_and_make_the_total_partial() -> None:
    log = Log()
    log.event(EventType.TOKEN_USAGE_UPDATED, "run_1", provider="acme", input_tokens=2)
    log.event(EventType.TOKEN_USAGE_UPDATED, "run_2", provider="nobody", input_tokens=7)
    fold = fold_of(*log.events)
    snapshot = fold.snapshot()
    assert snapshot.usage_by_run["run_2"] == Usage(input_tokens=7, cost_partial=True)
    # "acme" has no default rate and the run names no model: unknown too.
    assert snapshot.usage_by_run["run_1"].cost_usd is None
    assert snapshot.usage == Usage(input_tokens=9, cost_partial=True)

    fold.apply_record(run_record("run_1", provider_metadata={"model": "rocket"}))
    total = fold.snapshot().usage
    assert (total.input_tokens, total.cost_usd) == (9, 2.0)
    assert total.cost_estimated
    assert total.cost_partial


def test_without_a_table_runs_are_priced_at_the_built_in_list_prices() -> None:
    log = Log()
    log.event(EventType.TOKEN_USAGE_UPDATED, "run_1", input_tokens=1_000_000, output_tokens=0)
    fold = fold_of(*log.events, pricing=None)
    fold.apply_record(
        run_record(provider="anthropic", provider_metadata={"model": "claude-sonnet-4-5"})
    )
    assert fold.snapshot().usage.cost_usd == pytest.approx(3.0)


# ---------------------------------------------------------------------------- approvals


def test_approvals_stay_pending_until_answered() -> None:
    log = Log()
    by_id = log.event(
        EventType.TOOL_APPROVAL_REQUESTED, "run_1", tool_name="bash", tool_call_id="a"
    )
    by_name = log.event(EventType.TOOL_APPROVAL_REQUESTED, "run_2", tool_name="write")
    assert fold_of(*log.events).snapshot().pending_approvals == (by_id, by_name)
    # Another tool's answer, and an answer in another run, answer neither.
    log.event(EventType.TOOL_APPROVAL_GRANTED, None, tool_name="read")
    log.event(EventType.TOOL_APPROVAL_GRANTED, "run_3", tool_name="write")
    assert fold_of(*log.events).snapshot().pending_approvals == (by_id, by_name)
    # Recorded at session level, as ``record_approval`` does: answers any run's request.
    log.event(EventType.TOOL_APPROVAL_DENIED, None, tool_name="write")
    assert fold_of(*log.events).snapshot().pending_approvals == (by_id,)
    log.event(EventType.TOOL_APPROVAL_GRANTED, "run_1", tool_name="bash", tool_call_id="a")
    assert fold_of(*log.events).snapshot().pending_approvals == ()


# ---------------------------------------------------------------------------- positions, gaps


def test_a_flushs_run_is_running_until_the_last_of_its_events() -> None:
    """One flush commits the run's completion with events 3 and 4: visible at 4, the
    position of its commit, not before (the caller applies records after their event)."""
    log = Log()
    fold = fold_of()
    fold.apply_record(run_record(status=RunStatus.RUNNING))  # position 0
    fold.apply_event(log.event(EventType.RUN_STARTED, "run_1"))
    fold.apply_event(log.event(EventType.MESSAGE_SENT, "run_1", content="hi"))
    fold.apply_event(log.event(EventType.MESSAGE_RECEIVED, "run_1", content="yo", role="assistant"))
    running = fold.snapshot()
    fold.apply_event(log.event(EventType.RUN_COMPLETED, "run_1", stop_reason="end_turn"))
    fold.apply_record(run_record(status=RunStatus.COMPLETED, output={"content": "yo"}))
    done = fold.snapshot()
    assert (running.sequence, running.runs[0].status) == (3, RunStatus.RUNNING)
    assert (done.sequence, done.runs[0].status) == (4, RunStatus.COMPLETED)
    assert done.timestamp == T0 + timedelta(seconds=4)
    assert done.event_count == 4


def test_gaps_show_from_their_first_position_and_a_point_inside_one_has_its_records() -> None:
    log = Log()
    fold = fold_of(log.event(EventType.RUN_STARTED, "run_1"))
    fold.apply_record(run_record(status=RunStatus.RUNNING), approximate=True)
    first, last = log.skip(5)  # 2..6
    fold.apply_gap(first, last)
    assert fold.snapshot().gaps == ()  # still at 1
    fold.advance(4)  # "as of 4", a pruned point: the records up to it are known
    fold.apply_record(run_record(status=RunStatus.FAILED))
    at_four = fold.snapshot()
    assert (at_four.sequence, at_four.event_count) == (4, 1)
    assert at_four.runs[0].status == RunStatus.FAILED
    assert at_four.gaps == (PrunedRange(2, 6),)
    assert at_four.approximate
    fold.apply_gap(first, last)  # told twice, shown once
    fold.apply_event(log.event(EventType.RUN_FAILED, "run_1"))
    assert fold.snapshot().gaps == (PrunedRange(2, 6),)
    assert str(PrunedRange(9, 9)) == "event 9 pruned"


def test_the_fold_refuses_what_is_not_one_sessions_ordered_history() -> None:
    log = Log()
    with raises_code("invalid_operation"):
        HistoryFold().snapshot()
    fold = fold_of(log.event(EventType.RUN_STARTED, "run_1"), log.event(EventType.MESSAGE_SENT))
    with raises_code("validation_error") as info:
        fold.apply_event(log.events[0])
    assert info.value.details["field"] == "sequence_number"
    with raises_code("validation_error"):
        fold.apply_event(Event.new(type=EventType.MESSAGE_SENT, session_id=SESSION.id))
    with raises_code("validation_error"):
        fold.advance(1)
    with raises_code("session_mismatch"):
        fold.apply_event(Log(session_id="ses_2", sequence=5).event(EventType.MESSAGE_SENT))
    with raises_code("session_mismatch"):
        fold.apply_record(Run(id="run_9", session_id="ses_2"))
    with raises_code("validation_error"):
        fold.apply_gap(5, 4)
    with raises_code("validation_error"):
        fold.apply_record("a session")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- diff


def test_diff_says_what_changed_between_two_points() -> None:
    log = Log()
    fold = fold_of()
    fold.apply_record(run_record(status=RunStatus.RUNNING, provider="acme"))
    fold.apply_event(log.event(EventType.TOOL_CALL_STARTED, "run_1", tool_name="bash"))
    before = fold.snapshot()
    steps = [
        log.event(EventType.TOOL_CALL_COMPLETED, "run_1", tool_name="bash"),
        log.event(EventType.TOOL_CALL_STARTED, "run_1", tool_name="read", tool_call_id="r"),
        log.event(EventType.ERROR_OCCURRED, "run_1", error_message="boom"),
        log.event(
            EventType.TOKEN_USAGE_UPDATED, "run_1", input_tokens=4, output_tokens=1, total_tokens=5
        ),
    ]
    for event in steps:
        fold.apply_event(event)
    fold.apply_record(SESSION.replace(status=SessionStatus.ACTIVE, updated_at=T0))
    fold.apply_record(run_record(status=RunStatus.FAILED, provider="acme"))
    fold.apply_record(run_record("run_2"))
    after = fold.snapshot(window=log.events)

    change = diff(before, after)
    assert (change.before, change.after, change.events_applied) == (1, 5, 4)
    assert change.events_added == tuple(steps)  # from the later window, without the log
    narrow = fold.snapshot(window=steps[-1:])
    assert diff(before, narrow).events_added == (steps[-1],)
    assert diff(before, narrow, events=steps).events_added == tuple(steps)
    assert change.session_changes == {"status": ("pending", "active")}
    assert change.run_changes == {"run_1": {"status": ("running", "failed")}}
    assert [run.id for run in change.runs_added] == ["run_2"]
    assert [call.tool_name for call in change.tool_calls_opened] == ["read"]
    assert [call.tool_name for call in change.tool_calls_closed] == ["bash"]
    assert change.errors_added == (steps[2],)
    assert change.usage == (before.usage, after.usage)
    assert change.lines() == [
        "1 \u2192 5: 4 event(s) applied",
        "session status: 'pending' \u2192 'active'",
        "run run_2 created (pending)",
        "run run_1 status: 'running' \u2192 'failed'",
        "tool call read (r) opened at #3",
        "tool call bash completed at #2 after 1000 ms",
        "error at #4: error_occurred",
        "tokens 0 \u2192 5 total, cost unknown \u2192 unknown",
    ]
    backwards = diff(after, before)
    assert backwards.runs_removed == ("run_2",)
    assert backwards.events_applied == -4
    assert backwards.events_added == ()  # the earlier window holds none in between
    assert diff(after, after).is_empty
    json.dumps([change.to_dict(), after.to_dict()])  # JSON-ready, for ``--json``

    other = HistoryFold()
    other.apply_record(Session(id="ses_2", agent_id="agent"))
    with raises_code("session_mismatch"):
        diff(after, other.snapshot())


# ---------------------------------------------------------------------------- the property

RUNS = st.sampled_from(["r1", "r2", None])
IDS = st.sampled_from([None, "c1", "c2"])
NAMES = st.sampled_from([None, "bash", "read"])
COUNTS = st.fixed_dictionaries(
    {},
    optional={
        key: st.integers(0, 1000)
        for key in (
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_creation_tokens",
            "total_tokens",
        )
    },
)
OPS = st.one_of(
    st.tuples(st.just("start"), RUNS, IDS, NAMES),
    st.tuples(st.just("result"), RUNS, IDS, NAMES, st.booleans()),
    st.tuples(st.just("usage"), RUNS, COUNTS, st.sampled_from([None, "acme", "nobody"])),
    st.tuples(st.just("event"), RUNS, st.sampled_from(["error_occurred", "message_sent"])),
    st.tuples(st.just("model"), RUNS, st.sampled_from(["rocket", "other"])),
    st.tuples(st.just("request"), RUNS, IDS, NAMES),
    st.tuples(st.just("answer"), RUNS, IDS, NAMES, st.booleans()),
    st.tuples(
        st.just("run"),
        st.sampled_from(["r1", "r2"]),
        st.sampled_from(list(RunStatus)),
        st.one_of(st.none(), st.floats(0, 10)),
        st.one_of(st.none(), COUNTS),
    ),
    st.tuples(st.just("session"), st.sampled_from(list(SessionStatus))),
    st.tuples(st.just("gap"), st.integers(1, 4), st.integers(0, 3)),
)


def payload(tool_call_id: str | None, tool_name: str | None) -> dict[str, Any]:
    data = {"tool_call_id": tool_call_id, "tool_name": tool_name}
    return {key: value for key, value in data.items() if value is not None}


def build(ops: list[tuple[Any, ...]]) -> list[tuple[str, Any]]:
    """The ops as the store would hand them to a fold: ("event", Event),
    ("record", Session | Run), ("gap", (first, last)), ("advance", position)."""
    log = Log()
    steps: list[tuple[str, Any]] = [("record", SESSION)]
    for op in ops:
        kind, *args = op
        if kind in ("start", "request"):
            run_id, tool_call_id, tool_name = args
            event_type = (
                EventType.TOOL_CALL_STARTED
                if kind == "start"
                else EventType.TOOL_APPROVAL_REQUESTED
            )
            steps.append(
                ("event", log.event(event_type, run_id, **payload(tool_call_id, tool_name)))
            )
        elif kind == "result":
            run_id, tool_call_id, tool_name, failed = args
            event_type = EventType.TOOL_CALL_FAILED if failed else EventType.TOOL_CALL_COMPLETED
            steps.append(
                ("event", log.event(event_type, run_id, **payload(tool_call_id, tool_name)))
            )
        elif kind == "answer":
            run_id, tool_call_id, tool_name, granted = args
            event_type = (
                EventType.TOOL_APPROVAL_GRANTED if granted else EventType.TOOL_APPROVAL_DENIED
            )
            steps.append(
                ("event", log.event(event_type, run_id, **payload(tool_call_id, tool_name)))
            )
        elif kind == "usage":
            run_id, counts, provider = args
            event = log.event(EventType.TOKEN_USAGE_UPDATED, run_id, provider=provider, **counts)
            steps.append(("event", event))
        elif kind == "event":
            steps.append(("event", log.event(EventType(args[1]), args[0])))
        elif kind == "model":
            steps.append(("event", log.event(EventType.TURN_COMPLETED, args[0], model=args[1])))
        elif kind == "run":
            run_id, status, cost, usage = args
            record = run_record(
                run_id,
                status=status,
                cost_usd=cost,
                token_usage=usage or {},
                provider="acme" if cost is None else None,
            )
            steps.append(("record", record))
        elif kind == "session":
            steps.append(("record", SESSION.replace(status=args[0], updated_at=T0)))
        else:
            size, into = args
            first, last = log.skip(size)
            steps.append(("gap", (first, last)))
            if into:
                steps.append(("advance", min(first + into - 1, last)))
    return steps


def apply(fold: HistoryFold, step: tuple[str, Any]) -> None:
    kind, value = step
    if kind == "event":
        fold.apply_event(value)
    elif kind == "record":
        fold.apply_record(value, approximate=value.status == RunStatus.TIMEOUT)
    elif kind == "gap":
        fold.apply_gap(*value)
    else:
        fold.advance(value)


def window(steps: list[tuple[str, Any]]) -> list[Event]:
    return [value for kind, value in steps if kind == "event"][-3:]


def naive_pairs(events: list[Event]) -> list[tuple[str | None, str | None]]:
    """The pairing rule read literally, by scanning every call each time: (start id,
    result id) in order of the first event."""
    calls: list[list[Event | None]] = []
    for event in events:
        if event.type is EventType.TOOL_CALL_STARTED:
            calls.append([event, None])
        elif event.type in (EventType.TOOL_CALL_COMPLETED, EventType.TOOL_CALL_FAILED):
            open_calls = [
                c
                for c in calls
                if c[0] is not None and c[1] is None and c[0].run_id == event.run_id
            ]
            match = naive_match(open_calls, event)
            if match is None:
                calls.append([None, event])
            else:
                match[1] = event
    return [(event_id(c[0]), event_id(c[1])) for c in calls]


def event_id(event: Event | None) -> str | None:
    return None if event is None else event.id


def naive_match(candidates: list[list[Event | None]], answer: Event) -> list[Event | None] | None:
    def key(event: Event | None, name: str) -> Any:
        return None if event is None else event.data.get(name)

    own_id, own_name = answer.data.get("tool_call_id"), answer.data.get("tool_name")
    for candidate in candidates:
        if own_id is not None and key(candidate[0], "tool_call_id") == own_id:
            return candidate
    for candidate in candidates:
        their_id, their_name = key(candidate[0], "tool_call_id"), key(candidate[0], "tool_name")
        if their_id is not None and own_id is not None:
            continue
        if their_name is None or own_name is None or their_name == own_name:
            return candidate
    return None


def naive_pending(events: list[Event]) -> list[str]:
    pending: list[Event] = []
    for event in events:
        if event.type is EventType.TOOL_APPROVAL_REQUESTED:
            pending.append(event)
        elif event.type in (EventType.TOOL_APPROVAL_GRANTED, EventType.TOOL_APPROVAL_DENIED):
            candidates = [r for r in pending if event.run_id is None or r.run_id == event.run_id]
            match = naive_match([[r, None] for r in candidates], event)
            if match is not None:
                pending.remove(match[0])  # type: ignore[arg-type]
    return [event.id for event in pending]


PROPERTY_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@example(
    ops=[
        ("start", "r1", None, "bash"),
        ("start", "r1", "c1", "bash"),
        ("result", "r1", "c1", "bash", False),
        ("gap", 2, 1),
        ("result", "r1", None, None, True),
        ("result", "r1", None, None, False),
    ]
)
@given(ops=st.lists(OPS, max_size=40))
def test_an_incremental_fold_equals_a_rebuild_at_every_step(ops: list[tuple[Any, ...]]) -> None:
    steps = build(ops)
    fold = HistoryFold(TABLE)
    taken: list[SessionSnapshot] = []
    for index, step in enumerate(steps):
        apply(fold, step)
        taken.append(fold.snapshot(window=window(steps[: index + 1])))
    # Compared once every step was applied: a snapshot taken early must not have moved.
    for index, snapshot in enumerate(taken):
        prefix = steps[: index + 1]
        rebuilt = HistoryFold(TABLE)
        for step in prefix:
            apply(rebuilt, step)
        assert snapshot == rebuilt.snapshot(window=window(prefix))
        events = [value for kind, value in prefix if kind == "event"]
        pairs = [(event_id(call.started), event_id(call.ended)) for call in snapshot.tool_calls]
        assert pairs == naive_pairs(events)
        assert [event.id for event in snapshot.pending_approvals] == naive_pending(events)
        assert snapshot.open_tool_calls == tuple(c for c in snapshot.tool_calls if c.is_open)
        assert snapshot.event_count == len(events)
        usage = snapshot.usage
        assert usage.input_tokens == sum(
            u.input_tokens for u in snapshot.usage_by_run.values()
        ) + sum(
            e.data.get("input_tokens", 0)
            for e in events
            if e.type is EventType.TOKEN_USAGE_UPDATED and e.run_id is None
        )
