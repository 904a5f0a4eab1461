"""ADK's real ``Runner`` on the agent-sessions session service, with a scripted model
(a ``BaseLlm`` returning canned responses, a function tool call among them), on every
backend; and the sessions it writes are ordinary sessions to our queries, replay, CLI
and retention. The README's "Google ADK" example runs here too."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from google.adk.agents import LlmAgent
from google.adk.events.event import Event
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.sessions.base_session_service import GetSessionConfig
from google.adk.tools.tool_context import ToolContext
from google.genai import types

from agent_sessions import RetentionPolicy, open_store
from agent_sessions.adapters.adk import AgentSessionsSessionService
from agent_sessions.adapters.adk_events import session_id_for
from agent_sessions.cli import entry

README = Path(__file__).resolve().parents[2] / "README.md"


class ScriptedLlm(BaseLlm):
    """Answers each model call with the next canned response."""

    script: list[LlmResponse]

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        yield self.script.pop(0)


def weather(city: str, tool_context: ToolContext) -> dict[str, str]:
    """The forecast of a city."""
    calls = tool_context.state.get("app:weather_calls", 0)
    tool_context.state["app:weather_calls"] = calls + 1
    tool_context.state["user:last_city"] = city
    tool_context.state["temp:scratch"] = "never stored"
    return {"forecast": f"sunny in {city}"}


def call(city: str, call_id: str) -> LlmResponse:
    fc = types.FunctionCall(id=call_id, name="weather", args={"city": city})
    return LlmResponse(content=types.Content(role="model", parts=[types.Part(function_call=fc)]))


def answer(text: str) -> LlmResponse:
    return LlmResponse(
        content=types.Content(role="model", parts=[types.Part(text=text)]),
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=120, candidates_token_count=8, total_token_count=128
        ),
    )


def forecaster() -> LlmAgent:
    script = [
        call("Paris", "call_1"),
        answer("Sunny in Paris."),
        call("Oslo", "call_2"),
        answer("Sunny in Oslo too."),
    ]
    return LlmAgent(
        name="forecaster",
        model=ScriptedLlm(model="scripted", script=script),
        tools=[weather],
        output_key="last_answer",
    )


def message(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


async def converse(url: str) -> tuple[list[Event], Any, Any]:
    """Two turns through the Runner; the events it yielded, the session as stored, and
    a second user's session."""
    async with AgentSessionsSessionService(url) as service:
        runner = Runner(agent=forecaster(), app_name="weather", session_service=service)
        session = await service.create_session(app_name="weather", user_id="ada", session_id="s1")
        yielded: list[Event] = []
        for text in ("Weather in Paris?", "And Oslo?"):
            async for event in runner.run_async(
                user_id="ada", session_id=session.id, new_message=message(text)
            ):
                yielded.append(event)
        stored = await service.get_session(app_name="weather", user_id="ada", session_id="s1")
        other = await service.create_session(app_name="weather", user_id="bob")
        return yielded, stored, other


def test_runner_with_a_tool_call_on_every_backend(store_url: str) -> None:
    yielded, stored, other = asyncio.run(converse(store_url))
    assert stored is not None
    # every event the runner produced is stored, identical, with the user messages
    agent_events = [event for event in stored.events if event.author != "user"]
    assert agent_events == yielded
    assert [event.author for event in stored.events] == ["user"] + ["forecaster"] * 3 + ["user"] + [
        "forecaster"
    ] * 3
    calls = [
        event.get_function_calls()[0].args for event in stored.events if event.get_function_calls()
    ]
    assert calls == [{"city": "Paris"}, {"city": "Oslo"}]
    assert stored.state == {
        "app:weather_calls": 2,
        "user:last_city": "Oslo",
        "last_answer": "Sunny in Oslo too.",
    }
    assert stored.last_update_time == stored.events[-1].timestamp
    # app state reaches another user's session, user state does not
    assert other.state == {"app:weather_calls": 2}


def test_adk_sessions_are_ordinary_sessions(sqlite_url: str, tmp_path: Path) -> None:
    asyncio.run(converse(sqlite_url))
    ours = session_id_for("weather", "ada", "s1")
    with open_store(sqlite_url) as store:
        events = store.get_events(ours)
        assert [event.type for event in events] == [
            "message_sent",
            "tool_call_started",
            "tool_call_completed",
            "message_received",
        ] * 2
        assert [event.sequence_number for event in events] == list(range(1, 9))
        runs = store.list_runs(ours)
        assert [run.status for run in runs] == ["completed", "completed"]
        assert all(run.token_usage["input_tokens"] == 120 for run in runs)
        # the conversation fold, the queries and the replay read them like any session
        roles = [type(m).__name__ for m in store.conversation(ours)]
        assert roles == ["UserMessage", "AssistantMessage", "ToolResult", "AssistantMessage"] * 2
        page = store.query().search_sessions(agent_id="weather", tags=["adk"])
        assert ours in {session.id for session in page.sessions}
        assert store.query().get_session_stats(ours).event_count == 8
        first_turn = store.history(ours).at(4)  # the session as it was after turn one
        assert first_turn.event_count == 4
        assert first_turn.session.context["adk_state"] == {"last_answer": "Sunny in Paris."}
    cli = CliRunner()
    listed = cli.invoke(entry.cli, ["--store", sqlite_url, "sessions", "--json"])
    assert listed.exit_code == 0, listed.output
    assert ours in listed.output
    shown = cli.invoke(entry.cli, ["--store", sqlite_url, "show", ours])
    assert shown.exit_code == 0, shown.output
    assert "Sunny in Oslo too." in shown.output

    # retention prunes the log under ADK's feet: get_session sees what is left
    with open_store(sqlite_url) as store:
        policy = RetentionPolicy(
            max_events_per_session=3,
            max_completed_session_age_days=None,
            hard_delete_after_days=None,
        )
        assert store.maintenance().prune_session_events(ours, policy) == 5

    async def after_pruning() -> list[Event]:
        async with AgentSessionsSessionService(sqlite_url) as service:
            got = await service.get_session(
                app_name="weather",
                user_id="ada",
                session_id="s1",
                config=GetSessionConfig(num_recent_events=10),
            )
            assert got is not None
            return list(got.events)

    left = asyncio.run(after_pruning())
    assert [event.author for event in left] == ["forecaster"] * 3
    assert left[-1].content is not None
    assert left[-1].content.parts is not None
    assert left[-1].content.parts[0].text == "Sunny in Oslo too."


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(
        r"<!-- adk-example[^>]*-->\s*```python\n(.*?)```\s*<!-- /adk-example -->", text, re.S
    )
    assert found, "the README's Google ADK example is missing"
    return found.group(1)


def test_readme_example_runs(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.chdir(tmp_path)
    # The example's `agent` is the reader's own; here it is the scripted forecaster.
    namespace: dict[str, Any] = {"__name__": "readme_adk", "agent": forecaster()}
    exec(compile(readme_example(), str(README), "exec"), namespace)
    printed = capsys.readouterr().out
    assert "Sunny in Paris." in printed
    with open_store("sqlite:///adk.db") as store:
        assert len(store.get_events(session_id_for("weather", "ada", "paris-trip"))) == 4
