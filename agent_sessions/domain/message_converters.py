"""Conversation messages to and from the three model APIs' input formats, as plain
dicts (no SDK needed): OpenAI Chat Completions ``messages``, OpenAI Responses ``input``
items and Anthropic Messages (``system`` apart, ``messages`` with content blocks).

What a format cannot carry is dropped on the way out, never invented on the way back:

* OpenAI (both APIs) take no thinking back in input, and no ``is_error`` on a tool
  result: an error result is sent as its text;
* Anthropic takes thinking back only with its ``signature``: unsigned thinking is
  dropped; all system messages become the one ``system`` text; consecutive messages of
  one role are merged (tool results and the user text after them are one user message);
* images are artifact references: give ``image_url`` (artifact key to an ``https:`` or
  ``data:`` URL) to send them; an image with a ``url`` and no key is sent as that URL,
  and images coming back from a format have a ``url`` and no key.

The ``from_*`` functions take the tool name of a result from the call it answers
(OpenAI results carry only the id).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import ValidationError
from .messages import (
    AssistantMessage,
    Content,
    ContentPart,
    ImagePart,
    Message,
    SystemMessage,
    TextPart,
    ToolCallRequest,
    ToolResult,
    UserMessage,
)

ImageResolver = Callable[[str], str]


def _invalid(message: str, field: str) -> ValidationError:
    return ValidationError(message, details={"field": field})


def _image_url(part: ImagePart, resolve: ImageResolver | None, field: str) -> str:
    if part.artifact_key is not None and resolve is not None:
        return resolve(part.artifact_key)
    if part.url is not None:
        return part.url
    raise _invalid(
        f"image artifact {part.artifact_key!r} needs image_url= to be sent to a model", field
    )


def _arguments_json(call: ToolCallRequest) -> str:
    return json.dumps(dict(call.arguments), ensure_ascii=False)


def _parse_arguments(text: Any, field: str) -> dict[str, Any]:
    if isinstance(text, Mapping):
        return dict(text)
    try:
        value = json.loads(text) if isinstance(text, str) and text else {}
    except ValueError as exc:
        raise _invalid(f"tool call arguments are not JSON: {exc}", field) from exc
    if not isinstance(value, dict):
        raise _invalid("tool call arguments must be a JSON object", field)
    return value


def _get(item: Any, key: str, field: str) -> Any:
    if not isinstance(item, Mapping):
        raise _invalid("expected a JSON object", field)
    return item.get(key)


class _Names:
    """Tool names by call id, for results that carry only the id."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def call(self, call: ToolCallRequest) -> ToolCallRequest:
        self.names[call.id] = call.name
        return call

    def result(
        self, call_id: Any, content: str, field: str, *, is_error: bool = False
    ) -> ToolResult:
        if not isinstance(call_id, str):
            raise _invalid("a tool result needs its tool call id", field)
        return ToolResult(call_id, self.names.get(call_id, "unknown"), content, is_error)


def _text_of_parts(content: Any, field: str, text_types: tuple[str, ...]) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _invalid("content must be text or a list of parts", field)
    return "".join(
        str(part.get("text", ""))
        for part in content
        if isinstance(part, Mapping) and part.get("type") in text_types
    )


# -- OpenAI Chat Completions ----------------------------------------------------------


def _chat_content(content: Content, resolve: ImageResolver | None, field: str) -> Any:
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": part.text})
        else:
            url = _image_url(part, resolve, field)
            parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts


