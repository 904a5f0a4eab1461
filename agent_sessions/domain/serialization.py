"""JSON-compatible values: what ``to_dict`` emits and what the event log stores.

Maps get string keys (recursively), enums become their string values, datetimes ISO
strings. Values that cannot be represented in JSON are refused up front so that a bad
payload fails with ``validation_error`` before a write, never half-way through one.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

from .errors import ValidationError
from .timestamps import to_iso

MAX_DEPTH = 64
#: The most decimal digits an int inside a JSON value may have: Python's default limit
#: for converting an int to text (``sys.get_int_max_str_digits``), past which encoding
#: raises a bare ``ValueError`` on every backend. Ints inside JSON values are otherwise
#: kept exactly (they are not limited to 64 bits: they never reach an integer column).
MAX_INT_DIGITS = 4300
_INT_LIMIT = 10**MAX_INT_DIGITS
#: The longest text, in UTF-8 bytes, of a record field that may reach an index column
#: (ids, ``agent_id``, ``provider``, tags...), the bound artifact keys have too.
#: PostgreSQL refuses an index entry over about 2.7 kB, and one index holds two such
#: fields (a session id and a run id); SQLite stores any length. Refused here, alike on
#: every backend, rather than stored by one and refused by the other (issue 11, class 9).
MAX_FIELD_BYTES = 1024


def new_id(prefix: str) -> str:
    """``<prefix>_`` plus 32 lowercase hex characters from 16 random bytes."""
    return f"{prefix}_{secrets.token_hex(16)}"


def storable_text(text: str, field: str) -> str:
    """Text every backend can store: valid Unicode. A lone surrogate (possible in a
    Python ``str``) cannot be encoded as UTF-8, so it is refused here, before any write,
    rather than failing inside the driver."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(
                f"{field} contains a lone surrogate, which is not valid Unicode",
                details={"field": field},
            ) from None
    return text


def field_text(text: str, field: str, *, max_bytes: int | None = MAX_FIELD_BYTES) -> str:
    """Text for a record field that may reach an index or view column (ids, agent,
    status, provider, model, type, tags...): :func:`storable_text`, no NUL, which
    PostgreSQL text columns cannot hold, and at most ``max_bytes`` bytes in UTF-8
    (:data:`MAX_FIELD_BYTES`; ``None`` for a field no index holds). Refused here, the
    same on every backend, rather than stored by two and refused by the third. Inside
    JSON values NUL is kept: every backend stores it in the payload and returns it
    unchanged."""
    if "\x00" in text:
        raise ValidationError(f"{field} contains a NUL character", details={"field": field})
    storable_text(text, field)
    # Four bytes per character at most: only a text that might be too long is encoded.
    if max_bytes is not None and len(text) * 4 > max_bytes:
        size = len(text.encode("utf-8"))
        if size > max_bytes:
            raise ValidationError(
                f"{field} is longer than {max_bytes} bytes in UTF-8",
                details={"field": field, "max_bytes": max_bytes, "byte_length": size},
            )
    return text


def to_json_value(value: Any, *, field: str = "value", _depth: int = 0) -> Any:
    if _depth > MAX_DEPTH:
        raise ValidationError(f"{field} is nested too deeply", details={"field": field})
    # The exact built-in types first: nearly every payload is made of them, and an
    # identity test is much cheaper than the isinstance chain (ABCs) below, which every
    # event's data went through twice per append before.
    kind = type(value)
    if kind is str:
        return value if value.isascii() else storable_text(value, field)
    if kind is dict:
        out: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                return _general_json_value(value, field, _depth)
            out[key] = to_json_value(item, field=field, _depth=_depth + 1)
        return out
    if kind is list:
        return [to_json_value(item, field=field, _depth=_depth + 1) for item in value]
    return _general_json_value(value, field, _depth)


def _key_text(key: Any, field: str) -> str:
    """A map key as JSON writes it: strings as they are, enums by value (or name),
    ``True``/``False``/``None`` as ``true``/``false``/``null`` and numbers in their
    JSON spelling; any other key is refused."""
    if isinstance(key, Enum):  # before ``str``: a ``StrEnum`` key is both
        return str.__str__(key.value) if isinstance(key.value, str) else key.name
    if isinstance(key, str):
        return str.__str__(key)  # a subclass of ``str`` as plain text
    if key is None or isinstance(key, (bool, int, float)):
        if isinstance(key, float) and not math.isfinite(key):
            raise ValidationError(
                f"{field} has a non-finite number as a key", details={"field": field}
            )
        if (
            isinstance(key, int)
            and not isinstance(key, bool)
            and not -_INT_LIMIT < key < _INT_LIMIT
        ):
            raise ValidationError(
                f"{field} has a key of more than {MAX_INT_DIGITS} digits", details={"field": field}
            )
        return json.dumps(key)
    raise ValidationError(
        f"{field} has a key that is not a string: {type(key).__name__}", details={"field": field}
    )


def _general_json_value(value: Any, field: str, _depth: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Enum):
        return value.value if isinstance(value.value, str) else value.name
    if isinstance(value, str):
        return storable_text(value, field)
    if isinstance(value, int):
        if not -_INT_LIMIT < value < _INT_LIMIT:
            raise ValidationError(
                f"{field} contains an integer of more than {MAX_INT_DIGITS} digits",
                details={"field": field},
            )
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{field} contains a non-finite number", details={"field": field})
        return value
    if isinstance(value, datetime):
        # Naive datetimes are refused, as in record fields: converting one would use
        # the writer's machine timezone, so the same call would store different data.
        return to_iso(value, field)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            text = storable_text(_key_text(key, field), field)
            if text in out:
                # ``{1: "a", "1": "b"}``: both keys are "1" in JSON, and keeping one
                # would drop the other's value without a word.
                raise ValidationError(
                    f"{field} has two keys that are both {text!r} as JSON text",
                    details={"field": field, "key": text[:100]},
                )
            out[text] = to_json_value(item, field=field, _depth=_depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [to_json_value(item, field=field, _depth=_depth + 1) for item in value]
    raise ValidationError(
        f"{field} contains a value that is not JSON-serialisable: {type(value).__name__}",
        details={"field": field, "type": type(value).__name__},
    )


def json_map(value: Any, field: str, *, default_empty: bool = True) -> dict[str, Any]:
    """A map field: ``None`` reads as ``{}``; anything but a mapping is refused."""
    if value is None and default_empty:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"{field} must be a map", details={"field": field})
    result: dict[str, Any] = to_json_value(value, field=field)
    return result


def optional_json_map(value: Any, field: str) -> dict[str, Any] | None:
    if value is None:
        return None
    return json_map(value, field)


def present_string(value: Any, field: str, *, max_bytes: int | None = MAX_FIELD_BYTES) -> str:
    """A string, possibly empty: missing is "required", anything else "must be a string"."""
    if value is None:
        raise ValidationError(f"{field} is required", details={"field": field})
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string", details={"field": field})
    return field_text(value, field, max_bytes=max_bytes)


def required_string(value: Any, field: str, *, max_bytes: int | None = MAX_FIELD_BYTES) -> str:
    """A non-empty string, each fault with its own message (records name their fields)."""
    text = present_string(value, field, max_bytes=max_bytes)
    if text == "":
        raise ValidationError(f"{field} cannot be empty", details={"field": field})
    return text


def optional_string(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string", details={"field": field})
    return field_text(value, field)
