"""Store URL options: the query string and ``open_store`` keyword arguments, checked the
same way on every backend (an unknown or malformed option is ``validation_error``).

Every value is checked here, before any connection is tried: a value the driver would
refuse (a negative pool size, a schema name that is not a plain identifier) is the
caller's mistake, never a *retryable* ``storage_connection_failed``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..domain.errors import ValidationError
from ..ports.payload_limit import (
    DEFAULT_MAX_EVENT_BYTES,
    MAX_EVENT_BYTES_ENV,
    MAX_MAX_EVENT_BYTES,
    MIN_MAX_EVENT_BYTES,
)


@dataclass(frozen=True, slots=True)
class Option:
    default: str
    #: Numeric options must parse as a finite number (seconds or counts).
    numeric: bool = True
    #: A count: a whole number (``"4"``, not ``"4.5"``).
    integer: bool = False
    #: Numeric options: ``""`` is accepted and means "none" (else it is refused).
    blank: bool = False
    #: The smallest and largest accepted number (numeric options only).
    minimum: float = 0
    maximum: float | None = None
    #: Text options: the whole value must match this pattern.
    pattern: re.Pattern[str] | None = None


#: Options every backend takes, ``memory://`` included: the ceiling on one stored event's
#: encoded payload, in bytes (``ports/payload_limit.py``).
COMMON_OPTIONS: Mapping[str, Option] = {
    "max_event_bytes": Option(
        str(DEFAULT_MAX_EVENT_BYTES),
        integer=True,
        minimum=MIN_MAX_EVENT_BYTES,
        maximum=MAX_MAX_EVENT_BYTES,
    ),
}


def common_environment(values: Mapping[str, str]) -> dict[str, str]:
    """The application settings of :data:`COMMON_OPTIONS`, from parsed option values."""
    return {MAX_EVENT_BYTES_ENV: str(int(float(values["max_event_bytes"])))}


def parse_options(
    url: str, given: Mapping[str, Any], allowed: Mapping[str, Option], *, backend: str
) -> dict[str, str]:
    """Every allowed option's value as text: keyword arguments win over the query
    string, which wins over the default."""
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    unknown = (set(query) | set(given)) - set(allowed)
    if unknown:
        raise ValidationError(
            f"unknown {backend} option(s): {', '.join(sorted(unknown))}",
            details={
                "field": sorted(unknown)[0],
                "options": sorted(unknown),
                "allowed": sorted(allowed),
            },
        )
    values: dict[str, str] = {}
    for name, option in allowed.items():
        value = given.get(name, query.get(name, option.default))
        if option.numeric and not (option.blank and value == ""):
            _check_number(name, value, option)
        elif not option.numeric:
            _check_text(name, value, option)
        values[name] = str(value)
    return values


def _check_number(name: str, value: Any, option: Option) -> None:
    # Only text and real numbers: ``float()`` also reads ``b"4"``, which ``str()`` would
    # then turn into ``"b'4'"``; a bool is not a count of seconds.
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        number = math.nan
    else:
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            number = math.nan
    kind = "a whole number" if option.integer else "a number"
    if not math.isfinite(number) or (option.integer and not number.is_integer()):
        raise ValidationError(f"{name} must be {kind}, got {value!r}", details={"field": name})
    if number < option.minimum or (option.maximum is not None and number > option.maximum):
        bound = f"at least {option.minimum:g}" + (
            "" if option.maximum is None else f" and at most {option.maximum:g}"
        )
        raise ValidationError(
            f"{name} must be {kind} {bound}, got {value!r}", details={"field": name}
        )


def _check_text(name: str, value: Any, option: Option) -> None:
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string, got {value!r}", details={"field": name})
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no driver can send it
        raise ValidationError(
            f"{name} must be valid Unicode, got {value!r}", details={"field": name}
        ) from None
    if option.pattern is not None and not option.pattern.fullmatch(value):
        raise ValidationError(
            f"{name} is not allowed: {value!r} (must match {option.pattern.pattern})",
            details={"field": name},
        )
