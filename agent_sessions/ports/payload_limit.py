"""The largest payload one stored event may carry, alike on every backend.

An event's stored state (the encoded bytes the mapper hands to the recorder) is what a
backend writes in one row and reads back whole; without a ceiling, one caller's 500 MB
tool output is a single write that holds PostgreSQL's events-table lock for as long as
it takes to ship, and a read that every later query of that session pays for. The
ceiling is an ``open_store`` option (``max_event_bytes``) on every backend, carried to
the application in its environment under :data:`MAX_EVENT_BYTES_ENV`; the mapper checks
each stored event with :func:`check_payload_size` before anything is written, so an
over-limit save, append or flush stores nothing (``docs/decisions.md``).

It lives in ``ports`` because both sides need it: the backends declare the option and
its default, the store's mapper enforces it, and neither may import the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..domain.aggregates import ARTIFACT_PREFIX, LOG_PREFIX, RUN_PREFIX, SESSION_PREFIX
from ..domain.errors import ValidationError

#: 16 MiB: above the 6-10 MB tool outputs and transcripts agents really record, and
#: small enough that one event's write and read stay well under a second on
#: PostgreSQL (measured in ``docs/decisions.md``).
DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024
#: The smallest accepted ceiling: the store's own events (a new session with empty
#: maps) must always fit.
MIN_MAX_EVENT_BYTES = 1024
#: The largest accepted ceiling: a quarter of PostgreSQL's 1 GB per value, since a
#: write holds a few copies of each payload in memory on its way (record, encoded
#: state, the driver's buffer).
MAX_MAX_EVENT_BYTES = 256 * 1024 * 1024
#: The application environment key the backends set from the ``max_event_bytes`` option.
MAX_EVENT_BYTES_ENV = "AGENT_SESSIONS_MAX_EVENT_BYTES"

#: What a caller wrote, by the kind prefix of the stream its event goes to.
_RECORD_KINDS = (
    (LOG_PREFIX, "event"),
    (SESSION_PREFIX, "session"),
    (RUN_PREFIX, "run"),
    (ARTIFACT_PREFIX, "artifact"),
)


def max_event_bytes(env: Mapping[str, Any] | Any) -> int:
    """The ceiling an application environment carries, else the default.

    ``env`` is ``eventsourcing``'s ``Environment`` (or any mapping); the backends have
    already range-checked the value, so a malformed one here is a programming error."""
    value = env.get(MAX_EVENT_BYTES_ENV) if env is not None else None
    return int(value) if value else DEFAULT_MAX_EVENT_BYTES


def check_payload_size(
    stored_event_state: bytes, *, limit: int, originator_id: str, topic: str
) -> None:
    """``validation_error`` when one stored event's state is larger than ``limit``.

    ``details`` name what the caller sent (``field``: ``event``, ``session``, ``run``,
    ``artifact`` or ``record``, by the stream the event belongs to), its encoded
    ``size``, the ``limit`` and the ``option`` that sets it; the stream id is the
    caller's own, the topic is shortened to the event class's name."""
    size = len(stored_event_state)
    if size <= limit:
        return
    kind = next(
        (name for prefix, name in _RECORD_KINDS if originator_id.startswith(prefix)), "record"
    )
    raise ValidationError(
        f"the {kind} is too large to store: its encoded payload is {size} bytes, over "
        f"the store's max_event_bytes of {limit} (store large content as an artifact "
        "and record its reference, or open the store with a larger max_event_bytes)",
        details={
            "field": kind,
            "size": size,
            "limit": limit,
            "option": "max_event_bytes",
            "stream": originator_id,
            "event": topic.rpartition(":")[2],
        },
    )
