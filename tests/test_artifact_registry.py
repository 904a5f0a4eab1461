"""The artifact registry on memory, SQLite and PostgreSQL.

The registry keeps the metadata of stored blobs; the bytes live in an artifact store and
never come near these tests. Uniqueness of keys is checked across two store handles on
one SQLite file or one PostgreSQL schema, which is where a per-process check would fail.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pg_server import fresh_schema, with_options

from agent_sessions import (
    AgentSessionsError,
    Artifact,
    ArtifactRef,
    ArtifactRegistry,
    ArtifactStats,
    Session,
    open_store,
)
from agent_sessions.composition import Store

ART_ID = re.compile(r"art_[A-Za-z0-9_-]{16}")
CHECKSUM = hashlib.sha256(b"payload").hexdigest()


@pytest.fixture
def registry(store: Store) -> ArtifactRegistry:
    return store.registry


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store that two handles (as two processes would) can open at once."""
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "shared.db")
    else:
        server = request.getfixturevalue("pg_server_url")
        with fresh_schema(server) as schema:
            yield with_options(server, schema=schema, pool_size=2, max_overflow=4)


def add_session(store: Store) -> Session:
    session = Session.new(agent_id="agent")
    store.save_session(session)
    return session


def register(
    registry: ArtifactRegistry,
    key: str,
    *,
    session_id: str | None = None,
    byte_size: int = 10,
    checksum: str = CHECKSUM,
    **extra: Any,
) -> Artifact:
    return registry.register(
        key=key,
        byte_size=byte_size,
        checksum_sha256=checksum,
        storage_backend="file",
        storage_ref=f"file:///blobs/{key}",
        session_id=session_id,
        **extra,
    )


def keys(artifacts: list[Artifact]) -> list[str]:
    return [a.key for a in artifacts]


def error_code(work: Any) -> str:
    with pytest.raises(AgentSessionsError) as raised:
        work()
    return str(raised.value.code)


# register and read ---------------------------------------------------------------------


def test_register_then_get_by_key_returns_every_field(registry: ArtifactRegistry) -> None:
    before = datetime.now(UTC)
    returned = registry.register(
        key="patch_main_feature_0123",
        byte_size=1234,
        checksum_sha256=CHECKSUM,
        storage_backend="s3",
        storage_ref="s3://bucket/asm/patch_main_feature_0123",
        session_id="ses_1",
        run_id="run_1",
        content_type="text/x-diff",
        metadata={"tool": "git", "files": ["a.py", "b.py"], "nested": {"none": None}},
    )
    after = datetime.now(UTC)

    found = registry.get_by_key("patch_main_feature_0123")
    assert found == returned
    assert found is not None
    assert ART_ID.fullmatch(found.id), found.id
    assert found.key == "patch_main_feature_0123"
    assert found.session_id == "ses_1"
    assert found.run_id == "run_1"
    assert found.content_type == "text/x-diff"
    assert found.byte_size == 1234
    assert found.checksum_sha256 == CHECKSUM
    assert found.storage_backend == "s3"
    assert found.storage_ref == "s3://bucket/asm/patch_main_feature_0123"
    assert found.metadata == {"tool": "git", "files": ["a.py", "b.py"], "nested": {"none": None}}
    assert found.created_at.tzinfo is not None
    assert before <= found.created_at <= after
    assert found.deleted_at is None
    public = found.public_dict()
    assert "deleted_at" not in public
    assert public["id"] == found.id


def test_optional_fields_default_to_none_and_empty_metadata(registry: ArtifactRegistry) -> None:
    registry.register(
        key="bare", byte_size=0, checksum_sha256=CHECKSUM, storage_backend="file", storage_ref="r"
    )
    found = registry.get_by_key("bare")
    assert found is not None
    assert (found.session_id, found.run_id, found.content_type) == (None, None, None)
    assert found.metadata == {}
    assert found.byte_size == 0


def test_ids_are_unique_per_key(registry: ArtifactRegistry) -> None:
    ids = {register(registry, f"k{i}").id for i in range(5)}
    assert len(ids) == 5
    assert all(ART_ID.fullmatch(i) for i in ids)


def test_register_blob_takes_its_facts_from_the_store_ref(registry: ArtifactRegistry) -> None:
    data = b"written by the store"
    ref = ArtifactRef(
        key="logs/run.txt",
        byte_size=len(data),
        checksum_sha256=hashlib.sha256(data).hexdigest(),
        content_type="text/plain",
        storage_backend="file",
        storage_ref="file:///blobs/logs_run_txt",
        metadata={"lines": 1},
    )
    registry.register_blob(ref, session_id="ses_a", run_id="run_a")
    found = registry.get_by_key("logs/run.txt")
    assert found is not None
    assert (found.byte_size, found.checksum_sha256) == (ref.byte_size, ref.checksum_sha256)
    assert (found.storage_backend, found.storage_ref) == ("file", ref.storage_ref)
    assert (found.content_type, found.metadata) == ("text/plain", {"lines": 1})
    assert (found.session_id, found.run_id) == ("ses_a", "run_a")


