"""How a token count is read out of a ``token_usage`` map: one rule for costs, views and
run totals, and the range a record may hold."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .checks import INT64_MAX, checked_number, is_number

#: The counts that are priced, summed and kept in columns of the ``runs`` view. The
#: rest of a ``token_usage`` map is the provider's own and is stored as given.
TOKEN_KEYS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
)

#: The counts a run is priced by when it recorded no cost (``total_tokens`` is their sum
#: or the provider's own figure, never priced on its own). The cost summary and the
#: daily rollup price the same counts, so they agree.
PRICED_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens")


def checked_token_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """``usage`` unchanged when every count in it is a number from 0 to
    :data:`~agent_sessions.domain.checks.INT64_MAX`, else ``validation_error`` naming
    the count (``token_usage.input_tokens``). A count that is not a number at all (a
    missing key, ``None``, a string) is kept: it counts as 0, as before. A larger count
    would be stored and then break every query of the view that keeps it in a 64-bit
    column."""
    for key in TOKEN_KEYS:
        value = usage.get(key)
        if is_number(value):
            checked_number(value, f"token_usage.{key}", maximum=INT64_MAX)
    return usage


def token_count(usage: Mapping[str, Any] | Any, key: str) -> int:
    """A non-negative integer that fits a signed 64-bit column: floats are truncated; a
    missing key, a non-number, a non-finite, negative or larger value, or a usage that
    is not a map counts as 0 (records refuse those values; older or foreign maps may
    still hold them)."""
    value = usage.get(key) if isinstance(usage, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float) and not math.isfinite(value):
        return 0
    count = int(value)
    return count if 0 <= count <= INT64_MAX else 0
