"""store.conversation: the payload schema of the conversational events, their fold into
messages, the run and turn windows, and the README example, on every backend."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from test_message_converters import ANTHROPIC, CHAT, RESPONSES, conversations

from agent_sessions import (
    AgentSessionsError,
    ErrorCode,
    Event,
    EventValidator,
    Run,
    Session,
    open_store,
)
from agent_sessions.composition.store import Store
from agent_sessions.domain.event_builder import EventContext
from agent_sessions.domain.event_validator import WARNINGS_KEY
from agent_sessions.domain.message_converters import (
    to_anthropic,
    to_openai_chat,
    to_openai_responses,
)
from agent_sessions.domain.messages import (
    AssistantMessage,
    ImagePart,
    Message,
    SystemMessage,
    TextPart,
    ToolCallRequest,
    ToolResult,
    UserMessage,
    payloads_from_messages,
)
from agent_sessions.importers.claude_code import import_claude_code
from agent_sessions.importers.sample_transcript import write_sample_transcript
from agent_sessions.services.event_pipeline import EventPipeline

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


@pytest.fixture
def session(store: Store) -> Session:
    session = Session.new(agent_id="chat")
    store.save_session(session)
    return session


def _events(session: Session, run: str | None, *items: tuple[str, dict[str, Any]]) -> list[Event]:
    return [Event.new(type=t, session_id=session.id, run_id=run, data=d) for t, d in items]


def _save_runs(store: Store, session: Session, *run_ids: str) -> None:
    for run_id in run_ids:
        store.save_run(Run.new(session_id=session.id, id=run_id))


def _turn(session: Session, run: str, n: int) -> list[Event]:
    return _events(
        session,
        run,
        ("message_sent", {"role": "user", "content": f"question {n}"}),
        ("tool_call_started", {"tool_call_id": f"c{n}", "tool_name": "t", "arguments": {"n": n}}),
        ("tool_call_completed", {"tool_call_id": f"c{n}", "tool_name": "t", "output": str(n)}),
        ("message_received", {"role": "assistant", "content": f"answer {n}"}),
    )


def _expected_turn(n: int) -> list[Any]:
    return [
        UserMessage(f"question {n}"),
        AssistantMessage(tool_calls=(ToolCallRequest(f"c{n}", "t", {"n": n}),)),
        ToolResult(f"c{n}", "t", str(n)),
        AssistantMessage(text=f"answer {n}"),
    ]


def test_the_fold_of_every_payload_form(store: Store, session: Session) -> None:
    _save_runs(store, session, "r1")
    image = {"type": "image", "artifact_key": "shots/1.png", "media_type": "image/png"}
    store.append_events(
        _events(
            session,
            "r1",
            ("message_sent", {"role": "system", "content": "Be brief."}),
            ("message_sent", {"content": [{"type": "text", "text": "What is this?"}, image]}),
            ("message_streamed", {"kind": "thinking", "content": "Look at it."}),
            ("message_streamed", {"content": "A ca"}),  # a delta: the final text follows
            ("message_received", {"role": "assistant", "content": "A cat.", "message_id": "m1"}),
            # the importers' legacy fields: tool_input / tool_output
            (
                "tool_call_started",
                {
                    "tool_call_id": "a",
                    "tool_name": "zoom",
                    "tool_input": {"x": 2},
                    "message_id": "m1",
                },
            ),
            ("tool_call_failed", {"tool_call_id": "a", "tool_name": "zoom", "error": "too far"}),
            ("tool_call_started", {"tool_call_id": "b", "tool_name": "read", "arguments": {}}),
            ("tool_call_completed", {"tool_call_id": "b", "tool_output": {"lines": 3}}),
            ("tool_call_completed", {"tool_call_id": "orphan", "output": "no call"}),
            (
                "message_received",
                {
                    "content": [{"type": "text", "text": "Done"}],
                    "thinking": "All read.",
                    "thinking_signature": "sig",
                },
            ),
        )
    )
    assert store.conversation(session.id) == [
        SystemMessage("Be brief."),
        UserMessage((TextPart("What is this?"), ImagePart("shots/1.png", media_type="image/png"))),
        AssistantMessage(
            text="A cat.",
            thinking="Look at it.",
            tool_calls=(ToolCallRequest("a", "zoom", {"x": 2}),),
        ),
        ToolResult("a", "zoom", "too far", is_error=True),
        AssistantMessage(tool_calls=(ToolCallRequest("b", "read", {}),)),
        ToolResult("b", "read", '{"lines": 3}'),
        AssistantMessage(text="Done", thinking="All read.", thinking_signature="sig"),
    ]


def test_run_and_turn_windows_never_split_a_tool_call(store: Store, session: Session) -> None:
    _save_runs(store, session, "r1", "r2", "r3")
    system = _events(session, None, ("message_sent", {"role": "system", "content": "S"}))
    store.append_events(system + _turn(session, "r1", 1) + _turn(session, "r2", 2))
    store.append_events(_turn(session, "r3", 3) + _turn(session, "r3", 4))
    head = [SystemMessage("S")]
    everything = head + [m for n in (1, 2, 3, 4) for m in _expected_turn(n)]
    assert store.conversation(session.id) == everything
    assert store.conversation(session.id, run_id="r2") == head + _expected_turn(2)
    assert store.conversation(session.id, last_runs=2) == head + [
        m for n in (2, 3, 4) for m in _expected_turn(n)
    ]
    assert store.conversation(session.id, last_runs=9) == everything
    assert store.conversation(session.id, last_turns=1) == head + _expected_turn(4)
    assert store.conversation(session.id, run_id="r3", last_turns=1) == head + _expected_turn(4)
    assert store.conversation(session.id, last_turns=9) == everything


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"last_turns": 0}, "last_turns"),
        ({"last_turns": True}, "last_turns"),
        ({"last_runs": "2"}, "last_runs"),
        ({"run_id": ""}, "run_id"),
        ({"run_id": "r1", "last_runs": 1}, "last_runs"),
    ],
)
def test_bad_windows_name_their_field(
    store: Store, session: Session, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(AgentSessionsError) as caught:
        store.conversation(session.id, **options)
    assert caught.value.code == ErrorCode.VALIDATION_ERROR
    assert caught.value.details["field"] == field


def test_an_unknown_session_is_not_found(store: Store) -> None:
    with pytest.raises(AgentSessionsError) as caught:
        store.conversation("ses_missing")
    assert caught.value.code == ErrorCode.SESSION_NOT_FOUND


# -- the payload schema in the validator --------------------------------------------------


def _warnings(event_type: str, data: dict[str, Any]) -> list[str]:
    event = Event.new(type=event_type, session_id="s", data=data)
    return EventValidator().shape_warnings(event)


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("message_sent", {"role": "user", "content": "hi"}),
        ("message_sent", {"role": "system", "content": "Be brief."}),
        (
            "message_sent",
            {"content": [{"type": "text", "text": "a"}, {"type": "image", "artifact_key": "k"}]},
        ),
        (
            "message_received",
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "a"}],
                "thinking": "t",
                "thinking_signature": "s",
                "message_id": "m",
            },
        ),
        ("message_streamed", {"role": "assistant", "kind": "thinking", "content": "t"}),
        ("tool_call_started", {"tool_name": "t", "tool_call_id": "c", "arguments": {"a": 1}}),
        ("tool_call_started", {"tool_name": "t", "tool_call_id": "c", "tool_input": "legacy"}),
        ("tool_call_completed", {"tool_name": "t", "tool_call_id": "c", "output": "o"}),
        (
            "tool_call_failed",
            {"tool_name": "t", "tool_call_id": None, "tool_output": [1], "is_error": True},
        ),
    ],
)
def test_schema_payloads_and_legacy_payloads_have_no_warnings(
    event_type: str, data: dict[str, Any]
) -> None:
    assert _warnings(event_type, data) == []


@pytest.mark.parametrize(
    ("event_type", "data", "warning"),
    [
        ("message_sent", {"role": "robot", "content": "x"}, "field 'role' expected one of"),
        ("message_sent", {"content": 5}, "field 'content' expected text or a list"),
        (
            "message_received",
            {"role": "assistant", "content": {"text": "x"}},
            "field 'content' expected content",
        ),
        (
            "message_received",
            {"role": "assistant", "content": [{"type": "text"}]},
            "content[0]: a text block needs",
        ),
        ("message_sent", {"content": [{"type": "image"}]}, "content[0]: an image block needs"),
        (
            "message_received",
            {"role": "assistant", "content": "x", "thinking": 1},
            "field 'thinking' expected string",
        ),
        ("tool_call_started", {"tool_name": "t", "arguments": [1]}, "field 'arguments' expected"),
        ("tool_call_started", {"tool_name": "t", "tool_call_id": 7}, "field 'tool_call_id'"),
        ("tool_call_completed", {"tool_name": "t", "is_error": "no"}, "field 'is_error'"),
    ],
)
def test_off_schema_payloads_are_kept_with_a_warning(
    store: Store, session: Session, event_type: str, data: dict[str, Any], warning: str
) -> None:
    (note,) = _warnings(event_type, data)
    assert note.startswith(warning)
    # Warned, never refused: the pipeline stores the event, the note in its metadata.
    EventPipeline(store).process(
        {"type": event_type, "data": data}, EventContext(session_id=session.id)
    )
    (stored,) = store.get_events(session.id)
    assert stored.data == data
    assert stored.metadata[WARNINGS_KEY] == [note]


# -- the README example ------------------------------------------------------------------


def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The code between the ``conversation-example`` markers of the README, as it is."""
    text = README.read_text(encoding="utf-8")
    block = re.search(
        r"<!-- conversation-example[^>]*-->\n```python\n(.*?)```\n<!-- /conversation-example -->",
        text,
        re.DOTALL,
    )
    assert block is not None
    code = block.group(1)
    assert len(code.strip().splitlines()) < 17  # two import lines, then 13 lines
    monkeypatch.chdir(tmp_path)
    scope: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), scope)
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
    }
    assert scope["openai_messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18°C, sunny"},
        {"role": "assistant", "content": "18°C and sunny."},
        {"role": "user", "content": "And tomorrow?"},
        {"role": "assistant", "content": "Rain is expected."},
    ]
    assert scope["system"] is None
    assert scope["anthropic_messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}}
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "18°C, sunny"}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "18°C and sunny."}]},
        {"role": "user", "content": "And tomorrow?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Rain is expected."}]},
    ]
    assert to_openai_chat(scope["messages"]) == scope["openai_messages"]
    assert to_anthropic(scope["messages"])[1] == scope["anthropic_messages"]


