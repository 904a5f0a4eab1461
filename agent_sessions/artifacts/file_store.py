"""``FileArtifactStore``: artifacts as plain files in one flat directory.

Each key is two files in ``root``:

* ``<prefix>_<sha256(key) as 64 hex>``: exactly the bytes (``cat`` works); ``prefix`` is
  the key's first 32 UTF-8 bytes with every byte outside ``[A-Za-z0-9_-]`` replaced by
  ``_`` (so a directory listing shows which key a file holds);
* ``<name>.meta.json``: key, size, SHA-256, content type and metadata. Its presence is
  what makes the key exist.

The name keeps the whole hash, not a 16-hex-digit (64-bit) prefix: keys can come
from tool output, a 64-bit collision for a chosen prefix costs about 2**32 hashes (minutes
on one core), and a collision would silently overwrite another key's bytes. The name
stays at most 97 characters, far below the usual 255-byte limit.

Writes are atomic: both files are written under random hidden temporary names in
``root`` and fsynced, then renamed into place. The two renames of one ``put`` (and the
two unlinks of one ``delete``) happen under an exclusive lock on ``root/.lock``, and
readers take it shared while they read the sidecar and open the data, so concurrent
writers of one key never pair one writer's bytes with another's checksum. The lock is
held for renames and opens only, never while bytes are copied.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO, Literal

from ..domain.errors import NotFoundError, StorageError, ValidationError
from .artifact_input import Upload, key_bytes
from .artifact_store import ArtifactData, ArtifactRef
from .verified_stream import VerifiedStream, buffered

PREFIX_BYTES = 32
SIDECAR_SUFFIX = ".meta.json"
LOCK_NAME = ".lock"
_UNSAFE = re.compile(rb"[^A-Za-z0-9_-]")


def file_name(key: str) -> str:
    """The data file's name for ``key`` (``validation_error`` for keys no backend takes).

    Every valid key maps to one flat name of ``[A-Za-z0-9_-]`` characters, so ``../``,
    absolute paths and drive letters cannot leave ``root``; names never start with a dot,
    so they never meet the temporary files or the lock.
    """
    encoded = key_bytes(key)
    prefix = _UNSAFE.sub(b"_", encoded[:PREFIX_BYTES]).decode("ascii")
    return f"{prefix}_{hashlib.sha256(encoded).hexdigest()}"


class FileArtifactStore:
    """Artifacts under ``root`` (created with its parents; ``~`` is expanded)."""

    storage_backend: Literal["file"] = "file"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        if root is None or not os.fspath(root):
            raise ValidationError("root directory is required", details={"field": "root"})
        path = Path(root).expanduser()
        try:
            path.mkdir(parents=True, exist_ok=True)
            self.root = path.resolve()
            # Created now so that a read-only deployment can still take the shared lock.
            os.close(os.open(self.root / LOCK_NAME, os.O_RDONLY | os.O_CREAT, 0o666))
        except OSError as exc:
            raise StorageError(
                f"Failed to create artifact root {path}: {exc}",
                details={"root": str(path), "cause": f"{type(exc).__name__}: {exc}"},
            ) from exc
        self._lock_path = self.root / LOCK_NAME

    def __repr__(self) -> str:
        return f"FileArtifactStore({str(self.root)!r})"

    def put(
        self,
        key: str,
        data: ArtifactData,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> ArtifactRef:
        name = file_name(key)
        upload = Upload(key, data, content_type, metadata)
        temporaries: list[Path] = []
        try:
            data_temp = self._write_temporary(name, upload.chunks, temporaries)
            sidecar = {
                "format": 1,
                "key": key,
                "byte_size": upload.chunks.byte_size,
                "checksum_sha256": upload.chunks.checksum_sha256,
                "content_type": upload.content_type,
                "metadata": upload.metadata,
            }
            encoded = json.dumps(sidecar, sort_keys=True).encode("ascii")
            sidecar_temp = self._write_temporary(name + SIDECAR_SUFFIX, [encoded], temporaries)
            with _root_lock(self._lock_path, exclusive=True):
                # Bytes before sidecar: a crash between the two leaves a new key absent
                # (no sidecar) and an overwritten key reporting checksum_mismatch, never
                # wrong bytes served as right.
                os.replace(data_temp, self.root / name)
                os.replace(sidecar_temp, self.root / (name + SIDECAR_SUFFIX))
            _fsync_directory(self.root)
        except OSError as exc:
            raise self._failure("write", key, exc) from exc
        finally:
            for temporary in temporaries:
                _remove_quietly(temporary)
        return upload.ref(self.storage_backend, (self.root / name).as_uri())

    def get(self, key: str) -> bytes:
        with self.open(key) as stream:
            return stream.read()

    def open(self, key: str) -> BinaryIO:
        name = file_name(key)
        try:
            with _root_lock(self._lock_path, exclusive=False):
                try:
                    raw_sidecar = (self.root / (name + SIDECAR_SUFFIX)).read_bytes()
                except FileNotFoundError:
                    raise NotFoundError(
                        f"Artifact not found: {key}", details={"key": key}
                    ) from None
                checksum, size = _stored_digest(raw_sidecar, key)
                source = (self.root / name).open("rb", buffering=0)
        except OSError as exc:
            raise self._failure("read", key, exc) from exc
        return buffered(
            VerifiedStream(
                source,
                key=key,
                expected_sha256=checksum,
                expected_size=size,
                source_errors=(OSError,),
                translate=lambda exc: self._failure("read", key, exc),
            )
        )

    def delete(self, key: str) -> None:
        name = file_name(key)
        try:
            with _root_lock(self._lock_path, exclusive=True):
                # Sidecar first: once it is gone the key no longer exists, whatever
                # happens to the bytes after.
                (self.root / (name + SIDECAR_SUFFIX)).unlink(missing_ok=True)
                (self.root / name).unlink(missing_ok=True)
            _fsync_directory(self.root)
        except OSError as exc:
            raise self._failure("delete", key, exc) from exc

    def exists(self, key: str) -> bool:
        name = file_name(key)
        try:
            os.stat(self.root / (name + SIDECAR_SUFFIX))
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._failure("read", key, exc) from exc
        return True

    def _write_temporary(
        self, name: str, chunks: Iterable[bytes | bytearray | memoryview], created: list[Path]
    ) -> Path:
        path = self.root / f".{name}.{secrets.token_hex(8)}.tmp"
        created.append(path)
        # os.open with 0o666 (not mkstemp's 0o600) so the umask decides, as for any file
        # the process writes.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        with open(os.open(path, flags, 0o666), "wb") as file:
            for chunk in chunks:
                file.write(chunk)
            file.flush()
            os.fsync(file.fileno())
        return path

    def _failure(self, operation: str, key: str, exc: Exception) -> StorageError:
        return StorageError(
            f"Failed to {operation} artifact: {key}",
            details={
                "key": key,
                "operation": operation,
                "root": str(self.root),
                "cause": f"{type(exc).__name__}: {exc}",
            },
        )


def _stored_digest(raw_sidecar: bytes, key: str) -> tuple[str, int]:
    try:
        sidecar = json.loads(raw_sidecar)
        checksum, size = sidecar["checksum_sha256"], sidecar["byte_size"]
        if not isinstance(checksum, str) or not isinstance(size, int):
            raise TypeError("checksum_sha256 or byte_size has the wrong type")
    except (ValueError, KeyError, TypeError) as exc:
        raise StorageError(
            f"Artifact metadata is unreadable: {key}",
            details={
                "key": key,
                "reason": "invalid_sidecar",
                "cause": f"{type(exc).__name__}: {exc}",
            },
        ) from exc
    return checksum, size


def _remove_quietly(path: Path) -> None:
    # Clean-up after a failed put must not replace the error that caused it.
    with suppress(OSError):
        path.unlink(missing_ok=True)


if sys.platform == "win32":
    # No flock on Windows: writers of one process are serialised, other processes are not
    # (and os.replace fails there while a reader holds the file open).
    _PROCESS_LOCK = threading.Lock()

    @contextmanager
    def _root_lock(path: Path, *, exclusive: bool) -> Iterator[None]:
        with _PROCESS_LOCK:
            yield

    def _fsync_directory(path: Path) -> None:
        return None

else:
    import fcntl

    @contextmanager
    def _root_lock(path: Path, *, exclusive: bool) -> Iterator[None]:
        # A new descriptor per use: flock conflicts between open file descriptions, so
        # threads of one process exclude each other too.
        descriptor = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(descriptor)

    def _fsync_directory(path: Path) -> None:
        # Makes the renames themselves durable, not only the files' contents.
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
