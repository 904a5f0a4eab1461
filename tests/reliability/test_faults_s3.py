"""Faults of S3 under artifact writes: 5xx answers, answers lost after the request was
processed, a slow server, and the server going away in the middle of a multipart upload.

moto (server mode, tests/s3_server.py) has no fault injection, so the store talks to it
through ``S3FaultProxy``; the moto server itself is shared by every S3 test of the run,
so "stopped" is the proxy going away (every connection closed, new ones refused) and
coming back. The raw client goes to moto directly, to look behind the store's back.

What each proves: a fault that retrying can absorb is absorbed (botocore retries each
request; every request the store makes is idempotent: a whole object, one numbered part,
a copy, a delete); one that cannot reaches the caller as a coded error; the artifact key
never holds partial or unverified bytes; the registry has an entry exactly when the blob
is complete, never two; and the same store puts and reads again once the fault ends.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from s3_fault_proxy import Action, S3FaultProxy
from s3_server import CREDENTIALS, s3_client, s3_endpoint
from store_checks import assert_store_sound

from agent_sessions import AgentSessionsError, S3ArtifactStore, Session, open_store
from agent_sessions.composition import Store

__all__ = ["s3_endpoint"]  # the fixture, imported so that pytest finds it here

MIB = 1024 * 1024
#: Parts of the smallest size S3 allows, so a multipart upload stays quick.
PART = 5 * MIB
#: Three parts: 5 MiB, 5 MiB and 1 MiB.
LARGE = 11 * MIB
#: Two attempts per request instead of five, where the test wants the error itself:
#: botocore's back-off between five attempts would take seconds to tens of seconds.
FEW_ATTEMPTS = Config(retries={"mode": "standard", "total_max_attempts": 2})


@pytest.fixture
def raw(s3_endpoint: str) -> Any:
    return s3_client(s3_endpoint)


@pytest.fixture
def bucket(raw: Any) -> str:
    name = f"faults-{uuid.uuid4().hex[:12]}"
    raw.create_bucket(Bucket=name)
    return name


@pytest.fixture
def proxy(s3_endpoint: str) -> Iterator[S3FaultProxy]:
    proxy = S3FaultProxy(s3_endpoint)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def _store(tmp_path: Path, proxy: S3FaultProxy, bucket: str, config: Config | None = None) -> Store:
    options: dict[str, Any] = {"config": config} if config is not None else {}
    blobs = S3ArtifactStore(
        bucket,
        "art/",
        endpoint_url=proxy.url,
        multipart_threshold=MIB,
        part_size=PART,
        **CREDENTIALS,
        **options,
    )
    return open_store("sqlite:///" + str(tmp_path / "store.db"), artifacts=blobs)


def _data(seed: int, size: int) -> bytes:
    return uuid.UUID(int=seed).bytes * (size // 16) + b"x" * (size % 16)


def _objects(raw: Any, bucket: str) -> list[str]:
    listed = raw.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def _assert_stored_once(store: Store, raw: Any, bucket: str, key: str, data: bytes) -> None:
    """The blob is whole and verified, registered once with its size and checksum."""
    assert store.get_artifact(key) == data
    entry = store.registry.get_by_key(key)
    assert entry is not None
    assert entry.byte_size == len(data)
    assert entry.checksum_sha256 == hashlib.sha256(data).hexdigest()
    keys = [a.key for a in store.registry.list_by_session(entry.session_id or "")]
    assert keys.count(key) == 1
    assert "art/" + key in _objects(raw, bucket)


def _assert_absent(store: Store, raw: Any, bucket: str, key: str) -> None:
    assert "art/" + key not in _objects(raw, bucket), "partial bytes under the real key"
    assert store.registry.get_by_key(key) is None, "registered without its blob"


def _session(store: Store) -> str:
    session = Session.new(agent_id="s3-faults")
    store.save_session(session)
    return session.id


def _is_part(method: str, path: str) -> bool:
    return method == "PUT" and "partNumber=" in path


def _is_complete(method: str, path: str) -> bool:
    return method == "POST" and "uploadId=" in path


def _is_put_object(method: str, path: str) -> bool:
    return method == "PUT" and "?" not in path


def test_a_few_5xx_are_retried_transparently(
    tmp_path: Path, proxy: S3FaultProxy, bucket: str, raw: Any
) -> None:
    with _store(tmp_path, proxy, bucket) as store:
        sid = _session(store)
        proxy.inject("503", count=2, match=_is_put_object)
        small = _data(1, 1000)
        store.put_artifact(sid, None, "small", small)
        proxy.inject("503", match=_is_part)
        proxy.inject("503", match=_is_complete)
        large = _data(2, LARGE)
        store.put_artifact(sid, None, "large", large)
        assert proxy.seen("503") == 4
        _assert_stored_once(store, raw, bucket, "small", small)
        _assert_stored_once(store, raw, bucket, "large", large)
        assert _objects(raw, bucket) == ["art/large", "art/small"], "a temporary object left"
        assert raw.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
        assert_store_sound(store)


@pytest.mark.parametrize("where", ["put_object", "part", "complete"])
def test_persistent_5xx_is_coded_leaves_nothing_and_recovers(
    tmp_path: Path, proxy: S3FaultProxy, bucket: str, raw: Any, where: str
) -> None:
    match = {"put_object": _is_put_object, "part": _is_part, "complete": _is_complete}[where]
    data = _data(3, 1000 if where == "put_object" else LARGE)
    with _store(tmp_path, proxy, bucket, FEW_ATTEMPTS) as store:
        sid = _session(store)
        proxy.inject("503", count=1000, match=match)
        with pytest.raises(AgentSessionsError) as caught:
            store.put_artifact(sid, None, "blob", data)
        assert caught.value.code == "storage_error"
        assert caught.value.details["s3_error_code"] == "ServiceUnavailable"
        _assert_absent(store, raw, bucket, "blob")
        # A failed multipart upload is aborted: no parts left to pay for.
        assert raw.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
        proxy.clear()
        store.put_artifact(sid, None, "blob", data)
        _assert_stored_once(store, raw, bucket, "blob", data)
        assert_store_sound(store)


@pytest.mark.parametrize("where", ["put_object", "part", "complete"])
def test_a_lost_answer_is_retried_without_duplicates(
    tmp_path: Path, proxy: S3FaultProxy, bucket: str, raw: Any, where: str
) -> None:
    """moto processed the request but its answer never arrives: botocore sends it again.
    Each request the store makes means the same when repeated (a whole object, one
    numbered part, completing an upload that is already complete), so the put succeeds
    with one blob and one registry entry."""
    match = {"put_object": _is_put_object, "part": _is_part, "complete": _is_complete}[where]
    data = _data(4, 1000 if where == "put_object" else LARGE)
    with _store(tmp_path, proxy, bucket) as store:
        sid = _session(store)
        proxy.inject("drop_after", match=match)
        store.put_artifact(sid, None, "blob", data)
        assert proxy.seen("drop_after") == 1
        _assert_stored_once(store, raw, bucket, "blob", data)
        assert _objects(raw, bucket) == ["art/blob"]
        assert_store_sound(store)


def test_a_slow_server_is_waited_for_and_a_timeout_is_coded(
    tmp_path: Path, proxy: S3FaultProxy, bucket: str, raw: Any
) -> None:
    data = _data(5, 1000)
    with _store(tmp_path, proxy, bucket) as store:
        sid = _session(store)
        proxy.delay = 0.3
        store.put_artifact(sid, None, "slow", data)
        _assert_stored_once(store, raw, bucket, "slow", data)
    impatient = Config(read_timeout=0.2, retries={"mode": "standard", "total_max_attempts": 2})
    with _store(tmp_path, proxy, bucket, impatient) as store:
        proxy.delay = 1.0
        with pytest.raises(AgentSessionsError) as caught:
            store.put_artifact(sid, None, "late", data)
        assert caught.value.code == "timeout"
        assert caught.value.retryable
        # The server did store the bytes (only the answer was late), but nothing was
        # registered: the caller was told it failed, and a retry registers it once.
        assert store.registry.get_by_key("late") is None
        proxy.delay = 0.0
        store.put_artifact(sid, None, "late", data)
        _assert_stored_once(store, raw, bucket, "late", data)
        assert_store_sound(store)


def test_the_server_gone_mid_upload_is_coded_and_recovers(
    tmp_path: Path, proxy: S3FaultProxy, bucket: str, raw: Any
) -> None:
    """The server goes away while the second part of a multipart upload is being read
    from the caller's stream; it comes back after the put failed."""
    data = _data(6, LARGE)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(data), MIB):
            if start == 7 * MIB:
                proxy.stop()  # part 1 is uploaded, part 2 is being filled
            yield data[start : start + MIB]

    with _store(tmp_path, proxy, bucket, FEW_ATTEMPTS) as store:
        sid = _session(store)
        with pytest.raises(AgentSessionsError) as caught:
            store.put_artifact(sid, None, "gone", chunks())
        assert caught.value.code == "storage_connection_failed"
        assert caught.value.retryable
        _assert_absent(store, raw, bucket, "gone")
        proxy.start()
        store.put_artifact(sid, None, "gone", data)
        _assert_stored_once(store, raw, bucket, "gone", data)
        assert_store_sound(store)


