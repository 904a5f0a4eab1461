"""How a stored event's state becomes bytes and back: plain JSON, nothing interpreted.

``eventsourcing``'s ``JSONTranscoder`` writes non-JSON values as ``{"_type_": name,
"_data_": value}`` and, on read, turns *every* two-key map of that shape back into a
typed value, user data included: a caller's ``{"_type_": "datetime_iso", "_data_": "x"}``
came back as something else, and an unknown type name made the whole stream unreadable.

This codec interprets nothing below the top level. The top-level keys of a stored
state are the event class's own attributes, never caller data, and the only one that is
not a JSON value is ``timestamp`` (every persisted event has one): it is written as an
ISO-8601 string and parsed back *by its key*. Everything else (records, changes, event
data and metadata) is JSON values already (``domain/serialization.py`` makes them so)
and comes back exactly as given, whatever its shape.

``orjson`` encodes and decodes, being several times faster than ``json``; but it cannot
write an integer outside 64 bits and reads one back as a float. A state holding such an
integer (JSON values keep ints up to 4,300 digits) is written by ``json`` instead, after
one leading space: still valid JSON for anyone reading the table, and the mark that
tells :meth:`decode` to parse it with ``json`` too, exactly.

States written before this codec (schema versions 1 and 2) have their timestamp in the
old envelope; they are recognised by it and parsed with ``json`` (which reads their
large ints exactly), without the envelope hook: that is their upcast, on read, and no
stored row has to be rewritten.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import orjson
from eventsourcing.persistence import Transcoder

#: Marks a state written by ``json`` (it holds an integer beyond 64 bits).
_EXACT_MARK = b" "
_EXACT_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class PayloadCodec(Transcoder):
    """The transcoder of :class:`~agent_sessions.store.sessions_app.SessionsApplication`."""

    def encode(self, obj: Any) -> bytes:
        state = dict(obj)
        timestamp = state.get("timestamp")
        if isinstance(timestamp, datetime):
            state["timestamp"] = timestamp.isoformat()
        try:
            return orjson.dumps(state)
        except orjson.JSONEncodeError:
            # An int beyond 64 bits (anything else unencodable fails here too, with
            # ``json``'s own error).
            return _EXACT_MARK + _EXACT_ENCODER.encode(state).encode("utf-8")

    def decode(self, data: bytes) -> Any:
        exact = data[:1] == _EXACT_MARK
        state: dict[str, Any] = json.loads(data) if exact else orjson.loads(data)
        timestamp = state.get("timestamp")
        if isinstance(timestamp, str):
            state["timestamp"] = datetime.fromisoformat(timestamp)
        elif isinstance(timestamp, dict):
            state = _legacy(data)
        return state


def _legacy(data: bytes) -> dict[str, Any]:
    """A state written by ``eventsourcing``'s ``JSONTranscoder`` (schema versions 1 and
    2): parsed exactly, with the timestamp envelope opened and nothing else touched."""
    state: dict[str, Any] = json.loads(data)
    envelope = state["timestamp"]
    state["timestamp"] = datetime.fromisoformat(envelope["_data_"])
    return state