def test_get_by_key_of_a_missing_key_is_none(registry: ArtifactRegistry) -> None:
    assert registry.get_by_key("absent") is None
    register(registry, "present")
    assert registry.get_by_key("absent") is None


def test_list_by_session_returns_that_sessions_artifacts_oldest_first(
    registry: ArtifactRegistry,
) -> None:
    register(registry, "a-first", session_id="ses_mine")
    register(registry, "b-other", session_id="ses_other")
    register(registry, "c-second", session_id="ses_mine")
    assert keys(registry.list_by_session("ses_mine")) == ["a-first", "c-second"]
    assert keys(registry.list_by_session("ses_other")) == ["b-other"]
    assert registry.list_by_session("ses_nobody") == []


def test_stats_count_and_bytes(registry: ArtifactRegistry) -> None:
    assert registry.stats() == ArtifactStats(count=0, total_bytes=0)
    assert registry.stats(session_id="ses_mine") == ArtifactStats(count=0, total_bytes=0)
    register(registry, "one", session_id="ses_mine", byte_size=100)
    register(registry, "two", session_id="ses_mine", byte_size=200)
    register(registry, "elsewhere", session_id="ses_other", byte_size=7)
    assert registry.stats(session_id="ses_mine") == ArtifactStats(count=2, total_bytes=300)
    assert registry.stats(session_id="ses_nobody") == ArtifactStats(count=0, total_bytes=0)
    assert registry.stats() == ArtifactStats(count=3, total_bytes=307)


# soft delete ----------------------------------------------------------------------------


def test_soft_delete_hides_the_entry_from_reads(registry: ArtifactRegistry) -> None:
    register(registry, "gone", session_id="ses_mine", byte_size=100)
    register(registry, "kept", session_id="ses_mine", byte_size=200)
    registry.soft_delete("gone")

    assert registry.get_by_key("gone") is None
    assert keys(registry.list_by_session("ses_mine")) == ["kept"]
    assert registry.stats(session_id="ses_mine") == ArtifactStats(count=1, total_bytes=200)
    assert registry.stats() == ArtifactStats(count=1, total_bytes=200)
    listed = registry.list_by_session("ses_mine", include_deleted=True)
    assert keys(listed) == ["gone", "kept"]
    assert listed[0].deleted_at is not None
    assert listed[1].deleted_at is None


def test_soft_delete_of_a_missing_key_is_ok_and_registers_nothing(
    registry: ArtifactRegistry,
) -> None:
    registry.soft_delete("never-registered")
    assert registry.get_by_key("never-registered") is None
    assert registry.stats() == ArtifactStats(count=0, total_bytes=0)
    # The key is still free: registering it afterwards gives a live entry.
    register(registry, "never-registered", session_id="ses_mine")
    assert registry.get_by_key("never-registered") is not None
    assert keys(registry.list_by_session("ses_mine")) == ["never-registered"]


def test_soft_delete_twice_keeps_the_first_deletion_time(registry: ArtifactRegistry) -> None:
    # deleted_at is set once, on a live entry: soft-deleting again changes nothing.
    register(registry, "k", session_id="ses_mine")
    registry.soft_delete("k")
    [first] = registry.list_by_session("ses_mine", include_deleted=True)
    registry.soft_delete("k")
    [second] = registry.list_by_session("ses_mine", include_deleted=True)
    assert first.deleted_at is not None
    assert second.deleted_at == first.deleted_at


# registering a key again ---------------------------------------------------------------


def test_registering_a_key_again_keeps_its_id_and_updates_the_facts(
    registry: ArtifactRegistry,
) -> None:
    first = register(registry, "k", session_id="ses_mine", byte_size=10, checksum="a" * 64)
    again = register(registry, "k", session_id="ses_mine", byte_size=20, checksum="b" * 64)
    assert again.id == first.id
    found = registry.get_by_key("k")
    assert found is not None
    assert (found.id, found.byte_size, found.checksum_sha256) == (first.id, 20, "b" * 64)
    assert keys(registry.list_by_session("ses_mine", include_deleted=True)) == ["k"]
    assert registry.stats() == ArtifactStats(count=1, total_bytes=20)


