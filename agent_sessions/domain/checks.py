"""Argument checks shared by every public entry point.

Each rule lives here once so that the same bad value gets the same coded
``validation_error`` (naming the field) wherever it is passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum
from numbers import Real
from typing import Any, TypeGuard, TypeVar

from .errors import ValidationError
from .serialization import present_string

_E = TypeVar("_E", bound=Enum)


def is_int(value: object, *, minimum: int | None = None) -> TypeGuard[int]:
    """A real integer (of at least ``minimum`` when given): ``bool`` is an ``int``
    subclass but never a count."""
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    return minimum is None or value >= minimum


def is_number(value: object) -> TypeGuard[Real]:
    """Any real number, integer or not; ``bool`` is not one, as for :func:`is_int`."""
    return isinstance(value, Real) and not isinstance(value, bool)


def checked_int(value: Any, field: str, *, minimum: int = 0, message: str | None = None) -> int:
    """``value`` as an integer of at least ``minimum``, else ``validation_error``.

    ``message`` replaces the standard wording where a published message differs from it.
    """
    if not is_int(value, minimum=minimum):
        qualifier = {0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}"
        )
        raise ValidationError(
            message if message is not None else f"{field} must be {qualifier}",
            details={"field": field, "value": repr(value)[:100]},
        )
    return int(value)


def optional_int(value: Any, field: str, *, minimum: int = 0) -> int | None:
    """Like :func:`checked_int`, with ``None`` meaning "not given"."""
    return None if value is None else checked_int(value, field, minimum=minimum)


def require_id(value: Any, field: str) -> str:
    """Ids are non-empty strings."""
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{field} must be a non-empty string", details={"field": field})
    return value


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
