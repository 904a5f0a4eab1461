"""Parsing the values options take, shared by the commands: times, days, event types,
statuses. A bad value is click's ``BadParameter`` naming the option (exit 1, one line
saying what a good value looks like); the library checks the rest of each argument."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TypeVar

import click

from ..domain.event_types import EventType
from ..domain.statuses import SessionStatus

_T = TypeVar("_T")


def moment(text: str) -> datetime:
    """An ISO 8601 time or day; one without a zone is UTC (the store keeps UTC)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO 8601 time, e.g. 2025-03-01T09:00:00Z or 2025-03-01"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def day(text: str) -> str:
    """``YYYY-MM-DD`` (the days of the daily rollup are UTC)."""
    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a day: write YYYY-MM-DD") from None


def converted(
    convert: Callable[[str], _T],
) -> Callable[[click.Context, click.Parameter, str | None], _T | None]:
    """An option callback: ``convert`` the given text (click's own parameter types
    changed shape between versions; a callback did not)."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> _T | None:
        return None if value is None else convert(value)

    return callback


def converted_all(
    convert: Callable[[str], _T],
) -> Callable[[click.Context, click.Parameter, tuple[str, ...]], tuple[_T, ...]]:
    """The same for a repeatable option."""

    def callback(
        ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
    ) -> tuple[_T, ...]:
        return tuple(convert(value) for value in values)

    return callback


#: Event types and session statuses as click choices: ``--help`` lists them, and a
#: mistyped one is a usage error naming the valid ones.
EVENT_TYPE = click.Choice([t.value for t in EventType])
SESSION_STATUS = click.Choice([s.value for s in SessionStatus])