def test_registering_a_soft_deleted_key_again_makes_it_live(registry: ArtifactRegistry) -> None:
    first = register(registry, "k", session_id="ses_mine", byte_size=10)
    registry.soft_delete("k")
    register(registry, "k", session_id="ses_mine", byte_size=30)
    found = registry.get_by_key("k")
    assert found is not None
    assert (found.id, found.byte_size, found.deleted_at) == (first.id, 30, None)
    assert registry.stats() == ArtifactStats(count=1, total_bytes=30)


# forget (orphan clean-up) --------------------------------------------------------------


def test_forget_removes_the_entry_from_the_registry_and_the_orphans(
    store: Store, registry: ArtifactRegistry
) -> None:
    erased = add_session(store)
    register(registry, "orphan", session_id=erased.id, byte_size=5)
    register(registry, "other-orphan", session_id=erased.id, byte_size=6)
    store.delete_session(erased.id)
    assert keys(registry.orphans()) == ["orphan", "other-orphan"]

    registry.forget("orphan")
    assert registry.get_by_key("orphan") is None
    assert keys(registry.list_by_session(erased.id, include_deleted=True)) == ["other-orphan"]
    assert registry.stats() == ArtifactStats(count=1, total_bytes=6)
    assert keys(registry.orphans()) == ["other-orphan"]


def test_forget_of_a_missing_key_is_ok(registry: ArtifactRegistry) -> None:
    registry.forget("never-registered")
    assert registry.get_by_key("never-registered") is None
    assert registry.stats() == ArtifactStats(count=0, total_bytes=0)


def test_register_after_forget_gives_a_live_entry(registry: ArtifactRegistry) -> None:
    register(registry, "k", session_id="ses_mine", byte_size=10)
    registry.forget("k")
    again = register(registry, "k", session_id="ses_mine", byte_size=42, checksum="c" * 64)
    found = registry.get_by_key("k")
    assert found == again
    assert found is not None
    assert (found.byte_size, found.checksum_sha256, found.deleted_at) == (42, "c" * 64, None)
    assert keys(registry.list_by_session("ses_mine")) == ["k"]
    assert registry.stats() == ArtifactStats(count=1, total_bytes=42)


def test_soft_delete_after_forget_leaves_the_key_forgotten(
    store: Store, registry: ArtifactRegistry
) -> None:
    # A forgotten key is a missing key: soft-deleting it (a late delete_artifact after
    # orphan clean-up) must not bring the entry back into lists, exports or orphans.
    erased = add_session(store)
    register(registry, "k", session_id=erased.id)
    store.delete_session(erased.id)
    registry.forget("k")
    registry.soft_delete("k")
    assert registry.get_by_key("k") is None
    assert registry.list_by_session(erased.id, include_deleted=True) == []
    assert registry.orphans() == []
    assert registry.stats() == ArtifactStats(count=0, total_bytes=0)


def test_orphans_are_entries_of_erased_sessions_only(
    store: Store, registry: ArtifactRegistry
) -> None:
    erased, kept = add_session(store), add_session(store)
    register(registry, "of-erased", session_id=erased.id)
    register(registry, "of-kept", session_id=kept.id)
    register(registry, "of-nobody")
    assert registry.orphans() == []
    store.delete_session(erased.id)
    assert keys(registry.orphans()) == ["of-erased"]
    # Erasing a session leaves its entries registered until clean-up.
    assert registry.get_by_key("of-erased") is not None


# validation -----------------------------------------------------------------------------


REQUIRED = {
    "key": "k",
    "byte_size": 1,
    "checksum_sha256": CHECKSUM,
    "storage_backend": "file",
    "storage_ref": "file:///blobs/k",
}


@pytest.mark.parametrize("field", sorted(REQUIRED))
@pytest.mark.parametrize("missing", [None, ""], ids=["none", "empty"])
def test_a_missing_required_field_is_a_validation_error(
    registry: ArtifactRegistry, field: str, missing: Any
) -> None:
    attrs: dict[str, Any] = {**REQUIRED, field: missing}
    assert error_code(lambda: registry.register(**attrs)) == "validation_error"
    assert registry.stats() == ArtifactStats(count=0, total_bytes=0)
    assert registry.get_by_key("k") is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("byte_size", -1), ("byte_size", True), ("byte_size", "10"), ("metadata", ["not", "a map"])],
)
def test_bad_field_values_are_validation_errors(
    registry: ArtifactRegistry, field: str, value: Any
) -> None:
    attrs: dict[str, Any] = {**REQUIRED, field: value}
    assert error_code(lambda: registry.register(**attrs)) == "validation_error"
    assert registry.stats() == ArtifactStats(count=0, total_bytes=0)


