"""S3ArtifactStore against a real S3 endpoint over HTTP (moto's server mode).

The artifact contract runs here too; the rest is what only S3 has: object keys made of
prefix + key, multipart uploads and their clean-up, object metadata, S3 error codes.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import artifact_workers
import pytest
from botocore.config import Config
from s3_server import CREDENTIALS, free_port, s3_client, s3_endpoint

from agent_sessions import AgentSessionsError
from agent_sessions.artifacts import ArtifactStore, S3ArtifactStore
from agent_sessions.artifacts.artifact_input import MAX_METADATA_BYTES
from agent_sessions.artifacts.s3_store import CHECKSUM_META, METADATA_META
from agent_sessions.testing.artifact_contract import ArtifactStoreContract

__all__ = ["s3_endpoint"]  # the fixture, imported so that pytest finds it here

MIB = 1024 * 1024


@pytest.fixture
def raw(s3_endpoint: str) -> Any:
    return s3_client(s3_endpoint)


@pytest.fixture
def bucket(raw: Any) -> str:
    name = f"artifacts-{uuid.uuid4().hex[:12]}"
    raw.create_bucket(Bucket=name)
    return name


def new_store(endpoint: str, bucket: str, prefix: str = "asm/", **options: Any) -> S3ArtifactStore:
    return S3ArtifactStore(bucket, prefix, endpoint_url=endpoint, **CREDENTIALS, **options)


def object_keys(raw: Any, bucket: str) -> list[str]:
    listed = raw.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def upload_part_counter(client: Any) -> list[int]:
    """The sizes of the UploadPart requests `client` sends, in order."""
    calls: list[int] = []
    client.meta.events.register(
        "provide-client-params.s3.UploadPart", lambda params, **_: calls.append(len(params["Body"]))
    )
    return calls


class TestS3ArtifactStore(ArtifactStoreContract):
    @pytest.fixture
    def store(self, s3_endpoint: str, bucket: str) -> S3ArtifactStore:
        return new_store(s3_endpoint, bucket)

    def replace_stored_bytes(self, store: ArtifactStore, key: str, data: bytes) -> None:
        assert isinstance(store, S3ArtifactStore)
        head = store.client.head_object(Bucket=store.bucket, Key=store.prefix + key)
        store.client.put_object(
            Bucket=store.bucket, Key=store.prefix + key, Body=data, Metadata=head["Metadata"]
        )


# object keys ----------------------------------------------------------------------------


def test_object_key_is_prefix_plus_key(s3_endpoint: str, bucket: str, raw: Any) -> None:
    ref = new_store(s3_endpoint, bucket, "asm/artifacts/").put("patch-abc123", b"diff")
    assert object_keys(raw, bucket) == ["asm/artifacts/patch-abc123"]
    assert ref.storage_backend == "s3"
    assert ref.storage_ref == f"s3://{bucket}/asm/artifacts/patch-abc123"


def test_prefix_is_concatenated_as_is(s3_endpoint: str, bucket: str, raw: Any) -> None:
    new_store(s3_endpoint, bucket, "asm").put("key", b"x")
    assert object_keys(raw, bucket) == ["asmkey"]


def test_empty_prefix_is_the_default(s3_endpoint: str, bucket: str, raw: Any) -> None:
    store = S3ArtifactStore(bucket, endpoint_url=s3_endpoint, **CREDENTIALS)
    assert store.put("top/level", b"x").storage_ref == f"s3://{bucket}/top/level"
    assert object_keys(raw, bucket) == ["top/level"]
    assert store.get("top/level") == b"x"


def test_prefix_and_key_together_obey_the_s3_key_limit(s3_endpoint: str, bucket: str) -> None:
    store = new_store(s3_endpoint, bucket, "p" * 24)
    store.put("k" * 1000, b"fits")
    with pytest.raises(AgentSessionsError) as caught:
        store.put("k" * 1001, b"too long")
    assert caught.value.code == "validation_error"


# object metadata ------------------------------------------------------------------------


def test_metadata_up_to_the_bound_fits_s3s_user_metadata(
    s3_endpoint: str, bucket: str, raw: Any
) -> None:
    """The bound is S3's 2 KB of user metadata less the store's own entries. Past it,
    the put is refused before anything is sent (it was a storage_error from the
    server, after the upload began)."""
    assert 2048 - len(CHECKSUM_META) - 64 - len(METADATA_META) == MAX_METADATA_BYTES
    store = new_store(s3_endpoint, bucket)
    fits = {"m": "x" * (MAX_METADATA_BYTES - len('{"m": ""}'))}
    assert store.put("fits", b"x", metadata=fits).metadata == fits
    head = raw.head_object(Bucket=bucket, Key="asm/fits")
    assert sum(len(k) + len(v) for k, v in head["Metadata"].items()) == 2048
    with pytest.raises(AgentSessionsError) as raised:
        store.put("over", b"x", metadata={"m": "x" * 100_000})
    assert raised.value.code == "validation_error"
    assert raised.value.details["field"] == "metadata"
    assert object_keys(raw, bucket) == ["asm/fits"]


def test_content_type_checksum_and_metadata_are_stored_on_the_object(
    s3_endpoint: str, raw: Any, bucket: str
) -> None:
    new_store(s3_endpoint, bucket).put(
        "page", b"<html/>", content_type="text/html", metadata={"Lang": "fr", "é": [1]}
    )
    head = raw.head_object(Bucket=bucket, Key="asm/page")
    assert head["ContentType"] == "text/html"
    assert head["Metadata"]["sha256"] == hashlib.sha256(b"<html/>").hexdigest()
    assert json.loads(head["Metadata"]["artifact-metadata"]) == {"Lang": "fr", "é": [1]}


def test_objects_without_a_checksum_are_read_unverified(
    s3_endpoint: str, raw: Any, bucket: str
) -> None:
    store = new_store(s3_endpoint, bucket)
    raw.put_object(Bucket=bucket, Key="asm/foreign", Body=b"written by another tool")
    assert store.get("foreign") == b"written by another tool"
    assert store.exists("foreign")


# multipart ------------------------------------------------------------------------------


def _generator_input(data: bytes, tmp_path: Path) -> Iterator[bytes]:
    return artifact_workers.in_chunks(data)


def _file_input(data: bytes, tmp_path: Path) -> Any:
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    return path.open("rb")


@pytest.mark.parametrize("as_input", [_generator_input, _file_input], ids=["generator", "file"])
def test_twenty_mib_are_uploaded_in_parts_and_land_with_their_checksum(
    s3_endpoint: str, bucket: str, raw: Any, tmp_path: Path, as_input: Any
) -> None:
    parts = upload_part_counter(raw)
    store = S3ArtifactStore(bucket, "asm/", client=raw)
    data = artifact_workers.payload(20, 20 * MIB)
    source = as_input(data, tmp_path)
    ref = store.put("big", source, content_type="application/octet-stream")
    getattr(source, "close", lambda: None)()
    assert parts == [8 * MIB, 8 * MIB, 4 * MIB]
    assert (ref.byte_size, ref.checksum_sha256) == (len(data), hashlib.sha256(data).hexdigest())
    head = raw.head_object(Bucket=bucket, Key="asm/big")
    assert head["Metadata"]["sha256"] == ref.checksum_sha256
    assert head["ContentType"] == "application/octet-stream"
    assert store.get("big") == data
    # The temporary object and the multipart upload are gone.
    assert object_keys(raw, bucket) == ["asm/big"]
    assert "Uploads" not in raw.list_multipart_uploads(Bucket=bucket)


def test_data_up_to_the_threshold_goes_in_one_request(bucket: str, raw: Any) -> None:
    parts = upload_part_counter(raw)
    store = S3ArtifactStore(bucket, client=raw, multipart_threshold=6 * MIB, part_size=5 * MIB)
    store.put("exactly", artifact_workers.in_chunks(bytes(6 * MIB)))
    assert parts == []
    store.put("one-more", artifact_workers.in_chunks(bytes(6 * MIB + 1)))
    assert parts == [5 * MIB, MIB + 1]
    assert store.get("one-more") == bytes(6 * MIB + 1)


def test_a_failing_source_aborts_the_upload_and_keeps_the_old_object(bucket: str, raw: Any) -> None:
    store = S3ArtifactStore(bucket, "asm/", client=raw, multipart_threshold=MIB, part_size=5 * MIB)
    store.put("k", b"old")

    def failing() -> Iterator[bytes]:
        yield bytes(6 * MIB)  # past the threshold and one part: the upload has begun
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError, match="source broke"):
        store.put("k", failing())
    assert store.get("k") == b"old"
    assert object_keys(raw, bucket) == ["asm/k"]
    assert "Uploads" not in raw.list_multipart_uploads(Bucket=bucket)


def test_artifacts_past_the_copy_limit_are_refused_early(bucket: str, raw: Any) -> None:
    class SmallLimit(S3ArtifactStore):
        max_object_size = 7 * MIB

    parts = upload_part_counter(raw)
    store = SmallLimit(bucket, client=raw, multipart_threshold=MIB, part_size=5 * MIB)
    with pytest.raises(AgentSessionsError) as caught:
        store.put("huge", artifact_workers.in_chunks(bytes(12 * MIB)))
    assert caught.value.code == "validation_error"
    assert len(parts) == 1  # stopped before the part that crossed the limit
    assert object_keys(raw, bucket) == []
    assert "Uploads" not in raw.list_multipart_uploads(Bucket=bucket)


def test_concurrent_multipart_writers_leave_one_whole_object(bucket: str, raw: Any) -> None:
    store = S3ArtifactStore(bucket, client=raw, multipart_threshold=MIB, part_size=5 * MIB)
    payloads = [artifact_workers.payload(seed, 6 * MIB) for seed in range(3)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        refs = list(pool.map(lambda data: store.put("shared", iter([data])), payloads))
    data = store.get("shared")  # verifies against the checksum stored with the object
    assert data in payloads
    assert raw.head_object(Bucket=bucket, Key="shared")["Metadata"]["sha256"] in {
        ref.checksum_sha256 for ref in refs
    }
    assert object_keys(raw, bucket) == ["shared"]


# errors ---------------------------------------------------------------------------------


def test_missing_key_details_carry_the_s3_error_code(s3_endpoint: str, bucket: str) -> None:
    with pytest.raises(AgentSessionsError) as caught:
        new_store(s3_endpoint, bucket).get("absent")
    assert caught.value.code == "not_found"
    assert caught.value.details["s3_error_code"] == "NoSuchKey"
    assert caught.value.details["object_key"] == "asm/absent"


def test_a_missing_bucket_is_storage_error_for_every_operation(s3_endpoint: str) -> None:
    store = new_store(s3_endpoint, f"no-such-bucket-{uuid.uuid4().hex[:8]}")
    operations = (
        lambda: store.put("k", b"x"),
        lambda: store.put("k", bytes(9 * MIB)),
        lambda: store.get("k"),
        lambda: store.delete("k"),
        lambda: store.exists("k"),
    )
    for operation in operations:
        with pytest.raises(AgentSessionsError) as caught:
            operation()
        assert caught.value.code == "storage_error"
        assert caught.value.details["s3_error_code"] == "NoSuchBucket"
        assert "NoSuchBucket" in caught.value.message


def test_an_unreachable_endpoint_is_storage_connection_failed() -> None:
    store = S3ArtifactStore(
        "bucket",
        endpoint_url=f"http://127.0.0.1:{free_port()}",  # a port nothing listens on
        config=Config(retries={"max_attempts": 1}, connect_timeout=2),
        **CREDENTIALS,
    )
    with pytest.raises(AgentSessionsError) as caught:
        store.put("k", b"x")
    assert caught.value.code == "storage_connection_failed"
    assert caught.value.retryable
    assert "EndpointConnectionError" in caught.value.details["cause"]


def test_caller_config_is_merged_over_the_default_retries(s3_endpoint: str, bucket: str) -> None:
    store = new_store(s3_endpoint, bucket, config=Config(connect_timeout=3))
    config = store.client.meta.config
    assert config.connect_timeout == 3
    assert config.retries == {"mode": "standard", "total_max_attempts": 5}


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"bucket": ""}, "bucket"),
        ({"bucket": "b", "prefix": "nul\x00"}, "prefix"),
        ({"bucket": "b", "part_size": 5 * MIB - 1}, "part_size"),
        ({"bucket": "b", "multipart_threshold": 0}, "multipart_threshold"),
    ],
)
def test_bad_settings_are_validation_errors(arguments: dict[str, Any], field: str) -> None:
    with pytest.raises(AgentSessionsError) as caught:
        S3ArtifactStore(**arguments)
    assert caught.value.code == "validation_error"
    assert caught.value.details["field"] == field


def test_the_client_is_built_once_for_concurrent_first_calls(s3_endpoint: str, bucket: str) -> None:
    store = new_store(s3_endpoint, bucket)
    start = threading.Barrier(8)

    def first_client() -> int:
        start.wait()
        return id(store.client)

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert len(set(pool.map(lambda _: first_client(), range(8)))) == 1
