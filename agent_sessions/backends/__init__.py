"""Storage backends, one module each, behind ``ports.backend.Backend``.

``memory.py`` and ``sqlite.py`` (the embedded default) share the SQLite code;
``postgres.py`` needs the ``postgres`` extra and is imported only when a PostgreSQL URL
is opened. ``sql_index.py`` holds the index SQL both dialects run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..domain.errors import DependencyNotAvailable, ValidationError
from ..ports.backend import Backend


def open_backend(url: str, options: Mapping[str, Any]) -> Backend:
    """The backend a store URL names, its options checked; nothing is opened yet."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        from .memory import MemoryBackend

        return MemoryBackend(url, options)
    if scheme == "sqlite":
        from .sqlite import SQLiteBackend

        return SQLiteBackend(url, options)
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        try:
            from .postgres import PostgresBackend
        except ImportError as exc:
            raise DependencyNotAvailable(
                "PostgreSQL support needs the postgres extra: "
                "pip install 'agent-sessions[postgres]'",
                details={"extra": "postgres", "missing": exc.name or "psycopg"},
            ) from exc
        return PostgresBackend(url, options)
    raise ValidationError(
        f"unsupported store URL: {url!r} "
        "(expected memory://, sqlite:///path or postgresql://user@host/db)",
        details={"url": url, "field": "url"},
    )