def to_openai_chat(
    messages: Sequence[Message], *, image_url: ImageResolver | None = None
) -> list[dict[str, Any]]:
    """``messages`` for ``client.chat.completions.create``."""
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        field = f"messages[{index}]"
        if isinstance(message, SystemMessage):
            out.append({"role": "system", "content": message.content})
        elif isinstance(message, UserMessage):
            out.append(
                {"role": "user", "content": _chat_content(message.content, image_url, field)}
            )
        elif isinstance(message, AssistantMessage):
            item: dict[str, Any] = {"role": "assistant"}
            item["content"] = message.text if message.text or not message.tool_calls else None
            if message.tool_calls:
                item["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": _arguments_json(call)},
                    }
                    for call in message.tool_calls
                ]
            out.append(item)
        else:
            out.append(
                {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
            )
    return out


def _parts_from_chat(content: Any, field: str) -> Content:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _invalid("content must be text or a list of parts", field)
    parts: list[ContentPart] = []
    for part in content:
        kind = _get(part, "type", field)
        if kind == "text":
            parts.append(TextPart(str(part.get("text", ""))))
        elif kind == "image_url":
            parts.append(ImagePart(url=str(_get(part.get("image_url"), "url", field))))
        else:
            raise _invalid(f"unsupported content part type {kind!r}", field)
    return tuple(parts)


def from_openai_chat(messages: Sequence[Mapping[str, Any]]) -> list[Message]:
    """Chat Completions messages as conversation messages."""
    out: list[Message] = []
    names = _Names()
    for index, item in enumerate(messages):
        field = f"messages[{index}]"
        role = _get(item, "role", field)
        content = item.get("content")
        if role in ("system", "developer"):
            out.append(SystemMessage(_text_of_parts(content, field, ("text",))))
        elif role == "user":
            out.append(UserMessage(_parts_from_chat(content, field)))
        elif role == "assistant":
            calls = tuple(
                names.call(
                    ToolCallRequest(
                        str(_get(call, "id", field)),
                        str(_get(call.get("function"), "name", field)),
                        _parse_arguments(call["function"].get("arguments"), field),
                    )
                )
                for call in item.get("tool_calls") or ()
            )
            text = _text_of_parts(content, field, ("text",))
            out.append(AssistantMessage(text=text, tool_calls=calls))
        elif role == "tool":
            text = _text_of_parts(content, field, ("text",))
            out.append(names.result(item.get("tool_call_id"), text, field))
        else:
            raise _invalid(f"unsupported role {role!r}", field)
    return out


# -- OpenAI Responses -----------------------------------------------------------------


def to_openai_responses(
    messages: Sequence[Message], *, image_url: ImageResolver | None = None
) -> list[dict[str, Any]]:
    """``input`` items for ``client.responses.create``."""
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        field = f"messages[{index}]"
        if isinstance(message, SystemMessage):
            out.append({"role": "system", "content": message.content})
        elif isinstance(message, UserMessage):
            content: Any = message.content
            if not isinstance(content, str):
                content = [
                    {"type": "input_text", "text": part.text}
                    if isinstance(part, TextPart)
                    else {
                        "type": "input_image",
                        "image_url": _image_url(part, image_url, field),
                        "detail": "auto",
                    }
                    for part in content
                ]
            out.append({"role": "user", "content": content})
        elif isinstance(message, AssistantMessage):
            if message.text:
                out.append({"role": "assistant", "content": message.text})
            out.extend(
                {
                    "type": "function_call",
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": _arguments_json(call),
                }
                for call in message.tool_calls
            )
        else:
            out.append(
                {
                    "type": "function_call_output",
                    "call_id": message.tool_call_id,
                    "output": message.content,
                }
            )
    return out


def _parts_from_responses(content: Any, field: str) -> Content:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _invalid("content must be text or a list of parts", field)
    parts: list[ContentPart] = []
    for part in content:
        kind = _get(part, "type", field)
        if kind in ("input_text", "output_text"):
            parts.append(TextPart(str(part.get("text", ""))))
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            parts.append(ImagePart(url=part["image_url"]))
        else:
            raise _invalid(f"unsupported content part type {kind!r}", field)
    return tuple(parts)


def from_openai_responses(items: Sequence[Mapping[str, Any]]) -> list[Message]:
    """Responses input items as conversation messages: an assistant message and the
    function calls after it are one assistant message."""
    out: list[Message] = []
    names = _Names()
    for index, item in enumerate(items):
        field = f"input[{index}]"
        kind = _get(item, "type", field) or "message"
        last = out[-1] if out else None
        if kind == "function_call":
            call = names.call(
                ToolCallRequest(
                    str(item.get("call_id")),
                    str(item.get("name")),
                    _parse_arguments(item.get("arguments"), field),
                )
            )
            if isinstance(last, AssistantMessage):
                out[-1] = AssistantMessage(
                    text=last.text,
                    thinking=last.thinking,
                    thinking_signature=last.thinking_signature,
                    tool_calls=(*last.tool_calls, call),
                )
            else:
                out.append(AssistantMessage(tool_calls=(call,)))
        elif kind == "function_call_output":
            output = item.get("output")
            text = _text_of_parts(output, field, ("input_text", "output_text"))
            out.append(names.result(item.get("call_id"), text, field))
        elif kind == "message":
            role = item.get("role")
            content = item.get("content")
            if role in ("system", "developer"):
                out.append(SystemMessage(_text_of_parts(content, field, ("input_text",))))
            elif role == "user":
                out.append(UserMessage(_parts_from_responses(content, field)))
            elif role == "assistant":
                text = _text_of_parts(content, field, ("output_text", "input_text"))
                out.append(AssistantMessage(text=text))
            else:
                raise _invalid(f"unsupported role {role!r}", field)
        else:
            raise _invalid(f"unsupported input item type {kind!r}", field)
    return out


# -- Anthropic Messages ---------------------------------------------------------------


def _anthropic_image(part: ImagePart, resolve: ImageResolver | None, field: str) -> dict[str, Any]:
    url = _image_url(part, resolve, field)
    if url.startswith("data:") and ";base64," in url:
        head, data = url[5:].split(";base64,", 1)
        source: dict[str, Any] = {"type": "base64", "media_type": head, "data": data}
    else:
        source = {"type": "url", "url": url}
    return {"type": "image", "source": source}


def to_anthropic(
    messages: Sequence[Message], *, image_url: ImageResolver | None = None
) -> tuple[str | None, list[dict[str, Any]]]:
    """``(system, messages)`` for ``client.messages.create(system=..., messages=...)``
    (``system`` is ``None`` without system messages)."""
    system: list[str] = []
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if out and out[-1]["role"] == role:
            if isinstance(out[-1]["content"], str):
                out[-1]["content"] = [{"type": "text", "text": out[-1]["content"]}]
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for index, message in enumerate(messages):
        field = f"messages[{index}]"
        if isinstance(message, SystemMessage):
            system.append(message.content)
        elif isinstance(message, UserMessage):
            if isinstance(message.content, str):
                if out and out[-1]["role"] == "user":
                    add("user", [{"type": "text", "text": message.content}])
                else:
                    out.append({"role": "user", "content": message.content})
            else:
                add(
                    "user",
                    [
                        {"type": "text", "text": part.text}
                        if isinstance(part, TextPart)
                        else _anthropic_image(part, image_url, field)
                        for part in message.content
                    ],
                )
        elif isinstance(message, AssistantMessage):
            blocks: list[dict[str, Any]] = []
            if message.thinking and message.thinking_signature:
                blocks.append(
                    {
                        "type": "thinking",
                        "thinking": message.thinking,
                        "signature": message.thinking_signature,
                    }
                )
            if message.text:
                blocks.append({"type": "text", "text": message.text})
            blocks.extend(
                {
                    "type": "tool_use",
                    "id": call.id,
                    "name": call.name,
                    "input": dict(call.arguments),
                }
                for call in message.tool_calls
            )
            add("assistant", blocks)
        else:
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.content,
            }
            if message.is_error:
                block["is_error"] = True
            add("user", [block])
    return ("\n\n".join(system) if system else None), out


