"""A store opened with an artifact store (``CompositeSessionStore``, now an alias of
``Store``): every session operation, plus artifacts stored and then registered.

Every test runs on memory, SQLite and PostgreSQL session stores, and the artifact tests on
both real artifact stores: files under ``tmp_path`` and S3 objects on moto's server over
HTTP (real boto3). The only test double is ``BrokenArtifactService``, which stands in for
an external artifact service that fails on every call.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from s3_server import CREDENTIALS, s3_client, s3_endpoint

from agent_sessions import (
    AgentSessionsError,
    CompositeSessionStore,
    Event,
    ExecutionResult,
    FileArtifactStore,
    RetentionPolicy,
    Run,
    RunStatus,
    S3ArtifactStore,
    Session,
    SessionStatus,
    open_store,
)

__all__ = ["s3_endpoint"]  # the fixture, imported so that pytest finds it here

ARCHIVE_CONTENT_TYPE = "application/x-ndjson"


# fixtures ------------------------------------------------------------------------------


@pytest.fixture
def session_url(store_url: str) -> str:
    return store_url


@pytest.fixture
def raw_s3(s3_endpoint: str) -> Any:
    return s3_client(s3_endpoint)


@pytest.fixture
def bucket(raw_s3: Any) -> str:
    name = f"composite-{uuid.uuid4().hex[:12]}"
    raw_s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["file", "s3"])
def artifact_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "file":
        return FileArtifactStore(tmp_path / "blobs")
    endpoint = request.getfixturevalue("s3_endpoint")
    name = request.getfixturevalue("bucket")
    return S3ArtifactStore(name, "art/", endpoint_url=endpoint, **CREDENTIALS)


@pytest.fixture
def composite(session_url: str, artifact_store: Any) -> Iterator[CompositeSessionStore]:
    with open_store(session_url, artifacts=artifact_store) as opened:
        yield opened


class BrokenArtifactService:
    """Stands in for an external artifact service that is down: every call raises."""

    def put(self, key: str, data: Any, **options: Any) -> Any:
        raise RuntimeError("artifact service down")

    def get(self, key: str) -> bytes:
        raise RuntimeError("artifact service down")

    def open(self, key: str) -> Any:
        raise RuntimeError("artifact service down")

    def delete(self, key: str) -> None:
        raise RuntimeError("artifact service down")

    def exists(self, key: str) -> bool:
        raise RuntimeError("artifact service down")


def add_session(store: Any, *, agent_id: str = "agent") -> Session:
    session = Session.new(agent_id=agent_id)
    store.save_session(session)
    return session


def error_of(work: Any) -> AgentSessionsError:
    with pytest.raises(AgentSessionsError) as raised:
        work()
    return raised.value


def ids(records: list[Any]) -> list[str]:
    return [r.id for r in records]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def backend_name(composite: CompositeSessionStore) -> str:
    """The ``storage_backend`` a registry entry of this composite's blobs names."""
    return "s3" if isinstance(composite.artifact_store, S3ArtifactStore) else "file"


def assert_session_operations_work(store: CompositeSessionStore) -> None:
    """A round of session operations, for after an artifact failure."""
    session = add_session(store)
    run = Run.new(session_id=session.id)
    store.save_run(run)
    appended = store.append_events([Event.new(type="message_sent", session_id=session.id)])
    assert [e.sequence_number for e in appended] == [1]
    assert store.get_session(session.id) == session
    assert ids(store.list_runs(session.id)) == [run.id]
    assert ids(store.get_events(session.id)) == ids(appended)
    assert store.get_latest_sequence(session.id) == 1


# the SessionStore port, on a store with artifacts ---------------------------------------


def test_session_operations_delegate(composite: CompositeSessionStore) -> None:
    inner = composite  # one object: the port and the artifacts together
    first = add_session(composite, agent_id="agent-a")
    second = Session.new(agent_id="agent-b").with_status(SessionStatus.ACTIVE)
    inner.save_session(second)

    assert composite.get_session(first.id) == inner.get_session(first.id) == first
    assert composite.get_session(second.id) == second
    assert ids(composite.list_sessions()) == ids(inner.list_sessions()) == [first.id, second.id]
    assert ids(composite.list_sessions(status="active")) == [second.id]
    assert ids(composite.list_sessions(agent_id="agent-a")) == [first.id]
    assert ids(composite.list_sessions(limit=1, offset=1)) == [second.id]

    composite.delete_session(first.id)
    # Errors pass through unchanged.
    assert error_of(lambda: composite.get_session(first.id)).code == "session_not_found"
    assert error_of(lambda: inner.get_session(first.id)).code == "session_not_found"
    assert ids(composite.list_sessions()) == [second.id]


