"""OpenAI Agents SDK items as agent-sessions events, and the markers of a history's
corrections (``pop_item``, ``clear_session``).

One Responses item is one event. Its type comes from the message converters where
one fits, so ``store.conversation``, queries and replay read an SDK session like any
other: a user, system or developer message is ``message_sent``, an assistant message
``message_received``, a ``function_call`` ``tool_call_started`` and its output
``tool_call_completed``. The other items get the nearest type (see :func:`item_event`).
Whatever the type, the item itself travels in ``data["item"]`` as the SDK gave it, so
the session hands back exactly what it was given.

Pure functions, no I/O: the session adapter and the importer share them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, MutableMapping
from typing import Any

from ..domain.errors import ValidationError
from ..domain.event import Event
from ..domain.event_types import EventType
from ..domain.message_converters import from_openai_responses
from ..domain.messages import payloads_from_messages

#: ``metadata`` key naming what an event is to the adapter (an item or a marker);
#: events without it (an application's own) are not part of the SDK's history.
ROLE_KEY = "openai_agents"
ITEM = "item"
POP = "pop_item"
CLEAR = "clear_session"
#: ``data`` key holding the raw item.
ITEM_KEY = "item"

#: Corrections are recorded as ``error_recovered``: a type no built-in reader counts
#: and retention prunes only oldest first, so a marker never goes before the item it
#: undoes (docs/openai-agents.md, "Decisions").
MARKER_TYPE = EventType.ERROR_RECOVERED

_POP_IDS = uuid.UUID("6f1c7a52-93a0-4a63-9d43-5b0f3c0e7a11")

#: Item types of tools the provider runs itself: a finished call with no output item.
_HOSTED_SUFFIX = "_call"
_OUTPUT_SUFFIX = "_call_output"


def pop_marker_id(item_event_id: str) -> str:
    """The id of the marker that pops the item stored as ``item_event_id``: derived,
    so two processes popping the same item write the same id and the store keeps one
    (the other gets the stored marker back, sees another claim, and pops again)."""
    return "evt_pop_" + uuid.uuid5(_POP_IDS, item_event_id).hex


def role_of(event: Event) -> str | None:
    value = event.metadata.get(ROLE_KEY)
    return value if isinstance(value, str) else None


def raw_item(event: Event) -> Any:
    return event.data.get(ITEM_KEY)


def _converted(
    item: Mapping[str, Any], names: Mapping[str, str]
) -> tuple[EventType, dict[str, Any]]:
    """The converters' event for a message or function call item (``ValidationError``
    when they do not read it)."""
    kind = item.get("type") or "message"
    messages = from_openai_responses([item])
    payloads = payloads_from_messages(messages)
    if kind == "function_call":
        event_type, payload = payloads[-1]  # the call, not the empty text before it
        payload.pop("message_id", None)
        return event_type, payload
    event_type, payload = payloads[0]
    if kind == "function_call_output":
        name = names.get(str(item.get("call_id")))
        if name is None:
            payload.pop("tool_name", None)  # the fold names it from its call
        else:
            payload["tool_name"] = name
        return event_type, payload
    if event_type is EventType.MESSAGE_RECEIVED:
        if isinstance(item.get("id"), str):
            payload["message_id"] = item["id"]
        else:
            payload.pop("message_id", None)
    return event_type, payload


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(
            str(part.get("text", ""))
            for part in value
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return ""


def _nearest(item: Mapping[str, Any]) -> tuple[EventType, dict[str, Any]]:
    """The nearest event type for an item the converters do not read."""
    kind = str(item.get("type") or "message")
    call_id = item.get("call_id")
    if kind == "message":
        role = str(item.get("role") or "user")
        event_type = EventType.MESSAGE_RECEIVED if role == "assistant" else EventType.MESSAGE_SENT
        return event_type, {"role": role, "content": _text_of(item.get("content"))}
    if kind == "reasoning":
        return EventType.MESSAGE_STREAMED, {
            "kind": "reasoning",
            "content": _text_of(item.get("summary")),
        }
    if kind == "mcp_approval_request":
        return EventType.TOOL_APPROVAL_REQUESTED, {
            "tool_name": str(item.get("name") or "mcp"),
            "policy_name": "mcp_approval",
        }
    if kind == "mcp_approval_response":
        granted = item.get("approve") is True
        event_type = EventType.TOOL_APPROVAL_GRANTED if granted else EventType.TOOL_APPROVAL_DENIED
        return event_type, {"tool_name": "mcp"}
    if kind.endswith(_OUTPUT_SUFFIX):
        data: dict[str, Any] = {"tool_name": kind[: -len(_OUTPUT_SUFFIX)]}
        if isinstance(call_id, str):
            data["tool_call_id"] = call_id
        data["output"] = item.get("output")
        return EventType.TOOL_CALL_COMPLETED, data
    if kind.endswith(_HOSTED_SUFFIX) and isinstance(call_id, str):
        # A call the application answers (computer, shell, custom tools): a result follows.
        arguments = item.get("action", item.get("input", item.get("arguments")))
        data = {"tool_name": str(item.get("name") or kind[: -len(_HOSTED_SUFFIX)])}
        data["tool_call_id"] = call_id
        data["arguments"] = arguments if isinstance(arguments, Mapping) else {"input": arguments}
        return EventType.TOOL_CALL_STARTED, data
    if kind.endswith(_HOSTED_SUFFIX):
        # Run by the provider (web search, file search, code interpreter, ...): a
        # finished call. No tool_call_id, so the conversation fold leaves it out.
        return EventType.TOOL_CALL_COMPLETED, {
            "tool_name": str(item.get("name") or kind[: -len(_HOSTED_SUFFIX)]),
            "status": item.get("status"),
        }
    # Anything else (item references, compaction, future types): kept, typed as a
    # message delta that is not part of the conversation.
    return EventType.MESSAGE_STREAMED, {"kind": kind, "content": ""}


def item_payload(
    item: Mapping[str, Any], names: MutableMapping[str, str]
) -> tuple[EventType, dict[str, Any]]:
    """The event type and ``data`` recording ``item``. ``names`` maps call ids to tool
    names (function calls seen so far, in this batch); a call adds its own."""
    if not isinstance(item, Mapping):
        raise ValidationError("a session item must be a JSON object", details={"field": "item"})
    kind = item.get("type") or "message"
    event_type: EventType
    data: dict[str, Any]
    if kind in ("message", "function_call", "function_call_output"):
        try:
            event_type, data = _converted(item, names)
        except ValidationError:
            event_type, data = _nearest(item)
    else:
        event_type, data = _nearest(item)
    if kind == "function_call" and isinstance(item.get("call_id"), str):
        names[item["call_id"]] = str(item.get("name"))
    data[ITEM_KEY] = item
    return event_type, data


def item_event(
    session_id: str,
    item: Mapping[str, Any],
    names: MutableMapping[str, str],
    *,
    event_id: str | None = None,
    run_id: str | None = None,
    timestamp: Any = None,
) -> Event:
    """The event that records one SDK item (see :func:`item_payload`)."""
    event_type, data = item_payload(item, names)
    return Event.new(
        type=event_type,
        session_id=session_id,
        run_id=run_id,
        data=data,
        metadata={ROLE_KEY: ITEM},
        id=event_id,
        timestamp=timestamp,
        provider="openai-agents",
    )


def pop_marker(session_id: str, popped: Event, claim: str, *, run_id: str | None = None) -> Event:
    """The marker that undoes ``popped``; ``claim`` tells its writer it won."""
    return Event.new(
        type=MARKER_TYPE,
        session_id=session_id,
        run_id=run_id,
        id=pop_marker_id(popped.id),
        data={
            "correction": POP,
            "undoes": popped.id,
            "undoes_sequence": popped.sequence_number,
            "claim": claim,
        },
        metadata={ROLE_KEY: POP},
        provider="openai-agents",
    )


def clear_marker(session_id: str, *, run_id: str | None = None) -> Event:
    """The marker after which the session's earlier items are no longer its history."""
    return Event.new(
        type=MARKER_TYPE,
        session_id=session_id,
        run_id=run_id,
        data={"correction": CLEAR},
        metadata={ROLE_KEY: CLEAR},
        provider="openai-agents",
    )


__all__ = [
    "CLEAR",
    "ITEM",
    "ITEM_KEY",
    "MARKER_TYPE",
    "POP",
    "ROLE_KEY",
    "clear_marker",
    "item_event",
    "item_payload",
    "pop_marker",
    "pop_marker_id",
    "raw_item",
    "role_of",
]
