"""The message converters against the real SDKs' request types (``openai``,
``anthropic``; no network): what they produce validates as the SDK's message params, and
hypothesis-generated conversations survive the round trip through each format."""

from __future__ import annotations

import string
from typing import Any

import pytest
from anthropic.types import MessageParam
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionMessageParam
from openai.types.responses import ResponseInputItemParam
from pydantic import TypeAdapter

from agent_sessions import AgentSessionsError, ErrorCode
from agent_sessions.domain.message_converters import (
    from_anthropic,
    from_openai_chat,
    from_openai_responses,
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
)

CHAT = TypeAdapter(list[ChatCompletionMessageParam])
RESPONSES = TypeAdapter(list[ResponseInputItemParam])
ANTHROPIC = TypeAdapter(list[MessageParam])

text = st.text(alphabet=string.ascii_letters + " .é日", min_size=1, max_size=20)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
image = st.builds(
    ImagePart,
    url=st.sampled_from(["https://example.com/a.png", "data:image/png;base64,iVBORw0KGgo="]),
)
user_content = text | st.lists(st.builds(TextPart, text) | image, min_size=1, max_size=3).map(tuple)


@st.composite
def conversations(draw: st.DrawFn) -> list[Message]:
    """Well-formed conversations: an optional system prompt, then turns of a user message,
    assistant steps whose tool calls are each answered, and a final assistant text."""
    messages: list[Message] = []
    if draw(st.booleans()):
        messages.append(SystemMessage(draw(text)))
    ids = iter(range(1000))
    for _ in range(draw(st.integers(1, 3))):
        messages.append(UserMessage(draw(user_content)))
        for _ in range(draw(st.integers(0, 2))):
            calls = tuple(
                ToolCallRequest(
                    f"call_{next(ids)}",
                    draw(st.sampled_from(["read", "bash", "search"])),
                    draw(st.dictionaries(text, json_value, max_size=3)),
                )
                for _ in range(draw(st.integers(1, 3)))
            )
            thinking = draw(st.none() | text)
            messages.append(
                AssistantMessage(
                    text=draw(st.just("") | text),
                    thinking=thinking,
                    thinking_signature=None if thinking is None else draw(text),
                    tool_calls=calls,
                )
            )
            messages.extend(
                ToolResult(call.id, call.name, draw(text), draw(st.booleans())) for call in calls
            )
        messages.append(AssistantMessage(text=draw(text)))
    return messages


def _without_thinking(messages: list[Message]) -> list[Message]:
    return [
        AssistantMessage(text=m.text, tool_calls=m.tool_calls)
        if isinstance(m, AssistantMessage)
        else m
        for m in messages
    ]


def _without_errors(messages: list[Message]) -> list[Message]:
    return [
        ToolResult(m.tool_call_id, m.tool_name, m.content) if isinstance(m, ToolResult) else m
        for m in messages
    ]


@settings(max_examples=150, deadline=None)
@given(conversations())
def test_openai_chat_round_trip(messages: list[Message]) -> None:
    produced = to_openai_chat(messages)
    CHAT.validate_python(produced)
    back = from_openai_chat(produced)
    # Chat Completions input has no thinking and no error flag on a tool result.
    assert back == _without_errors(_without_thinking(messages))
    assert to_openai_chat(back) == produced


@settings(max_examples=150, deadline=None)
@given(conversations())
def test_openai_responses_round_trip(messages: list[Message]) -> None:
    produced = to_openai_responses(messages)
    RESPONSES.validate_python(produced)
    back = from_openai_responses(produced)
    assert back == _without_errors(_without_thinking(messages))
    assert to_openai_responses(back) == produced


@settings(max_examples=150, deadline=None)
@given(conversations())
def test_anthropic_round_trip(messages: list[Message]) -> None:
    system, produced = to_anthropic(messages)
    ANTHROPIC.validate_python(produced)
    back = from_anthropic(produced, system=system)
    assert back == messages
    assert to_anthropic(back) == (system, produced)


def test_unsigned_thinking_is_not_sent_to_anthropic() -> None:
    messages: list[Message] = [
        UserMessage("hi"),
        AssistantMessage(text="hello", thinking="greet back"),
    ]
    _, produced = to_anthropic(messages)
    assert produced[1] == {"role": "assistant", "content": [{"type": "text", "text": "hello"}]}


def test_artifact_images_are_sent_through_image_url() -> None:
    messages: list[Message] = [
        UserMessage((TextPart("what is it?"), ImagePart(artifact_key="shots/1.png")))
    ]
    urls = {"shots/1.png": "data:image/png;base64,iVBORw0KGgo="}
    chat = to_openai_chat(messages, image_url=urls.__getitem__)
    CHAT.validate_python(chat)
    assert chat[0]["content"][1] == {"type": "image_url", "image_url": {"url": urls["shots/1.png"]}}
    responses = to_openai_responses(messages, image_url=urls.__getitem__)
    RESPONSES.validate_python(responses)
    _, anthropic = to_anthropic(messages, image_url=urls.__getitem__)
    ANTHROPIC.validate_python(anthropic)
    assert anthropic[0]["content"][1]["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": "iVBORw0KGgo=",
    }
    with pytest.raises(AgentSessionsError) as caught:
        to_openai_chat(messages)
    assert caught.value.code == ErrorCode.VALIDATION_ERROR
    assert caught.value.details["field"] == "messages[0]"


@pytest.mark.parametrize(
    ("convert", "items", "field"),
    [
        (from_openai_chat, [{"role": "robot", "content": "x"}], "messages[0]"),
        (from_openai_chat, ["not a map"], "messages[0]"),
        (
            from_openai_chat,
            [
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "f", "arguments": "[1]"},
                        }
                    ],
                },
            ],
            "messages[1]",
        ),
        (from_openai_chat, [{"role": "tool", "content": "x"}], "messages[0]"),
        (from_openai_responses, [{"type": "web_search_call"}], "input[0]"),
        (from_anthropic, [{"role": "user", "content": [{"type": "document"}]}], "messages[0]"),
    ],
)
def test_unsupported_input_names_its_place(convert: Any, items: Any, field: str) -> None:
    with pytest.raises(AgentSessionsError) as caught:
        convert(items)
    assert caught.value.code == ErrorCode.VALIDATION_ERROR
    assert caught.value.details["field"] == field
