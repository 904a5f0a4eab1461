"""The artifact registry: metadata of stored blobs, as events, served by a view.

Each key is one stream (``artifact:<key>``), which is what keeps keys unique across
processes; registering a key again revises its entry (the blob was overwritten).
Reads go through the ``artifacts`` view, caught up first (read-your-writes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..backends.view_store import ViewCursor
from ..domain.aggregates import ArtifactAggregate, artifact_stream_id
from ..domain.artifact import Artifact, new_artifact_id
from ..domain.serialization import required_string
from ..domain.timestamps import utc_now
from ..read_models.view_rows import loads

if TYPE_CHECKING:
    from ..store.service import EventSourcedSessionStore


class StoredBlob(Protocol):
    """What an artifact store reports about a blob it wrote (``ArtifactRef``)."""

    @property
    def key(self) -> str: ...

    @property
    def byte_size(self) -> int: ...

    @property
    def checksum_sha256(self) -> str: ...

    @property
    def content_type(self) -> str | None: ...

    @property
    def storage_backend(self) -> str: ...

    @property
    def storage_ref(self) -> str: ...

    @property
    def metadata(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class ArtifactStats:
    count: int
    total_bytes: int


class ArtifactRegistry:
    def __init__(self, store: EventSourcedSessionStore) -> None:
        self._store = store

    # writes ---------------------------------------------------------------------------

    def register(
        self,
        *,
        key: str,
        byte_size: int,
        checksum_sha256: str,
        storage_backend: str,
        storage_ref: str,
        session_id: str | None = None,
        run_id: str | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Artifact:
        """Record a blob's metadata (``validation_error`` when a required field is
        missing). Registering an existing key revises its entry and keeps its id."""
        artifact = Artifact(
            id=new_artifact_id(),
            key=required_string(key, "key"),
            byte_size=byte_size,
            checksum_sha256=checksum_sha256,
            storage_backend=storage_backend,
            storage_ref=storage_ref,
            session_id=session_id,
            run_id=run_id,
            content_type=content_type,
            metadata=metadata if metadata is not None else {},  # type: ignore[arg-type]
        )

        def change(aggregate: ArtifactAggregate | None) -> ArtifactAggregate:
            if aggregate is None:
                return ArtifactAggregate.start(artifact)
            aggregate.register_again(artifact)
            return aggregate

        saved: ArtifactAggregate = self._store.save_aggregate(
            artifact_stream_id(artifact.key), change, operation="register_artifact"
        )
        return saved.record

    def register_blob(
        self, blob: StoredBlob, *, session_id: str | None = None, run_id: str | None = None
    ) -> Artifact:
        """Register what an artifact store's ``put`` returned: size and checksum come
        from the store that wrote the bytes, never from the caller."""
        return self.register(
            key=blob.key,
            byte_size=blob.byte_size,
            checksum_sha256=blob.checksum_sha256,
            storage_backend=blob.storage_backend,
            storage_ref=blob.storage_ref,
            session_id=session_id,
            run_id=run_id,
            content_type=blob.content_type,
            metadata=blob.metadata,
        )

    def soft_delete(self, key: str) -> None:
        """Hide the entry from ``get_by_key``, lists and stats; a missing key is fine."""
        self._change(key, lambda a: a.soft_delete(utc_now()))

    def forget(self, key: str) -> None:
        """Remove the entry from the registry (orphan clean-up); a missing key is fine."""
        self._change(key, lambda a: a.forget())

    def _change(self, key: str, act: Any) -> None:
        def change(aggregate: ArtifactAggregate | None) -> ArtifactAggregate | None:
            if aggregate is not None:
                act(aggregate)
            return aggregate

        self._store.save_aggregate(artifact_stream_id(key), change, operation="artifact_registry")

    # reads ----------------------------------------------------------------------------

    def _rows(self, where: str, params: tuple[Any, ...]) -> list[Artifact]:
        engine = self._store.projections
        engine.catch_up("artifacts")
        with engine.views.transaction(commit=False) as view:
            rows = view.execute(
                f"SELECT record FROM view_artifacts WHERE forgotten = 0 AND {where} "
                "ORDER BY created_us, key",
                params,
            ).fetchall()
        return [Artifact.from_dict(loads(r["record"])) for r in rows]

    def get_by_key(self, key: str) -> Artifact | None:
        found = self._rows("key = ? AND deleted_us IS NULL", (key,))
        return found[0] if found else None

    def list_by_session(self, session_id: str, *, include_deleted: bool = False) -> list[Artifact]:
        live = "" if include_deleted else " AND deleted_us IS NULL"
        return self._rows(f"session_id = ?{live}", (session_id,))

    def stats(self, *, session_id: str | None = None) -> ArtifactStats:
        where, params = ("session_id = ?", (session_id,)) if session_id else ("1 = 1", ())
        engine = self._store.projections
        engine.catch_up("artifacts")
        with engine.views.transaction(commit=False) as view:
            row = view.execute(
                "SELECT COUNT(*) AS n, COALESCE(SUM(byte_size), 0) AS total FROM view_artifacts "
                f"WHERE forgotten = 0 AND deleted_us IS NULL AND {where}",
                params,
            ).fetchone()
        return ArtifactStats(count=int(row["n"]), total_bytes=int(row["total"]))

    def orphans(self, *, limit: int | None = None) -> list[Artifact]:
        """Entries whose session no longer exists (spec: rows with a non-null session
        id and no session row)."""
        engine = self._store.projections
        engine.catch_up("artifacts")
        engine.catch_up("sessions")
        statement = (
            "SELECT record FROM view_artifacts a WHERE a.forgotten = 0 "
            "AND a.session_id IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM view_sessions s WHERE s.session_id = a.session_id) "
            "ORDER BY a.created_us, a.key"
        )
        params: tuple[Any, ...] = ()
        if limit is not None:
            statement += " LIMIT ?"
            params = (limit,)
        with engine.views.transaction(commit=False) as view:
            rows = ViewCursor.fetchall(view.execute(statement, params))
        return [Artifact.from_dict(loads(r["record"])) for r in rows]
