"""Store URL options: the query string and ``open_store`` keyword arguments, checked the
same way on every backend (an unknown or malformed option is ``validation_error``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..domain.errors import ValidationError


@dataclass(frozen=True, slots=True)
class Option:
    default: str
    #: Numeric options must parse as a number (seconds or counts).
    numeric: bool = True


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
            details={"options": sorted(unknown), "allowed": sorted(allowed)},
        )
    values: dict[str, str] = {}
    for name, option in allowed.items():
        value = given.get(name, query.get(name, option.default))
        if option.numeric and value != "":
            try:
                float(value)
            except (TypeError, ValueError):
                raise ValidationError(
                    f"{name} must be a number, got {value!r}", details={"field": name}
                ) from None
        values[name] = str(value)
    return values