def test_run_operations_delegate(composite: CompositeSessionStore) -> None:
    session = add_session(composite)
    done = Run.new(session_id=session.id).set_output({"text": "ok"})
    running = Run.new(session_id=session.id).with_status(RunStatus.RUNNING)
    composite.save_run(done)
    composite.save_run(running)

    assert composite.get_run(done.id) == done
    assert ids(composite.list_runs(session.id)) == [done.id, running.id]
    assert ids(composite.list_runs(session.id, status="completed")) == [done.id]
    assert ids(composite.list_runs(session.id, limit=1, offset=1)) == [running.id]
    active = composite.get_active_run(session.id)
    assert active is not None
    assert active.id == running.id
    assert error_of(lambda: composite.get_run("run_missing")).code == "run_not_found"
    orphan_run = Run.new(session_id="ses_missing")
    assert error_of(lambda: composite.save_run(orphan_run)).code == "session_not_found"


def test_event_operations_delegate(composite: CompositeSessionStore) -> None:
    session = add_session(composite)
    run = Run.new(session_id=session.id)
    composite.save_run(run)
    first = Event.new(type="run_started", session_id=session.id, run_id=run.id)
    composite.append_event(first)
    second = composite.append_event_with_sequence(
        Event.new(type="message_sent", session_id=session.id, run_id=run.id)
    )
    assert second.sequence_number == 2
    rest = composite.append_events(
        [
            Event.new(type="message_received", session_id=session.id, run_id=run.id),
            Event.new(type="message_received", session_id=session.id),
        ]
    )
    assert [e.sequence_number for e in rest] == [3, 4]

    everything = composite.get_events(session.id)
    assert [e.sequence_number for e in everything] == [1, 2, 3, 4]
    assert everything[0].id == first.id
    assert ids(composite.get_events(session.id, run_id=run.id)) == ids(everything[:3])
    assert ids(composite.get_events(session.id, type="message_received")) == ids(rest)
    assert ids(composite.get_events(session.id, after=1, before=4, limit=1)) == [second.id]
    since = everything[1].timestamp
    later = composite.get_events(session.id, since=since - timedelta(microseconds=1))
    assert [e.sequence_number for e in later] == [2, 3, 4]
    assert composite.get_latest_sequence(session.id) == 4
    assert composite.get_latest_sequence("ses_unknown") == 0
    stray = Event.new(type="message_sent", session_id="ses_unknown")
    assert error_of(lambda: composite.append_event(stray)).code == "session_not_found"
    assert error_of(lambda: composite.get_events(session.id, type="bogus")).code == (
        "invalid_event_type"
    )


def test_flush_delegates(composite: CompositeSessionStore) -> None:
    session = Session.new(agent_id="agent").with_status(SessionStatus.COMPLETED)
    run = Run.new(session_id=session.id).set_output({"text": "done"})
    events = [
        Event.new(type="run_started", session_id=session.id, run_id=run.id),
        Event.new(type="run_completed", session_id=session.id, run_id=run.id),
    ]
    composite.flush(ExecutionResult(session=session, run=run, events=events))
    assert composite.get_session(session.id).status == SessionStatus.COMPLETED
    assert composite.get_run(run.id).status == RunStatus.COMPLETED
    stored = composite.get_events(session.id)
    assert [(e.id, e.sequence_number) for e in stored] == [(events[0].id, 1), (events[1].id, 2)]


def test_long_poll_through_the_composite_waits_out_its_window(
    composite: CompositeSessionStore,
) -> None:
    session = add_session(composite)
    started = time.monotonic()
    assert composite.get_events(session.id, wait_timeout_ms=100) == []
    assert time.monotonic() - started >= 0.08


def test_a_store_with_artifacts_has_the_read_side_too(composite: CompositeSessionStore) -> None:
    session = add_session(composite)
    composite.append_events(
        [Event.new(type="message_sent", session_id=session.id) for _ in range(3)]
    )
    assert composite.query().count_events(session_ids=[session.id]) == 3
    assert composite.prune_events(session.id, [1]) == 1
    assert [e.sequence_number for e in composite.get_events(session.id)] == [2, 3]


