"""``view_meta``: small named values the read side keeps beside its views.

Four kinds live here: the HMAC key that signs query cursors (``cursor_key``, made once
per store so a cursor works in every process and after restarts), the shape version
of each projection (``shape:<name>``), which tells the engine that a view was written
by a version with other tables and must be rebuilt from the log, the mark of a
projection stopped at an event it cannot apply (``failed:<name>``, a JSON object), kept
here so that every process sees it and stops too, and the ``module:Class`` topic of each
user projection registered by name (``topic:<name>``), so that a tool opening the store
later (``agent-sessions projections status``) knows which projections it has.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from ..ports.views import ViewCursor

_CREATE = "CREATE TABLE IF NOT EXISTS view_meta (name TEXT PRIMARY KEY, value TEXT)"
_CURSOR_KEY = "cursor_key"


def create(view: ViewCursor) -> None:
    view.execute(_CREATE)


def get(view: ViewCursor, name: str) -> str | None:
    row = view.execute("SELECT value FROM view_meta WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row["value"])


def put(view: ViewCursor, name: str, value: str) -> None:
    view.execute(
        "INSERT INTO view_meta (name, value) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
        (name, value),
    )


def cursor_key(view: ViewCursor) -> bytes:
    """The store's cursor key, made on first use; the first writer's key wins a race."""
    create(view)
    view.execute(
        "INSERT INTO view_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        (_CURSOR_KEY, secrets.token_hex(32)),
    )
    value = get(view, _CURSOR_KEY)
    assert value is not None  # inserted just above unless it was there
    return bytes.fromhex(value)


def shape_name(projection_name: str) -> str:
    return f"shape:{projection_name}"


_FAILED = "failed:"


def failure_name(projection_name: str) -> str:
    return f"{_FAILED}{projection_name}"


def failures(view: ViewCursor, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """The failure marks, by projection name: of ``names`` only when given."""
    if names is not None and not names:
        return {}
    rows = view.execute(
        "SELECT name, value FROM view_meta WHERE name LIKE ?", (f"{_FAILED}%",)
    ).fetchall()
    found = {str(row["name"])[len(_FAILED) :]: json.loads(row["value"]) for row in rows}
    return {name: mark for name, mark in found.items() if names is None or name in names}


def put_failure(view: ViewCursor, projection_name: str, mark: dict[str, Any]) -> None:
    put(view, failure_name(projection_name), json.dumps(mark, sort_keys=True))


def clear_failure(view: ViewCursor, projection_name: str) -> None:
    view.execute("DELETE FROM view_meta WHERE name = ?", (failure_name(projection_name),))


_TOPIC = "topic:"


def put_topic(view: ViewCursor, projection_name: str, topic: str) -> None:
    put(view, f"{_TOPIC}{projection_name}", topic)


def topics(view: ViewCursor) -> dict[str, str]:
    """The remembered ``module:Class`` topics, by projection name."""
    rows = view.execute(
        "SELECT name, value FROM view_meta WHERE name LIKE ?", (f"{_TOPIC}%",)
    ).fetchall()
    return {str(row["name"])[len(_TOPIC) :]: str(row["value"]) for row in rows}


def delete_topic(view: ViewCursor, projection_name: str) -> None:
    view.execute("DELETE FROM view_meta WHERE name = ?", (f"{_TOPIC}{projection_name}",))
