"""SessionManager's run totals (issue 14): token usage and cost follow the
``token_usage_updated`` events unless the provider's result reports totals, turns are
counted, a finished run always ends with ``run_completed``, cache tokens are priced at
their own rates; and ``get_or_create_session``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from agent_sessions import EventType, SessionStore
from agent_sessions.domain.pricing import DEFAULT_PRICING
from agent_sessions.services.providers import EmitFn, ProviderResult, ScriptedProvider
from agent_sessions.services.session_manager import SessionManager

MODEL = "claude-sonnet-4-20250514"


class LoopProvider:
    """A provider as an app writes one: emits usage events, returns no totals."""

    name = "claude"

    def __init__(self, events: list[dict[str, Any]], result: ProviderResult | None = None):
        self.events = events
        self.result = result or ProviderResult(output={"content": "done"})

    def run(self, input: Mapping[str, Any] | None, emit: EmitFn) -> ProviderResult:
        for raw in self.events:
            emit(raw)
        return self.result


def usage(i: int, o: int, **extra: int) -> dict[str, Any]:
    return {"type": "token_usage_updated", "data": {"input_tokens": i, "output_tokens": o, **extra}}


def reply(text: str) -> dict[str, Any]:
    return {"type": "message_received", "data": {"content": text, "role": "assistant"}}


START = {"type": "run_started", "data": {"model": MODEL}}


def run_with(store: SessionStore, provider: Any) -> Any:
    manager = SessionManager(store, provider)
    session = manager.start_session("agent")
    manager.activate_session(session.id)
    return manager.run_once(session.id, {"prompt": "hi"})


def rates() -> Any:
    found = DEFAULT_PRICING.rates_for("claude", MODEL)
    assert found is not None
    return found


def test_usage_and_cost_follow_the_usage_events(store: SessionStore) -> None:
    provider = LoopProvider([START, reply("a"), usage(100, 10), reply("b"), usage(200, 20)])
    run = run_with(store, provider).run
    assert run.token_usage == {"input_tokens": 300, "output_tokens": 30}
    assert run.cost_usd == pytest.approx(300 * rates().input + 30 * rates().output)
    assert store.get_run(run.id).token_usage == run.token_usage


def test_result_totals_win_over_events_without_double_counting(store: SessionStore) -> None:
    result = ProviderResult(output={}, token_usage={"input_tokens": 1000, "output_tokens": 50})
    provider = LoopProvider([START, usage(100, 10), usage(200, 20)], result)
    run = run_with(store, provider).run
    assert run.token_usage == {"input_tokens": 1000, "output_tokens": 50}


def test_scripted_totals_equal_to_events_are_not_counted_twice(store: SessionStore) -> None:
    provider = ScriptedProvider([START, usage(100, 10), usage(5, 5)], name="claude")
    assert run_with(store, provider).run.token_usage == {"input_tokens": 105, "output_tokens": 15}


def test_cache_tokens_are_priced_at_their_own_rates(store: SessionStore) -> None:
    event = usage(100, 10, cache_read_input_tokens=1000, cache_creation_input_tokens=400)
    run = run_with(store, LoopProvider([START, event])).run
    assert run.token_usage["cache_read_tokens"] == 1000
    assert run.token_usage["cache_creation_tokens"] == 400
    r = rates()
    assert r.cache_read is not None
    assert r.cache_creation is not None
    expected = 100 * r.input + 10 * r.output + 1000 * r.cache_read + 400 * r.cache_creation
    assert run.cost_usd == pytest.approx(expected)
    assert r.cache_read < r.input < r.cache_creation  # a real difference was priced


def test_turns_are_counted_from_turn_events_else_replies(store: SessionStore) -> None:
    turns = [START, reply("a"), {"type": "turn_completed", "data": {}}] * 2
    assert run_with(store, LoopProvider(turns)).run.turn_count == 2
    assert (
        run_with(store, LoopProvider([START, reply("a"), reply("b"), reply("c")])).run.turn_count
        == 3
    )


def test_a_successful_run_always_ends_with_run_completed(store: SessionStore) -> None:
    result = run_with(store, LoopProvider([START, reply("a"), usage(1, 2)]))
    events = store.get_events(result.session.id, run_id=result.run.id)
    assert events[-1].type is EventType.RUN_COMPLETED
    assert events[-1].data["token_usage"] == {"input_tokens": 1, "output_tokens": 2}
    assert events[-1].data["turn_count"] == 1
    assert [e.type for e in events].count(EventType.RUN_COMPLETED) == 1


def test_a_provider_run_completed_is_not_doubled(store: SessionStore) -> None:
    done = {"type": "run_completed", "data": {"stop_reason": "end_turn"}}
    result = run_with(store, LoopProvider([START, reply("a"), done]))
    events = store.get_events(result.session.id, run_id=result.run.id)
    assert [e.type for e in events].count(EventType.RUN_COMPLETED) == 1
    assert events[-1].data == {"stop_reason": "end_turn"}


def test_a_failed_run_gets_no_run_completed(store: SessionStore) -> None:
    provider = ScriptedProvider([START], name="claude", error=RuntimeError("boom"))
    result = run_with(store, provider)
    events = store.get_events(result.session.id, run_id=result.run.id)
    assert EventType.RUN_COMPLETED not in [e.type for e in events]
    assert events[-1].type is EventType.RUN_FAILED


def test_get_or_create_session(store: SessionStore) -> None:
    manager = SessionManager(store, LoopProvider([]))
    created = manager.get_or_create_session("sess-a", agent_id="coder", tags=["x"])
    assert (created.id, created.agent_id, list(created.tags)) == ("sess-a", "coder", ["x"])
    again = manager.get_or_create_session("sess-a", agent_id="other")
    assert (again.id, again.agent_id) == ("sess-a", "coder")
    events = store.get_events("sess-a")
    assert [e.type for e in events] == [EventType.SESSION_CREATED]
