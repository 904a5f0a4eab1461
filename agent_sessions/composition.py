"""``open_store(url)``: the one factory for every backend."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, overload
from urllib.parse import parse_qsl, unquote, urlsplit

from .backends.failures import classify, translate
from .domain.errors import DependencyNotAvailable, ErrorCode, StorageError, ValidationError
from .services.composite_store import ArtifactBackend, CompositeSessionStore
from .store.service import EventSourcedSessionStore
from .store.sessions_app import SessionsApplication

#: Used when neither an argument nor ``AGENT_SESSIONS_URL`` names a store.
DEFAULT_URL = "sqlite:///agent_sessions.db"

#: How often a SQLite long-poll re-checks for appends made by other processes.
SQLITE_POLL_INTERVAL = 0.05


def default_url() -> str:
    return os.environ.get("AGENT_SESSIONS_URL") or DEFAULT_URL


@overload
def open_store(
    url: str | None = None, *, artifacts: None = None, **options: Any
) -> EventSourcedSessionStore: ...


@overload
def open_store(
    url: str | None = None,
    *,
    artifacts: str | ArtifactBackend,
    artifact_options: dict[str, Any] | None = None,
    **options: Any,
) -> CompositeSessionStore: ...


def open_store(
    url: str | None = None,
    *,
    artifacts: str | ArtifactBackend | None = None,
    artifact_options: dict[str, Any] | None = None,
    **options: Any,
) -> EventSourcedSessionStore | CompositeSessionStore:
    """Open (creating when needed) the store named by ``url``:

    * ``memory://`` — in this process only;
    * ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` — a file, created
      with its parent directories; ``sqlite:///:memory:`` for a private in-memory database;
    * no argument — ``$AGENT_SESSIONS_URL``, else ``sqlite:///agent_sessions.db`` in the
      current directory.

    * ``postgresql://user:password@host:5432/dbname`` (also ``postgresql+psycopg://``),
      with the options below in the query string or as keyword arguments.

    Options: ``lock_timeout`` (seconds; SQLite's busy timeout, default 10, and
    PostgreSQL's lock timeout, default 10); PostgreSQL only: ``schema`` (default
    ``public``), ``pool_size`` (default 4), ``max_overflow`` (default 4),
    ``connect_timeout`` (seconds, default 5), ``statement_timeout`` (seconds, default
    none), ``application_name`` (shown in ``pg_stat_activity``, default
    ``agent-sessions``).

    ``artifacts`` adds an artifact store and returns a ``CompositeSessionStore``:
    ``"file:///abs/root"`` (or ``"file://relative/root"``), ``"s3://bucket/prefix/"``, or
    any ``ArtifactStore`` object. ``artifact_options`` go to the artifact store (for S3:
    ``endpoint_url``, ``region_name``, ``client``, ``multipart_threshold``, ...).
    """
    store = _session_store(url, **options)
    if artifacts is None:
        return store
    try:
        backend = (
            artifact_store_for(artifacts, **(artifact_options or {}))
            if isinstance(artifacts, str)
            else artifacts
        )
    except BaseException:
        store.close()
        raise
    return CompositeSessionStore(store, backend)


def artifact_store_for(url: str, **options: Any) -> ArtifactBackend:
    """The artifact store named by ``file://`` or ``s3://`` URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        from .artifacts.file_store import FileArtifactStore

        root = unquote(parts.netloc + parts.path)
        return FileArtifactStore(root, **options)
    if scheme == "s3":
        from .artifacts.s3_store import S3ArtifactStore

        if not parts.netloc:
            raise ValidationError("an S3 URL names a bucket: s3://bucket/prefix/")
        return S3ArtifactStore(parts.netloc, prefix=unquote(parts.path.lstrip("/")), **options)
    raise ValidationError(
        f"unsupported artifact store URL: {url!r} (expected file:///root or s3://bucket/prefix)",
        details={"url": url},
    )


def _session_store(url: str | None, **options: Any) -> EventSourcedSessionStore:
    url = url or default_url()
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return _memory_store(url)
    if scheme == "sqlite":
        return _sqlite_store(url, **options)
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        return _postgres_store(url, **options)
    raise ValidationError(
        f"unsupported store URL: {url!r} "
        "(expected memory://, sqlite:///path or postgresql://user@host/db)",
        details={"url": url},
    )


def _memory_store(url: str) -> EventSourcedSessionStore:
    app = SessionsApplication({"PERSISTENCE_MODULE": "agent_sessions.backends.memory:Factory"})
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
        "PERSISTENCE_MODULE": "agent_sessions.backends.sqlite:Factory",
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


_PG_OPTIONS = {
    "schema": ("POSTGRES_SCHEMA", "public"),
    "pool_size": ("POSTGRES_POOL_SIZE", "4"),
    "max_overflow": ("POSTGRES_MAX_OVERFLOW", "4"),
    "connect_timeout": ("POSTGRES_CONNECT_TIMEOUT", "5"),
    "lock_timeout": ("POSTGRES_LOCK_TIMEOUT", "10"),
    "statement_timeout": ("POSTGRES_STATEMENT_TIMEOUT", ""),
    "application_name": ("POSTGRES_APPLICATION_NAME", "agent-sessions"),
}


def _postgres_env(url: str, options: dict[str, Any]) -> dict[str, str]:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    unknown = (set(query) | set(options)) - set(_PG_OPTIONS)
    if unknown:
        raise ValidationError(
            f"unknown PostgreSQL option(s): {', '.join(sorted(unknown))}",
            details={"allowed": sorted(_PG_OPTIONS)},
        )
    env = {
        "PERSISTENCE_MODULE": "agent_sessions.backends.postgres:Factory",
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": parts.hostname or "localhost",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "") or os.environ.get("USER", "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
    }
    for name, (key, default) in _PG_OPTIONS.items():
        value = options.get(name, query.get(name, default))
        if name not in ("schema", "application_name") and value != "":
            try:
                float(value)
            except (TypeError, ValueError):
                raise ValidationError(
                    f"{name} must be a number, got {value!r}", details={"field": name}
                ) from None
        env[key] = str(value)
    return env


def _postgres_store(url: str, **options: Any) -> EventSourcedSessionStore:
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise DependencyNotAvailable(
            "PostgreSQL support needs the postgres extra: pip install 'agent-sessions[postgres]'",
            details={"extra": "postgres", "missing": exc.name or "psycopg"},
        ) from exc
    env = _postgres_env(url, options)
    try:
        app = SessionsApplication(env)
    except Exception as exc:
        error = translate(exc, "open_store") if classify(exc) else None
        raise StorageError(
            f"cannot open PostgreSQL store at {_redacted(url)}: {exc}",
            code=error.code if error else ErrorCode.STORAGE_CONNECTION_FAILED,
            details={"url": _redacted(url), "cause": f"{type(exc).__name__}: {exc}"},
        ) from exc
    factory: Any = app.factory
    feed = factory.change_listener(app.recorder)
    return EventSourcedSessionStore(app, change_feed=feed, url=_redacted(url))


def _redacted(url: str) -> str:
    """The URL without its password, for messages and ``repr``."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
