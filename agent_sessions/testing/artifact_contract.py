"""The ``ArtifactStore`` contract, as a pytest base class.

Subclass :class:`ArtifactStoreContract` in a test module (name the subclass ``Test...``),
give it a ``store`` fixture returning a fresh, empty store, and override
:meth:`~ArtifactStoreContract.replace_stored_bytes` to change an artifact's bytes behind
the store's back (the corruption tests skip without it). Every built-in backend passes
these tests, so a store of your own that passes them can stand in for one.

Importing this module requires ``pytest`` and ``hypothesis``; ``agent_sessions.artifacts``
does not import it.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..artifacts.artifact_input import MAX_KEY_BYTES
from ..artifacts.artifact_store import ArtifactStore
from ..domain.errors import AgentSessionsError

#: Keys that would escape a directory or confuse a path if used as one.
PATH_LIKE_KEYS = (
    "../escape",
    "../../etc/passwd",
    "/absolute/path",
    "a/../b",
    "..",
    ".",
    "C:\\Windows\\system32",
    "~/home",
    "name with spaces ",
    "ünï/cødé",
)

#: Any key every backend accepts: non-empty, no control characters, at most 800 UTF-8
#: bytes (room for an S3 prefix), paths and traversal included.
valid_keys = st.one_of(
    st.sampled_from(PATH_LIKE_KEYS),
    st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=200),
)


class ArtifactStoreContract:
    """The behaviour every ``ArtifactStore`` shares."""

    @pytest.fixture
    def store(self) -> ArtifactStore:
        pytest.fail(
            f"{type(self).__name__} must define a `store` fixture yielding a fresh, empty "
            "artifact store"
        )

    def replace_stored_bytes(self, store: ArtifactStore, key: str, data: bytes) -> None:
        """Put ``data`` where ``key``'s bytes are, keeping its stored checksum."""
        pytest.skip("this backend offers no way to corrupt an artifact")

    # put / get ------------------------------------------------------------------------

    def test_round_trip_reports_what_was_written(self, store: ArtifactStore) -> None:
        data = b"hello artifact\x00\xff"
        ref = store.put(
            "patch_a_b_1", data, content_type="text/x-diff", metadata={"lines": 3, "by": "é"}
        )
        assert store.get("patch_a_b_1") == data
        assert ref.key == "patch_a_b_1"
        assert ref.byte_size == len(data)
        assert ref.checksum_sha256 == hashlib.sha256(data).hexdigest()
        assert ref.content_type == "text/x-diff"
        assert ref.metadata == {"lines": 3, "by": "é"}
        assert ref.storage_ref.startswith(f"{ref.storage_backend}://")

    def test_metadata_may_hold_any_json_text(self, store: ArtifactStore) -> None:
        metadata = {"Case": "kept", "text": 'é\n\U0001f600 "quoted"', "nested": {"n": [1.5, None]}}
        assert store.put("described", b"x", metadata=metadata).metadata == metadata
        assert store.get("described") == b"x"

    def test_metadata_that_is_not_valid_unicode_is_refused(self, store: ArtifactStore) -> None:
        with pytest.raises(AgentSessionsError) as caught:
            store.put("lone", b"x", metadata={"text": "\ud800"})
        assert (caught.value.code, caught.value.details["field"]) == (
            "validation_error",
            "metadata",
        )
        assert not store.exists("lone")

    def test_empty_data_round_trips(self, store: ArtifactStore) -> None:
        ref = store.put("empty", b"")
        assert (store.get("empty"), ref.byte_size, store.exists("empty")) == (b"", 0, True)
        assert ref.checksum_sha256 == hashlib.sha256(b"").hexdigest()
        assert ref.content_type is None
        assert ref.metadata == {}

    def test_put_overwrites(self, store: ArtifactStore) -> None:
        store.put("k", b"a much longer first version")
        ref = store.put("k", b"short")
        assert store.get("k") == b"short"
        assert ref.byte_size == 5

    def test_chunks_are_concatenated(self, store: ArtifactStore) -> None:
        def chunks() -> Iterator[bytes | bytearray | memoryview]:
            yield b"one,"
            yield bytearray(b"two,")
            yield memoryview(b"three")
            yield b""

        ref = store.put("chunked", chunks())
        assert store.get("chunked") == b"one,two,three"
        assert ref.checksum_sha256 == hashlib.sha256(b"one,two,three").hexdigest()
        store.put("listed", [b"a", b"b"])
        assert store.get("listed") == b"ab"

    def test_file_objects_are_read_to_the_end(self, store: ArtifactStore, tmp_path: Path) -> None:
        store.put("from-bytesio", io.BytesIO(b"in memory"))
        assert store.get("from-bytesio") == b"in memory"
        path = tmp_path / "input.bin"
        path.write_bytes(bytes(range(256)) * 5000)
        with path.open("rb") as file:
            ref = store.put("from-file", file)
        assert store.get("from-file") == path.read_bytes()
        assert ref.byte_size == 256 * 5000

    @pytest.mark.parametrize(
        "make_data",
        [
            lambda: "text",
            lambda: [1, 2, 3],
            lambda: [b"ok", "text"],
            lambda: io.StringIO("text"),
            lambda: 42,
        ],
        ids=["str", "ints", "str-chunk", "text-file", "int"],
    )
    def test_data_that_is_not_bytes_is_refused(
        self, store: ArtifactStore, make_data: Callable[[], Any]
    ) -> None:
        with pytest.raises(AgentSessionsError) as caught:
            store.put("refused", make_data())
        assert caught.value.code == "validation_error"
        assert not store.exists("refused")

    def test_metadata_and_content_type_are_checked_before_writing(
        self, store: ArtifactStore
    ) -> None:
        refused: list[dict[str, Any]] = [
            {"metadata": {"x": object()}},
            {"content_type": 5},
            {"content_type": ""},
            {"content_type": "tëxt/plain"},
            {"content_type": "text/plain\r\nX-Injected: 1"},
        ]
        for options in refused:
            with pytest.raises(AgentSessionsError) as caught:
                store.put("refused", b"data", **options)
            assert caught.value.code == "validation_error"
        assert not store.exists("refused")

    # keys -----------------------------------------------------------------------------

    def test_path_like_keys_are_distinct_artifacts(self, store: ArtifactStore) -> None:
        for number, key in enumerate(PATH_LIKE_KEYS):
            store.put(key, f"content {number}".encode())
        for number, key in enumerate(PATH_LIKE_KEYS):
            assert store.get(key) == f"content {number}".encode()

    @pytest.mark.parametrize(
        "key",
        ["", "nul\x00", "new\nline", "\x9f", "x" * (MAX_KEY_BYTES + 1), "é" * 513, "\ud800", 7],
        ids=["empty", "nul", "newline", "c1", "too-long", "too-long-utf8", "surrogate", "int"],
    )
    def test_invalid_keys_are_refused_by_every_operation(
        self, store: ArtifactStore, key: Any
    ) -> None:
        operations = (
            lambda: store.put(key, b"x"),
            lambda: store.get(key),
            lambda: store.open(key),
            lambda: store.delete(key),
            lambda: store.exists(key),
        )
        for operation in operations:
            with pytest.raises(AgentSessionsError) as caught:
                operation()
            assert caught.value.code == "validation_error"

    # Each example overwrites keys of the same store, which is fine; every backend's
    # subclass runs this one method, which is the point of a contract.
    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(key=valid_keys, data=st.binary(max_size=2048))
    def test_any_bytes_under_any_key_round_trip(
        self, store: ArtifactStore, key: str, data: bytes
    ) -> None:
        ref = store.put(key, data)
        assert store.get(key) == data
        assert (ref.key, ref.byte_size) == (key, len(data))
        assert ref.checksum_sha256 == hashlib.sha256(data).hexdigest()

    # delete / exists / not found --------------------------------------------------------

    def test_delete_removes_and_is_idempotent(self, store: ArtifactStore) -> None:
        store.put("doomed", b"x")
        assert store.exists("doomed")
        store.delete("doomed")
        assert not store.exists("doomed")
        store.delete("doomed")
        store.delete("never-existed")
        with pytest.raises(AgentSessionsError) as caught:
            store.get("doomed")
        assert caught.value.code == "not_found"

    def test_missing_key_is_not_found(self, store: ArtifactStore) -> None:
        for read in (store.get, store.open):
            with pytest.raises(AgentSessionsError) as caught:
                read("missing/key")
            assert caught.value.code == "not_found"
            assert caught.value.message == "Artifact not found: missing/key"
        assert store.exists("missing/key") is False

    # streaming reads and checksums ----------------------------------------------------

    def test_open_streams_in_pieces(self, store: ArtifactStore) -> None:
        data = b"".join(f"line {n}\n".encode() for n in range(10_000))
        store.put("lines", data)
        with store.open("lines") as stream:
            assert stream.readline() == b"line 0\n"
            pieces = [stream.read(4096)]
            while piece := stream.read(4096):
                pieces.append(piece)
        assert b"line 0\n" + b"".join(pieces) == data
        assert stream.closed

    def test_corrupted_bytes_fail_get(self, store: ArtifactStore) -> None:
        store.put("fragile", b"original bytes")
        self.replace_stored_bytes(store, "fragile", b"Original bytes")
        with pytest.raises(AgentSessionsError) as caught:
            store.get("fragile")
        error = caught.value
        assert error.code == "storage_error"
        assert error.details["reason"] == "checksum_mismatch"
        assert error.details["expected_sha256"] == hashlib.sha256(b"original bytes").hexdigest()
        assert error.details["actual_sha256"] == hashlib.sha256(b"Original bytes").hexdigest()

    def test_corrupted_bytes_fail_a_stream_at_the_stored_size(self, store: ArtifactStore) -> None:
        store.put("fragile", b"original bytes")
        self.replace_stored_bytes(store, "fragile", b"original bytez")
        # Reads that add up to exactly the stored size, never asking for EOF, still verify.
        with store.open("fragile") as stream, pytest.raises(AgentSessionsError) as caught:
            stream.read(8) + stream.read(6)
        assert caught.value.details["reason"] == "checksum_mismatch"

    def test_truncated_bytes_fail_get(self, store: ArtifactStore) -> None:
        store.put("fragile", b"original bytes")
        self.replace_stored_bytes(store, "fragile", b"original")
        with pytest.raises(AgentSessionsError) as caught:
            store.get("fragile")
        assert caught.value.details["reason"] == "checksum_mismatch"
