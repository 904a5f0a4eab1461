"""How a token count is read out of a ``token_usage`` map: one rule for costs, views and
run totals."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def token_count(usage: Mapping[str, Any] | Any, key: str) -> int:
    """A non-negative integer: floats are truncated; a missing key, a non-number, a
    non-finite or negative value, or a usage that is not a map counts as 0."""
    value = usage.get(key) if isinstance(usage, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float) and not math.isfinite(value):
        return 0
    return max(int(value), 0)
