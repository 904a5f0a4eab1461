"""Argument checks shared by every public entry point.

Each rule lives here once so that the same bad value gets the same coded
``validation_error`` (naming the field) wherever it is passed.
"""

from __future__ import annotations

from typing import Any

from .errors import ValidationError


def is_int(value: object) -> bool:
    """A real integer: ``bool`` is an ``int`` subclass but never a count."""
    return isinstance(value, int) and not isinstance(value, bool)


def checked_int(value: Any, field: str, *, minimum: int = 0) -> int:
    """``value`` as an integer of at least ``minimum``, else ``validation_error``."""
    if not is_int(value) or value < minimum:
        qualifier = {0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}"
        )
        raise ValidationError(
            f"{field} must be {qualifier}", details={"field": field, "value": repr(value)[:100]}
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