def _random_faults(tmp_path: Path, proxy: S3FaultProxy, bucket: str, raw: Any, puts: int) -> None:
    """Puts of small and multipart artifacts, each with a random fault on a random kind
    of request: absorbed by the retries, or a coded error after which the caller puts
    again. Every key ends stored once, verified, with one registry entry."""
    rng = random.Random(puts)
    kinds = [_is_put_object, _is_part, _is_complete, lambda method, path: True]
    actions: list[Action] = ["503", "drop_before", "drop_after"]
    failures: dict[str, int] = {}
    expected: dict[str, bytes] = {}
    with _store(tmp_path, proxy, bucket, FEW_ATTEMPTS) as store:
        sid = _session(store)
        for number in range(puts):
            key = f"k{number % max(1, puts // 2)}"  # half the puts overwrite a key
            data = _data(number, LARGE if rng.random() < 0.15 else rng.randint(0, 5000))
            proxy.inject(rng.choice(actions), count=rng.randint(1, 3), match=rng.choice(kinds))
            while True:
                try:
                    store.put_artifact(sid, None, key, data)
                    break
                except AgentSessionsError as error:
                    failure = error
                assert failure.category == "storage", repr(failure)
                failures[str(failure.code)] = failures.get(str(failure.code), 0) + 1
            proxy.clear()
            expected[key] = data
        faults = sum(1 for _, _, outcome in proxy.log if outcome != "forward")
        for key, data in expected.items():
            _assert_stored_once(store, raw, bucket, key, data)
        # A temporary object or an upload can be left behind only when the clean-up
        # requests themselves fail (the fault hit them too); they are under
        # ``.uploads/``, never under a key, for a bucket lifecycle rule to remove.
        objects = _objects(raw, bucket)
        temporary = [key for key in objects if key.startswith("art/.uploads/")]
        assert sorted(set(objects) - set(temporary)) == sorted(f"art/{k}" for k in expected)
        uploads = raw.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        assert all(u["Key"].startswith("art/.uploads/") for u in uploads)
        print(
            f"\nS3: {puts} puts, {faults} requests faulted, coded failures {failures}; "
            f"left under .uploads/: {len(temporary)} objects, {len(uploads)} uploads"
        )
        assert_store_sound(store)


def test_random_s3_faults_under_puts(
    tmp_path: Path, proxy: S3FaultProxy, bucket: str, raw: Any
) -> None:
    _random_faults(tmp_path, proxy, bucket, raw, puts=8)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_hundreds_of_random_s3_faults_under_puts(
    tmp_path: Path, proxy: S3FaultProxy, bucket: str, raw: Any
) -> None:
    _random_faults(tmp_path, proxy, bucket, raw, puts=300)
