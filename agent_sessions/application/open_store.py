"""``open_store(url)``: the one factory for every backend."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..domain.errors import StorageError, ValidationError
from .sessions_app import SessionsApplication
from .store_service import EventSourcedSessionStore

#: Used when neither an argument nor ``AGENT_SESSIONS_URL`` names a store.
DEFAULT_URL = "sqlite:///agent_sessions.db"

#: How often a SQLite long-poll re-checks for appends made by other processes.
SQLITE_POLL_INTERVAL = 0.05


def default_url() -> str:
    return os.environ.get("AGENT_SESSIONS_URL") or DEFAULT_URL


def open_store(url: str | None = None, **options: Any) -> EventSourcedSessionStore:
    """Open (creating when needed) the store named by ``url``:

    * ``memory://`` — in this process only;
    * ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` — a file, created
      with its parent directories; ``sqlite:///:memory:`` for a private in-memory database;
    * no argument — ``$AGENT_SESSIONS_URL``, else ``sqlite:///agent_sessions.db`` in the
      current directory.

    Options: ``lock_timeout`` (SQLite busy timeout in seconds, default 10).
    """
    url = url or default_url()
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return _memory_store(url)
    if scheme == "sqlite":
        return _sqlite_store(url, **options)
    raise ValidationError(
        f"unsupported store URL: {url!r} (expected memory:// or sqlite:///path)",
        details={"url": url},
    )


def _memory_store(url: str) -> EventSourcedSessionStore:
    app = SessionsApplication(
        {"PERSISTENCE_MODULE": "agent_sessions.infrastructure.memory_recorder:Factory"}
    )
    return EventSourcedSessionStore(app, url=url)


def _sqlite_path(url: str) -> str:
    # ``sqlite:///x.db`` -> ``x.db``; ``sqlite:////tmp/x.db`` -> ``/tmp/x.db``.
    rest = url.split("://", 1)[1]
    if not rest.startswith("/"):
        raise ValidationError(
            "a SQLite URL has three slashes before a relative path: sqlite:///path.db",
            details={"url": url},
        )
    path = unquote(rest[1:].split("?", 1)[0])
    if not path:
        raise ValidationError("the SQLite URL names no file", details={"url": url})
    return path


def _sqlite_store(url: str, *, lock_timeout: int = 10) -> EventSourcedSessionStore:
    path = _sqlite_path(url)
    if path == ":memory:":
        # Every pooled connection must see the same database: a named shared-cache one.
        db_name = f"file:agent_sessions_{uuid.uuid4().hex}?mode=memory&cache=shared"
        poll_interval = None
    else:
        try:
            Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create the directory of {path}: {exc}", details={"url": url}
            ) from exc
        db_name = str(Path(path).expanduser())
        poll_interval = SQLITE_POLL_INTERVAL
    env = {
        "PERSISTENCE_MODULE": "agent_sessions.infrastructure.sqlite_recorder:Factory",
        "SQLITE_DBNAME": db_name,
        "SQLITE_LOCK_TIMEOUT": str(int(lock_timeout)),
    }
    try:
        app = SessionsApplication(env)
    except Exception as exc:
        raise StorageError(
            f"cannot open SQLite store at {path}: {exc}",
            details={"url": url, "cause": f"{type(exc).__name__}: {exc}"},
        ) from exc
    return EventSourcedSessionStore(app, poll_interval=poll_interval, url=url)
