"""Conversation messages: typed records for the message list a model call takes, the
payload schema of the conversational events (``docs/events.md``) and the fold of a
session's events into messages.

The records are provider-neutral; ``message_converters.py`` turns them into (and back
from) OpenAI Chat Completions messages, OpenAI Responses input items and Anthropic
Messages.

The fold (:func:`messages_from_events`):

* ``message_sent`` is a user message (``role`` ``"user"``, the default), a system
  message (``"system"`` or ``"developer"``) or, for an input that replays an assistant
  message, an assistant message;
* ``message_received`` (``role`` ``"assistant"``, the default) is assistant text, with
  ``thinking`` / ``reasoning`` when the payload has them; ``message_streamed`` with
  ``kind`` ``"thinking"`` (the importers' form) is thinking of the next assistant text;
  other ``message_streamed`` events are deltas of a message whose final text a
  ``message_received`` holds, and are skipped;
* ``tool_call_started`` is a tool call of the current assistant message,
  ``tool_call_completed`` / ``tool_call_failed`` its result (``is_error`` for a failure).

Assistant text, thinking and tool calls that follow one another form one assistant
message until a user message, a system message or a tool result comes; a second text
starts a new assistant message unless both carry the same ``message_id``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import count
from typing import Any, Literal

from .errors import ValidationError
from .event import Event
from .event_types import EventType


@dataclass(frozen=True)
class TextPart:
    """A text part of a message's content."""

    text: str


@dataclass(frozen=True)
class ImagePart:
    """An image in a message's content: a reference to an artifact (``artifact_key``),
    or an image at ``url`` (an ``https:`` or ``data:`` URL) when it came from outside."""

    artifact_key: str | None = None
    url: str | None = None
    media_type: str | None = None


ContentPart = TextPart | ImagePart
#: A message's content: plain text, or parts.
Content = str | tuple[ContentPart, ...]


@dataclass(frozen=True)
class SystemMessage:
    content: str
    role: Literal["system"] = "system"


@dataclass(frozen=True)
class UserMessage:
    content: Content
    role: Literal["user"] = "user"


@dataclass(frozen=True)
class ToolCallRequest:
    """A tool call the model asked for: ``arguments`` is a JSON object."""

    id: str
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AssistantMessage:
    """The model's answer: text, its thinking (with the provider's ``thinking_signature``
    when it has one: Anthropic takes thinking back only signed) and tool calls."""

    text: str = ""
    thinking: str | None = None
    thinking_signature: str | None = None
    tool_calls: tuple[ToolCallRequest, ...] = ()
    role: Literal["assistant"] = "assistant"


@dataclass(frozen=True)
class ToolResult:
    """The answer to tool call ``tool_call_id``; ``content`` is text (JSON output is
    rendered as JSON text)."""

    tool_call_id: str
    tool_name: str
    content: str
    is_error: bool = False
    role: Literal["tool"] = "tool"


Message = SystemMessage | UserMessage | AssistantMessage | ToolResult

#: ``message_streamed`` kinds that are the model's thinking.
THINKING_KINDS = frozenset({"thinking", "redacted_thinking", "reasoning"})
SYSTEM_ROLES = frozenset({"system", "developer"})
ROLES = frozenset({"user", "assistant", "system", "developer", "tool"})


# -- payload schema -------------------------------------------------------------------


def is_content(value: object) -> bool:
    """Text, or a list of content blocks (maps with a string ``type``)."""
    if isinstance(value, str):
        return True
    return isinstance(value, list) and all(
        isinstance(block, Mapping) and isinstance(block.get("type"), str) for block in value
    )


def _block_warnings(blocks: object) -> list[str]:
    warnings: list[str] = []
    if not isinstance(blocks, list):
        return warnings
    for index, block in enumerate(blocks):
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text" and not isinstance(block.get("text"), str):
            warnings.append(f"content[{index}]: a text block needs a string 'text'")
        if kind == "image" and not (
            isinstance(block.get("artifact_key"), str) or isinstance(block.get("url"), str)
        ):
            warnings.append(f"content[{index}]: an image block needs 'artifact_key' or 'url'")
    return warnings


