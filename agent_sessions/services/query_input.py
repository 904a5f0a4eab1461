"""The checks of ``QueryAPI``'s arguments, each written once.

Every argument of every query passes one of these before anything is read, so a bad
value is the same coded ``validation_error`` naming the argument on every backend.
Left to the database, the same value gave ``[]`` on SQLite (which compares across
types) and ``storage_error`` on PostgreSQL (which does not), a ``TypeError`` from
Python, or, for a list longer than PostgreSQL's 65,535 bound parameters, a "lost
connection" that was retried. Strings must be text every backend can hold: no NUL
(PostgreSQL's text refuses it) and no lone surrogate (it cannot be encoded as UTF-8).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from ..domain.checks import checked_int, optional_int, require_id
from ..domain.errors import ValidationError
from ..domain.pricing import PricingTable

#: Items per page at most.
MAX_QUERY_LIMIT = 1000
#: Distinct values in one list filter (``session_ids``, ``providers``, ...) at most.
#: Refused above it rather than cut into several statements: a keyset page over
#: several ``IN`` lists cannot be merged from chunks without reading every chunk in
#: full. Four full lists in one event search stay far below the bound parameters of
#: SQLite (32,766) and PostgreSQL (65,535); ask in several calls for more.
MAX_FILTER_VALUES = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def refused(field: str, message: str, **details: Any) -> ValidationError:
    return ValidationError(message, details={"field": field, **details})


def text(value: Any, field: str) -> str:
    """A string every backend stores and compares alike, as a plain ``str``."""
    if not isinstance(value, str):
        raise refused(field, f"{field} must be a string")
    if "\x00" in value:
        raise refused(field, f"{field} must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise refused(field, f"{field} must not contain lone surrogates") from None
    # A str subclass (an enum member, say) compares and binds as its plain text.
    return str.__str__(value)


def optional_text(value: Any, field: str) -> str | None:
    """Like :func:`text`, with ``None`` meaning "any"."""
    return None if value is None else text(value, field)


def identifier(value: Any, field: str) -> str:
    """An id: non-empty :func:`text`."""
    return text(require_id(value, field), field)


def values(value: Any, field: str, allowed: type[StrEnum] | None = None) -> list[str]:
    """A list filter: one string or any iterable of them (not a map), as distinct plain
    strings in first-seen order; none is ``[]``, "any". Members of ``allowed`` only,
    when given."""
    if value is None:
        return []
    # A lone string is one value, never a sequence of characters.
    if isinstance(value, str):
        value = [value]
    elif isinstance(value, (bytes, bytearray, Mapping)) or not isinstance(value, Iterable):
        raise refused(field, f"{field} values must be strings")
    distinct: dict[str, None] = {}
    for item in value:
        if not isinstance(item, str):
            raise refused(field, f"{field} values must be strings")
        distinct[text(item, field)] = None
        if len(distinct) > MAX_FILTER_VALUES:
            raise refused(
                field, f"{field} holds more than {MAX_FILTER_VALUES} values", max=MAX_FILTER_VALUES
            )
    items = list(distinct)
    if allowed is not None:
        bad = [item for item in items if item not in allowed._value2member_map_]
        if bad:
            raise refused(
                field, f"{field} contains unsupported value: {', '.join(bad)}", values=bad
            )
    return items


def instant(value: Any, field: str) -> int | None:
    """An aware datetime as integer microseconds since the epoch (``None``: no bound).

    Computed by subtraction, which never leaves the datetime range: converting to UTC
    first overflows for the first and last days of it in far offsets.
    """
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise refused(field, f"{field} must be a datetime")
    try:
        offset = value.utcoffset()
    except (ValueError, TypeError):
        offset = None  # a tzinfo that gives no valid offset says nothing of the instant
    if offset is None:
        raise refused(field, f"{field} must be timezone-aware")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def flag(value: Any, field: str) -> bool:
    """A switch: ``True`` or ``False``, ``None`` for the default (off). Anything else is
    refused: ``"no"`` would otherwise switch it on."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise refused(field, f"{field} must be True or False")
    return value


def order(value: Any, orders: Collection[str], default: str) -> str:
    """An order's name; ``None`` or a name not in ``orders`` is the default (so a
    dashboard built for another version keeps working), anything else is refused."""
    if value is None:
        return default
    name = text(value, "order_by")
    return name if name in orders else default


def page_limit(value: Any, default: int) -> int:
    """The page size: ``1`` to :data:`MAX_QUERY_LIMIT` (``None``: ``default``)."""
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool) and value > MAX_QUERY_LIMIT:
        # Any too large a limit, 10**30 too, gets the one message naming the bound.
        raise refused("limit", f"limit must be <= {MAX_QUERY_LIMIT}", max=MAX_QUERY_LIMIT)
    return checked_int(value, "limit", minimum=1)


def optional_count(value: Any, field: str) -> int | None:
    """A bound on a token count, which is a signed 64-bit column: a non-negative
    integer no larger than the column holds (``None``: no bound)."""
    return optional_int(value, field, minimum=0)


def day(value: Any, field: str) -> str | None:
    """A UTC day as ``YYYY-MM-DD``, the rollup's key (``None``: no bound)."""
    if value is None:
        return None
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        raise refused(field, f"{field} must be a day as YYYY-MM-DD")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise refused(field, f"{field} must be a day as YYYY-MM-DD") from None
    return value


def pricing(value: Any) -> PricingTable:
    """The pricing table, checked once before reading (``None``: the built-in one);
    a refusal names ``pricing_table``, with the pricing rules' own details as ``cause``."""
    try:
        return PricingTable.coerce(value)
    except ValidationError as error:
        raise refused(
            "pricing_table", f"pricing_table: {error.message}", cause=error.details
        ) from error


__all__ = [
    "MAX_FILTER_VALUES",
    "MAX_QUERY_LIMIT",
    "day",
    "flag",
    "identifier",
    "instant",
    "optional_count",
    "optional_text",
    "order",
    "page_limit",
    "pricing",
    "text",
    "values",
]
