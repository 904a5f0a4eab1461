"""Argument checks shared by every public entry point.

Each rule lives here once so that the same bad value gets the same coded
``validation_error`` (naming the field) wherever it is passed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from enum import Enum
from numbers import Real
from typing import Any, TypeGuard, TypeVar

from .errors import ValidationError
from .serialization import field_text, present_string

_E = TypeVar("_E", bound=Enum)

#: The largest integer the library accepts anywhere: what a signed 64-bit column
#: (SQLite ``INTEGER``, PostgreSQL ``BIGINT``) holds. A larger count, size, position or
#: limit would be accepted here and fail later, in the middle of a write or of every
#: query that reads it back.
INT64_MAX = 2**63 - 1
#: The largest finite float: a bound above it only admits what cannot be a float.
FLOAT_MAX = sys.float_info.max
#: The largest cost one record may carry, in US dollars: a trillion, far beyond any
#: real run. Every float up to ``FLOAT_MAX`` is finite, but three of them summed are
#: not: a bound this low keeps every sum of costs a query or a view makes (a ``DOUBLE
#: PRECISION`` column on PostgreSQL, ``math.fsum`` in Python) finite for any number of
#: runs, so no accepted cost can break a query.
MAX_COST_USD = 1e12


def is_int(
    value: object, *, minimum: int | None = None, maximum: int = INT64_MAX
) -> TypeGuard[int]:
    """A real integer (of at least ``minimum`` when given, at most ``maximum``):
    ``bool`` is an ``int`` subclass but never a count."""
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    return (minimum is None or value >= minimum) and value <= maximum


def is_number(value: object) -> TypeGuard[Real]:
    """Any real number, integer or not; ``bool`` is not one, as for :func:`is_int`."""
    return isinstance(value, Real) and not isinstance(value, bool)


def is_within(value: object, minimum: float, maximum: float) -> TypeGuard[Real]:
    """A number (:func:`is_number`) from ``minimum`` to ``maximum``, compared exactly and
    never converted first (``float`` of a 400-digit int raises); NaN never is."""
    if not is_number(value):
        return False
    number: Any = value  # ``numbers.Real`` declares no comparisons
    return bool(minimum <= number <= maximum)


def checked_int(
    value: Any,
    field: str,
    *,
    minimum: int = 0,
    maximum: int = INT64_MAX,
    message: str | None = None,
) -> int:
    """``value`` as an integer of at least ``minimum`` and at most ``maximum`` (by
    default what a signed 64-bit column holds), else ``validation_error``.

    ``message`` replaces the standard wording where a published message differs from it.
    """
    if not is_int(value, minimum=minimum, maximum=maximum):
        qualifier = {0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}"
        )
        if isinstance(value, int) and not isinstance(value, bool) and value > maximum:
            qualifier = f"at most {maximum}"
        wording = f"{field} must be {qualifier}"
        raise ValidationError(
            message if message is not None else wording,
            details={"field": field, "value": _shown(value)},
        )
    return int(value)


def optional_int(
    value: Any, field: str, *, minimum: int = 0, maximum: int = INT64_MAX
) -> int | None:
    """Like :func:`checked_int`, with ``None`` meaning "not given"."""
    return None if value is None else checked_int(value, field, minimum=minimum, maximum=maximum)


def checked_number(
    value: Any, field: str, *, minimum: float = 0, maximum: float = FLOAT_MAX
) -> Real:
    """A finite real number (:func:`is_number`: never a ``bool``) from
    ``minimum`` to ``maximum``, returned as given; else ``validation_error``.

    NaN and the infinities fail the bounds (every comparison with NaN is false), so a
    value that passes can be stored, summed and compared on every backend.
    """
    if not is_number(value):
        raise ValidationError(
            f"{field} must be a number", details={"field": field, "value": _shown(value)}
        )
    if not is_within(value, minimum, maximum):
        bounds = f">= {minimum}" if maximum == FLOAT_MAX else f"from {minimum} to {maximum}"
        raise ValidationError(
            f"{field} must be a finite number {bounds}",
            details={"field": field, "value": _shown(value)},
        )
    return value


def _shown(value: object) -> str:
    """A short text of a refused value for ``details``: an int too long to print in
    full (Python refuses ``repr`` beyond 4300 digits) is shown by its size."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"<an integer of {value.bit_length()} bits>"
    if isinstance(value, str):
        value = value[:100]
    try:
        return repr(value)[:100]
    except (ValueError, RecursionError):  # a container holding such an int, or nested deep
        return f"<{type(value).__name__}>"


def require_id(value: Any, field: str) -> str:
    """Ids are non-empty strings."""
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{field} must be a non-empty string", details={"field": field})
    # The same text rule as the records that hold ids: a NUL or lone surrogate can name
    # nothing stored, and would fail differently on each backend.
    return field_text(value, field)


def refuse_unknown_keys(keys: Iterable[object], known: Iterable[str], what: str) -> None:
    """An option map names only ``known`` keys. An unknown one is refused by name, not
    ignored: its owner believes it has an effect (a misspelt rate would price at 0)."""
    unknown = sorted(map(str, set(keys) - set(known)))
    if unknown:
        raise ValidationError(f"unknown {what}: {', '.join(unknown)}", details={"fields": unknown})


def coerce_enum(
    enum: type[_E], value: object, field: str, unknown: Callable[[str], ValidationError]
) -> _E:
    """A member of a string enum: the member itself or its value. Missing or not a
    string is ``validation_error``; an unknown string is what ``unknown`` makes of it."""
    if isinstance(value, enum):
        return value
    text = present_string(value, field)
    try:
        return enum(text)
    except ValueError:
        raise unknown(text) from None