def conversation_warnings(event_type: EventType, data: Mapping[str, Any]) -> list[str]:
    """Shape notes for the optional conversational fields of ``data`` (present fields of
    the wrong kind); the required fields are the validator's ``SHAPE_RULES``."""
    warnings: list[str] = []

    def kind(name: str, check: Any, expected: str) -> None:
        value = data.get(name)
        if value is not None and not check(value):
            warnings.append(f"field '{name}' expected {expected}")

    if event_type in (
        EventType.MESSAGE_SENT,
        EventType.MESSAGE_RECEIVED,
        EventType.MESSAGE_STREAMED,
    ):
        role = data.get("role")
        if isinstance(role, str) and role not in ROLES:  # a non-string: SHAPE_RULES
            warnings.append(f"field 'role' expected one of {sorted(ROLES)}")
        if event_type is EventType.MESSAGE_SENT:  # the others: the validator's SHAPE_RULES
            kind("content", is_content, "text or a list of content blocks")
        warnings.extend(_block_warnings(data.get("content")))
        for name in ("thinking", "reasoning", "thinking_signature", "message_id"):
            kind(name, lambda v: isinstance(v, str), "string")
    elif event_type is EventType.TOOL_CALL_STARTED:
        kind("tool_call_id", lambda v: isinstance(v, str), "string")
        kind("arguments", lambda v: isinstance(v, Mapping), "a JSON object")
    elif event_type in (EventType.TOOL_CALL_COMPLETED, EventType.TOOL_CALL_FAILED):
        kind("tool_call_id", lambda v: isinstance(v, str), "string")
        kind("is_error", lambda v: isinstance(v, bool), "boolean")
    return warnings


# -- events to messages ---------------------------------------------------------------


def _text_of(value: Any) -> str:
    """Text of a payload's output or content: text as it is, text blocks joined, any
    other JSON as JSON text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(
        isinstance(b, Mapping) and b.get("type") == "text" for b in value
    ):
        return "".join(str(b.get("text", "")) for b in value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def content_from_payload(value: Any) -> Content:
    """A payload's ``content`` as message content: text stays text, blocks become parts
    (``text`` and ``image``; other blocks are rendered as JSON text)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        return _text_of(value)
    parts: list[ContentPart] = []
    for block in value:
        if isinstance(block, Mapping) and block.get("type") == "text":
            parts.append(TextPart(str(block.get("text", ""))))
        elif isinstance(block, Mapping) and block.get("type") == "image":
            parts.append(
                ImagePart(
                    artifact_key=_opt_str(block.get("artifact_key")),
                    url=_opt_str(block.get("url")),
                    media_type=_opt_str(block.get("media_type")),
                )
            )
        else:
            parts.append(TextPart(_text_of(block)))
    return tuple(parts)


def content_to_payload(content: Content) -> str | list[dict[str, Any]]:
    """Message content as an event payload's ``content`` (the inverse of
    :func:`content_from_payload`)."""
    if isinstance(content, str):
        return content
    blocks: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextPart):
            blocks.append({"type": "text", "text": part.text})
        else:
            image: dict[str, Any] = {"type": "image"}
            for name in ("artifact_key", "url", "media_type"):
                if getattr(part, name) is not None:
                    image[name] = getattr(part, name)
            blocks.append(image)
    return blocks


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _arguments(data: Mapping[str, Any]) -> Mapping[str, Any]:
    value = data.get("arguments")
    if value is None:
        value = data.get("tool_input")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {"input": value}
    if value is None:
        return {}
    return dict(value) if isinstance(value, Mapping) else {"input": value}