# -- the schema and the fold agree ---------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(conversations())
def test_messages_recorded_in_the_schema_read_back_the_same(messages: list[Message]) -> None:
    """Any conversation written as events with the schema's payloads (and no shape
    warning) is what ``conversation`` returns."""
    with open_store("memory://") as store:
        session = Session.new(agent_id="chat")
        store.save_session(session)
        payloads = payloads_from_messages(messages)
        pipeline = EventPipeline(store)
        for event_type, data in payloads:
            stored = pipeline.process(
                {"type": event_type, "data": data}, EventContext(session_id=session.id)
            )
            assert WARNINGS_KEY not in stored.metadata
        assert store.conversation(session.id) == messages


def test_an_imported_claude_code_transcript_reads_back_as_sdk_messages(tmp_path: Path) -> None:
    """The importers' payloads (legacy ``tool_input`` / ``tool_output``, thinking as
    ``message_streamed``) fold into messages every SDK's request types accept, with each
    tool call answered right after the message that made it."""
    root = write_sample_transcript(tmp_path / "projects" / "sample", seed=3)
    with open_store(f"sqlite:///{tmp_path / 'cc.db'}") as store:
        import_claude_code(store, [root])
        sessions = store.list_sessions()
        assert sessions
        for session in sessions:
            messages = store.conversation(session.id)
            assert any(isinstance(m, ToolResult) for m in messages)
            for index, message in enumerate(messages):
                if isinstance(message, AssistantMessage) and message.tool_calls:
                    answers = messages[index + 1 : index + 1 + len(message.tool_calls)]
                    assert [a.tool_call_id for a in answers if isinstance(a, ToolResult)] == [
                        c.id for c in message.tool_calls
                    ]
            CHAT.validate_python(to_openai_chat(messages))
            RESPONSES.validate_python(to_openai_responses(messages))
            ANTHROPIC.validate_python(to_anthropic(messages)[1])
