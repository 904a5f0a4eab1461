"""Google ADK events as agent-sessions events, and back.

An ADK ``Event`` is stored as one of our events whose ``data`` carries the event's own
JSON (``adk_event``: ``Event.model_dump(mode="json", exclude_none=True)``, what ADK's
database service stores) beside the typed fields of ``docs/events.md``. Reading back
validates that JSON, so ``get_session`` returns events equal to the ones appended, and
the typed fields make the same session readable by ``store.conversation()``, the
queries and the CLI like any other.

This module works on the JSON alone and imports no ADK code: the importer uses it on
rows read from ADK's tables, the session service on the events it is handed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from ..domain.event import Event
from ..domain.event_types import EventType

#: ``provider`` of every event, run and session the ADK adapter writes.
PROVIDER = "google-adk"
#: The key of ``Event.data`` that holds the ADK event's JSON.
RAW_KEY = "adk_event"
#: ``kind`` of the ``message_streamed`` event that records an ADK event without
#: content (a state change, an agent transfer, an escalation): kept in the log, not
#: part of the conversation.
ACTIONS_KIND = "adk_actions"


def _digest(prefix: str, *parts: str) -> str:
    """``prefix`` plus 32 hex characters of the SHA-256 of ``parts`` (as a JSON list,
    so no two tuples of parts share a digest)."""
    return f"{prefix}_{hashlib.sha256(orjson.dumps(list(parts))).hexdigest()[:32]}"


def session_id_for(app_name: str, user_id: str, session_id: str) -> str:
    """Our session id of ADK session ``(app_name, user_id, session_id)``: ADK scopes a
    session id by app and user, our ids are global, so the triple is hashed. The same
    triple always gives the same id (the importer and the service agree)."""
    return _digest("adk", app_name, user_id, session_id)


def app_state_session_id(app_name: str) -> str:
    """The session that holds ``app:`` state of ``app_name``."""
    return _digest("adk_app", app_name)


def user_state_session_id(app_name: str, user_id: str) -> str:
    """The session that holds ``user:`` state of ``user_id`` in ``app_name``."""
    return _digest("adk_user", app_name, user_id)


def run_id_for(session_id: str, invocation_id: str) -> str:
    """Our run of an ADK invocation (``session_id`` is ours)."""
    return _digest("adk_run", session_id, invocation_id)


def event_id_for(session_id: str, adk_event_id: str) -> str:
    """Our event id of an ADK event (``session_id`` is ours): event ids are global here,
    while ADK's are unique within a session only."""
    return _digest("adk_evt", session_id, adk_event_id)


def adk_timestamp(raw: Mapping[str, Any]) -> float:
    """The event's ``timestamp`` (seconds since the epoch; 0.0 when absent)."""
    value = raw.get("timestamp")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def instant(timestamp: float) -> datetime:
    """An ADK timestamp as an aware UTC datetime (microsecond precision)."""
    return datetime.fromtimestamp(timestamp, UTC)


