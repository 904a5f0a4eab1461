"""The artifact registry: metadata of stored blobs, as events, served by a read model.

Each key is one stream (``artifact:<key>``), which is what keeps keys unique across
processes; registering a key again revises its entry (the blob was overwritten).
Reads go through the ``artifacts`` read model, caught up first (read-your-writes).
Their arguments are checked first, as every query's are (``query_input.py``): a key or
session id that no backend can bind is ``validation_error`` naming it, never a driver
error (a list bound as a key) or an overflow (a limit beyond 64 bits).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ..domain.aggregates import ArtifactAggregate, artifact_stream_id
from ..domain.artifact import Artifact, new_artifact_id
from ..domain.checks import optional_int
from ..domain.serialization import required_string
from ..domain.timestamps import utc_now
from ..ports.aggregates import AggregateSaver
from ..ports.views import ViewCursor
from ..read_models.catalog import ReadModels
from . import query_input as check

_T = TypeVar("_T")


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
    """Writes go to the artifact aggregates through ``aggregates`` (the store); reads
    come from ``read_models.artifacts``."""

    def __init__(self, aggregates: AggregateSaver, read_models: ReadModels) -> None:
        self._aggregates = aggregates
        self._read_models = read_models

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

        saved: ArtifactAggregate = self._aggregates.save_aggregate(
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

    def _change(self, key: str, act: Callable[[ArtifactAggregate], None]) -> None:
        key = check.identifier(key, "key")

        def change(aggregate: ArtifactAggregate | None) -> ArtifactAggregate | None:
            if aggregate is not None:
                act(aggregate)
            return aggregate

        self._aggregates.save_aggregate(
            artifact_stream_id(key), change, operation="artifact_registry"
        )

    # reads ----------------------------------------------------------------------------

    def get_by_key(self, key: str) -> Artifact | None:
        key = check.identifier(key, "key")
        view = self._read_models.artifacts
        return self._read(lambda cursor: view.live(cursor, key))

    def list_by_session(self, session_id: str, *, include_deleted: bool = False) -> list[Artifact]:
        session_id = check.identifier(session_id, "session_id")
        include_deleted = check.flag(include_deleted, "include_deleted")
        view = self._read_models.artifacts
        return self._read(
            lambda cursor: view.of_session(cursor, session_id, include_deleted=include_deleted)
        )

    def stats(self, *, session_id: str | None = None) -> ArtifactStats:
        session_id = check.optional_text(session_id, "session_id")
        view = self._read_models.artifacts
        # An empty session id, like none, means the whole registry.
        count, total = self._read(lambda cursor: view.stats(cursor, session_id or None))
        return ArtifactStats(count=count, total_bytes=total)

    def orphans(self, *, limit: int | None = None) -> list[Artifact]:
        """Entries whose session no longer exists (rows with a session id and no
        session row)."""
        limit = optional_int(limit, "limit", minimum=1)
        view = self._read_models.artifacts
        return self._read(lambda cursor: view.orphans(cursor, limit), also=("sessions",))

    def _read(self, work: Callable[[ViewCursor], _T], *, also: tuple[str, ...] = ()) -> _T:
        return self._read_models.read(
            work, catch_up=("artifacts", *also), operation="artifact_registry"
        )
