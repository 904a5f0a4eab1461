"""Opaque, tamper-evident keyset cursors for the paged queries.

A cursor is URL-safe base64 of JSON ``[kind, order_by, sort_value, last_id, mac]``;
``mac`` is an HMAC over the rest with a key kept in the view database, so a cursor works
in every process of a store, survives restarts, and an edited one is refused instead of
silently paging from somewhere else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from ..domain.errors import ErrorCode, ValidationError

KINDS = {"session": "Session", "run": "Run", "event": "Event"}


def _error(message: str, **details: Any) -> ValidationError:
    return ValidationError(message, code=ErrorCode.INVALID_CURSOR, details=details)


def _mac(key: bytes, payload: list[Any]) -> str:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return hmac.new(key, body, hashlib.sha256).hexdigest()[:32]


def encode_cursor(key: bytes, kind: str, order_by: str, sort_value: Any, last_id: str) -> str:
    payload = [kind, order_by, sort_value, last_id]
    token = json.dumps([*payload, _mac(key, payload)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(token).rstrip(b"=").decode()


def decode_cursor(
    key: bytes, cursor: Any, *, kind: str, order_by: str, value_type: type
) -> tuple[Any, str]:
    """The (sort value, last id) of a cursor, or ``invalid_cursor`` saying why not."""
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
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _error("Cursor payload could not be decoded") from None
    if not (isinstance(payload, list) and len(payload) == 5 and isinstance(payload[3], str)):
        raise _error("Cursor does not match expected format")
    cursor_kind, cursor_order, value, last_id, mac = payload
    if not isinstance(mac, str) or not hmac.compare_digest(mac, _mac(key, payload[:4])):
        raise _error("Cursor does not match expected format", reason="signature")
    if cursor_kind != kind:
        raise _error("Cursor does not match expected format", expected=kind, got=cursor_kind)
    if cursor_order != order_by:
        raise _error(
            "Cursor order does not match requested order_by",
            cursor_order=cursor_order,
            order_by=order_by,
        )
    if not isinstance(value, value_type) or isinstance(value, bool):
        raise _error(f"{KINDS[kind]} cursor has invalid sort value")
    return value, last_id