def _parts(raw: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    content = raw.get("content")
    if not isinstance(content, Mapping):
        return []
    parts = content.get("parts")
    if not isinstance(parts, Sequence) or isinstance(parts, (str, bytes)):
        return []
    return [part for part in parts if isinstance(part, Mapping)]


def _texts(parts: Sequence[Mapping[str, Any]], *, thought: bool) -> str:
    return "".join(
        part["text"]
        for part in parts
        if isinstance(part.get("text"), str) and bool(part.get("thought")) == thought
    )


def _call(call: Mapping[str, Any]) -> dict[str, Any]:
    args = call.get("args")
    return {
        "tool_call_id": call.get("id") or None,
        "tool_name": call.get("name") or "",
        "arguments": dict(args) if isinstance(args, Mapping) else {},
    }


def _usage(raw: Mapping[str, Any]) -> dict[str, int]:
    """``usage_metadata`` as our token counts (prompt → input, candidates → output)."""
    usage = raw.get("usage_metadata")
    if not isinstance(usage, Mapping):
        return {}
    counts = {}
    for ours, theirs in (
        ("input_tokens", "prompt_token_count"),
        ("output_tokens", "candidates_token_count"),
        ("cache_read_tokens", "cached_content_token_count"),
    ):
        value = usage.get(theirs)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            counts[ours] = value
    return counts


def typed_payload(raw: Mapping[str, Any]) -> tuple[EventType, dict[str, Any]]:
    """Our event type and the typed fields (``docs/events.md``) of an ADK event's JSON.

    A function call is ``tool_call_started`` (further calls of the same event under
    ``tool_calls``), a function response ``tool_call_completed`` (``tool_call_failed``
    when the response holds ``error``), text from the user ``message_sent``, text from
    an agent ``message_received`` (thought parts as ``thinking``), an error without
    content ``error_occurred``, and anything else (state changes, transfers) a
    ``message_streamed`` of kind ``adk_actions``, which no conversation includes."""
    parts = _parts(raw)
    author = raw.get("author") if isinstance(raw.get("author"), str) else ""
    calls = [p["function_call"] for p in parts if isinstance(p.get("function_call"), Mapping)]
    responses = [
        p["function_response"] for p in parts if isinstance(p.get("function_response"), Mapping)
    ]
    data: dict[str, Any]
    if calls:
        kind = EventType.TOOL_CALL_STARTED
        data = _call(calls[0])
        if len(calls) > 1:
            data["tool_calls"] = [_call(call) for call in calls]
    elif responses:
        response = responses[0]
        output = response.get("response")
        failed = isinstance(output, Mapping) and "error" in output
        kind = EventType.TOOL_CALL_FAILED if failed else EventType.TOOL_CALL_COMPLETED
        data = {
            "tool_call_id": response.get("id") or None,
            "tool_name": response.get("name") or "",
            "output": output,
            "is_error": failed,
        }
    elif parts and author == "user":
        kind = EventType.MESSAGE_SENT
        data = {"role": "user", "content": _texts(parts, thought=False)}
    elif parts:
        kind = EventType.MESSAGE_RECEIVED
        data = {"role": "assistant", "content": _texts(parts, thought=False)}
        thinking = _texts(parts, thought=True)
        if thinking:
            data["thinking"] = thinking
    elif raw.get("error_code") or raw.get("error_message"):
        kind = EventType.ERROR_OCCURRED
        data = {"error_code": raw.get("error_code"), "message": raw.get("error_message")}
    else:
        kind = EventType.MESSAGE_STREAMED
        data = {"kind": ACTIONS_KIND, "content": ""}
    data = {key: value for key, value in data.items() if value is not None}
    data["author"] = author
    usage = _usage(raw)
    if usage:
        data["usage"] = usage
    if isinstance(raw.get("model_version"), str):
        data["model"] = raw["model_version"]
    return kind, data


def to_event(
    session_id: str, raw: Mapping[str, Any], *, run_id: str | None, event_id: str | None = None
) -> Event:
    """Our event of an ADK event's JSON ``raw`` in our session ``session_id``."""
    kind, data = typed_payload(raw)
    data[RAW_KEY] = dict(raw)
    adk_id = raw.get("id")
    adk_id = adk_id if isinstance(adk_id, str) else ""
    invocation = raw.get("invocation_id")
    return Event.new(
        id=event_id or event_id_for(session_id, adk_id),
        type=kind,
        session_id=session_id,
        run_id=run_id,
        data=data,
        timestamp=instant(adk_timestamp(raw)),
        provider=PROVIDER,
        correlation_id=invocation if isinstance(invocation, str) and invocation else None,
    )


def raw_of(event: Event) -> dict[str, Any] | None:
    """The ADK event JSON an event of ours carries, or ``None`` (not an ADK event)."""
    raw = event.data.get(RAW_KEY)
    return dict(raw) if isinstance(raw, Mapping) else None


def usage_of(raw: Mapping[str, Any]) -> dict[str, int]:
    """The token counts of an ADK event's JSON (empty when it reports none)."""
    return _usage(raw)


def is_final(raw: Mapping[str, Any]) -> bool:
    """ADK's ``Event.is_final_response()`` on the JSON, for an agent's event: what
    closes our run of the invocation."""
    if raw.get("author") == "user":
        return False
    actions = raw.get("actions")
    actions = actions if isinstance(actions, Mapping) else {}
    if actions.get("skip_summarization") or raw.get("long_running_tool_ids"):
        return True
    parts = _parts(raw)
    calls = any(isinstance(p.get("function_call"), Mapping) for p in parts)
    if raw.get("error_code") and not raw.get("partial") and not calls:
        return True
    responses = any(isinstance(p.get("function_response"), Mapping) for p in parts)
    trailing_code = bool(parts) and isinstance(parts[-1].get("code_execution_result"), Mapping)
    return not calls and not responses and not raw.get("partial") and not trailing_code
