"""Small conversions shared by the built-in views."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ..ports.index import to_micros


def micros(iso: str | None) -> int | None:
    return None if iso is None else to_micros(datetime.fromisoformat(iso))


def utc_day(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).date().isoformat()


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def loads(text: str | bytes | None) -> Any:
    return None if text is None else json.loads(text)
