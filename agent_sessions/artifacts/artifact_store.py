"""The ``ArtifactStore`` port and what ``put`` reports about the bytes it wrote.

Artifact content (patches, files, logs) lives beside the event log, never in it: events
carry a key, and the registry keeps the :class:`ArtifactRef` that ``put`` returned. The
store, not the caller, measures size and SHA-256, because only the code that wrote the
bytes knows what was written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal, Protocol, runtime_checkable

#: What ``put`` accepts: bytes in one piece, an iterable of byte chunks (concatenated),
#: or a binary file object (read in chunks until EOF, never whole).
ArtifactData = bytes | bytearray | memoryview | Iterable[bytes | bytearray | memoryview] | BinaryIO
#: The backends a reference can name.
StorageBackend = Literal["file", "s3"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ArtifactRef:
    """Where a ``put`` left the bytes and what they were: the registry row's facts.

    ``storage_ref`` is ``file:///abs/path`` or ``s3://bucket/objectkey``; it names the
    key's location, which later ``put`` calls for the same key overwrite.
    """

    key: str
    byte_size: int
    checksum_sha256: str
    content_type: str | None
    storage_backend: StorageBackend
    storage_ref: str
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)


@runtime_checkable
class ArtifactStore(Protocol):
    """Bytes by opaque string key. ``put`` overwrites; ``delete`` of a missing key is fine.

    Reads verify the stored SHA-256: ``get`` before returning, ``open`` when the stream
    reaches the stored size or its end, so a caller that stops early reads unverified bytes.
    Failures are ``not_found`` (missing key), ``validation_error`` (bad key or data) or
    ``storage_error`` (the backend failed, or the bytes do not match their checksum).
    """

    def put(
        self,
        key: str,
        data: ArtifactData,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> ArtifactRef: ...

    def get(self, key: str) -> bytes: ...

    def open(self, key: str) -> BinaryIO: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...
