"""``view_meta``: small named values the read side keeps beside its views.

Two kinds live here: the HMAC key that signs query cursors (``cursor_key``, made once
per store so a cursor works in every process and after restarts) and the shape version
of each projection (``shape:<name>``), which tells the engine that a view was written
by a version with other tables and must be rebuilt from the log.
"""

from __future__ import annotations

import secrets

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