def _anthropic_image_part(block: Mapping[str, Any], field: str) -> ImagePart:
    source = _get(block, "source", field)
    kind = _get(source, "type", field)
    if kind == "base64":
        return ImagePart(url=f"data:{source.get('media_type')};base64,{source.get('data')}")
    if kind == "url":
        return ImagePart(url=str(source.get("url")))
    raise _invalid(f"unsupported image source {kind!r}", field)


def from_anthropic(
    messages: Sequence[Mapping[str, Any]], *, system: str | None = None
) -> list[Message]:
    """Anthropic messages (and the request's ``system`` text) as conversation messages:
    a user message's ``tool_result`` blocks become tool results, its other blocks one
    user message after them."""
    out: list[Message] = [SystemMessage(system)] if system else []
    names = _Names()
    for index, item in enumerate(messages):
        field = f"messages[{index}]"
        role = _get(item, "role", field)
        content = item.get("content")
        blocks: list[Any] = (
            [{"type": "text", "text": content}] if isinstance(content, str) else list(content or ())
        )
        if role == "assistant":
            text: list[str] = []
            thinking: list[str] = []
            signature: str | None = None
            calls: list[ToolCallRequest] = []
            for block in blocks:
                kind = _get(block, "type", field)
                if kind == "text":
                    text.append(str(block.get("text", "")))
                elif kind == "thinking":
                    thinking.append(str(block.get("thinking", "")))
                    signature = block.get("signature")
                elif kind == "tool_use":
                    calls.append(
                        names.call(
                            ToolCallRequest(
                                str(block.get("id")),
                                str(block.get("name")),
                                _parse_arguments(block.get("input"), field),
                            )
                        )
                    )
            out.append(
                AssistantMessage(
                    text="".join(text),
                    thinking="\n".join(thinking) if thinking else None,
                    thinking_signature=signature,
                    tool_calls=tuple(calls),
                )
            )
        elif role == "user":
            parts: list[ContentPart] = []
            for block in blocks:
                kind = _get(block, "type", field)
                if kind == "tool_result":
                    out.append(
                        names.result(
                            block.get("tool_use_id"),
                            _text_of_parts(block.get("content"), field, ("text",)),
                            field,
                            is_error=block.get("is_error") is True,
                        )
                    )
                elif kind == "text":
                    parts.append(TextPart(str(block.get("text", ""))))
                elif kind == "image":
                    parts.append(_anthropic_image_part(block, field))
                else:
                    raise _invalid(f"unsupported content block type {kind!r}", field)
            if isinstance(content, str):
                out.append(UserMessage(content))
            elif parts:
                out.append(UserMessage(tuple(parts)))
        else:
            raise _invalid(f"unsupported role {role!r}", field)
    return out
