"""A read stream that checks the bytes against the SHA-256 stored when they were written.

Both backends hand out this stream from ``open`` and build ``get`` on it, so corruption
(a flipped bit on disk, an object replaced behind the store's back) is reported the same
way everywhere: ``storage_error`` with ``details["reason"] == "checksum_mismatch"``.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO, Protocol

from ..domain.errors import AgentSessionsError, StorageError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

#: Reads larger than this are split, so that ``read()`` of a large artifact holds the
#: result and one chunk, not a list of many small pieces.
READ_CHUNK = 1024 * 1024


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...

    def close(self) -> None: ...


class VerifiedStream(io.RawIOBase):
    """Hashes what passes and compares once the stored size is reached or the source ends.

    Checking at the stored size, not only at EOF, catches the caller who reads exactly
    ``byte_size`` bytes and never asks for more. ``expected_sha256=None`` (an object
    written by another tool) passes the bytes through unverified.
    """

    def __init__(
        self,
        source: Readable,
        *,
        key: str,
        expected_sha256: str | None,
        expected_size: int | None,
        source_errors: tuple[type[Exception], ...],
        translate: Callable[[Exception], AgentSessionsError],
    ) -> None:
        super().__init__()
        self._source = source
        self._key = key
        self._expected_sha256 = expected_sha256
        self._expected_size = expected_size
        self._source_errors = source_errors
        self._translate = translate
        self._digest = hashlib.sha256()
        self._size = 0
        self._verified = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        target = memoryview(buffer).cast("B")
        try:
            data = self._source.read(len(target))
        except self._source_errors as exc:
            raise self._translate(exc) from exc
        count = len(data)
        target[:count] = data
        self._digest.update(data)
        self._size += count
        if count == 0 or self._size == self._expected_size or self._verified:
            self._verify()
        return count

    def readall(self) -> bytes:
        parts = []
        while chunk := self.read(READ_CHUNK):
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        if not self.closed:
            try:
                self._source.close()
            finally:
                super().close()

    def _verify(self) -> None:
        if self._expected_sha256 is None:
            return
        actual = self._digest.hexdigest()
        if actual != self._expected_sha256 or (
            self._expected_size is not None and self._size != self._expected_size
        ):
            raise StorageError(
                f"Artifact content does not match its checksum: {self._key}",
                details={
                    "key": self._key,
                    "reason": "checksum_mismatch",
                    "expected_sha256": self._expected_sha256,
                    "actual_sha256": actual,
                    "expected_size": self._expected_size,
                    "actual_size": self._size,
                },
            )
        self._verified = True


def buffered(stream: VerifiedStream) -> BinaryIO:
    """The stream with ``readline``, ``peek`` and efficient small reads on top."""
    return io.BufferedReader(stream, buffer_size=io.DEFAULT_BUFFER_SIZE)
