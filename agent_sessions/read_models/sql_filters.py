"""How read models build their WHERE clauses and keyset pages, written once.

Every named query filters with :class:`Where` (conditions ANDed, parameters kept in
step with their ``?`` markers) and pages with a keyset: rows strictly beyond the last
row of the previous page in ``(sort value, id)`` order, so a page never repeats or
skips a row when rows before it change (an ``OFFSET`` would).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from ..ports.batching import marks

_T = TypeVar("_T")

Direction = Literal["ASC", "DESC"]

#: A page position: the (sort value, id) of the last row handed out.
Key = tuple[int, str]


@dataclass(frozen=True, slots=True)
class Order:
    """A keyset order: ``column`` then ``id_column`` as the tie-break, both one way."""

    column: str
    id_column: str
    direction: Direction = "ASC"

    def sql(self) -> str:
        return f"{self.column} {self.direction}, {self.id_column} {self.direction}"

    def beyond_sql(self) -> str:
        """Rows strictly after ``(value, id)`` in this order; binds value, value, id."""
        op = "<" if self.direction == "DESC" else ">"
        c, i = self.column, self.id_column
        return f"({c} {op} ? OR ({c} = ? AND {i} {op} ?))"

    def beyond(self, key: Key, after: Key) -> bool:
        """The same test in Python, for pages cut after a filter SQL cannot express."""
        if self.direction == "DESC":
            return key < after
        return key > after

    def select(self) -> str:
        """The columns a keyset query selects so that :meth:`key` can read its rows."""
        return f"{self.column} AS sort_value, {self.id_column}"

    def key(self, row: Any) -> Key:
        """The position of a row selected with :meth:`select`."""
        return int(row["sort_value"]), str(row[self.id_column.rsplit(".", 1)[-1]])

    def last(self, rows: Sequence[Any]) -> Key | None:
        """The position after the last of ``rows``; ``None`` when there are none."""
        return self.key(rows[-1]) if rows else None


@dataclass(slots=True)
class Where:
    """Conditions joined by ``AND``, each with its parameters in marker order."""

    clauses: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, *params: Any) -> Where:
        self.clauses.append(clause)
        self.params.extend(params)
        return self

    def equals(self, column: str, value: Any) -> Where:
        """``column = value``, unless ``value`` is ``None`` (no filter)."""
        return self if value is None else self.add(f"{column} = ?", value)

    def among(self, column: str, values: Sequence[Any] | None) -> Where:
        """``column IN (values)``, unless there are none (no filter). A caller's list
        holds at most ``MAX_FILTER_VALUES`` distinct values, refused above that before
        any read (``services/query_input.py``), so every statement stays within the
        backends' bounds on parameters; long internal lists go through
        ``ports.batching.chunked``."""
        if not values:
            return self
        return self.add(f"{column} IN ({marks(len(values))})", *values)

    def not_among(self, column: str, values: Sequence[Any]) -> Where:
        if not values:
            return self
        return self.add(f"{column} NOT IN ({marks(len(values))})", *values)

    def compare(self, column: str, op: str, value: Any) -> Where:
        """``column op value`` (``>=``, ``<``, ...), unless ``value`` is ``None``."""
        return self if value is None else self.add(f"{column} {op} ?", value)

    def beyond(self, order: Order, after: Key | None) -> Where:
        """Rows after the keyset position ``after`` in ``order`` (none: from the start)."""
        if after is None:
            return self
        return self.add(order.beyond_sql(), after[0], after[0], after[1])

    def copy(self) -> Where:
        return Where(list(self.clauses), list(self.params))

    def sql(self) -> str:
        return " WHERE " + " AND ".join(self.clauses) if self.clauses else ""


def ranked_first(column: str, values: Sequence[str]) -> tuple[list[str], list[str]]:
    """The ``ORDER BY`` terms putting rows whose ``column`` is one of ``values`` first:
    none for no values (a constant ``0`` there would be read as "the first column", and
    ``ORDER BY 0`` is an error on every backend)."""
    if not values:
        return [], []
    return [f"CASE WHEN {column} IN ({marks(len(values))}) THEN 0 ELSE 1 END"], list(values)


@dataclass(frozen=True, slots=True)
class KeysetPage(Generic[_T]):
    """One page of a named query: its items and the position after the last one."""

    items: list[_T]
    #: ``None`` when the page is empty: there is nothing to continue from.
    last: Key | None
    #: Rows matching the filters on every page, when the query counts them.
    total: int | None = None


__all__ = ["Direction", "Key", "KeysetPage", "Order", "Where", "ranked_first"]