#: Registry calls with an argument no backend can bind, and the field each names. Before
#: (issue 11, class 9) they were a driver's ``storage_error`` (a list bound as a key), a
#: ``query_error`` (an int past 64 bits), a ``TypeError`` (building the stream id of a
#: non-string key), or an answer on SQLite and ``storage_error`` on PostgreSQL.
BAD_REGISTRY_CALLS: list[tuple[str, Any, str]] = [
    ("get_by_key list", lambda r: r.get_by_key(["k"]), "key"),
    ("get_by_key huge int", lambda r: r.get_by_key(10**30), "key"),
    ("get_by_key NUL", lambda r: r.get_by_key("k\x00"), "key"),
    ("get_by_key surrogate", lambda r: r.get_by_key("\ud800"), "key"),
    ("list_by_session int", lambda r: r.list_by_session(5), "session_id"),
    ("list_by_session NUL", lambda r: r.list_by_session("s\x00"), "session_id"),
    (
        "list_by_session flag",
        lambda r: r.list_by_session("s", include_deleted="no"),
        "include_deleted",
    ),
    ("stats int", lambda r: r.stats(session_id=5), "session_id"),
    ("orphans huge limit", lambda r: r.orphans(limit=2**64), "limit"),
    ("orphans negative limit", lambda r: r.orphans(limit=-5), "limit"),
    ("orphans text limit", lambda r: r.orphans(limit="5"), "limit"),
    ("soft_delete int key", lambda r: r.soft_delete(5), "key"),
    ("forget list key", lambda r: r.forget(["k"]), "key"),
]


@pytest.mark.parametrize(
    ("call", "field"), [pytest.param(c, f, id=name) for name, c, f in BAD_REGISTRY_CALLS]
)
def test_bad_registry_arguments_are_validation_errors_naming_them(
    store: Store, registry: ArtifactRegistry, call: Any, field: str
) -> None:
    register(registry, "k", session_id="s")
    position = store.application.recorder.max_notification_id()
    with pytest.raises(AgentSessionsError) as raised:
        call(registry)
    assert raised.value.code == "validation_error", raised.value
    assert raised.value.details["field"] == field
    assert store.application.recorder.max_notification_id() == position
    assert keys(registry.list_by_session("s")) == ["k"]


# export --------------------------------------------------------------------------------


def test_export_lists_the_sessions_artifacts_with_soft_deleted_ones_and_no_deleted_at(
    store: Store, registry: ArtifactRegistry
) -> None:
    session, other = add_session(store), add_session(store)
    live = register(registry, "a-live", session_id=session.id, byte_size=1)
    gone = register(registry, "b-gone", session_id=session.id, byte_size=2)
    register(registry, "c-other", session_id=other.id, byte_size=3)
    registry.soft_delete("b-gone")

    exported = store.query().export_session(session.id, include_artifacts=True)
    assert exported.artifacts is not None
    assert [a["key"] for a in exported.artifacts] == ["a-live", "b-gone"]
    assert all("deleted_at" not in a for a in exported.artifacts)
    assert exported.artifacts[0] == live.public_dict()
    assert exported.artifacts[1] == gone.public_dict()
    assert exported.to_dict()["artifacts"] == exported.artifacts
    assert store.query().export_session(session.id).artifacts is None


# two handles on one database ------------------------------------------------------------


def test_a_key_is_unique_across_two_handles(shared_url: str) -> None:
    with open_store(shared_url) as one, open_store(shared_url) as two:
        first = register(one.registry, "shared", session_id="ses_x", byte_size=1)
        second = register(two.registry, "shared", session_id="ses_x", byte_size=2)
        assert second.id == first.id
        for handle in (one, two):
            registry = handle.registry
            listed = registry.list_by_session("ses_x", include_deleted=True)
            assert [(a.key, a.id, a.byte_size) for a in listed] == [("shared", first.id, 2)]
            assert registry.stats() == ArtifactStats(count=1, total_bytes=2)


def test_concurrent_registrations_of_one_key_through_two_handles_leave_one_entry(
    shared_url: str,
) -> None:
    with open_store(shared_url) as one, open_store(shared_url) as two:
        registries = [one.registry, two.registry] * 3
        start = threading.Barrier(len(registries))

        def register_from(index: int) -> Artifact:
            start.wait()
            return register(registries[index], "raced", session_id="ses_x", byte_size=index + 1)

        with ThreadPoolExecutor(max_workers=len(registries)) as pool:
            returned = list(pool.map(register_from, range(len(registries))))
        assert len({a.id for a in returned}) == 1
        for handle in (one, two):
            listed = handle.registry.list_by_session("ses_x", include_deleted=True)
            assert [(a.key, a.id) for a in listed] == [("raced", returned[0].id)]
            assert listed[0].byte_size in {a.byte_size for a in returned}
