"""The mapping of ADK events onto ours (``adapters/adk_events.py``), for any event
hypothesis builds: the ADK JSON survives a store round trip identical, the type follows
the content, ids are stable and scoped; and the adapter without ADK installed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.genai import types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_sessions import Session, open_store
from agent_sessions.adapters.adk_events import (
    event_id_for,
    raw_of,
    session_id_for,
    to_event,
    typed_payload,
)

words = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | words,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(words, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def parts(draw: st.DrawFn) -> types.Part:
    kind = draw(st.sampled_from(["text", "thought", "call", "response", "bytes"]))
    if kind == "text":
        return types.Part(text=draw(words))
    if kind == "thought":
        return types.Part(text=draw(words), thought=True)
    if kind == "call":
        args = draw(st.dictionaries(words, json_values, max_size=3))
        return types.Part(function_call=types.FunctionCall(id=draw(words), name="tool", args=args))
    if kind == "response":
        response = draw(st.dictionaries(st.sampled_from(["result", "error"]), json_values))
        return types.Part(
            function_response=types.FunctionResponse(id=draw(words), name="tool", response=response)
        )
    return types.Part.from_bytes(data=draw(st.binary(max_size=16)), mime_type="image/png")


@st.composite
def adk_events(draw: st.DrawFn) -> Event:
    content = None
    if draw(st.booleans()):
        content = types.Content(
            role=draw(st.sampled_from(["user", "model"])),
            parts=draw(st.lists(parts(), min_size=1, max_size=3)),
        )
    return Event(
        invocation_id=draw(st.sampled_from(["", "inv-1"])),
        author=draw(st.sampled_from(["user", "agent"])),
        content=content,
        timestamp=draw(st.floats(0, 4e9, allow_nan=False)),
        actions=EventActions(state_delta=draw(st.dictionaries(words, json_values, max_size=3))),
        error_code=draw(st.none() | st.just("E1")),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(adk_events(), min_size=1, max_size=4))
def test_any_adk_event_reads_back_identical(events: list[Event]) -> None:
    with open_store("memory://") as store:
        store.save_session(Session.new(agent_id="app", id="adk_s"))
        ours = [
            to_event("adk_s", e.model_dump(mode="json", exclude_none=True), run_id=None)
            for e in events
        ]
        store.append_events(ours)
        back = [raw_of(event) for event in store.get_events("adk_s")]
        assert [Event.model_validate(raw) for raw in back if raw is not None] == events
        store.conversation("adk_s")  # the typed fields always fold


@settings(max_examples=40, deadline=None)
@given(event=adk_events())
def test_the_type_follows_the_content(event: Event) -> None:
    kind, data = typed_payload(event.model_dump(mode="json", exclude_none=True))
    if event.get_function_calls():
        assert kind == "tool_call_started"
        assert data["tool_name"] == "tool"
    elif event.get_function_responses():
        response = event.get_function_responses()[0].response or {}
        assert kind == ("tool_call_failed" if "error" in response else "tool_call_completed")
    elif event.content is not None and event.content.parts:
        assert kind == ("message_sent" if event.author == "user" else "message_received")
    elif event.error_code:
        assert kind == "error_occurred"
    else:
        assert (kind, data["kind"]) == ("message_streamed", "adk_actions")


def test_ids_are_stable_and_scoped_by_app_user_and_session() -> None:
    assert session_id_for("a", "u", "s") == session_id_for("a", "u", "s")
    triples = [
        ("a", "u", "s"),
        ("a", "u2", "s"),
        ("a2", "u", "s"),
        ("a:u", "", "s"),
        ("a", "u:s", ""),
    ]
    assert len({session_id_for(*t) for t in triples}) == len(triples)
    assert event_id_for(session_id_for("a", "u", "s"), "e1") != event_id_for(
        session_id_for("a", "u2", "s"), "e1"
    )


def test_without_adk_the_service_names_the_adk_extra() -> None:
    script = textwrap.dedent(
        """
        import json, sys
        sys.modules["google.adk"] = None
        from agent_sessions import AgentSessionsError
        from agent_sessions.adapters.adk import AgentSessionsSessionService
        import agent_sessions.importers.adk  # the importer reads without ADK
        try:
            AgentSessionsSessionService("memory://")
        except AgentSessionsError as error:
            print(json.dumps({**error.to_dict(), "type": type(error).__name__}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    error: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert error["type"] == "DependencyNotAvailable"
    assert error["code"] == "dependency_not_available"
    assert "pip install 'agent-sessions[adk]'" in error["message"]
    assert error["details"]["extra"] == "adk"
