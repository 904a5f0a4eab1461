"""``open_store(url)``: the one factory, for every backend."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from ..backends import open_backend, schema
from ..domain.errors import AgentSessionsError, ErrorCode, NotFoundError, ValidationError
from ..domain.event_redactor import RedactionConfig
from ..ports.backend import Backend
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
    redaction: RedactionConfig | None = None,
    create: bool = True,
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
    ``validation_error`` on every backend): ``max_event_bytes`` (every backend: the
    largest encoded payload of one stored event, default 16 MiB; a larger one is
    ``validation_error`` and nothing is stored); ``lock_timeout`` (seconds; SQLite's busy
    timeout and PostgreSQL's lock timeout, default 10); PostgreSQL only: ``schema``
    (default ``public``), ``pool_size`` (default 4), ``max_overflow`` (default 4),
    ``connect_timeout`` (seconds, default 5), ``statement_timeout`` (seconds, default
    none), ``write_timeout`` (seconds per statement of a write, default 60),
    ``idle_in_transaction_timeout`` (whole seconds, default 5), ``application_name``
    (shown in ``pg_stat_activity``, default ``agent-sessions``).

    A store whose schema is older than this code's raises ``migration_required``
    naming the command to run, unless ``migrate=True`` migrates it first; a store from
    a newer version raises ``migration_required`` naming the version it needs. Nothing
    is written before that check.

    ``artifacts`` adds an artifact store: ``"file:///abs/root"`` (or
    ``"file://relative/root"``), ``"s3://bucket/prefix/"``, or any ``ArtifactStore``
    object; ``artifact_options`` go to the artifact store (for S3: ``endpoint_url``,
    ``region_name``, ``client``, ``multipart_threshold``, ...).

    ``redaction`` (a ``RedactionConfig``) makes the store redact every session, run and
    event, and artifact metadata, before it is written, whoever writes it; an
    ``EventPipeline`` or ``SessionManager`` over the store redacts with it too.

    ``create=False`` opens only a store that exists, and creates nothing (no file, no
    directory, no schema, no table): a missing SQLite file, or a database or PostgreSQL
    schema without a store in it, is ``not_found`` naming the URL. What read-only tools
    want (the command line's read commands): a mistyped URL must fail, not leave an
    empty store behind and report that it holds nothing.
    """
    if redaction is not None and not isinstance(redaction, RedactionConfig):
        raise ValidationError("redaction must be a RedactionConfig", details={"field": "redaction"})
    if url is not None and not isinstance(url, str):
        raise ValidationError(f"url must be a string, got {url!r}", details={"field": "url"})
    # Before connecting: a bad artifact store is the caller's mistake, never the database's.
    _check_artifacts(artifacts, artifact_options)
    url = url or default_url()
    if not create:
        # Before the backend: opening a SQLite URL creates the file's directory.
        _require_sqlite_file(url)
    backend = open_backend(url, options)
    try:
        if not create:
            _require_store(backend)
        check_version(backend, migrate_now=migrate, url=url, options=options)
    except AgentSessionsError:
        raise
    except Exception as exc:
        raise backend.open_error(exc) from exc
    artifact_store = None
    if isinstance(artifacts, str):
        artifact_store = artifact_store_for(artifacts, **(artifact_options or {}))
    elif artifacts is not None:
        artifact_store = artifacts
    try:
        app = SessionsApplication(backend.environment())
    except AgentSessionsError:
        raise
    except Exception as exc:
        raise backend.open_error(exc) from exc
    try:
        return Store(app, backend, artifact_store=artifact_store, redaction=redaction)
    except BaseException:
        app.close()
        raise


def _check_artifacts(artifacts: object, options: object) -> None:
    """``artifacts`` is a URL or an object with the ``ArtifactStore`` methods;
    ``artifact_options`` (for a URL) a mapping of option names."""
    if isinstance(artifacts, str):
        if options is not None and not (
            isinstance(options, Mapping) and all(isinstance(name, str) for name in options)
        ):
            raise ValidationError(
                f"artifact_options must map option names to values, got {options!r}",
                details={"field": "artifact_options"},
            )
        _artifact_url(artifacts, options or {})
    elif artifacts is not None and not isinstance(artifacts, ArtifactBackend):
        raise ValidationError(
            f"artifacts must be an artifact store URL or an ArtifactStore, got {artifacts!r}",
            details={"field": "artifacts"},
        )


def _no_store(url: str) -> NotFoundError:
    return NotFoundError(
        f"no store at {url} (nothing was created): check the URL",
        code=ErrorCode.NOT_FOUND,
        details={"url": url, "field": "url"},
    )


def _require_sqlite_file(url: str) -> None:
    if urlsplit(url).scheme.lower() != "sqlite":
        return
    from ..backends.sqlite import sqlite_path

    path = sqlite_path(url)
    if path != ":memory:" and not Path(path).expanduser().is_file():
        raise _no_store(url)


def _require_store(backend: Backend) -> None:
    """A database that exists but holds no store (an empty file, a PostgreSQL schema
    that is not there or has none of our tables) is missing too. ``memory://`` and
    ``sqlite:///:memory:`` start empty by definition and are always there."""
    access = backend.schema()
    if access is not None and schema.version_of(access.inspect()) is None:
        raise _no_store(backend.url)


def artifact_store_for(url: str, **options: Any) -> ArtifactBackend:
    """The artifact store named by a ``file://`` or ``s3://`` URL."""
    parts = _artifact_url(url, options)
    if parts.scheme.lower() == "file":
        from ..artifacts.file_store import FileArtifactStore

        return FileArtifactStore(unquote(parts.netloc + parts.path))
    from ..artifacts.s3_store import S3ArtifactStore

    return S3ArtifactStore(parts.netloc, prefix=unquote(parts.path.lstrip("/")), **options)


def _artifact_url(url: str, options: Mapping[str, Any]) -> SplitResult:
    """The parts of a supported artifact store URL, its options checked, nothing made:
    the URL names the file root and the S3 bucket and prefix, so an option may not."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("file", "s3"):
        raise ValidationError(
            f"unsupported artifact store URL: {url!r} (expected file:///root or s3://bucket/prefix)",
            details={"url": url, "field": "artifacts"},
        )
    if scheme == "s3" and not parts.netloc:
        raise ValidationError(
            "an S3 URL names a bucket: s3://bucket/prefix/",
            details={"url": url, "field": "artifacts"},
        )
    # A file store takes no options; the bucket and prefix are the URL's.
    refused = sorted(options if scheme == "file" else {"bucket", "prefix"} & set(options))
    if refused:
        raise ValidationError(
            f"artifact option(s) not taken by a {scheme}:// store: {', '.join(refused)}",
            details={"field": refused[0], "options": refused},
        )
    return parts
