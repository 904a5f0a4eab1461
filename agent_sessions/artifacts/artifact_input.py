"""What every artifact store accepts: the key rules and the data forms of ``put``.

The rules live here, once, so that moving artifacts from one backend to another never
changes which keys and inputs are accepted.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from ..domain.errors import ValidationError
from ..domain.serialization import json_map, optional_string
from .artifact_store import ArtifactData, ArtifactRef, StorageBackend

#: S3's limit on an object key, applied to every backend (the S3 store also counts its
#: prefix) so that a key accepted by the file store is never refused after a move to S3.
MAX_KEY_BYTES = 1024

#: S3's limit on an object's user metadata: the UTF-8 bytes of every name and value.
S3_USER_METADATA_BYTES = 2048
#: The longest caller metadata, as the JSON the S3 store sends in a header (non-ASCII
#: escaped, keys sorted): S3's limit less the store's own entries (``sha256`` with 64
#: hex digits, and the name ``artifact-metadata``). Applied to every backend, like the
#: key bound, so that metadata a file store took is never refused after a move to S3.
MAX_METADATA_BYTES = S3_USER_METADATA_BYTES - len("sha256") - 64 - len("artifact-metadata")

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_PRINTABLE_ASCII = re.compile("[\x20-\x7e]+")

#: How much of a file object or a large ``bytes`` value is handled at a time.
CHUNK_SIZE = 1024 * 1024


def key_bytes(key: object, field: str = "key") -> bytes:
    """The key as UTF-8, or ``validation_error``.

    Control characters (Unicode category Cc: U+0000-U+001F, U+007F-U+009F) are refused
    on every backend: NUL ends strings in C APIs, most of the rest cannot be written in
    S3's XML listings (and CR is rewritten by XML parsers), and a newline in a key is a
    caller bug far more often than a name.
    """
    if not isinstance(key, str):
        raise ValidationError(f"artifact {field} must be a string", details={"field": field})
    if not key:
        raise ValidationError(f"artifact {field} is required", details={"field": field})
    if _CONTROL.search(key):
        raise ValidationError(
            f"artifact {field} must not contain control characters", details={"field": field}
        )
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            f"artifact {field} must be valid Unicode (no lone surrogates)", details={"field": field}
        ) from None
    if len(encoded) > MAX_KEY_BYTES:
        raise ValidationError(
            f"artifact {field} is longer than {MAX_KEY_BYTES} bytes in UTF-8",
            details={"field": field, "byte_length": len(encoded)},
        )
    return encoded


def describe(
    content_type: object, metadata: Mapping[str, Any] | None
) -> tuple[str | None, dict[str, Any]]:
    """Checked content type and metadata, refused before any byte is written.

    A content type is printable ASCII, as media types are (RFC 6838): S3 sends it as an
    HTTP header, which would garble other text and refuse line breaks after the upload.
    Metadata travels as a header too, so it is bounded (:data:`MAX_METADATA_BYTES`):
    larger, S3 (or the HTTP server before it) refused it after the upload began.
    """
    checked = optional_string(content_type, "content_type")
    if checked is not None and not _PRINTABLE_ASCII.fullmatch(checked):
        raise ValidationError(
            "content_type must be printable ASCII, such as text/plain",
            details={"field": "content_type"},
        )
    described = json_map(metadata, "metadata")
    size = len(json.dumps(described, ensure_ascii=True, sort_keys=True)) if described else 0
    if size > MAX_METADATA_BYTES:
        raise ValidationError(
            f"metadata is larger than {MAX_METADATA_BYTES} bytes as JSON",
            details={"field": "metadata", "max_bytes": MAX_METADATA_BYTES, "byte_length": size},
        )
    return checked, described


class MeasuredChunks:
    """The chunks of ``put`` data, counted and hashed as they pass.

    Size and SHA-256 are known only once the last chunk went by, so a backend writes the
    chunks first and reads ``byte_size`` and ``checksum_sha256`` after.
    """

    def __init__(self, data: ArtifactData) -> None:
        self._chunks = _chunks_of(data)
        self._digest = hashlib.sha256()
        self.byte_size = 0

    def __iter__(self) -> Iterator[bytes | bytearray | memoryview]:
        return self

    def __next__(self) -> bytes | bytearray | memoryview:
        chunk = next(self._chunks)
        self._digest.update(chunk)
        self.byte_size += len(chunk)
        return chunk

    @property
    def checksum_sha256(self) -> str:
        return self._digest.hexdigest()


class Upload:
    """One ``put``'s input: content type and metadata checked before any byte is
    written, the data measured as the backend writes it, and the reference that ``put``
    returns once it has."""

    def __init__(
        self,
        key: str,
        data: ArtifactData,
        content_type: object,
        metadata: Mapping[str, Any] | None,
    ) -> None:
        self.key = key
        self.content_type, self.metadata = describe(content_type, metadata)
        self.chunks = MeasuredChunks(data)

    def ref(self, storage_backend: StorageBackend, storage_ref: str) -> ArtifactRef:
        """What was written, once the last chunk went by."""
        return ArtifactRef(
            key=self.key,
            byte_size=self.chunks.byte_size,
            checksum_sha256=self.chunks.checksum_sha256,
            content_type=self.content_type,
            storage_backend=storage_backend,
            storage_ref=storage_ref,
            metadata=self.metadata,
        )


def _chunks_of(data: ArtifactData) -> Iterator[bytes | bytearray | memoryview]:
    # str is iterable too; without this check each character would be refused one by
    # one, with a message about chunks instead of about the text.
    if isinstance(data, str):
        raise _not_binary(data)
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data).cast("B")
        return (view[start : start + CHUNK_SIZE] for start in range(0, len(view), CHUNK_SIZE))
    if hasattr(data, "read"):
        return _file_chunks(data)
    if hasattr(data, "__iter__"):
        return _checked_chunks(iter(data))
    raise _not_binary(data)


def _file_chunks(file: Any) -> Iterator[bytes | bytearray | memoryview]:
    while chunk := file.read(CHUNK_SIZE):
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise _not_binary(chunk, "a file object opened in binary mode ('rb')")
        yield chunk


def _checked_chunks(chunks: Iterator[Any]) -> Iterator[bytes | bytearray | memoryview]:
    for chunk in chunks:
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise _not_binary(chunk, "chunks of bytes")
        yield memoryview(chunk).cast("B") if isinstance(chunk, memoryview) else chunk


def _not_binary(value: object, expected: str = "bytes") -> ValidationError:
    return ValidationError(
        f"artifact data must be bytes, an iterable of byte chunks or a binary file object; "
        f"got {type(value).__name__} where {expected} were expected",
        details={"field": "data", "type": type(value).__name__},
    )
