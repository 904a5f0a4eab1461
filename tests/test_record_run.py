"""Recording a run from an app-driven loop (issue 14): ``store.record_run`` buffers the
events and writes them with the outcome in one flush; on every backend."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent_sessions import AgentSessionsError, EventType, RunStatus, Session
from agent_sessions.composition import Store
from agent_sessions.domain.pricing import DEFAULT_PRICING

MODEL = "claude-sonnet-4-20250514"


def new_session(store: Store) -> str:
    session = Session.new(agent_id="agent")
    store.save_session(session)
    return session.id


def types(store: Store, session_id: str, run_id: str) -> list[EventType]:
    return [e.type for e in store.get_events(session_id, run_id=run_id)]


def test_a_two_turn_conversation_with_a_tool_call(store: Store) -> None:
    sid = new_session(store)
    with store.record_run(sid, input={"prompt": "files?"}, provider="claude", model=MODEL) as run:
        run.user("Which files are here?")
        call = run.tool_call("ls", {"path": "."}, tool_call_id="call-1")
        run.tool_result(call, "README.md")
        run.assistant("One file: README.md.")
        run.usage(input_tokens=1000, output_tokens=100, cache_read_tokens=2000)
        run.user("Thanks")
        run.assistant("You're welcome.")
        run.usage(input_tokens=10, output_tokens=5)
        # Buffered: nothing of the run's events is written inside the block.
        assert store.get_events(sid, run_id=run.run_id) == []
        assert store.get_run(run.run_id).status is RunStatus.RUNNING
    stored = store.get_run(run.run_id)
    assert stored.status is RunStatus.COMPLETED
    assert stored.output == {"content": "You're welcome."}
    assert stored.token_usage == {
        "input_tokens": 1010,
        "output_tokens": 105,
        "cache_read_tokens": 2000,
    }
    rates = DEFAULT_PRICING.rates_for("claude", MODEL)
    assert rates is not None
    assert rates.cache_read is not None
    expected = 1010 * rates.input + 105 * rates.output + 2000 * rates.cache_read
    assert stored.cost_usd == pytest.approx(expected)
    assert stored.turn_count == 2
    events = store.get_events(sid, run_id=run.run_id)
    assert [e.type for e in events] == [
        EventType.MESSAGE_SENT,
        EventType.TOOL_CALL_STARTED,
        EventType.TOOL_CALL_COMPLETED,
        EventType.MESSAGE_RECEIVED,
        EventType.TOKEN_USAGE_UPDATED,
        EventType.MESSAGE_SENT,
        EventType.MESSAGE_RECEIVED,
        EventType.TOKEN_USAGE_UPDATED,
        EventType.RUN_COMPLETED,
    ]
    assert events[1].data == {
        "tool_name": "ls",
        "tool_call_id": "call-1",
        "arguments": {"path": "."},
    }
    assert events[2].data["tool_call_id"] == "call-1"
    assert events[2].data["output"] == "README.md"
    assert events[2].data["is_error"] is False


def raise_inside(store: Store, sid: str, error: BaseException, runs: list[str]) -> None:
    """A loop that records a user message, then meets ``error``."""
    with store.record_run(sid) as run:
        runs.append(run.run_id)
        run.user("hi")
        raise error


def test_an_exception_fails_the_run_and_propagates(store: Store) -> None:
    sid = new_session(store)
    runs: list[str] = []
    with pytest.raises(RuntimeError, match="model down"):
        raise_inside(store, sid, RuntimeError("model down"), runs)
    stored = store.get_run(runs[0])
    assert stored.status is RunStatus.FAILED
    assert stored.error is not None
    assert "model down" in stored.error["message"]
    assert types(store, sid, runs[0]) == [EventType.MESSAGE_SENT, EventType.RUN_FAILED]


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, asyncio.CancelledError])
def test_cancellation_cancels_the_run(store: Store, interrupt: type[BaseException]) -> None:
    sid = new_session(store)
    runs: list[str] = []
    with pytest.raises(interrupt):
        raise_inside(store, sid, interrupt(), runs)
    assert store.get_run(runs[0]).status is RunStatus.CANCELLED
    assert types(store, sid, runs[0]) == [EventType.MESSAGE_SENT, EventType.RUN_CANCELLED]


def test_a_failed_tool_result(store: Store) -> None:
    sid = new_session(store)
    with store.record_run(sid) as run:
        call = run.tool_call("grep", {"q": "x"})
        run.tool_result(call, "no such file", is_error=True)
    events = store.get_events(sid, run_id=run.run_id)
    assert events[1].type is EventType.TOOL_CALL_FAILED
    assert events[1].data["tool_call_id"] == call
    assert events[1].data["is_error"] is True


def test_a_result_for_an_unknown_call_is_refused(store: Store) -> None:
    sid = new_session(store)
    with store.record_run(sid) as run:
        with pytest.raises(AgentSessionsError) as info:
            run.tool_result("nope", "x")
        assert info.value.details["field"] == "tool_call_id"
    assert types(store, sid, run.run_id) == [EventType.RUN_COMPLETED]


def test_events_after_the_block_are_refused(store: Store) -> None:
    sid = new_session(store)
    with store.record_run(sid) as run:
        run.user("hi")
    with pytest.raises(AgentSessionsError) as info:
        run.user("late")
    assert info.value.code == "invalid_operation"


def test_a_missing_session_is_session_not_found(store: Store) -> None:
    with pytest.raises(AgentSessionsError) as info, store.record_run("sess-missing"):
        pass
    assert info.value.code == "session_not_found"


def test_the_outcome_and_events_commit_together(store: Store) -> None:
    sid = new_session(store)
    seen: list[Any] = []
    with store.record_run(sid) as run:
        run.user("a")
        run.assistant("b")
        seen.append(store.get_latest_sequence(sid))
    assert seen == [0]
    assert store.get_latest_sequence(sid) == 3
    assert store.get_run(run.run_id).status is RunStatus.COMPLETED
