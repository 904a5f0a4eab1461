"""Conversions between records and view rows, shared by the built-in read models.

Timestamps are stored as integer microseconds since the epoch (``ports.index.to_micros``),
which order the same way on every backend; records are stored as canonical JSON.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ..ports.index import to_micros


def micros(iso: str | None) -> int | None:
    return None if iso is None else to_micros(datetime.fromisoformat(iso))


def from_micros(value: int | None) -> datetime | None:
    """The UTC datetime of stored microseconds, exact (no float rounding)."""
    if value is None:
        return None
    seconds, fraction = divmod(int(value), 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=fraction)


def utc_day(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).date().isoformat()


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def loads(text: str | bytes | None) -> Any:
    return None if text is None else json.loads(text)


#: ``exact_sum`` adds a column's high and low 32 bits apart: each partial sum stays far
#: inside 64 bits for billions of rows.
_HALF = 2**32


def exact_sum(column: str) -> str:
    """Select-list SQL summing an integer ``column`` exactly, for :func:`summed`.

    ``SUM`` of 64-bit values overflows: SQLite raises "integer overflow" (so one pair of
    huge values would fail every such query) and PostgreSQL widens only ``SUM``, not
    ``+``. Integer ``/`` and ``%`` truncate alike on both, so ``hi * 2**32 + lo`` is
    the exact sum, negative values included.
    """
    return f"SUM({column} / {_HALF}) AS {column}_hi, SUM({column} % {_HALF}) AS {column}_lo"


def summed(row: Any, column: str) -> int:
    """The exact sum selected by :func:`exact_sum` (0 over no rows)."""
    return int(row[f"{column}_hi"] or 0) * _HALF + int(row[f"{column}_lo"] or 0)
