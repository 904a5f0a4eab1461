"""Opaque, tamper-evident keyset cursors for the paged queries, each bound to its query.

A cursor is URL-safe base64 of JSON ``[kind, order_by, sort_value, last_id, query,
mac]``. ``query`` is the fingerprint of the query's filters (:func:`query_fingerprint`)
and ``mac`` an HMAC over the rest with a key kept in the view database, so a cursor
works in every process of a store and survives restarts, while an edited cursor, or a
genuine one handed to a query with other filters, is refused instead of silently paging
from somewhere else. The page size is no part of the query: a caller may change it
between pages.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from ..domain.errors import ErrorCode, ValidationError

KINDS = {"session": "Session", "run": "Run", "event": "Event"}


def _error(message: str, **details: Any) -> ValidationError:
    return ValidationError(message, code=ErrorCode.INVALID_CURSOR, details=details)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _canonical(value: Any) -> Any:
    """``value`` in one spelling per meaning: a dataclass or map as a map, every list
    (tuple, set) as its distinct items in sorted order, since a filter list means "any
    of these" whatever its order and repeats."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        # Sorted by their JSON text, which orders any mix of types the same way in
        # every process (a set's own order changes with the hash seed).
        distinct = {_json(item): item for item in map(_canonical, value)}
        return [distinct[text] for text in sorted(distinct)]
    raise TypeError(f"cannot fingerprint a filter of type {type(value).__name__}")


def query_fingerprint(filters: Any) -> str:
    """A fingerprint of a query's filters (a dataclass of them, or a map), the same for
    every spelling of the same filters and in every process: callers normalise values
    (a lone string to a one-item list, datetimes to microseconds), this function the
    order and repeats of lists. Every field counts, so a filter added to a query's
    dataclass is covered without a change here."""
    return hashlib.sha256(_json(_canonical(filters)).encode()).hexdigest()[:32]


def _mac(key: bytes, payload: list[Any]) -> str:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return hmac.new(key, body, hashlib.sha256).hexdigest()[:32]


def encode_cursor(
    key: bytes, kind: str, order_by: str, sort_value: Any, last_id: str, *, query: str
) -> str:
    payload = [kind, order_by, sort_value, last_id, query]
    token = json.dumps([*payload, _mac(key, payload)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(token).rstrip(b"=").decode()


def _well_formed(payload: Any) -> bool:
    """Six items, all strings but the sort value, which is a JSON scalar: so that the
    signature is computed over scalars only, whatever a forger nests."""
    if not (isinstance(payload, list) and len(payload) == 6):
        return False
    kind, order_by, value, last_id, query, mac = payload
    scalar = value is None or isinstance(value, (str, int, float))
    return scalar and all(isinstance(item, str) for item in (kind, order_by, last_id, query, mac))


def decode_cursor(
    key: bytes, cursor: Any, *, kind: str, order_by: str, query: str, value_type: type
) -> tuple[Any, str]:
    """The (sort value, last id) of a cursor made by the query ``kind``, ``order_by``,
    ``query`` (its fingerprint), or ``invalid_cursor`` saying why not."""
    if not isinstance(cursor, str) or not cursor:
        raise _error("Cursor must be a non-empty string")
    try:
        # validate=True: the lenient decoder silently drops foreign characters, which
        # would let "cursor!!!!" page on as if it were "cursor".
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise _error("Cursor is not valid Base64") from None
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        # ValueError: not UTF-8, not JSON, or an integer of thousands of digits;
        # RecursionError: arrays or objects nested deeper than the parser recurses.
        raise _error("Cursor payload could not be decoded") from None
    if not _well_formed(payload):
        raise _error("Cursor does not match expected format")
    cursor_kind, cursor_order, value, last_id, cursor_query, mac = payload
    # compare_digest refuses non-ASCII strings with a TypeError.
    if not (mac.isascii() and hmac.compare_digest(mac, _mac(key, payload[:5]))):
        raise _error("Cursor does not match expected format", reason="signature")
    if cursor_kind != kind:
        raise _error("Cursor does not match expected format", expected=kind, got=cursor_kind)
    if cursor_order != order_by:
        raise _error(
            "Cursor order does not match requested order_by",
            cursor_order=cursor_order,
            order_by=order_by,
        )
    if cursor_query != query:
        raise _error("Cursor belongs to a query with other filters", reason="filters")
    if not isinstance(value, value_type) or isinstance(value, bool):
        raise _error(f"{KINDS[kind]} cursor has invalid sort value")
    return value, last_id