class _Fold:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.open: AssistantMessage | None = None
        self.open_id: str | None = None
        self.thinking: list[str] = []
        self.signature: str | None = None
        self.names: dict[str, str] = {}

    def close(self) -> None:
        if self.open is not None:
            self.messages.append(self.open)
        self.open, self.open_id = None, None

    def assistant(self, message_id: str | None) -> AssistantMessage:
        if self.open is None:
            self.open, self.open_id = AssistantMessage(), message_id
        if self.thinking:
            parts = ([self.open.thinking] if self.open.thinking else []) + self.thinking
            self.open = replace(
                self.open,
                thinking="\n".join(parts),
                thinking_signature=self.signature or self.open.thinking_signature,
            )
            self.thinking, self.signature = [], None
        return self.open

    def text(self, data: Mapping[str, Any]) -> None:
        message_id = _opt_str(data.get("message_id"))
        if (
            self.open is not None
            and self.open.text
            and (message_id is None or message_id != self.open_id)
        ):
            self.close()
        thinking = _opt_str(data.get("thinking")) or _opt_str(data.get("reasoning"))
        if thinking:
            self.thinking.append(thinking)
            self.signature = _opt_str(data.get("thinking_signature"))
        current = self.assistant(message_id)
        text = _text_of(data.get("content"))
        joined = current.text + ("\n" if current.text and text else "") + text
        self.open = replace(current, text=joined)

    def add(self, event: Event) -> None:
        data = event.data
        kind = event.type
        if kind is EventType.MESSAGE_STREAMED:
            if data.get("kind") in THINKING_KINDS and isinstance(data.get("content"), str):
                if data["content"]:
                    self.thinking.append(data["content"])
                self.signature = _opt_str(data.get("thinking_signature")) or self.signature
            return
        if kind in (EventType.MESSAGE_SENT, EventType.MESSAGE_RECEIVED):
            default = "user" if kind is EventType.MESSAGE_SENT else "assistant"
            role = data.get("role", default)
            if role == "assistant":
                self.text(data)
                return
            self.close()
            self.thinking, self.signature = [], None
            if role in SYSTEM_ROLES:
                self.messages.append(SystemMessage(_text_of(data.get("content"))))
            else:
                self.messages.append(UserMessage(content_from_payload(data.get("content"))))
            return
        if kind is EventType.TOOL_CALL_STARTED:
            call_id = _opt_str(data.get("tool_call_id")) or event.id
            name = _opt_str(data.get("tool_name")) or "unknown"
            self.names[call_id] = name
            current = self.assistant(_opt_str(data.get("message_id")))
            call = ToolCallRequest(call_id, name, _arguments(data))
            self.open = replace(current, tool_calls=(*current.tool_calls, call))
            return
        if kind in (EventType.TOOL_CALL_COMPLETED, EventType.TOOL_CALL_FAILED):
            answered = _opt_str(data.get("tool_call_id"))
            if answered is None:
                return
            self.close()
            output = data.get("output", data.get("tool_output"))
            if output is None and kind is EventType.TOOL_CALL_FAILED:
                output = data.get("error")
            failed = kind is EventType.TOOL_CALL_FAILED or data.get("is_error") is True
            name = _opt_str(data.get("tool_name")) or self.names.get(answered, "unknown")
            self.messages.append(ToolResult(answered, name, _text_of(output), failed))


def messages_from_events(events: Iterable[Event]) -> list[Message]:
    """The conversation the events hold, in order (see the module docstring). Tool
    results whose call is not among the events are left out: a model API refuses them."""
    fold = _Fold()
    for event in events:
        fold.add(event)
    fold.close()
    called = {c.id for m in fold.messages if isinstance(m, AssistantMessage) for c in m.tool_calls}
    return [m for m in fold.messages if not isinstance(m, ToolResult) or m.tool_call_id in called]


def last_turns(messages: Sequence[Message], turns: int) -> list[Message]:
    """The system messages, then the last ``turns`` turns: a turn starts at a user
    message, so a tool call and its result are never separated."""
    if isinstance(turns, bool) or not isinstance(turns, int) or turns < 1:
        raise ValidationError(
            "last_turns must be a positive integer", details={"field": "last_turns"}
        )
    starts = [i for i, m in enumerate(messages) if isinstance(m, UserMessage)]
    if len(starts) <= turns:
        return list(messages)
    cut = starts[-turns]
    head = [m for m in messages[:cut] if isinstance(m, SystemMessage)]
    return [*head, *messages[cut:]]


def payloads_from_messages(
    messages: Iterable[Message], *, message_ids: Iterator[str] | None = None
) -> list[tuple[EventType, dict[str, Any]]]:
    """The events (type and payload, in the schema of ``docs/events.md``) that record
    ``messages``: what :func:`messages_from_events` folds back into them. Each assistant
    message's events share a ``message_id`` (``message_ids``, default ``msg_1``, ...)."""
    ids = message_ids if message_ids is not None else (f"msg_{n}" for n in count(1))
    out: list[tuple[EventType, dict[str, Any]]] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            out.append((EventType.MESSAGE_SENT, {"role": "system", "content": message.content}))
        elif isinstance(message, UserMessage):
            content = content_to_payload(message.content)
            out.append((EventType.MESSAGE_SENT, {"role": "user", "content": content}))
        elif isinstance(message, AssistantMessage):
            message_id = next(ids)
            data: dict[str, Any] = {"role": "assistant", "content": message.text}
            if message.thinking is not None:
                data["thinking"] = message.thinking
            if message.thinking_signature is not None:
                data["thinking_signature"] = message.thinking_signature
            out.append((EventType.MESSAGE_RECEIVED, {**data, "message_id": message_id}))
            out.extend(
                (
                    EventType.TOOL_CALL_STARTED,
                    {
                        "tool_call_id": call.id,
                        "tool_name": call.name,
                        "arguments": dict(call.arguments),
                        "message_id": message_id,
                    },
                )
                for call in message.tool_calls
            )
        else:
            kind = EventType.TOOL_CALL_FAILED if message.is_error else EventType.TOOL_CALL_COMPLETED
            result = {
                "tool_call_id": message.tool_call_id,
                "tool_name": message.tool_name,
                "output": message.content,
                "is_error": message.is_error,
            }
            out.append((kind, result))
    return out