def test_closing_the_store_closes_its_session_side(session_url: str, tmp_path: Path) -> None:
    composite = open_store(session_url, artifacts=FileArtifactStore(tmp_path / "blobs"))
    with composite:
        add_session(composite)
    assert error_of(lambda: composite.list_sessions()).code == "storage_error"


# artifacts ------------------------------------------------------------------------------


def test_put_artifact_measures_and_registers_size_and_checksum(
    composite: CompositeSessionStore,
) -> None:
    session = add_session(composite)
    run = Run.new(session_id=session.id)
    composite.save_run(run)
    chunks = [b"first chunk\n", bytes(range(256)) * 40, b"", b"last"]
    data = b"".join(chunks)

    artifact = composite.put_artifact(
        session.id,
        run.id,
        "logs/tool output.txt",
        iter(chunks),
        content_type="text/plain",
        metadata={"tool": "bash", "exit": 0},
    )
    assert (artifact.byte_size, artifact.checksum_sha256) == (len(data), sha256(data))
    assert (artifact.session_id, artifact.run_id) == (session.id, run.id)
    assert artifact.key == "logs/tool output.txt"
    assert artifact.content_type == "text/plain"
    assert artifact.metadata == {"tool": "bash", "exit": 0}
    assert artifact.storage_backend == backend_name(composite)
    store = composite.artifact_store
    if isinstance(store, S3ArtifactStore):
        assert artifact.storage_ref == f"s3://{store.bucket}/art/logs/tool output.txt"
    else:
        assert isinstance(store, FileArtifactStore)
        assert artifact.storage_ref.startswith(store.root.as_uri() + "/")
    assert composite.registry.get_by_key("logs/tool output.txt") == artifact
    assert composite.registry.list_by_session(session.id) == [artifact]
    assert composite.get_artifact("logs/tool output.txt") == data


def test_put_artifact_reads_a_file_object(composite: CompositeSessionStore) -> None:
    data = bytes(range(256)) * 1000
    artifact = composite.put_artifact(None, None, "blob.bin", io.BytesIO(data))
    assert (artifact.byte_size, artifact.checksum_sha256) == (len(data), sha256(data))
    assert (artifact.session_id, artifact.run_id) == (None, None)
    assert composite.get_artifact("blob.bin") == data


def test_get_open_and_delete_artifact(composite: CompositeSessionStore) -> None:
    session = add_session(composite)
    composite.put_artifact(session.id, None, "patch", b"--- a\n+++ b\n")
    composite.put_artifact(session.id, None, "kept", b"stays")
    assert composite.get_artifact("patch") == b"--- a\n+++ b\n"
    with composite.open_artifact("patch") as stream:
        assert stream.read() == b"--- a\n+++ b\n"

    composite.delete_artifact("patch")
    assert error_of(lambda: composite.get_artifact("patch")).code == "not_found"
    assert composite.artifact_store.exists("patch") is False
    assert composite.registry.get_by_key("patch") is None
    assert [a.key for a in composite.registry.list_by_session(session.id)] == ["kept"]
    deleted = composite.registry.list_by_session(session.id, include_deleted=True)
    assert sorted(a.key for a in deleted) == ["kept", "patch"]
    assert composite.get_artifact("kept") == b"stays"

    composite.delete_artifact("patch")  # a missing key is fine
    again = composite.put_artifact(session.id, None, "patch", b"v2")
    assert composite.registry.get_by_key("patch") == again
    assert composite.get_artifact("patch") == b"v2"


def test_missing_artifacts_are_not_found(composite: CompositeSessionStore) -> None:
    assert error_of(lambda: composite.get_artifact("absent")).code == "not_found"
    assert error_of(lambda: composite.open_artifact("absent")).code == "not_found"
    composite.delete_artifact("absent")
    assert composite.registry.get_by_key("absent") is None


def test_putting_a_key_again_overwrites_and_keeps_the_registry_id(
    composite: CompositeSessionStore,
) -> None:
    session = add_session(composite)
    first = composite.put_artifact(session.id, None, "report", b"v1")
    second = composite.put_artifact(session.id, None, "report", b"version two")
    assert second.id == first.id
    assert (second.byte_size, second.checksum_sha256) == (11, sha256(b"version two"))
    assert composite.registry.list_by_session(session.id, include_deleted=True) == [second]
    assert composite.get_artifact("report") == b"version two"


