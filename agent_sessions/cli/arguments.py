"""Parsing the values options take, shared by the commands: times, days, event types,
statuses, pricing tables. A bad value is click's ``BadParameter`` naming the option
(exit 1, one line saying what a good value looks like), or for a file a
``validation_error`` naming it; the library checks the rest of each argument."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from ..domain.errors import ValidationError
from ..domain.event_types import EventType
from ..domain.pricing import PricingTable
from ..domain.statuses import SessionStatus

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])


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


#: What a pricing file holds, said in each message about a bad one.
_PRICING_SHAPE = (
    'write {"provider": {"models": {"model": {"input": 3e-06, "output": 1.5e-05}}}}, '
    "US dollars per token"
)


def pricing_table(path: Path | None) -> dict[str, Any] | None:
    """A pricing table from a JSON file (the shape of ``DEFAULT_PRICING``: provider to
    ``{default?, models?}`` of rates), checked before any store is opened, so that a
    bad file is one line naming it rather than a failure half-way."""
    if path is None:
        return None
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValidationError(
            f"cannot read the pricing table {path}: {exc} ({_PRICING_SHAPE})",
            details={"field": "pricing"},
        ) from exc
    if not isinstance(table, dict):
        raise ValidationError(
            f"the pricing table {path} is not a JSON object ({_PRICING_SHAPE})",
            details={"field": "pricing"},
        )
    try:
        PricingTable.coerce(table)
    except ValidationError as exc:
        raise ValidationError(
            f"the pricing table {path} is not usable: {exc.message} ({_PRICING_SHAPE})",
            details={"field": "pricing"},
        ) from exc
    return table


class UserPath(click.Path):
    """click's ``Path`` with a leading ``~`` made the home folder first: a path quoted
    in the shell (``'~/.claude/projects'``), or written after ``--opt=``, is not
    expanded by the shell, and still means home."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.startswith("~"):
            value = os.path.expanduser(value)
        return super().convert(value, param, ctx)


def pricing_option(help_text: str) -> Callable[[_F], _F]:
    """``--pricing FILE``: a JSON pricing table (:func:`pricing_table` reads it)."""
    return click.option(
        "--pricing",
        type=UserPath(exists=True, dir_okay=False, path_type=Path),
        default=None,
        metavar="FILE",
        help=help_text,
    )
