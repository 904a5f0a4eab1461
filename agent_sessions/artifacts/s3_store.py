"""``S3ArtifactStore``: artifacts as objects in an S3 bucket, on boto3.

The object key is ``prefix + key``, plain concatenation with no separator added (give the
prefix its trailing ``/``). Each object carries its SHA-256 as user metadata
(``x-amz-meta-sha256``), the caller's metadata as one JSON value
(``x-amz-meta-artifact-metadata``, so that keys keep their case and values any JSON type)
and ``ContentType``.

Data up to ``multipart_threshold`` bytes goes in one ``PutObject`` with the checksum.
Larger data is streamed in parts of ``part_size`` bytes, so memory holds about one part,
and the checksum is known only after the last one. User metadata cannot be set when a
multipart upload completes, so the parts go to a temporary object
``prefix + ".uploads/<random hex>"``, which is then copied to the real key with its
metadata (``CopyObject``, ``MetadataDirective=REPLACE``) and deleted. The real key
therefore never holds bytes without their checksum, and concurrent writers of one key
each copy their own bytes with their own checksum (last copy wins). A single
``CopyObject`` is limited to 5 GiB, hence :attr:`S3ArtifactStore.max_object_size`. A
failure aborts the multipart upload and deletes the temporary object; a crash, or a
failure of those clean-up requests themselves, can leave either behind, which a bucket
lifecycle rule on ``<prefix>.uploads/`` (and on incomplete multipart uploads) cleans up.

boto3 is optional: this module imports without it, and constructing the store raises
``dependency_not_available`` naming the ``s3`` extra.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import closing, suppress
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

from ..domain.checks import checked_int
from ..domain.errors import (
    AgentSessionsError,
    DependencyNotAvailable,
    ErrorCode,
    NotFoundError,
    StorageError,
    ValidationError,
)
from .artifact_input import MAX_KEY_BYTES, MeasuredChunks, Upload, key_bytes
from .artifact_store import ArtifactData, ArtifactRef
from .verified_stream import VerifiedStream, buffered

MIB = 1024 * 1024
#: S3 refuses parts below 5 MiB, except the last.
MIN_PART_SIZE = 5 * MIB
DEFAULT_MULTIPART_THRESHOLD = 8 * MIB
DEFAULT_PART_SIZE = 8 * MIB
#: Attempts per request in all, first one included, in botocore's "standard" retry mode
#: (its default is 3; an upload part lost to a throttling burst costs a whole ``put``).
#: A ``config`` passed by the caller replaces this.
TOTAL_MAX_ATTEMPTS = 5

CHECKSUM_META = "sha256"
METADATA_META = "artifact-metadata"
UPLOADS_PREFIX = ".uploads/"

#: S3 error codes that mean "no such object" (a HEAD answer has only the status).
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


@dataclass(frozen=True)
class _Boto:
    """boto3 and the botocore names the store uses, imported when the store is built."""

    boto3: Any
    config: Any
    client_error: type[Exception]
    botocore_error: type[Exception]
    connection_error: type[Exception]
    read_timeout: type[Exception]


def _import_boto() -> _Boto:
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError
        from botocore.exceptions import ConnectionError as BotoConnectionError
    except ImportError as exc:
        raise DependencyNotAvailable(
            "S3 artifact storage needs the s3 extra: pip install 'agent-sessions[s3]'",
            details={
                "extra": "s3",
                "dependency": "boto3",
                "missing": exc.name or "boto3",
                "module": "S3ArtifactStore",
            },
        ) from exc
    return _Boto(boto3, Config, ClientError, BotoCoreError, BotoConnectionError, ReadTimeoutError)


class S3ArtifactStore:
    """Artifacts in ``bucket`` under ``prefix``.

    ``client`` is any boto3 S3 client; without one, a client is built on first use from
    ``boto3_options`` (``endpoint_url`` for S3-compatible servers, ``region_name``,
    credentials, ``config``), with credentials from the standard AWS chain unless given.
    """

    storage_backend: Literal["s3"] = "s3"
    #: The largest artifact a multipart ``put`` accepts: what one ``CopyObject`` can copy.
    max_object_size = 5 * 1024 * MIB

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: Any = None,
        *,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        part_size: int = DEFAULT_PART_SIZE,
        **boto3_options: Any,
    ) -> None:
        self._boto = _import_boto()
        if not isinstance(bucket, str) or not bucket:
            raise ValidationError("bucket is required", details={"field": "bucket"})
        self._prefix_length = _prefix_length(prefix)
        checked_int(multipart_threshold, "multipart_threshold", minimum=1)
        checked_int(part_size, "part_size", minimum=MIN_PART_SIZE)
        self.bucket = bucket
        self.prefix = prefix
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self._client = client
        self._options = boto3_options
        self._client_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3ArtifactStore(bucket={self.bucket!r}, prefix={self.prefix!r})"

    @property
    def client(self) -> Any:
        """The boto3 client, built on first use (building reads AWS config files)."""
        with self._client_lock:
            if self._client is None:
                options = dict(self._options)
                config = self._boto.config(
                    retries={"mode": "standard", "total_max_attempts": TOTAL_MAX_ATTEMPTS}
                )
                if options.get("config") is not None:
                    config = config.merge(options["config"])
                options["config"] = config
                # A session of our own: boto3's default session is not thread-safe.
                self._client = self._boto.boto3.session.Session().client("s3", **options)
            return self._client

    # the ArtifactStore port ---------------------------------------------------------

    def put(
        self,
        key: str,
        data: ArtifactData,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> ArtifactRef:
        object_key = self._object_key(key)
        upload = Upload(key, data, content_type, metadata)
        chunks = upload.chunks
        stream = iter(chunks)
        head = bytearray()
        client = self.client
        # One byte past the threshold tells "exactly the threshold" from "more".
        if _fill(head, stream, self.multipart_threshold + 1):
            self._call(
                "put",
                key,
                client.put_object,
                Bucket=self.bucket,
                Key=object_key,
                Body=bytes(head),
                Metadata=_object_metadata(chunks.checksum_sha256, upload.metadata),
                **_content_type_argument(upload.content_type),
            )
        else:
            temporary = self._upload_parts(key, head, stream, chunks)
            try:
                self._call(
                    "put",
                    key,
                    client.copy_object,
                    Bucket=self.bucket,
                    Key=object_key,
                    CopySource={"Bucket": self.bucket, "Key": temporary},
                    MetadataDirective="REPLACE",
                    Metadata=_object_metadata(chunks.checksum_sha256, upload.metadata),
                    **_content_type_argument(upload.content_type),
                )
            finally:
                self._quietly(client.delete_object, Bucket=self.bucket, Key=temporary)
        return upload.ref(self.storage_backend, f"s3://{self.bucket}/{object_key}")

    def get(self, key: str) -> bytes:
        with self.open(key) as stream:
            return stream.read()

    def open(self, key: str) -> BinaryIO:
        object_key = self._object_key(key)
        response = self._call(
            "get", key, self.client.get_object, Bucket=self.bucket, Key=object_key
        )
        boto = self._boto
        return buffered(
            VerifiedStream(
                response["Body"],
                key=key,
                # None for objects written by other tools: returned unverified.
                expected_sha256=response.get("Metadata", {}).get(CHECKSUM_META),
                expected_size=response.get("ContentLength"),
                source_errors=(boto.botocore_error, boto.client_error, OSError),
                translate=lambda exc: self._translate(exc, "get", key),
            )
        )

    def delete(self, key: str) -> None:
        # S3 answers 204 for a missing key too, which makes delete idempotent.
        object_key = self._object_key(key)
        self._call("delete", key, self.client.delete_object, Bucket=self.bucket, Key=object_key)

    def exists(self, key: str) -> bool:
        # A ranged GET, not HEAD: a HEAD answer has no body, so a missing bucket and a
        # missing key both read "404", and a misconfigured bucket would look empty.
        object_key = self._object_key(key)
        try:
            response = self._call(
                "get",
                key,
                self.client.get_object,
                Bucket=self.bucket,
                Key=object_key,
                Range="bytes=0-0",
            )
        except NotFoundError:
            return False
        except StorageError as error:
            if error.details.get("s3_error_code") == "InvalidRange":  # an empty object
                return True
            raise
        with closing(response["Body"]) as body:
            body.read()  # one byte; reading it lets the connection be reused
        return True

    # multipart ------------------------------------------------------------------------

    def _upload_parts(
        self,
        key: str,
        head: bytearray,
        stream: Iterator[bytes | bytearray | memoryview],
        chunks: MeasuredChunks,
    ) -> str:
        """Upload ``head`` and the rest of ``stream`` as a temporary object; its key."""
        client = self.client
        temporary = f"{self.prefix}{UPLOADS_PREFIX}{uuid.uuid4().hex}"
        created = self._call(
            "put", key, client.create_multipart_upload, Bucket=self.bucket, Key=temporary
        )
        location = {"Bucket": self.bucket, "Key": temporary, "UploadId": created["UploadId"]}
        try:
            parts: list[dict[str, Any]] = []
            buffer, finished = head, False
            while True:
                finished = finished or _fill(buffer, stream, self.part_size)
                if chunks.byte_size > self.max_object_size:
                    raise ValidationError(
                        f"artifact is larger than {self.max_object_size} bytes, the most "
                        "S3ArtifactStore can copy into place in one request",
                        details={"field": "data", "max_object_size": self.max_object_size},
                    )
                if not buffer:
                    break
                with memoryview(buffer) as view:
                    body = bytes(view[: self.part_size])
                del buffer[: self.part_size]
                number = len(parts) + 1
                uploaded = self._call(
                    "put", key, client.upload_part, Body=body, PartNumber=number, **location
                )
                parts.append({"ETag": uploaded["ETag"], "PartNumber": number})
            self._call(
                "put",
                key,
                client.complete_multipart_upload,
                MultipartUpload={"Parts": parts},
                **location,
            )
        except BaseException:
            # Also after the caller's own errors (a failing generator): parts left
            # behind are billed until aborted.
            self._quietly(client.abort_multipart_upload, **location)
            raise
        return temporary

    # S3 calls and their errors -----------------------------------------------------

    def _object_key(self, key: str) -> str:
        length = len(key_bytes(key)) + self._prefix_length
        if length > MAX_KEY_BYTES:
            raise ValidationError(
                f"prefix + key is longer than {MAX_KEY_BYTES} bytes, S3's limit",
                details={"field": "key", "byte_length": length},
            )
        return self.prefix + key

    def _call(self, operation: str, key: str, method: Any, **arguments: Any) -> Any:
        try:
            return method(**arguments)
        except (self._boto.client_error, self._boto.botocore_error) as exc:
            error = self._translate(exc, operation, key)
            error.details["s3_operation"] = method.__name__
            raise error from exc

    def _quietly(self, method: Any, **arguments: Any) -> None:
        # Clean-up after a failure must not replace the error that caused it.
        with suppress(self._boto.client_error, self._boto.botocore_error):
            method(**arguments)

    def _translate(self, exc: Exception, operation: str, key: str) -> AgentSessionsError:
        details: dict[str, Any] = {
            "key": key,
            "bucket": self.bucket,
            "object_key": self.prefix + key,
            "operation": operation,
            "cause": f"{type(exc).__name__}: {exc}",
        }
        if isinstance(exc, self._boto.client_error):
            error = getattr(exc, "response", {}).get("Error", {})
            code = details["s3_error_code"] = str(error.get("Code", ""))
            if code in _MISSING_CODES and operation != "put":
                return NotFoundError(f"Artifact not found: {key}", details=details)
            message = str(error.get("Message", "")) or str(exc)
            return StorageError(
                f"Failed to {operation} S3 object: {code}: {message}", details=details
            )
        if isinstance(exc, self._boto.read_timeout):
            # After botocore's own retries: the server took the request but did not
            # answer in time. The code is retryable, as for a PostgreSQL timeout, and
            # repeating a put is safe: it writes the same bytes again.
            return StorageError(
                f"Failed to {operation} S3 object: no answer within the read timeout: {exc}",
                code=ErrorCode.TIMEOUT,
                details=details,
            )
        if isinstance(exc, self._boto.connection_error):
            # After botocore's own retries: the endpoint is unreachable, which callers
            # retry differently from a refused request (as for PostgreSQL).
            return StorageError(
                f"Failed to {operation} S3 object: cannot reach the endpoint: {exc}",
                code=ErrorCode.STORAGE_CONNECTION_FAILED,
                details=details,
            )
        return StorageError(f"Failed to {operation} S3 object: {exc}", details=details)


def _fill(buffer: bytearray, stream: Iterator[bytes | bytearray | memoryview], size: int) -> bool:
    """Append chunks until ``buffer`` holds ``size`` bytes; ``True`` once ``stream`` ended."""
    while len(buffer) < size:
        try:
            buffer += next(stream)
        except StopIteration:
            return True
    return False


def _object_metadata(checksum: str, metadata: dict[str, Any]) -> dict[str, str]:
    stored = {CHECKSUM_META: checksum}
    if metadata:
        # ensure_ascii: user metadata travels as HTTP headers, which S3 keeps ASCII.
        stored[METADATA_META] = json.dumps(metadata, ensure_ascii=True, sort_keys=True)
    return stored


def _content_type_argument(content_type: str | None) -> dict[str, str]:
    # Without ContentType S3 stores binary/octet-stream; the ref keeps the caller's None.
    return {} if content_type is None else {"ContentType": content_type}


def _prefix_length(prefix: object) -> int:
    """The prefix's length in UTF-8; the prefix follows the key rules, but may be empty."""
    if not isinstance(prefix, str):
        raise ValidationError("prefix must be a string", details={"field": "prefix"})
    return len(key_bytes(prefix, "prefix")) if prefix else 0