def test_deleting_a_session_leaves_its_artifacts_as_orphans(
    composite: CompositeSessionStore,
) -> None:
    session = add_session(composite)
    stored = composite.put_artifact(session.id, None, "diff", b"patch bytes")
    composite.delete_session(session.id)

    assert error_of(lambda: composite.get_session(session.id)).code == "session_not_found"
    assert composite.get_artifact("diff") == b"patch bytes"
    assert composite.registry.get_by_key("diff") == stored
    assert composite.registry.orphans() == [stored]
    assert composite.maintenance().list_orphaned_artifacts() == [stored]


def test_clean_orphaned_artifacts_removes_entries_and_blobs(
    composite: CompositeSessionStore,
) -> None:
    erased, kept = add_session(composite), add_session(composite)
    composite.put_artifact(erased.id, None, "orphan-1", b"one")
    composite.put_artifact(erased.id, None, "orphan-2", b"two")
    composite.put_artifact(kept.id, None, "owned", b"mine")
    composite.put_artifact(None, None, "unowned", b"nobody's")
    composite.delete_session(erased.id)
    maintenance = composite.maintenance()

    orphans = sorted(a.key for a in maintenance.list_orphaned_artifacts())
    assert orphans == ["orphan-1", "orphan-2"]
    assert maintenance.clean_orphaned_artifacts(dry_run=True) == 2
    assert sorted(a.key for a in maintenance.list_orphaned_artifacts()) == orphans
    assert composite.get_artifact("orphan-1") == b"one"
    assert composite.registry.get_by_key("orphan-2") is not None

    assert maintenance.clean_orphaned_artifacts() == 2
    for key in orphans:
        assert error_of(lambda key=key: composite.get_artifact(key)).code == "not_found"
        assert composite.artifact_store.exists(key) is False
        assert composite.registry.get_by_key(key) is None
    assert maintenance.list_orphaned_artifacts() == []
    assert composite.get_artifact("owned") == b"mine"
    assert composite.get_artifact("unowned") == b"nobody's"
    assert composite.registry.get_by_key("owned") is not None
    assert composite.registry.get_by_key("unowned") is not None
    assert maintenance.clean_orphaned_artifacts() == 0


def test_deleting_an_artifact_after_clean_up_keeps_it_cleaned(
    composite: CompositeSessionStore,
) -> None:
    # A caller that still holds the key deletes it after orphan clean-up removed it:
    # a missing key is fine, and the entry must stay gone.
    session = add_session(composite)
    composite.put_artifact(session.id, None, "late", b"bytes")
    composite.delete_session(session.id)
    assert composite.maintenance().clean_orphaned_artifacts() == 1

    composite.delete_artifact("late")
    assert composite.registry.get_by_key("late") is None
    assert composite.registry.list_by_session(session.id, include_deleted=True) == []
    assert composite.maintenance().list_orphaned_artifacts() == []
    assert composite.maintenance().clean_orphaned_artifacts(dry_run=True) == 0


def test_a_refused_key_is_validation_error_and_registers_nothing(
    composite: CompositeSessionStore,
) -> None:
    session = add_session(composite)
    error = error_of(lambda: composite.put_artifact(session.id, None, "two\nlines", b"x"))
    assert error.code == "validation_error"
    assert composite.registry.list_by_session(session.id, include_deleted=True) == []


def test_archive_before_prune_writes_the_pruned_events_as_jsonl(
    composite: CompositeSessionStore,
) -> None:
    session = add_session(composite)
    streamed = [
        Event.new(type="message_streamed", session_id=session.id, data={"i": i}) for i in range(6)
    ]
    composite.append_events([Event.new(type="run_started", session_id=session.id), *streamed])
    before = composite.get_events(session.id)
    policy = RetentionPolicy(
        max_events_per_session=3,
        archive_before_prune=True,
        archive_store=composite.artifact_store,
    )

    assert composite.maintenance().prune_session_events(session.id, policy) == 4
    after = composite.get_events(session.id)
    assert [e.sequence_number for e in after] == [1, 6, 7]
    pruned = [e for e in before if e.id not in set(ids(after))]
    assert [e.sequence_number for e in pruned] == [2, 3, 4, 5]

    [archive] = composite.registry.list_by_session(session.id)
    assert archive.content_type == ARCHIVE_CONTENT_TYPE
    assert archive.storage_backend == backend_name(composite)
    data = composite.get_artifact(archive.key)
    assert (archive.byte_size, archive.checksum_sha256) == (len(data), sha256(data))
    lines = data.decode().splitlines()
    archived = [Event.from_dict(json.loads(line)) for line in lines]
    assert [(e.id, e.sequence_number) for e in archived] == [
        (e.id, e.sequence_number) for e in pruned
    ]
    assert [e.to_dict() for e in archived] == [e.to_dict() for e in pruned]

    # The archive belongs to its session: erasing the session makes it an orphan.
    composite.delete_session(session.id)
    assert composite.maintenance().clean_orphaned_artifacts() == 1
    assert error_of(lambda: composite.get_artifact(archive.key)).code == "not_found"


