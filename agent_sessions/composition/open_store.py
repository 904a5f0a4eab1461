"""``open_store(url)``: the one factory, for every backend."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlsplit

from ..backends import open_backend
from ..domain.errors import AgentSessionsError, ValidationError
from ..store.sessions_app import SessionsApplication
from .migrate import check_version
from .store import ArtifactBackend, Store

#: Used when neither an argument nor ``AGENT_SESSIONS_URL`` names a store.
DEFAULT_URL = "sqlite:///agent_sessions.db"


def default_url() -> str:
    return os.environ.get("AGENT_SESSIONS_URL") or DEFAULT_URL


def open_store(
    url: str | None = None,
    *,
    artifacts: str | ArtifactBackend | None = None,
    artifact_options: dict[str, Any] | None = None,
    migrate: bool = False,
    **options: Any,
) -> Store:
    """Open (creating when needed) the store named by ``url``:

    * ``memory://`` — in this process only (SQLite on a private in-memory database);
    * ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` — a file, created
      with its parent directories; ``sqlite:///:memory:`` for a private in-memory database;
    * ``postgresql://user:password@host:5432/dbname`` (also ``postgresql+psycopg://``);
    * no argument — ``$AGENT_SESSIONS_URL``, else ``sqlite:///agent_sessions.db`` in the
      current directory.

    Options, in the URL's query string or as keyword arguments (an unknown one is
    ``validation_error`` on every backend): ``lock_timeout`` (seconds; SQLite's busy
    timeout and PostgreSQL's lock timeout, default 10); PostgreSQL only: ``schema``
    (default ``public``), ``pool_size`` (default 4), ``max_overflow`` (default 4),
    ``connect_timeout`` (seconds, default 5), ``statement_timeout`` (seconds, default
    none), ``application_name`` (shown in ``pg_stat_activity``, default
    ``agent-sessions``). ``memory://`` takes none.

    A store whose schema is older than this code's raises ``migration_required``
    naming the command to run, unless ``migrate=True`` migrates it first; a store from
    a newer version raises ``migration_required`` naming the version it needs. Nothing
    is written before that check.

    ``artifacts`` adds an artifact store: ``"file:///abs/root"`` (or
    ``"file://relative/root"``), ``"s3://bucket/prefix/"``, or any ``ArtifactStore``
    object; ``artifact_options`` go to the artifact store (for S3: ``endpoint_url``,
    ``region_name``, ``client``, ``multipart_threshold``, ...).
    """
    url = url or default_url()
    backend = open_backend(url, options)
    try:
        check_version(backend, migrate_now=migrate, url=url, options=options)
    except AgentSessionsError:
        raise
    except Exception as exc:
        raise backend.open_error(exc) from exc
    artifact_store = None
    if artifacts is not None:
        artifact_store = (
            artifact_store_for(artifacts, **(artifact_options or {}))
            if isinstance(artifacts, str)
            else artifacts
        )
    try:
        app = SessionsApplication(backend.environment())
    except AgentSessionsError:
        raise
    except Exception as exc:
        raise backend.open_error(exc) from exc
    try:
        return Store(app, backend, artifact_store=artifact_store)
    except BaseException:
        app.close()
        raise


def artifact_store_for(url: str, **options: Any) -> ArtifactBackend:
    """The artifact store named by a ``file://`` or ``s3://`` URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        from ..artifacts.file_store import FileArtifactStore

        root = unquote(parts.netloc + parts.path)
        return FileArtifactStore(root, **options)
    if scheme == "s3":
        from ..artifacts.s3_store import S3ArtifactStore

        if not parts.netloc:
            raise ValidationError("an S3 URL names a bucket: s3://bucket/prefix/")
        return S3ArtifactStore(parts.netloc, prefix=unquote(parts.path.lstrip("/")), **options)
    raise ValidationError(
        f"unsupported artifact store URL: {url!r} (expected file:///root or s3://bucket/prefix)",
        details={"url": url},
    )
