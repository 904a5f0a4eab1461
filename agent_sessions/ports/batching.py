"""How long lists are cut for SQL ``IN (...)`` lists and bulk statements."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

_T = TypeVar("_T")

#: Values per ``IN (...)`` list: far below SQLite's (32,766) and PostgreSQL's (65,535)
#: limits on bound parameters, and large enough that a round trip carries real work.
IN_LIST_SIZE = 500


def chunked(values: Sequence[_T], size: int = IN_LIST_SIZE) -> Iterator[Sequence[_T]]:
    """``values`` in consecutive slices of at most ``size``."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def marks(count: int, mark: str = "?") -> str:
    """``count`` parameter markers for an ``IN (...)`` list."""
    return ",".join([mark] * count)