# failing artifact backends --------------------------------------------------------------


def test_a_broken_artifact_service_is_storage_error_and_sessions_keep_working(
    session_url: str,
) -> None:
    with open_store(session_url, artifacts=BrokenArtifactService()) as composite:
        session = add_session(composite)
        failures = {
            "put_artifact": lambda: composite.put_artifact(session.id, None, "k", b"x"),
            "get_artifact": lambda: composite.get_artifact("k"),
            "open_artifact": lambda: composite.open_artifact("k"),
            "delete_artifact": lambda: composite.delete_artifact("k"),
        }
        for operation, call in failures.items():
            error = error_of(call)
            assert error.code == "storage_error", operation
            assert "artifact service down" in str(error), operation
        assert composite.registry.get_by_key("k") is None
        assert composite.registry.list_by_session(session.id, include_deleted=True) == []
        assert_session_operations_work(composite)


def test_a_missing_bucket_is_storage_error_with_the_s3_code(
    session_url: str, s3_endpoint: str
) -> None:
    missing = S3ArtifactStore(
        f"no-such-bucket-{uuid.uuid4().hex[:8]}", "art/", endpoint_url=s3_endpoint, **CREDENTIALS
    )
    with open_store(session_url, artifacts=missing) as composite:
        session = add_session(composite)
        failures = [
            lambda: composite.put_artifact(session.id, None, "k", b"x"),
            lambda: composite.get_artifact("k"),
            lambda: composite.open_artifact("k"),
            lambda: composite.delete_artifact("k"),
        ]
        for call in failures:
            error = error_of(call)
            assert error.code == "storage_error"
            assert error.details["s3_error_code"] == "NoSuchBucket"
        assert composite.registry.get_by_key("k") is None
        assert_session_operations_work(composite)


# open_store(url, artifacts=...) --------------------------------------------------------


def test_open_store_with_a_file_url(session_url: str, tmp_path: Path) -> None:
    root = tmp_path / "artifact root"
    with open_store(session_url, artifacts=root.as_uri()) as composite:
        assert isinstance(composite, CompositeSessionStore)
        assert isinstance(composite.artifact_store, FileArtifactStore)
        assert composite.artifact_store.root == root.resolve()
        session = add_session(composite)
        artifact = composite.put_artifact(session.id, None, "notes.md", b"# notes")
        assert artifact.storage_backend == "file"
        assert artifact.storage_ref.startswith(root.resolve().as_uri() + "/")
        assert composite.get_artifact("notes.md") == b"# notes"
        assert any(path.read_bytes() == b"# notes" for path in root.iterdir())
        assert_session_operations_work(composite)


def test_open_store_with_an_s3_url(
    session_url: str, s3_endpoint: str, bucket: str, raw_s3: Any
) -> None:
    with open_store(
        session_url,
        artifacts=f"s3://{bucket}/team/artifacts/",
        artifact_options={"endpoint_url": s3_endpoint, **CREDENTIALS},
    ) as composite:
        assert isinstance(composite, CompositeSessionStore)
        assert isinstance(composite.artifact_store, S3ArtifactStore)
        session = add_session(composite)
        artifact = composite.put_artifact(session.id, None, "notes.md", b"# notes")
        assert artifact.storage_backend == "s3"
        assert artifact.storage_ref == f"s3://{bucket}/team/artifacts/notes.md"
        listed = raw_s3.list_objects_v2(Bucket=bucket)
        assert [item["Key"] for item in listed["Contents"]] == ["team/artifacts/notes.md"]
        body = raw_s3.get_object(Bucket=bucket, Key="team/artifacts/notes.md")["Body"].read()
        assert body == b"# notes"
        assert composite.get_artifact("notes.md") == b"# notes"
        assert_session_operations_work(composite)


@pytest.mark.parametrize("url", ["ftp://host/root", "s3:///no-bucket/"])
def test_open_store_refuses_bad_artifact_urls(url: str) -> None:
    assert error_of(lambda: open_store("memory://", artifacts=url)).code == "validation_error"
