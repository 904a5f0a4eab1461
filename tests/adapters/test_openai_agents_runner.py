"""``AgentSessionsSession`` under the SDK's real ``Runner``, with a scripted model
(tool calls included), through ``run``, ``run_sync`` and ``run_streamed``; and the
session it writes is an ordinary agent-sessions session: ``store.query()``,
``store.history``, ``store.conversation``, the CLI's ``sessions`` / ``show`` and
retention all see it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, function_tool, set_tracing_disabled
from click.testing import CliRunner
from openai_agents_support import ScriptedModel, call, run, text

from agent_sessions import EventType, RetentionPolicy, open_async_store, open_store
from agent_sessions.adapters.openai_agents import AgentSessionsSession
from agent_sessions.cli import cli
from agent_sessions.domain.messages import AssistantMessage, ToolResult, UserMessage

set_tracing_disabled(True)


@function_tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"18°C in {city}"


async def runner_method(method: str, agent: Agent[Any], prompt: Any, **kwargs: Any) -> Any:
    if method == "run":
        return await Runner.run(agent, prompt, **kwargs)
    if method == "run_sync":  # a loop of its own, in a thread, as the SDK's tests do
        return await asyncio.to_thread(lambda: Runner.run_sync(agent, prompt, **kwargs))
    result = Runner.run_streamed(agent, prompt, **kwargs)
    async for _ in result.stream_events():
        pass
    return result


@pytest.mark.parametrize("method", ["run", "run_sync", "run_streamed"])
def test_two_turns_with_a_tool_call_carry_the_history(store_url: str, method: str) -> None:
    model = ScriptedModel(
        [call("weather", {"city": "Paris"}, "call_1")],
        [text("18°C and sunny.", "msg_a")],
        [text("Rain is expected.", "msg_b")],
    )
    agent = Agent(name="forecaster", model=model, tools=[weather])

    async def check() -> None:
        async with open_async_store(store_url) as store:
            session = AgentSessionsSession("user-42", store=store)
            first = await runner_method(method, agent, "Weather in Paris?", session=session)
            assert first.final_output == "18°C and sunny."
            second = await runner_method(method, agent, "And tomorrow?", session=session)
            assert second.final_output == "Rain is expected."

            # The model's last input is the whole history, as the SDK stored it.
            history = await session.get_items()
            assert model.inputs[-1] == history[:-1]
            kinds = [item.get("type", "message") for item in history]
            assert kinds == [
                "message",
                "function_call",
                "function_call_output",
                "message",
                "message",
                "message",
            ]
            assert history[2]["output"] == "18°C in Paris"

            events = await store.get_events("user-42")
            assert [e.type for e in events] == [
                EventType.MESSAGE_SENT,
                EventType.TOOL_CALL_STARTED,
                EventType.TOOL_CALL_COMPLETED,
                EventType.MESSAGE_RECEIVED,
                EventType.MESSAGE_SENT,
                EventType.MESSAGE_RECEIVED,
            ]
            assert [e.data["item"] for e in events] == history
            assert events[1].data["tool_name"] == events[2].data["tool_name"] == "weather"

            messages = await store.call(lambda: store.sync_store.conversation("user-42"))
            assert isinstance(messages[0], UserMessage)
            assert isinstance(messages[1], AssistantMessage)
            assert messages[1].tool_calls[0].arguments == {"city": "Paris"}
            assert messages[2] == ToolResult("call_1", "weather", "18°C in Paris", False)
            assert [m.text for m in messages if isinstance(m, AssistantMessage)][1:] == [
                "18°C and sunny.",
                "Rain is expected.",
            ]

    run(check())


def test_session_input_callback_and_list_input_rules(store_url: str) -> None:
    model = ScriptedModel([text("I'm scripted")])
    agent = Agent(name="test", model=model)

    async def check() -> None:
        async with open_async_store(store_url) as store:
            session = AgentSessionsSession("cb", store=store)
            history = [
                {"role": "user", "content": "Hello there."},
                {"role": "assistant", "content": "Hi, I'm here to assist you."},
            ]
            await session.add_items(history)
            new_turn = [{"role": "user", "content": "What is your name?"}]

            def only_users(old: list[Any], new: list[Any]) -> list[Any]:
                return [item for item in old if item["role"] == "user"] + new

            await Runner.run(
                agent,
                new_turn,
                session=session,
                run_config=RunConfig(session_input_callback=only_users),
            )
            assert model.inputs[-1] == [history[0], new_turn[0]]

    run(check())


def test_the_session_is_an_ordinary_session_for_queries_replay_cli_and_retention(
    durable_url: str,
) -> None:
    store_url = durable_url
    model = ScriptedModel(
        [call("weather", {"city": "Oslo"}, "call_9")], [text("Cold.")], [text("Snow.")]
    )
    agent = Agent(name="forecaster", model=model, tools=[weather])

    async def converse() -> None:
        async with open_async_store(store_url) as store:
            session = AgentSessionsSession("oslo", store=store, agent_id="forecaster")
            await Runner.run(agent, "Weather in Oslo?", session=session)
            await Runner.run(agent, "Tomorrow?", session=session)
            popped = await session.pop_item()
            assert popped is not None
            assert popped["content"][0]["text"] == "Snow."

    run(converse())

    with open_store(store_url) as store:
        page = store.query().search_sessions(agent_id="forecaster")
        assert [s.id for s in page.sessions] == ["oslo"]
        found = store.query().search_events(
            session_ids=["oslo"], types=[EventType.TOOL_CALL_STARTED]
        )
        assert [e.data["tool_name"] for e in found.events] == ["weather"]
        snapshot = store.history("oslo").at(3)
        assert [(t.tool_name, t.tool_call_id) for t in snapshot.tool_calls] == [
            ("weather", "call_9")
        ]
        assert snapshot.open_tool_calls == ()
        latest = store.get_latest_sequence("oslo")

    listed = CliRunner().invoke(cli, ["sessions", "--json", "--store", store_url])
    assert listed.exit_code == 0, listed.output
    assert "oslo" in [s["id"] for s in json.loads(listed.stdout)["sessions"]]
    shown = CliRunner().invoke(cli, ["show", "oslo", "--json", "--store", store_url])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["session"]["agent_id"] == "forecaster"

    # Retention prunes the oldest events; the pop marker outlives the item it undid.
    with open_store(store_url) as store:
        report = store.maintenance().execute(RetentionPolicy(max_events_per_session=3))
        assert report.events_pruned == latest - 3
        assert store.get_latest_sequence("oslo") == latest

    async def after() -> list[Any]:
        async with open_async_store(store_url) as store:
            return await AgentSessionsSession("oslo", store=store).get_items()

    remaining = run(after())
    assert [item.get("content") for item in remaining] == ["Tomorrow?"]
